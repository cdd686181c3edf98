/**
 * The pure half of an export: which disks go, whether an unfinished export on the target is this
 * one again (and is resumed rather than started over), which finished one serves as rsync's basis,
 * and how the images are compressed. Everything here is decided from what was read; nothing is read.
 */
import { SnapkeepError } from "../../errors.js";
import type { Disk, LvSnapshot, Snapshot, VmWithSnapshots } from "../types.js";

/** A disk of the VM as it is exported: where its snapshot is, and that it has an image at all. */
export interface ExportDiskPlan extends Disk {
  readonly source: string;
  readonly imageSnapshotId: string;
  readonly lv: LvSnapshot | undefined;
}

/** The disks to export: the chosen ones (each must be in the snapshot), else all of the snapshot's. */
export function chooseExportDisks(snapshot: Snapshot, chosen: readonly string[] | undefined): string[] {
  const inSnapshot = snapshot.disks.map((d) => d.target);
  if (chosen === undefined || chosen.length === 0) {
    return inSnapshot;
  }
  for (const target of chosen) {
    if (!inSnapshot.includes(target)) {
      throw new SnapkeepError("INVALID_INPUT", `Snapshot "${snapshot.name}" has no disk ${target}.`, {
        hint: `It has: ${inSnapshot.join(", ")}`,
      });
    }
  }
  return inSnapshot.filter((t) => chosen.includes(t));
}

/**
 * The chosen disks of a snapshot that may be exported as a good copy: never one made by an
 * interrupted job, nor an LVM snapshot whose COW space ran out (it no longer holds the past).
 */
export function planExportDisks(
  vm: VmWithSnapshots,
  snapshot: Snapshot,
  chosen: readonly string[] | undefined,
): ExportDiskPlan[] {
  if (snapshot.incomplete) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `Snapshot "${snapshot.name}" was made by a job that was interrupted; it is not exported as a good copy.`,
      { hint: "Export another snapshot, or take a new one." },
    );
  }
  return chooseExportDisks(snapshot, chosen).map((t) => {
    const disk = vm.disks.find((d) => d.target === t);
    const image = snapshot.disks.find((d) => d.target === t);
    if (disk === undefined || disk.source === null || image === undefined) {
      throw new SnapkeepError("NOT_FOUND", `Disk ${t} of ${vm.name} has no image to export any more.`);
    }
    if (image.lv?.invalid === true) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `Snapshot "${snapshot.name}" is invalid on ${t}: its LVM COW space ran out, so it no longer holds the past content; it is not exported.`,
        { hint: "Delete it and export another snapshot." },
      );
    }
    return { ...disk, source: disk.source, imageSnapshotId: image.imageSnapshotId, lv: image.lv };
  });
}

/** What an unfinished export on the target recorded about itself (its job.json). */
export interface ExportOnTarget {
  readonly id: string;
  readonly state: string;
  readonly job: {
    readonly snapshotTag: string;
    readonly host: string;
    readonly vmUuid: string;
    readonly disks: readonly string[];
  } | null;
}

/**
 * The unfinished export that is this very export again (same snapshot, host, VM and disks): it is
 * resumed, so rsync only sends what the interrupted attempt did not.
 */
export function findResumable<E extends ExportOnTarget>(
  existing: readonly E[],
  wanted: { snapshotTag: string; host: string; vmUuid: string; disks: readonly string[] },
): E | undefined {
  return existing.find(
    (e) =>
      e.state === "partial" &&
      e.job !== null &&
      e.job.snapshotTag === wanted.snapshotTag &&
      e.job.host === wanted.host &&
      e.job.vmUuid === wanted.vmUuid &&
      sameList(e.job.disks, wanted.disks),
  );
}

/** The newest verified export of the VM: rsync's basis, so only changed blocks travel. */
export function newestVerified<E extends ExportOnTarget>(existing: readonly E[]): E | undefined {
  return existing.filter((e) => e.state === "verified").at(-1);
}

/**
 * zstd needs QEMU 5.1 or newer on the writer and on every later reader, so an older (or
 * unrecognised) qemu-img gets zlib.
 */
export function exportCompression(qemuImgVersion: readonly [number, number] | undefined): "zstd" | "zlib" {
  if (qemuImgVersion === undefined) {
    return "zlib";
  }
  const [major, minor] = qemuImgVersion;
  return major > 5 || (major === 5 && minor >= 1) ? "zstd" : "zlib";
}

/**
 * Bytes the target must still have room for. rsync's --inplace writes over what a resumed attempt
 * left, so only the part of each image not there yet counts.
 */
export function bytesStillNeeded(
  sizes: readonly number[],
  presentSizes: readonly (number | undefined)[],
): number {
  return sizes.reduce((sum, size, i) => sum + Math.max(0, size - (presentSizes[i] ?? 0)), 0);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Whether the images are written straight into the export's folder rather than staged on the
 * source and sent with rsync. A streamed export always is: it paces itself to a bandwidth limit.
 * A converted one is when this computer's VM goes into a folder here, except under a limit:
 * qemu-img convert writes as fast as the disks allow (its own `-r` is missing before QEMU 6.0 and
 * counts the holes it skips), so the image is staged and rsync's `--bwlimit` paces the copy.
 */
export function writesIntoTarget(run: {
  readonly streamed: boolean;
  readonly sourceIsLocal: boolean;
  readonly targetKind: "dir" | "ssh";
  readonly bwlimitKiB: number | undefined;
}): boolean {
  return run.streamed || (run.sourceIsLocal && run.targetKind === "dir" && run.bwlimitKiB === undefined);
}

/** An export on a target as the sweep of abandoned attempts sees it (app/exports/abandoned.ts). */
export interface SweptExport {
  readonly id: string;
  readonly vmFolder: string;
  readonly vmUuid: string;
  readonly state: string;
  /** When the export started. */
  readonly startedAt: string;
  /** When its snapshot was taken (the start, when an old job record does not say). */
  readonly snapshotAt: string;
  readonly disks: readonly string[];
  /** Made by Snapkeep: an unfinished one has Snapkeep's job record. */
  readonly ours: boolean;
}

/**
 * Unfinished exports nothing will finish: Snapkeep's, with a verified export of the same VM that
 * started later, of the same or a newer snapshot, holding at least the same disks. A nightly copy
 * exports newer snapshots, so it never resumes such an attempt, which still holds its space and
 * keeps retention from removing the export it builds on. Each comes with the newest verified export
 * that supersedes it. Whether something still writes to them (an export running now) is for the
 * caller to check on the target.
 */
export function supersededPartials<E extends SweptExport>(
  entries: readonly E[],
): { readonly export: E; readonly by: E }[] {
  const verified = entries.filter((e) => e.state === "verified");
  return entries.flatMap((e) => {
    if (e.state !== "partial" || !e.ours) {
      return [];
    }
    const by = verified
      .filter(
        (v) =>
          v.vmFolder === e.vmFolder &&
          v.vmUuid === e.vmUuid &&
          v.startedAt > e.startedAt &&
          v.snapshotAt >= e.snapshotAt &&
          e.disks.every((d) => v.disks.includes(d)),
      )
      .reduce<E | undefined>(
        (newest, v) => (newest === undefined || v.startedAt > newest.startedAt ? v : newest),
        undefined,
      );
    return by === undefined ? [] : [{ export: e, by }];
  });
}

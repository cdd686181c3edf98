/**
 * The third step of an export: the images onto the target. Written straight into a folder, they
 * are there already and only hashed where they landed. Otherwise the export's folder is claimed,
 * the target checked for room, and each image sent with rsync (retried on a dropped connection)
 * while the source hashes it: both read the same file, which is in the page cache by then.
 */
import { posix } from "node:path";

import { SnapkeepError } from "../../../errors.js";
import { formatBytes } from "../../../domain/bytes.js";
import { bytesStillNeeded } from "../../../domain/plans/export-plan.js";
import { RECORD_HASH_SCRIPT, parseRecordedHash } from "../../../drivers/sh/export-scripts.js";
import { isRetryable, relayRsync } from "../../../infra/relay.js";
import { runChecked } from "../../../infra/runner/checked.js";
import { prepareExportFolder } from "../target-folders.js";
import { requireSnapshotStill } from "./convert.js";
import {
  HASH_MS,
  claimOf,
  landedPaths,
  signalOption,
  type PreparedExport,
  type StagedDisk,
} from "./context.js";

const ATTEMPTS = 3;
const BACKOFF_MS = [2000, 8000];

export interface Landed {
  /** The images with their size and hash, as the manifest records them. */
  readonly disks: readonly StagedDisk[];
  /** Bytes that crossed the network (rsync's total sent); 0 for a folder written directly. */
  readonly bytesSent: number;
  /** New data rsync had to send (the rest matched the basis or a resumed partial). */
  readonly literalBytes: number;
}

/** Written straight into the folder: hashed there, and that hash goes in the manifest. */
export async function landDirect(ex: PreparedExport, staged: readonly StagedDisk[]): Promise<Landed> {
  await requireSnapshotStill(ex);
  ex.progress.verifying(staged.reduce((n, d) => n + d.size, 0));
  const paths = landedPaths(ex, staged);
  const sums = await ex.dest.sha256(paths, ex.request.signal);
  const sizes = await ex.dest.sizes(paths);
  return {
    disks: staged.map((d, i) => ({ ...d, sha256: sums[i] ?? "", size: sizes[i] ?? 0 })),
    bytesSent: 0,
    literalBytes: 0,
  };
}

/** Staged on the source: onto the target with rsync, each image's source hash taken meanwhile. */
export async function sendStaged(ex: PreparedExport, staged: readonly StagedDisk[]): Promise<Landed> {
  // The folder is claimed and the job record and definition written with the space check (see
  // prepare.ts).
  const space = await prepareExportFolder(
    ex.dest,
    claimOf(ex),
    ex.partial,
    landedPaths(ex, staged),
    ex.smallFiles,
  );
  const measured = await withSizes(ex, staged);
  const needed = bytesStillNeeded(
    measured.map((d) => d.size),
    space.sizes,
  );
  if (space.freeBytes < needed) {
    throw new SnapkeepError(
      "TARGET_FULL",
      `${ex.target.name} has ${formatBytes(space.freeBytes)} free at ${ex.vmFolder}, but this export needs ${formatBytes(needed)}.`,
      {
        action: { do: "prune-exports" },
        details: { free: space.freeBytes, needed },
      },
    );
  }
  const landed = await sendAll(ex, measured);
  ex.progress.verifying(measured.reduce((n, d) => n + d.size, 0));
  return landed;
}

/** Images converted by an earlier attempt: their size was not printed this time. */
async function withSizes(ex: PreparedExport, staged: readonly StagedDisk[]): Promise<StagedDisk[]> {
  if (!staged.some((d) => d.size === 0)) {
    return [...staged];
  }
  const sizes = await ex.source.sizes(staged.map((d) => d.path));
  return staged.map((d, i) => ({ ...d, size: sizes[i] ?? 0 }));
}

async function sendAll(ex: PreparedExport, staged: readonly StagedDisk[]): Promise<Landed> {
  const total = staged.reduce((sum, d) => sum + d.size, 0);
  const disks: StagedDisk[] = [];
  let sentBefore = 0;
  let bytesSent = 0;
  let literalBytes = 0;
  for (const [i, disk] of staged.entries()) {
    ex.progress.phase("transfer", disk.target, sentBefore, total);
    const before = sentBefore;
    // The snapshot check runs once, beside the first image on its way.
    const sent = await sendDisk(ex, disk, i === 0, (bytes) =>
      ex.progress.update(before + Math.min(bytes, disk.size)),
    );
    disks.push(sent.disk);
    // rsync's last progress line may stop short of the size (what matched the basis is not
    // always counted): the disk is there now, whole.
    ex.progress.update(before + disk.size);
    bytesSent += sent.stats?.bytesSent ?? 0;
    literalBytes += sent.stats?.literalBytes ?? 0;
    sentBefore += disk.size;
  }
  return { disks, bytesSent, literalBytes };
}

type Stats = { bytesSent: number; literalBytes: number } | undefined;

async function sendDisk(
  ex: PreparedExport,
  disk: StagedDisk,
  checkSnapshot: boolean,
  onBytes: (bytes: number) => void,
): Promise<{ disk: StagedDisk; stats: Stats }> {
  const hashing =
    disk.sha256 === ""
      ? runChecked(
          ex.source.runner,
          ["sh", "-c", RECORD_HASH_SCRIPT, "snapkeep-hash", disk.path],
          "Hashing the converted image",
          { timeoutMs: HASH_MS, ...signalOption(ex) },
        )
      : undefined;
  const [sent, hashed, checked] = await Promise.allSettled([
    relayWithRetries(ex, disk, onBytes),
    hashing,
    checkSnapshot ? requireSnapshotStill(ex) : undefined,
  ]);
  // A vanished snapshot explains a failed transfer better than the transfer's own error does.
  if (checked.status === "rejected") {
    throw checked.reason;
  }
  if (sent.status === "rejected") {
    throw sent.reason;
  }
  if (hashed.status === "rejected") {
    throw hashed.reason;
  }
  const sha256 = hashed.value === undefined ? disk.sha256 : parseRecordedHash(hashed.value.stdout);
  return { disk: { ...disk, sha256 }, stats: sent.value };
}

async function relayWithRetries(
  ex: PreparedExport,
  disk: StagedDisk,
  onBytes: (bytes: number) => void,
): Promise<Stats> {
  const signal = ex.request.signal;
  const send = {
    source: disk.path,
    destination: posix.join(ex.partial, disk.file),
    basisDir: ex.basis === undefined ? undefined : posix.join(ex.target.path, ex.basis.folder),
    bwlimitKiB: ex.request.bwlimitKiB,
  };
  for (let attempt = 1; ; attempt++) {
    try {
      const { stats } = await relayRsync({
        sender: ex.libvirt.runner,
        receiver: ex.dest.runner,
        send,
        signal,
        onProgress: (p) => onBytes(p.bytes),
      });
      return stats;
    } catch (error) {
      if (signal?.aborted === true || attempt >= ATTEMPTS || !isRetryable(error)) {
        throw error;
      }
      // A cancel during the wait ends it at once; the relay then refuses to start.
      await Promise.race([
        ex.sleep(BACKOFF_MS[attempt - 1] ?? 8000),
        new Promise<void>((resolve) => signal?.addEventListener("abort", () => resolve(), { once: true })),
      ]);
    }
  }
}

/**
 * Chains of exports (issue 16): an incremental export's disk image is a qcow2 overlay whose
 * backing file is the same disk in the export before it (`../<id>/<disk>.qcow2`). Decided here,
 * from what the target and the host said: which earlier export a disk builds on or why it is
 * exported in full; whether an export's chain is whole; and which exports retention must keep
 * because a kept one is built on them.
 *
 * Everything from the target is input: a chain is followed only through backing names that are
 * exactly what Snapkeep writes, within one VM's folder, without cycles, to a standalone image.
 */
import type { Snapshot, VmWithSnapshots } from "../types.js";

/** An export as the chain rules see it (ExportEntry in drivers/bundle/bundle.ts has these fields). */
export interface ChainExport {
  readonly id: string;
  /** The VM folder it is in: a chain never leaves it (ids are unique only within one). */
  readonly vmFolder?: string | undefined;
  readonly state: string;
  readonly manifest: {
    readonly source: { readonly vm: { readonly uuid: string }; readonly snapshot: { readonly tag: string } };
    readonly disks: readonly ChainDisk[];
  } | null;
  /** An unfinished export's record: the export its images are being built on. */
  readonly job?: { readonly basis?: string | undefined } | null;
}

export interface ChainDisk {
  readonly target: string;
  readonly size: number;
  readonly virtualSize: number | null;
  /** `../<id>/<target>.qcow2` for an incremental image; absent for a standalone one. */
  readonly backing?: string | undefined;
  /** "none" for a streamed image; zstd/zlib for one made the convert way (--compressed). */
  readonly compression?: string | undefined;
}

/** After this many incremental links, a disk is exported in full again, so old chains can go. */
export const MAX_LINKS = 14;

/**
 * Increments that add up to more than half of their full export make the next one full, unless
 * they are this small: an empty disk's increments (tables only) would otherwise flip it to full
 * every other night for nothing.
 */
export const MIN_REFULL_BYTES = 64 * 1024 * 1024;

export type DiskBasis =
  | {
      readonly mode: "incremental";
      readonly basis: string;
      /** The basis export's snapshot in this disk's image: what the tables are compared with. */
      readonly basisSnapshot: { readonly id: string; readonly name: string };
      readonly why: string;
    }
  | { readonly mode: "full"; readonly why: string };

/** The id a backing name Snapkeep wrote points at, or null for anything else. */
export function backingId(backing: string, target: string): string | null {
  const match = /^\.\.\/([0-9]{8}T[0-9]{6}Z-[a-z0-9-]{1,40})\/([a-z0-9]{1,16})\.qcow2$/.exec(backing);
  return match !== null && match[2] === target ? (match[1] ?? null) : null;
}

export function backingName(basisId: string, target: string): string {
  return `../${basisId}/${target}.qcow2`;
}

/**
 * The exports a disk's image rests on, nearest first, or why the chain cannot be trusted: a link
 * missing, not verified, of another VM, named oddly, or a cycle.
 */
export function chainBelow<E extends ChainExport>(
  exports: readonly E[],
  from: E,
  target: string,
): { readonly links: readonly E[]; readonly broken: string | null } {
  const byId = new Map(exports.filter((e) => e.vmFolder === from.vmFolder).map((e) => [e.id, e]));
  const vmUuid = from.manifest?.source.vm.uuid;
  const links: E[] = [];
  const seen = new Set([from.id]);
  let disk = from.manifest?.disks.find((d) => d.target === target);
  while (disk?.backing !== undefined) {
    const id = backingId(disk.backing, target);
    const next = id === null ? undefined : byId.get(id);
    if (id === null) {
      return { links, broken: `a link names its base oddly (${disk.backing.slice(0, 80)})` };
    }
    if (seen.has(id)) {
      return { links, broken: `the chain loops back to ${id}` };
    }
    if (next === undefined) {
      return { links, broken: `${id}, an export it is built on, is missing` };
    }
    if (next.state !== "verified" || next.manifest === null || next.manifest.source.vm.uuid !== vmUuid) {
      return {
        links,
        broken: `${id}, an export it is built on, is ${next.state === "verified" ? "of another VM" : next.state}`,
      };
    }
    seen.add(id);
    links.push(next);
    disk = next.manifest.disks.find((d) => d.target === target);
    if (disk === undefined) {
      return { links, broken: `${id}, an export it is built on, has no disk ${target}` };
    }
  }
  return { links, broken: null };
}

/**
 * What disk `target` of `vm` builds on in this export: the VM's newest verified export on the
 * target, when its chain is whole and short, its disk the same size, and its snapshot still in
 * the image. Otherwise a full export, and why in words for the job's log.
 */
export function decideDiskBasis<E extends ChainExport>(
  exports: readonly E[],
  vm: VmWithSnapshots,
  target: string,
  virtualSize: number | null,
): DiskBasis {
  const mine = exports.filter((e) => e.manifest?.source.vm.uuid === vm.uuid);
  const basis = mine.filter((e) => e.state === "verified").at(-1);
  if (basis === undefined || basis.manifest === null) {
    return { mode: "full", why: "there is no earlier verified export of this VM on the target" };
  }
  const disk = basis.manifest.disks.find((d) => d.target === target);
  if (disk === undefined) {
    return { mode: "full", why: `${target} is not in the previous export (${basis.id})` };
  }
  if (disk.compression !== undefined && disk.compression !== "none") {
    // Its clusters are compressed: a merge on retention could not take them in.
    return {
      mode: "full",
      why: `the previous export (${basis.id}) is compressed (--compressed); increments build on streamed exports only`,
    };
  }
  if (virtualSize === null || disk.virtualSize !== virtualSize) {
    return { mode: "full", why: `${target} was resized since the previous export (${basis.id})` };
  }
  const chain = chainBelow(exports, basis, target);
  if (chain.broken !== null) {
    return { mode: "full", why: `the previous export's chain cannot be trusted: ${chain.broken}` };
  }
  const links = disk.backing === undefined ? 0 : chain.links.length;
  if (links + 1 >= MAX_LINKS) {
    return {
      mode: "full",
      why: `${links + 1} incremental exports since the last full one (a full one every ${MAX_LINKS})`,
    };
  }
  // The chain's disks, newest first: the last one is the full image the increments rest on.
  const disks = [disk, ...chain.links.map((l) => l.manifest?.disks.find((d) => d.target === target))];
  const fullSize = disks.at(-1)?.size ?? 0;
  const added = disks.slice(0, -1).reduce((sum, d) => sum + (d?.size ?? 0), 0);
  if (links > 0 && added > fullSize / 2 && added > MIN_REFULL_BYTES) {
    return { mode: "full", why: "the increments since the last full export add up to more than half of it" };
  }
  const tag = basis.manifest.source.snapshot.tag;
  const imageSnapshot = snapshotIdIn(vm.snapshots, tag, target);
  if (imageSnapshot === undefined) {
    return {
      mode: "full",
      why: `the snapshot of the previous export (${basis.id}) is no longer on the host`,
    };
  }
  return {
    mode: "incremental",
    basis: basis.id,
    basisSnapshot: { id: imageSnapshot, name: tag },
    why: `changes since ${basis.id}`,
  };
}

function snapshotIdIn(snapshots: readonly Snapshot[], tag: string, target: string): string | undefined {
  const snapshot = snapshots.find((s) => s.tag === tag && !s.incomplete);
  // A qcow2 snapshot's id in its image, or a thin snapshot LV's UUID (its pool's metadata says
  // what changed since); a thick LVM snapshot keeps no such record.
  const disk = snapshot?.disks.find((d) => d.target === target && (d.lv === undefined || d.lv.thin));
  return disk?.imageSnapshotId;
}

/**
 * The exports as they may be trusted: a verified export built on one that is missing or damaged
 * cannot be restored, so it is listed as damaged too, with the reason.
 */
export function markBrokenChains<E extends ChainExport & { readonly reason: string | null }>(
  exports: readonly E[],
): E[] {
  return exports.map((e) => {
    if (e.state !== "verified") {
      return e;
    }
    for (const disk of e.manifest?.disks ?? []) {
      const { broken } = chainBelow(exports, e, disk.target);
      if (broken !== null) {
        return { ...e, state: "corrupt", reason: `it cannot be restored: ${broken}` };
      }
    }
    return e;
  });
}

/**
 * Space, as the VM list and the snapshot list show it (issue 18): what a VM's disks take, how far
 * back its snapshots reach, and what deleting each snapshot would free where the storage can say:
 *
 * | storage          | what deleting one snapshot frees                        | known from           |
 * |------------------|---------------------------------------------------------|----------------------|
 * | qcow2 (internal) | the clusters only its tables hold                       | the image's refcounts |
 * | LVM thick        | its whole COW LV (lv_size), given back to the VG        | lvs                  |
 * | LVM thin         | the blocks only it maps: not known cheaply → null       | -                    |
 *
 * Pure: the measured numbers come in (app/space.ts reads them), the shapes go out.
 */
import type { Disk, DiskSnapshot, Snapshot } from "./types.js";

/** What one disk's storage said about its snapshots: freed bytes by image snapshot id, or why not. */
export type DiskFreed =
  | { readonly known: true; readonly byImageSnapshotId: ReadonlyMap<string, number> }
  | { readonly known: false; readonly reason: string };

export interface DiskSpace {
  readonly target: string;
  readonly virtualSize: number | null;
  /** See Disk.allocatedSize. */
  readonly allocatedSize: number | null;
  /** Why what its snapshots would free is not known (null when it is, or it has no snapshots). */
  readonly freesUnknownReason: string | null;
}

export interface SnapshotSpace {
  readonly tag: string;
  /** Bytes deleting this snapshot alone would free, all its disks together; null when a disk cannot say. */
  readonly freesBytes: number | null;
  readonly disks: readonly { readonly target: string; readonly freesBytes: number | null }[];
}

/** Everything `vms.space` answers for one VM. */
export interface VmSpace {
  readonly host: string;
  readonly vm: string;
  readonly uuid: string;
  readonly disks: readonly DiskSpace[];
  /** spaceUsed(disks): what the VM takes on its host, its snapshots included. */
  readonly usedBytes: number | null;
  /** oldestRestorePoint(snapshots): "you can go back to …". */
  readonly oldestRestorePoint: string | null;
  /** In the snapshot list's order (oldest first), matched by tag. */
  readonly snapshots: readonly SnapshotSpace[];
}

export const THIN_UNKNOWN =
  "an LVM thin snapshot shares its blocks with its volume and the other snapshots; which blocks only it holds is not known without reading the pool's metadata";

/**
 * Bytes the VM's disks take on the host (Disk.allocatedSize summed over its disk devices, not
 * CD-ROMs); null when any disk's is unknown, rather than a sum that looks whole and is not.
 */
export function spaceUsed(disks: readonly Disk[]): number | null {
  let sum = 0;
  for (const disk of disks.filter((d) => d.device === "disk")) {
    if (disk.allocatedSize === null) {
      return null;
    }
    sum += disk.allocatedSize;
  }
  return sum;
}

/**
 * The time of the oldest snapshot the VM can still go back to: complete (its job finished) and,
 * on LVM, not invalidated by a full COW area. Null when there is none.
 */
export function oldestRestorePoint(snapshots: readonly Snapshot[]): string | null {
  let oldest: string | null = null;
  for (const s of snapshots) {
    if (s.incomplete || s.disks.some((d) => d.lv?.invalid === true)) {
      continue;
    }
    if (oldest === null || Date.parse(s.createdAt) < Date.parse(oldest)) {
      oldest = s.createdAt;
    }
  }
  return oldest;
}

/** What deleting a snapshot frees on one disk, or null when its storage cannot say. */
export function diskSnapshotFrees(disk: DiskSnapshot, freed: DiskFreed | undefined): number | null {
  if (disk.lv !== undefined) {
    return disk.lv.thin ? null : disk.lv.cowBytes;
  }
  if (freed === undefined || !freed.known) {
    return null;
  }
  return freed.byImageSnapshotId.get(disk.imageSnapshotId) ?? null;
}

/** The snapshots with freesBytes filled in, on each disk and summed (null when any disk is null). */
export function withFreed(snapshots: readonly Snapshot[], freed: ReadonlyMap<string, DiskFreed>): Snapshot[] {
  return snapshots.map((s) => {
    const disks = s.disks.map((d) => ({ ...d, freesBytes: diskSnapshotFrees(d, freed.get(d.target)) }));
    return { ...s, disks, freesBytes: sumOrNull(disks.map((d) => d.freesBytes)) };
  });
}

/** The VM's space, from its disks, its snapshots and what each disk's storage said. */
export function vmSpace(
  vm: {
    readonly host: string;
    readonly name: string;
    readonly uuid: string;
    readonly disks: readonly Disk[];
  },
  snapshots: readonly Snapshot[],
  freed: ReadonlyMap<string, DiskFreed>,
): VmSpace {
  const measured = withFreed(snapshots, freed);
  return {
    host: vm.host,
    vm: vm.name,
    uuid: vm.uuid,
    disks: vm.disks
      .filter((d) => d.device === "disk")
      .map((d) => ({
        target: d.target,
        virtualSize: d.virtualSize,
        allocatedSize: d.allocatedSize,
        freesUnknownReason: unknownReason(d.target, snapshots, freed.get(d.target)),
      })),
    usedBytes: spaceUsed(vm.disks),
    oldestRestorePoint: oldestRestorePoint(snapshots),
    snapshots: measured.map((s) => ({
      tag: s.tag,
      freesBytes: s.freesBytes ?? null,
      disks: s.disks.map((d) => ({ target: d.target, freesBytes: d.freesBytes ?? null })),
    })),
  };
}

function unknownReason(
  target: string,
  snapshots: readonly Snapshot[],
  freed: DiskFreed | undefined,
): string | null {
  const parts = snapshots.flatMap((s) => s.disks.filter((d) => d.target === target));
  if (parts.length === 0) {
    return null;
  }
  if (parts.some((d) => d.lv?.thin === true)) {
    return THIN_UNKNOWN;
  }
  if (parts.some((d) => d.lv !== undefined)) {
    return null;
  }
  return freed === undefined ? "its storage was not measured" : freed.known ? null : freed.reason;
}

function sumOrNull(values: readonly (number | null)[]): number | null {
  let sum = 0;
  for (const v of values) {
    if (v === null) {
      return null;
    }
    sum += v;
  }
  return sum;
}

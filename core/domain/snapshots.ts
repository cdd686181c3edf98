import { parseSnapshotTag } from "./snapshot-tag.js";
import { compareText } from "./compare.js";
import type { ImageSnapshot, Snapshot } from "./types.js";

export interface DiskImageSnapshots {
  readonly target: string;
  readonly snapshots: readonly ImageSnapshot[];
}

export interface SnapshotAnnotations {
  readonly note: string | null;
  readonly pinned: boolean;
  readonly consistency?: string | undefined;
  readonly incomplete?: boolean | undefined;
  readonly exportedTo?: readonly string[] | undefined;
}

/**
 * Groups the per-image internal snapshots of a VM into user-level snapshots: one per tag, listing
 * every disk that holds it. Sorted oldest first, as a timeline reads.
 */
export function groupSnapshots(
  disks: readonly DiskImageSnapshots[],
  annotate: (tag: string) => SnapshotAnnotations = () => NO_ANNOTATIONS,
): Snapshot[] {
  const byTag = new Map<string, { disks: Snapshot["disks"][number][]; earliest: Date; vmState: boolean }>();
  for (const disk of disks) {
    for (const image of disk.snapshots) {
      const entry = byTag.get(image.name) ?? { disks: [], earliest: image.createdAt, vmState: false };
      entry.disks.push({
        target: disk.target,
        imageSnapshotId: image.id,
        createdAt: image.createdAt.toISOString(),
        vmStateSize: image.vmStateSize,
        ...(image.lv === undefined ? {} : { lv: image.lv }),
      });
      if (image.createdAt < entry.earliest) {
        entry.earliest = image.createdAt;
      }
      entry.vmState ||= image.vmStateSize > 0;
      byTag.set(image.name, entry);
    }
  }
  return [...byTag.entries()]
    .map(([tag, entry]) => {
      const parsed = parseSnapshotTag(tag);
      return {
        tag,
        name: parsed.name,
        kind: parsed.kind,
        origin: parsed.origin,
        createdAt: entry.earliest.toISOString(),
        disks: entry.disks,
        hasVmState: entry.vmState,
        ...toFields(annotate(tag)),
      };
    })
    .sort((a, b) => compareText(a.createdAt, b.createdAt) || compareText(a.tag, b.tag));
}

const NO_ANNOTATIONS: SnapshotAnnotations = { note: null, pinned: false };

function toFields(
  a: SnapshotAnnotations,
): Pick<Snapshot, "note" | "pinned" | "consistency" | "incomplete" | "exportedTo"> {
  return {
    note: a.note,
    pinned: a.pinned,
    consistency: a.consistency ?? null,
    incomplete: a.incomplete === true,
    ...(a.exportedTo === undefined || a.exportedTo.length === 0 ? {} : { exportedTo: a.exportedTo }),
  };
}

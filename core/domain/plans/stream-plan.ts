/**
 * The pure half of a streamed export (issue 16): from the guest extents a disk's tables gave,
 * the image Snapkeep writes on the target (drivers/qemu-img/qcow2-writer.ts) and the reads on the
 * source that feed its data clusters.
 *
 * Data clusters are read in the source file's order, not the guest's: a snapshot's clusters were
 * allocated as the guest wrote them, so guest order would scatter the reads (one `dd` per cluster
 * on a fragmented image) while file order keeps them long and sequential. Small holes between
 * wanted clusters are read through and dropped here, which costs a few bytes and saves a process
 * per hole.
 */
import { SnapkeepError } from "../../errors.js";

/** A run of guest bytes and where the snapshot keeps them (drivers/qemu-img/qcow2-tables.ts). */
export interface GuestExtent {
  readonly guestOffset: number;
  readonly length: number;
  readonly source:
    | { readonly kind: "data"; readonly hostOffset: number }
    | { readonly kind: "zero" }
    | { readonly kind: "compressed" };
}

export interface StreamPlan {
  /**
   * The guest clusters the image holds, as runs (one per extent, never one object per cluster: a
   * multi-terabyte disk has tens of millions); data runs in the order their bytes arrive.
   */
  readonly clusters: readonly { guestCluster: number; count: number; kind: "data" | "zero" }[];
  /** Ranges of the source image to read, in order: their bytes arrive back to back. */
  readonly reads: readonly { offset: number; length: number }[];
  /** What to do with the bytes that arrive, in order: keep them (a data cluster) or drop them. */
  readonly segments: readonly { keep: boolean; length: number }[];
  /** Bytes the reads take from the source image. */
  readonly readBytes: number;
  /** Guest bytes of data and of zeros the image holds. */
  readonly dataBytes: number;
  readonly zeroBytes: number;
}

/**
 * Disks an export can stream: qcow2 files (their internal snapshots' tables say what changed) and
 * LVM thin volumes (their pool's metadata does). A thick LVM volume keeps no such record.
 */
export function streamable(
  disks: readonly { target: string; format: string | null; lv: { readonly thin: boolean } | undefined }[],
): string | null {
  const other = disks.find((d) => (d.lv === undefined ? d.format !== "qcow2" : !d.lv.thin));
  if (other === undefined) {
    return null;
  }
  return other.lv !== undefined
    ? `${other.target} is a thick LVM volume, which keeps no record of what changed: read in full with qemu-img convert`
    : `${other.target} is a ${other.format ?? "raw"} image, read in full with qemu-img convert`;
}

/** Holes up to this many clusters between wanted ones are read through rather than skipped. */
const READ_THROUGH_CLUSTERS = 4;

/**
 * `keepZeros`: an incremental image records clusters that became zero (else they would read
 * through to the previous export); a full image leaves them out, as it has nothing beneath.
 */
export function planStream(
  extents: readonly GuestExtent[],
  clusterSize: number,
  keepZeros: boolean,
): StreamPlan {
  const data: { guestCluster: number; hostOffset: number; count: number }[] = [];
  const zeros: { guestCluster: number; count: number; kind: "zero" }[] = [];
  for (const e of extents) {
    if (e.guestOffset % clusterSize !== 0) {
      throw new SnapkeepError("UNEXPECTED_OUTPUT", "A changed extent does not start on a cluster.");
    }
    const first = e.guestOffset / clusterSize;
    const count = Math.ceil(e.length / clusterSize);
    if (count === 0) {
      continue;
    }
    if (e.source.kind === "data") {
      data.push({ guestCluster: first, hostOffset: e.source.hostOffset, count });
    } else if (e.source.kind === "zero") {
      zeros.push({ guestCluster: first, count, kind: "zero" });
    } else {
      throw new SnapkeepError("UNEXPECTED_OUTPUT", "A compressed cluster cannot be streamed as it is.");
    }
  }
  // An extent is contiguous in the file too (its clusters follow each other there), so sorting
  // the extents puts every cluster in file order.
  data.sort((a, b) => a.hostOffset - b.hostOffset);
  const reads: { offset: number; length: number }[] = [];
  const segments: { keep: boolean; length: number }[] = [];
  let end = -1;
  let dataClusters = 0;
  for (const d of data) {
    const last = reads.at(-1);
    const gap = d.hostOffset - end;
    const length = d.count * clusterSize;
    if (last !== undefined && gap >= 0 && gap <= READ_THROUGH_CLUSTERS * clusterSize) {
      if (gap > 0) {
        segments.push({ keep: false, length: gap });
      }
      last.length += gap + length;
    } else {
      reads.push({ offset: d.hostOffset, length });
    }
    pushKeep(segments, length);
    end = d.hostOffset + length;
    dataClusters += d.count;
  }
  const zeroClusters = zeros.reduce((sum, z) => sum + z.count, 0);
  return {
    clusters: [
      ...data.map((d) => ({ guestCluster: d.guestCluster, count: d.count, kind: "data" as const })),
      ...(keepZeros ? zeros : []),
    ],
    reads,
    segments,
    readBytes: reads.reduce((sum, r) => sum + r.length, 0),
    dataBytes: dataClusters * clusterSize,
    zeroBytes: zeroClusters * clusterSize,
  };
}

function pushKeep(segments: { keep: boolean; length: number }[], length: number): void {
  const last = segments.at(-1);
  if (last?.keep === true) {
    last.length += length;
  } else {
    segments.push({ keep: true, length });
  }
}

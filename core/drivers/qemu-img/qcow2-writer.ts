/**
 * A qcow2 image written front to back by Snapkeep itself, so an export can stream a snapshot's
 * clusters from the source host into the target file without a staging copy (issue 16).
 *
 * Every cluster's place is known before the first data byte: the caller knows which guest
 * clusters the image holds (all allocated ones for a full export, the changed ones for an
 * incremental) and the order their data will arrive in. So the image is laid out as
 *
 *   header | L1 table | refcount table | refcount blocks | L2 tables | data clusters
 *
 * with every metadata byte computed here, and the data clusters following in arrival order (the
 * source's host order, which keeps its reads sequential). Every cluster has refcount 1, so the
 * "copied" flag is set on every L1 and L2 entry that points at one, as QEMU's own check expects.
 * An incremental image names its backing file (the previous export's image, relative) and marks
 * guest clusters that became zero with the zero flag, so they do not read through to the backing.
 *
 * Pure: bytes out, nothing read or written here. `qemu-img check` and `qemu-img compare` against
 * the snapshot are the proof (test/integration/streamed-export.test.ts).
 */
import { SnapkeepError } from "../../errors.js";

const QCOW2_MAGIC = 0x514649fb;
const HEADER_LENGTH = 104;
const EXT_BACKING_FORMAT = 0xe2792aca;
const REFCOUNT_ORDER = 4; // 16-bit refcounts, QEMU's default
const COPIED = 1n << 63n;
/** The "copied" flag as the upper 32-bit half of an entry sees it. */
const COPIED_HIGH = 2 ** 31;
const L2_ZERO = 1n;
/** QEMU's limit on a backing file name (1023 bytes) and what fits in the header cluster. */
const MAX_BACKING_NAME = 1023;

/**
 * Guest clusters the image holds, `count` of them from `guestCluster` on (1 when not said): their
 * data follows, in this order, or they read as zeros.
 */
export interface PlannedCluster {
  /** Index of the (first) guest cluster (guest offset / cluster size). */
  readonly guestCluster: number;
  readonly count?: number;
  readonly kind: "data" | "zero";
}

export interface ImagePlan {
  readonly clusterSize: number;
  readonly virtualSize: number;
  /** Relative name of the backing image (an incremental export), or null for a standalone one. */
  readonly backing: string | null;
  /**
   * The guest clusters held, each once; data clusters in the order their bytes will be written
   * after the metadata (any order, so the reads on the source can stay sequential).
   */
  readonly clusters: readonly PlannedCluster[];
}

export interface ImageLayout {
  /** Every byte before the first data cluster, in order. */
  readonly metadata: readonly Buffer[];
  readonly metadataBytes: number;
  /** Data clusters that follow the metadata, each clusterSize bytes. */
  readonly dataClusters: number;
  /** The image file's size once complete. */
  readonly fileSize: number;
}

export function layoutImage(plan: ImagePlan): ImageLayout {
  const { clusterSize, virtualSize } = plan;
  checkPlan(plan);
  const l2Entries = clusterSize / 8;
  const l1Size = Math.max(1, Math.ceil(virtualSize / (clusterSize * l2Entries)));
  const l1Clusters = clustersFor(l1Size * 8, clusterSize);
  // Which L2 tables the image needs: a mark per L1 entry (a run spans one or more tables).
  const needed = new Uint8Array(l1Size);
  let dataClusters = 0;
  for (const c of plan.clusters) {
    const count = c.count ?? 1;
    const last = Math.floor((c.guestCluster + count - 1) / l2Entries);
    for (let index = Math.floor(c.guestCluster / l2Entries); index <= last; index++) {
      needed[index] = 1;
    }
    dataClusters += c.kind === "data" ? count : 0;
  }
  const l2Slot = new Int32Array(l1Size).fill(-1);
  let tables = 0;
  needed.forEach((isNeeded, index) => {
    if (isNeeded === 1) {
      l2Slot[index] = tables++;
    }
  });
  const refcounts = refcountShape(1 + l1Clusters + tables + dataClusters, clusterSize);
  const l1At = 1;
  const rtAt = l1At + l1Clusters;
  const rbAt = rtAt + refcounts.tableClusters;
  const l2At = rbAt + refcounts.blockClusters;
  const dataAt = l2At + tables;

  const l1 = Buffer.alloc(l1Clusters * clusterSize);
  l2Slot.forEach((slot, index) => {
    if (slot >= 0) {
      l1.writeBigUInt64BE(BigInt((l2At + slot) * clusterSize) | COPIED, index * 8);
    }
  });
  const l2 = Buffer.alloc(tables * clusterSize);
  let next = dataAt;
  for (const c of plan.clusters) {
    for (let guest = c.guestCluster; guest < c.guestCluster + (c.count ?? 1); guest++) {
      const at = (l2Slot[Math.floor(guest / l2Entries)] ?? 0) * clusterSize + (guest % l2Entries) * 8;
      // Two 32-bit halves rather than a BigInt per cluster: tens of millions on a large disk.
      if (c.kind === "zero") {
        l2.writeUInt32BE(0, at);
        l2.writeUInt32BE(Number(L2_ZERO), at + 4);
      } else {
        const offset = next++ * clusterSize;
        l2.writeUInt32BE(Math.floor(offset / 2 ** 32) + COPIED_HIGH, at);
        l2.writeUInt32BE(offset % 2 ** 32, at + 4);
      }
    }
  }
  const total = dataAt + dataClusters;
  const metadata = [
    header(plan, { l1Size, l1At, rtAt, rtClusters: refcounts.tableClusters }),
    l1,
    refcountTable(rbAt, refcounts, clusterSize),
    refcountBlocks(total, refcounts.blockClusters, clusterSize),
    l2,
  ];
  return {
    metadata,
    metadataBytes: dataAt * clusterSize,
    dataClusters,
    fileSize: total * clusterSize,
  };
}

function checkPlan(plan: ImagePlan): void {
  const { clusterSize, virtualSize } = plan;
  if (!Number.isInteger(Math.log2(clusterSize)) || clusterSize < 512 || clusterSize > 2 * 1024 * 1024) {
    throw new SnapkeepError("INVALID_INPUT", `A qcow2 cluster size of ${clusterSize} bytes is not valid.`);
  }
  if (!Number.isSafeInteger(virtualSize) || virtualSize <= 0) {
    throw new SnapkeepError("INVALID_INPUT", `A disk size of ${virtualSize} bytes is not valid.`);
  }
  const clusters = Math.ceil(virtualSize / clusterSize);
  // A bit per guest cluster: a Set would hit V8's limit (2^24 entries) at 1 TiB of 64 KiB clusters.
  const seen = new Uint8Array(Math.ceil(clusters / 8));
  for (const c of plan.clusters) {
    const count = c.count ?? 1;
    if (
      !Number.isInteger(c.guestCluster) ||
      !Number.isInteger(count) ||
      count < 1 ||
      c.guestCluster < 0 ||
      c.guestCluster + count > clusters
    ) {
      throw new SnapkeepError("INVALID_INPUT", `Guest cluster ${c.guestCluster} lies outside the disk.`);
    }
    for (let guest = c.guestCluster; guest < c.guestCluster + count; guest++) {
      const bit = 1 << (guest % 8);
      const byte = seen[Math.floor(guest / 8)] ?? 0;
      if ((byte & bit) !== 0) {
        throw new SnapkeepError("INVALID_INPUT", `Guest cluster ${guest} is planned twice.`);
      }
      seen[Math.floor(guest / 8)] = byte | bit;
    }
  }
  const name = plan.backing === null ? 0 : Buffer.byteLength(plan.backing);
  if (plan.backing !== null && (name === 0 || name > MAX_BACKING_NAME || plan.backing.includes("\0"))) {
    throw new SnapkeepError("INVALID_INPUT", "The backing file name is empty, too long or not text.");
  }
  if (HEADER_LENGTH + 32 + name > clusterSize) {
    throw new SnapkeepError("INVALID_INPUT", "The backing file name does not fit in the header cluster.");
  }
}

function clustersFor(bytes: number, clusterSize: number): number {
  return Math.max(1, Math.ceil(bytes / clusterSize));
}

interface RefcountShape {
  readonly tableClusters: number;
  readonly blockClusters: number;
}

/**
 * How many refcount blocks and table clusters cover `others` clusters plus themselves: each block
 * counts clusterSize/2 clusters (16-bit refcounts), each table cluster points at clusterSize/8
 * blocks. Grown until it covers its own clusters too.
 */
function refcountShape(others: number, clusterSize: number): RefcountShape {
  const perBlock = clusterSize / 2;
  const perTable = clusterSize / 8;
  let shape = { tableClusters: 1, blockClusters: 1 };
  for (;;) {
    const total = others + shape.tableClusters + shape.blockClusters;
    const blockClusters = Math.ceil(total / perBlock);
    const tableClusters = Math.ceil(blockClusters / perTable);
    if (blockClusters <= shape.blockClusters && tableClusters <= shape.tableClusters) {
      return shape;
    }
    shape = {
      blockClusters: Math.max(blockClusters, shape.blockClusters),
      tableClusters: Math.max(tableClusters, shape.tableClusters),
    };
  }
}

function header(
  plan: ImagePlan,
  at: { l1Size: number; l1At: number; rtAt: number; rtClusters: number },
): Buffer {
  const { clusterSize } = plan;
  const h = Buffer.alloc(clusterSize);
  h.writeUInt32BE(QCOW2_MAGIC, 0);
  h.writeUInt32BE(3, 4);
  h.writeUInt32BE(Math.log2(clusterSize), 20);
  h.writeBigUInt64BE(BigInt(plan.virtualSize), 24);
  h.writeUInt32BE(at.l1Size, 36);
  h.writeBigUInt64BE(BigInt(at.l1At * clusterSize), 40);
  h.writeBigUInt64BE(BigInt(at.rtAt * clusterSize), 48);
  h.writeUInt32BE(at.rtClusters, 56);
  h.writeUInt32BE(REFCOUNT_ORDER, 96);
  h.writeUInt32BE(HEADER_LENGTH, 100);
  let ext = HEADER_LENGTH;
  if (plan.backing !== null) {
    // The backing format is named so that QEMU never probes it (probing is what a hostile
    // backing image could abuse); it is always one of Snapkeep's qcow2 exports.
    const format = Buffer.from("qcow2");
    h.writeUInt32BE(EXT_BACKING_FORMAT, ext);
    h.writeUInt32BE(format.length, ext + 4);
    format.copy(h, ext + 8);
    ext += 8 + Math.ceil(format.length / 8) * 8;
  }
  ext += 8; // the end-of-extensions marker: type 0, length 0, already zero
  if (plan.backing !== null) {
    const name = Buffer.from(plan.backing);
    h.writeBigUInt64BE(BigInt(ext), 8);
    h.writeUInt32BE(name.length, 16);
    name.copy(h, ext);
  }
  return h;
}

function refcountTable(rbAt: number, shape: RefcountShape, clusterSize: number): Buffer {
  const table = Buffer.alloc(shape.tableClusters * clusterSize);
  for (let i = 0; i < shape.blockClusters; i++) {
    table.writeBigUInt64BE(BigInt((rbAt + i) * clusterSize), i * 8);
  }
  return table;
}

function refcountBlocks(total: number, blockClusters: number, clusterSize: number): Buffer {
  const blocks = Buffer.alloc(blockClusters * clusterSize);
  for (let i = 0; i < total; i++) {
    blocks.writeUInt16BE(1, i * 2);
  }
  return blocks;
}

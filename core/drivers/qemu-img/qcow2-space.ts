/**
 * What deleting one internal snapshot of a qcow2 image would free, from the image's metadata
 * alone (issue 18, "Space"). Pure: the bytes are read on the host by the caller
 * (app/qcow2-space.ts) with the same dd reader as the changed-block differ (qcow2-tables.ts).
 *
 * Why the refcounts answer it (QEMU's docs/interop/qcow2.txt and qcow2_update_snapshot_refcount):
 * a data cluster's refcount is the number of L1 tables (the disk's own and each snapshot's) that
 * reach it, and an L2 table's is the number of L1 tables that point at it. Deleting a snapshot
 * takes one off every cluster its tables reach and frees what drops to zero:
 * - its L1 table;
 * - each of its L2 tables with refcount 1 (no other snapshot, nor the disk, shares it);
 * - in those tables only, each data cluster with refcount 1. A data cluster reached through a
 *   shared L2 table is reached by the other owner of that table too, so it always survives:
 *   shared tables are never read, which is what keeps this cheap (a snapshot's own L2 tables are
 *   the regions written after it was taken, and each is read once, by the only snapshot that has it).
 * A compressed cluster counts once in every host cluster its bytes touch (several compressed
 * clusters can share one host cluster), so there a host cluster is freed when all the references
 * its refcount counts come from this snapshot.
 *
 * Read while the VM runs: a snapshot's tables never change (copy-on-write), and the refcounts QEMU
 * has not written yet are only ever decrements (the disk moved off a shared cluster), so stale
 * refcounts can only make the answer smaller, never larger. An image whose refcounts are
 * deliberately stale (lazy refcounts, the dirty bit) is refused.
 *
 * The answer is for this snapshot alone: deleting two snapshots can free more than the sum, as
 * clusters the two share are freed only when both go. The snapshot table QEMU rewrites on a
 * delete (a cluster or so) is not counted.
 */
import {
  l2TableOffset,
  parseLayout,
  Qcow2Unsupported,
  type ByteRange,
  type Qcow2Layout,
} from "./qcow2-tables.js";

const DIRTY = 1n;
/** Bits 9-63 of a refcount table entry: a refcount block's offset. */
const REFTABLE_OFFSET_MASK = 0xffff_ffff_ffff_fe00n;

export interface RefcountLayout extends Qcow2Layout {
  readonly refcountTableOffset: number;
  readonly refcountTableClusters: number;
  /** 1 to 64: bits per refcount (QEMU's default is 16). */
  readonly refcountBits: number;
  /** Refcounts in one refcount block. */
  readonly refcountsPerBlock: number;
}

/** The layout plus where the refcounts are. Backing files and encryption do not matter here. */
export function parseRefcountLayout(header: Buffer): RefcountLayout {
  const layout = parseLayout(header, { backingFile: true, encrypted: true });
  if (layout.version === 3 && (header.readBigUInt64BE(72) & DIRTY) !== 0n) {
    throw new Qcow2Unsupported(
      "its refcounts are out of date on disk (lazy refcounts: the image is marked dirty)",
    );
  }
  const order = layout.version === 3 ? header.readUInt32BE(96) : 4;
  if (order > 6) {
    throw new Qcow2Unsupported(`its refcount order is ${order}`);
  }
  const tableOffset = header.readBigUInt64BE(48);
  if (tableOffset > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new Qcow2Unsupported("its refcount table is out of range");
  }
  const refcountBits = 2 ** order;
  return {
    ...layout,
    refcountTableOffset: Number(tableOffset),
    refcountTableClusters: header.readUInt32BE(56),
    refcountBits,
    refcountsPerBlock: (layout.clusterSize * 8) / refcountBits,
  };
}

/** The refcount table: each refcount block's offset (0: none yet, every refcount there is 0). */
export function parseRefcountTable(bytes: Buffer, layout: RefcountLayout, fileSize: number): number[] {
  const entries = Math.floor(bytes.length / 8);
  return Array.from({ length: entries }, (_, i) => {
    const entry = bytes.readBigUInt64BE(i * 8);
    const offset = Number(entry & REFTABLE_OFFSET_MASK);
    if (
      (entry & ~REFTABLE_OFFSET_MASK) !== 0n ||
      (offset !== 0 && (offset % layout.clusterSize !== 0 || offset + layout.clusterSize > fileSize))
    ) {
      throw new Qcow2Unsupported("a refcount table entry points outside the file");
    }
    return offset;
  });
}

/** Refcount `index` of a block, as QEMU stores it (sub-byte widths from the low bits up). */
export function refcountIn(block: Buffer, index: number, bits: number): number {
  switch (bits) {
    case 64:
      return Number(block.readBigUInt64BE(index * 8));
    case 32:
      return block.readUInt32BE(index * 4);
    case 16:
      return block.readUInt16BE(index * 2);
    case 8:
      return block.readUInt8(index);
    default: {
      const perByte = 8 / bits;
      const byte = block.readUInt8(Math.floor(index / perByte));
      return (byte >> ((index % perByte) * bits)) & ((1 << bits) - 1);
    }
  }
}

/** The refcount block offsets (from `table`) that hold the refcounts of `clusters`, each once. */
export function blocksFor(
  clusters: Iterable<number>,
  table: readonly number[],
  layout: RefcountLayout,
): Set<number> {
  const blocks = new Set<number>();
  for (const cluster of clusters) {
    const offset = table[Math.floor(cluster / layout.refcountsPerBlock)] ?? 0;
    if (offset !== 0) {
      blocks.add(offset);
    }
  }
  return blocks;
}

/** A cluster's refcount, looked up in the blocks read; a block the caller did not read is an error. */
export type RefcountLookup = (cluster: number) => number;

export function refcountLookup(
  table: readonly number[],
  blocks: ReadonlyMap<number, Buffer>,
  layout: RefcountLayout,
): RefcountLookup {
  return (cluster) => {
    const offset = table[Math.floor(cluster / layout.refcountsPerBlock)] ?? 0;
    if (offset === 0) {
      return 0;
    }
    const block = blocks.get(offset);
    if (block === undefined) {
      throw new Error(`refcount block at ${offset} was not read`);
    }
    return refcountIn(block, cluster % layout.refcountsPerBlock, layout.refcountBits);
  };
}

/** What a snapshot's L1 table holds: its own clusters and the L2 tables it points at. */
export interface SnapshotRefs {
  /** Host clusters (indices) of the L1 table itself. */
  readonly l1Clusters: readonly number[];
  /** Offsets of its L2 tables. */
  readonly l2Offsets: readonly number[];
}

export function snapshotRefs(
  l1Offset: number,
  l1: readonly bigint[],
  layout: Pick<Qcow2Layout, "clusterSize">,
  fileSize: number,
): SnapshotRefs {
  const first = l1Offset / layout.clusterSize;
  const count = Math.ceil((l1.length * 8) / layout.clusterSize);
  return {
    l1Clusters: Array.from({ length: count }, (_, i) => first + i),
    l2Offsets: l1.map((e) => l2TableOffset(e, layout, fileSize)).filter((o) => o !== 0),
  };
}

/** The L2 tables that only this snapshot points at (refcount 1): the only ones worth reading. */
export function ownL2Tables(refs: SnapshotRefs, refcount: RefcountLookup, clusterSize: number): number[] {
  return refs.l2Offsets.filter((offset) => refcount(offset / clusterSize) === 1);
}

/**
 * Calls `visit` with the host cluster of every reference an L2 table holds: a plain or
 * zero-allocated cluster once, a compressed one once per host cluster its bytes touch.
 * Entries are read as two 32-bit halves: a BigInt per entry made a thousand tables slow.
 */
export function forEachReference(
  table: Buffer,
  layout: Qcow2Layout,
  fileSize: number,
  visit: (cluster: number, compressed: boolean) => void,
): void {
  const { clusterSize, clusterBits } = layout;
  for (let at = 0; at + 8 <= table.length && at < layout.l2Entries * 8; at += 8) {
    const high = table.readUInt32BE(at);
    const low = table.readUInt32BE(at + 4);
    if ((high & 0x4000_0000) !== 0) {
      const [first, last] = compressedSpan(high, low, clusterBits, fileSize);
      for (let c = first; c <= last; c++) {
        visit(c, true);
      }
      continue;
    }
    const offset = (high & 0x00ff_ffff) * 2 ** 32 + ((low & 0xffff_fe00) >>> 0);
    if (offset === 0) {
      continue; // unallocated, or a zero cluster without a host cluster
    }
    if (offset % clusterSize !== 0 || offset + clusterSize > fileSize) {
      throw new Qcow2Unsupported("an L2 entry points outside the file");
    }
    visit(offset / clusterSize, false);
  }
}

/** First and last host cluster a compressed entry's bytes lie in (QEMU's qcow2_parse_compressed_l2_entry). */
function compressedSpan(high: number, low: number, clusterBits: number, fileSize: number): [number, number] {
  const entry = (BigInt(high & 0x3fff_ffff) << 32n) | BigInt(low >>> 0);
  const shift = BigInt(62 - (clusterBits - 8));
  const offset = Number(entry & ((1n << shift) - 1n));
  const sectors = Number((entry >> shift) & ((1n << BigInt(clusterBits - 8)) - 1n)) + 1;
  const length = sectors * 512 - (offset % 512);
  if (offset >= fileSize) {
    throw new Qcow2Unsupported("a compressed cluster lies outside the file");
  }
  return [Math.floor(offset / 2 ** clusterBits), Math.floor((offset + length - 1) / 2 ** clusterBits)];
}

/** The refcount block offsets (from `refcountTable`) that the tables' references need, each once. */
export function blocksReachedBy(
  tables: Iterable<Buffer>,
  refcountTable: readonly number[],
  layout: RefcountLayout,
  fileSize: number,
): Set<number> {
  const indices = new Set<number>();
  for (const table of tables) {
    forEachReference(table, layout, fileSize, (cluster) => {
      indices.add(Math.floor(cluster / layout.refcountsPerBlock));
    });
  }
  return blocksFor(
    [...indices].map((i) => i * layout.refcountsPerBlock),
    refcountTable,
    layout,
  );
}

/** What one of a snapshot's own L2 tables gives back when the snapshot goes. */
export interface L2Tally {
  /** The table itself and the plain clusters only it reaches (refcount 1). */
  readonly clusters: number;
  /** Host clusters holding compressed data, with the references this table holds in each. */
  readonly compressed: ReadonlyMap<number, number>;
}

/**
 * Tallies one L2 table with refcount 1 (ownL2Tables): the caller can then drop its bytes, so a
 * thousand snapshots' tables never sit in memory at once.
 */
export function tallyL2Table(
  table: Buffer,
  refcount: RefcountLookup,
  layout: Qcow2Layout,
  fileSize: number,
): L2Tally {
  let clusters = 1;
  const compressed = new Map<number, number>();
  forEachReference(table, layout, fileSize, (cluster, isCompressed) => {
    if (isCompressed) {
      compressed.set(cluster, (compressed.get(cluster) ?? 0) + 1);
    } else if (refcount(cluster) === 1) {
      clusters++;
    }
  });
  return { clusters, compressed };
}

/**
 * Bytes that deleting the snapshot would free. `tallies` must hold every table of
 * ownL2Tables(refs); `refcount` every cluster they and `refs` reach.
 */
export function freedBySnapshot(
  refs: SnapshotRefs,
  tallies: ReadonlyMap<number, L2Tally>,
  refcount: RefcountLookup,
  clusterSize: number,
): number {
  let freed = refs.l1Clusters.filter((c) => refcount(c) === 1).length;
  const compressed = new Map<number, number>();
  for (const offset of ownL2Tables(refs, refcount, clusterSize)) {
    const tally = tallies.get(offset);
    if (tally === undefined) {
      throw new Error(`L2 table at ${offset} was not tallied`);
    }
    freed += tally.clusters;
    for (const [cluster, references] of tally.compressed) {
      compressed.set(cluster, (compressed.get(cluster) ?? 0) + references);
    }
  }
  for (const [cluster, references] of compressed) {
    if (refcount(cluster) === references) {
      freed++;
    }
  }
  return freed * clusterSize;
}

/** A read that covers several wanted ranges: one dd instead of one each. */
export interface CoalescedRead {
  readonly span: ByteRange;
  /** The wanted ranges inside it, in the order asked. */
  readonly parts: readonly { readonly index: number; readonly at: number; readonly length: number }[];
}

/**
 * Merges ranges whose gaps are at most `maxGap` bytes into spans (sorted by offset): reading a
 * gap of a few clusters costs less than starting another dd, which is what a thousand scattered
 * L2 tables cost most.
 */
export function coalesceRanges(ranges: readonly ByteRange[], maxGap: number): CoalescedRead[] {
  const order = ranges.map((r, index) => ({ ...r, index })).sort((a, b) => a.offset - b.offset);
  const reads: { span: { offset: number; length: number }; parts: CoalescedRead["parts"][number][] }[] = [];
  for (const r of order) {
    const last = reads.at(-1);
    const end = last === undefined ? 0 : last.span.offset + last.span.length;
    if (last !== undefined && r.offset - end <= maxGap) {
      last.span.length = Math.max(end, r.offset + r.length) - last.span.offset;
      last.parts.push({ index: r.index, at: r.offset - last.span.offset, length: r.length });
    } else {
      reads.push({
        span: { offset: r.offset, length: r.length },
        parts: [{ index: r.index, at: 0, length: r.length }],
      });
    }
  }
  return reads;
}

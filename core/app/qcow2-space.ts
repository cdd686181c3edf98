/**
 * What deleting each internal snapshot of a qcow2 image would free, read from the image's
 * metadata on its host (drivers/qemu-img/qcow2-space.ts says why the refcounts answer it). Only
 * `stat`, `head` and `dd` open the file, read-only, so it works while a VM runs and never takes
 * QEMU's image lock.
 *
 * What is read, in a handful of commands whatever the number of snapshots: the header, the
 * snapshot table, the refcount table, every snapshot's L1 table (a few bytes each), the refcount
 * blocks those reach, and each L2 table that only one snapshot holds, once, in batches that are
 * tallied and dropped. Tables shared with another snapshot or with the disk are never read.
 */
import {
  blocksFor,
  blocksReachedBy,
  coalesceRanges,
  freedBySnapshot,
  ownL2Tables,
  parseRefcountLayout,
  parseRefcountTable,
  refcountLookup,
  snapshotRefs,
  tallyL2Table,
  type L2Tally,
  type RefcountLayout,
} from "../drivers/qemu-img/qcow2-space.js";
import { parseQemuIoRead, qemuIoReadArgs } from "../drivers/qemu-img/qemu-io-read.js";
import { parseTable, Qcow2Unsupported, type ByteRange } from "../drivers/qemu-img/qcow2-tables.js";
import { checkResult } from "../infra/runner/checked.js";
import type { CommandRunner } from "../infra/runner/types.js";
import { RangeReader, readSnapshotTable } from "./exports/changed-blocks.js";

export interface Qcow2SnapshotSpace {
  readonly clusterSize: number;
  /** Bytes deleting each snapshot alone would free, by its qcow2 id. */
  readonly freedById: ReadonlyMap<string, number>;
  /** Bytes of metadata read, and the commands it took: what the 1,000-snapshot test bounds. */
  readonly metadataBytes: number;
  readonly commands: number;
}

/**
 * L2 tables that lie next to each other in the file are read as one range (one dd, where perl is
 * missing); tables apart are not joined across the gap: moving the gap's bytes through the pipe
 * cost more than the dd it saved (a whole 127 MB image in one read took longer than 944 dd calls).
 */
const MAX_GAP_BYTES = 0;
/** Small ranges per qemu-io call: keeps its argument list near 40 KiB. */
const RANGES_PER_QEMU_IO = 1024;
/** L2 tables read per batch: 512 × 64 KiB, one dd command, then tallied and dropped. */
const TABLES_PER_BATCH = 512;

export async function qcow2SnapshotSpace(
  runner: CommandRunner,
  image: string,
  signal?: AbortSignal,
): Promise<Qcow2SnapshotSpace> {
  const reader = new RangeReader(runner, image, signal);
  const { fileSize, header } = await reader.header();
  const layout = parseRefcountLayout(header);
  const done = (freedById: ReadonlyMap<string, number>): Qcow2SnapshotSpace => ({
    clusterSize: layout.clusterSize,
    freedById,
    metadataBytes: reader.metadataBytes,
    commands: reader.commands,
  });
  if (layout.snapshotCount === 0) {
    return done(new Map());
  }
  const snapshots = await readSnapshotTable(reader, layout, fileSize);
  const refcountTable = await readRefcountTable(reader, layout, fileSize);
  for (const s of snapshots) {
    if (s.l1Offset === 0 || s.l1Offset % layout.clusterSize !== 0 || s.l1Offset + s.l1Size * 8 > fileSize) {
      throw new Qcow2Unsupported(`snapshot ${s.name}'s L1 table lies outside the file`);
    }
  }
  const l1s = await readMany(
    reader,
    snapshots.map((s) => ({ offset: s.l1Offset, length: s.l1Size * 8 })),
  );
  const refs = snapshots.map((s, i) =>
    snapshotRefs(s.l1Offset, parseTable(l1s[i] ?? Buffer.alloc(0), s.l1Size), layout, fileSize),
  );
  const blocks = new Map<number, Buffer>();
  const refcount = refcountLookup(refcountTable, blocks, layout);
  const tableClusters = refs.flatMap((r) => [
    ...r.l1Clusters,
    ...r.l2Offsets.map((o) => o / layout.clusterSize),
  ]);
  await loadBlocks(reader, blocksFor(tableClusters, refcountTable, layout), blocks, layout);
  const own = [...new Set(refs.flatMap((r) => ownL2Tables(r, refcount, layout.clusterSize)))];
  const tallies = new Map<number, L2Tally>();
  for (let i = 0; i < own.length; i += TABLES_PER_BATCH) {
    const batch = own.slice(i, i + TABLES_PER_BATCH);
    const tables = await readCoalesced(
      reader,
      batch.map((offset) => ({ offset, length: layout.clusterSize })),
      MAX_GAP_BYTES,
    );
    await loadBlocks(reader, blocksReachedBy(tables, refcountTable, layout, fileSize), blocks, layout);
    batch.forEach((offset, k) =>
      tallies.set(offset, tallyL2Table(tables[k] ?? Buffer.alloc(0), refcount, layout, fileSize)),
    );
  }
  return done(
    new Map(
      snapshots.map((s, i) => [
        s.id,
        freedBySnapshot(refs[i] ?? EMPTY, tallies, refcount, layout.clusterSize),
      ]),
    ),
  );
}

const EMPTY = { l1Clusters: [], l2Offsets: [] };

/**
 * Many small ranges (one L1 table per snapshot) in one qemu-io process per batch rather than one dd
 * each (qemu-io-read.ts); a host without qemu-io gets the dd reader, slower but the same bytes.
 */
async function readMany(reader: RangeReader, ranges: readonly ByteRange[]): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = 0; i < ranges.length; i += RANGES_PER_QEMU_IO) {
    const batch = ranges.slice(i, i + RANGES_PER_QEMU_IO);
    const argv = qemuIoReadArgs(reader.image, batch);
    const result = await reader.runner.run(argv, {
      ...(reader.signal === undefined ? {} : { signal: reader.signal }),
    });
    if (result.code === 127) {
      out.push(...(await reader.read(batch)));
      continue;
    }
    checkResult(reader.runner.label, argv, result, "Reading the image's snapshot tables");
    reader.commands++;
    const read = parseQemuIoRead(result.stdout, batch);
    reader.metadataBytes += read.reduce((sum, b) => sum + b.length, 0);
    out.push(...read);
  }
  return out;
}

/** The ranges, read as coalesceRanges merges them, cut back out in the order asked. */
async function readCoalesced(
  reader: RangeReader,
  ranges: readonly ByteRange[],
  maxGap: number,
): Promise<Buffer[]> {
  const reads = coalesceRanges(ranges, maxGap);
  const spans = await reader.read(reads.map((r) => r.span));
  const out = new Array<Buffer>(ranges.length);
  reads.forEach((r, i) => {
    for (const part of r.parts) {
      out[part.index] = (spans[i] ?? Buffer.alloc(0)).subarray(part.at, part.at + part.length);
    }
  });
  return out;
}

async function readRefcountTable(
  reader: RangeReader,
  layout: RefcountLayout,
  fileSize: number,
): Promise<number[]> {
  const length = layout.refcountTableClusters * layout.clusterSize;
  const offset = layout.refcountTableOffset;
  if (offset === 0 || offset % layout.clusterSize !== 0 || offset + length > fileSize) {
    throw new Qcow2Unsupported("its refcount table lies outside the file");
  }
  const [bytes] = await reader.read([{ offset, length }]);
  return parseRefcountTable(bytes ?? Buffer.alloc(0), layout, fileSize);
}

/** Reads the refcount blocks not read yet, in one command per batch. */
async function loadBlocks(
  reader: RangeReader,
  wanted: ReadonlySet<number>,
  blocks: Map<number, Buffer>,
  layout: RefcountLayout,
): Promise<void> {
  const missing = [...wanted].filter((offset) => !blocks.has(offset));
  const read = await reader.read(missing.map((offset) => ({ offset, length: layout.clusterSize })));
  missing.forEach((offset, i) => blocks.set(offset, read[i] ?? Buffer.alloc(0)));
}

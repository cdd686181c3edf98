/**
 * The guest ranges that changed between two internal snapshots of a qcow2 disk (or, with no older
 * one, every range the snapshot holds), read from the
 * image's tables on its host (drivers/qemu-img/qcow2-tables.ts says why that is sound): the
 * header, the snapshot table, both L1 tables, and only the L2 tables the L1 entries say differ.
 * A few commands in all, whatever the size of the disk; nothing of the guest's data is read.
 *
 * Anything that makes the comparison doubtful (a snapshot missing, the disk resized between them,
 * a layout the reader refuses) is a Qcow2Unsupported error: the export falls back to a full one
 * and says why.
 */
import {
  diffL2,
  differingL1,
  HEADER_SCRIPT,
  l2TableOffset,
  parseHeaderOutput,
  parseBase64,
  parseLayout,
  parseSnapshotTable,
  parseTable,
  Qcow2Unsupported,
  readRangesArgs,
  type ByteRange,
  type ChangedExtent,
  type Qcow2Layout,
  type SnapshotEntry,
} from "../../drivers/qemu-img/qcow2-tables.js";
import type { CommandRunner } from "../../infra/runner/types.js";
import { runChecked } from "../../infra/runner/checked.js";

/** A snapshot as qemu-img lists it: both id and name, as QEMU looks one up. */
export interface SnapshotKey {
  readonly id: string;
  readonly name: string;
}

export interface ChangedBlocks {
  readonly layout: Qcow2Layout;
  /** The newer snapshot's guest size: the extents lie below it. */
  readonly virtualSize: number;
  readonly extents: readonly ChangedExtent[];
  /** Bytes of metadata read from the image to find them (the header, tables). */
  readonly metadataBytes: number;
  /** SSH (or local) commands it took. */
  readonly commands: number;
}

/** Tables asked for in one command: keeps the argument list short (two numbers per table). */
const RANGES_PER_COMMAND = 512;
/** L2 tables read at once to be compared (parsed into BigInts: about 150 MiB of heap at most). */
const BATCH_BYTES = 32 * 1024 * 1024;
/** QEMU's own cap on the snapshot table (QCOW_MAX_SNAPSHOTS_SIZE). */
const MAX_SNAPSHOT_TABLE = 64 * 1024 * 1024;

export async function changedBlocks(
  runner: CommandRunner,
  image: string,
  older: SnapshotKey | null,
  newer: SnapshotKey,
  signal?: AbortSignal,
): Promise<ChangedBlocks> {
  const reader = new RangeReader(runner, image, signal);
  const { fileSize, header } = await reader.header();
  const layout = parseLayout(header);
  const table = await readSnapshotTable(reader, layout, fileSize);
  const b = findSnapshot(table, newer);
  // No older snapshot: everything the newer one holds, as against an empty disk (a full export).
  const a = older === null ? { ...b, name: "(none)", l1Offset: 0, l1Size: 0 } : findSnapshot(table, older);
  const sizeA = a.diskSize ?? layout.virtualSize;
  const sizeB = b.diskSize ?? layout.virtualSize;
  if (sizeA !== sizeB) {
    throw new Qcow2Unsupported(`the disk was resized between the snapshots (${sizeA} → ${sizeB} bytes)`);
  }
  for (const s of older === null ? [b] : [a, b]) {
    if (s.l1Offset === 0 || s.l1Offset + s.l1Size * 8 > fileSize) {
      throw new Qcow2Unsupported(`snapshot ${s.name}'s L1 table lies outside the file`);
    }
  }
  const [l1b, l1a] = await reader.read([
    { offset: b.l1Offset, length: b.l1Size * 8 },
    ...(older === null ? [] : [{ offset: a.l1Offset, length: a.l1Size * 8 }]),
  ]);
  const sized = { ...layout, virtualSize: sizeB };
  const olderL1 = parseTable(l1a ?? Buffer.alloc(0), a.l1Size);
  const newerL1 = parseTable(l1b ?? Buffer.alloc(0), b.l1Size);
  const differ = differingL1(olderL1, newerL1).filter(
    (i) => i * layout.l2Entries * layout.clusterSize < sizeB,
  );
  // A batch of L1 entries at a time (one command's worth of tables): a full export of a
  // multi-terabyte disk has thousands of L2 tables, which are never all held at once.
  // Two tables per entry, at most a command's ranges and 32 MiB of tables (2 MiB clusters: 8).
  const perBatch = Math.max(
    1,
    Math.min(RANGES_PER_COMMAND / 2, Math.floor(BATCH_BYTES / 2 / layout.clusterSize)),
  );
  const extents: ChangedExtent[] = [];
  for (let from = 0; from < differ.length; from += perBatch) {
    const batch = differ.slice(from, from + perBatch);
    const wanted: ByteRange[] = [];
    const offsets = batch.map((i) => {
      const pair = [olderL1[i] ?? 0n, newerL1[i] ?? 0n].map((e) => l2TableOffset(e, layout, fileSize));
      for (const offset of pair) {
        if (offset !== 0) {
          wanted.push({ offset, length: layout.clusterSize });
        }
      }
      return pair;
    });
    const tables = new Map<number, bigint[]>();
    const read = await reader.read(wanted);
    wanted.forEach((range, i) =>
      tables.set(range.offset, parseTable(read[i] ?? Buffer.alloc(0), layout.l2Entries)),
    );
    batch.forEach((l1Index, i) => {
      const [olderAt, newerAt] = offsets[i] ?? [0, 0];
      for (const extent of diffL2(
        l1Index,
        // Offset 0 (no L2 table: all unallocated) is never read, so it finds no table here.
        tables.get(olderAt ?? 0) ?? null,
        tables.get(newerAt ?? 0) ?? null,
        sized,
        fileSize,
      )) {
        extents.push(extent);
      }
    });
  }
  return {
    layout,
    virtualSize: sizeB,
    extents,
    metadataBytes: reader.metadataBytes,
    commands: reader.commands,
  };
}

/** Reads the snapshot table: a first guess at its size, then all of it when entries are longer. */
export async function readSnapshotTable(
  reader: RangeReader,
  layout: Qcow2Layout,
  fileSize: number,
): Promise<SnapshotEntry[]> {
  if (layout.snapshotCount === 0) {
    throw new Qcow2Unsupported("the image has no internal snapshots");
  }
  const available = fileSize - layout.snapshotsOffset;
  if (layout.snapshotsOffset === 0 || available <= 0) {
    throw new Qcow2Unsupported("its snapshot table lies outside the file");
  }
  for (let guess = Math.max(64 * 1024, layout.snapshotCount * 1024); ; guess *= 16) {
    const length = Math.min(guess, available, MAX_SNAPSHOT_TABLE);
    const [bytes] = await reader.read([{ offset: layout.snapshotsOffset, length }]);
    try {
      return parseSnapshotTable(bytes ?? Buffer.alloc(0), layout.snapshotCount);
    } catch (error) {
      if (length === Math.min(available, MAX_SNAPSHOT_TABLE)) {
        throw error;
      }
    }
  }
}

function findSnapshot(table: readonly SnapshotEntry[], key: SnapshotKey): SnapshotEntry {
  const found = table.find((s) => s.id === key.id && s.name === key.name);
  if (found === undefined) {
    throw new Qcow2Unsupported(`snapshot ${key.name} (id ${key.id}) is not in the image's snapshot table`);
  }
  return found;
}

/**
 * Reads the image's header and byte ranges, in as few commands as the argument lists allow, and
 * counts the commands and bytes it took.
 */
export class RangeReader {
  commands = 0;
  metadataBytes = 0;

  constructor(
    readonly runner: CommandRunner,
    readonly image: string,
    readonly signal: AbortSignal | undefined,
  ) {}

  async header(): Promise<{ fileSize: number; header: Buffer }> {
    const out = parseHeaderOutput(
      await this.#run(
        ["sh", "-c", HEADER_SCRIPT, "snapkeep-header", this.image],
        "Reading the image's header",
      ),
    );
    this.metadataBytes += out.header.length;
    return out;
  }

  async read(ranges: readonly ByteRange[]): Promise<Buffer[]> {
    const out: Buffer[] = [];
    for (let i = 0; i < ranges.length; i += RANGES_PER_COMMAND) {
      const batch = ranges.slice(i, i + RANGES_PER_COMMAND);
      const bytes = parseBase64(
        await this.#run(readRangesArgs(this.image, batch), "Reading the image's tables"),
      );
      const expected = batch.reduce((sum, r) => sum + r.length, 0);
      if (bytes.length !== expected) {
        throw new Qcow2Unsupported(
          `reading its tables gave ${bytes.length} bytes where ${expected} were asked for`,
        );
      }
      this.metadataBytes += bytes.length;
      let at = 0;
      for (const range of batch) {
        out.push(bytes.subarray(at, at + range.length));
        at += range.length;
      }
    }
    return out;
  }

  async #run(argv: readonly string[], doing: string): Promise<string> {
    const result = await runChecked(this.runner, argv, doing, {
      ...(this.signal === undefined ? {} : { signal: this.signal }),
    });
    this.commands++;
    return result.stdout;
  }
}

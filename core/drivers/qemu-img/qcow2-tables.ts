/**
 * Which guest clusters differ between two internal snapshots of one qcow2 image, found from the
 * image's metadata alone (issue 16: an incremental export reads the changed data, not the disk).
 *
 * Why this is sound (QEMU's docs/interop/qcow2.txt): every snapshot has its own L1 table, and an
 * L2 table or data cluster that two snapshots (or a snapshot and the active layer) share has a
 * refcount above one, so QEMU copies it before any write (copy-on-write). A snapshot's tables and
 * data are therefore immutable while it exists, and two snapshots hold the same content for a
 * guest cluster whenever their L2 entries for it are equal (same host cluster, or both zero, or
 * both unallocated in an image with no backing file). Equal L1 entries mean a whole shared L2
 * table: 512 MiB of guest disk at 64 KiB clusters judged without reading it. Unequal entries may
 * still hold equal bytes (a block rewritten with the same data): that costs a little extra sent,
 * never a wrong export. The "copied" bit (63) says whether a refcount is one and changes as
 * snapshots come and go: it is masked out before comparing.
 *
 * Everything here is pure: the bytes come from `dd | base64` on the host (metadata is small), and every
 * offset read from the file is checked against the file before it is used, as the file is input.
 */
import { SnapkeepError } from "../../errors.js";

const QCOW2_MAGIC = 0x514649fb;
const INCOMPATIBLE_CORRUPT = 1n << 1n;
const INCOMPATIBLE_EXTERNAL_DATA_FILE = 1n << 2n;
const INCOMPATIBLE_EXTENDED_L2 = 1n << 4n;
/** Dirty, corrupt, external data, compression type, extended L2: the bits QEMU 8 knows. */
const KNOWN_INCOMPATIBLE = 0b11111n;

/** Bits 9-55 of an L1 or standard L2 entry: a host offset, cluster aligned. */
const OFFSET_MASK = 0x00ff_ffff_ffff_fe00n;
const L2_COMPRESSED = 1n << 62n;
const L2_ZERO = 1n;
const COPIED = 1n << 63n;
/** QEMU's own limit on L1 tables (QCOW_MAX_L1_SIZE): 32 MiB of entries. */
const MAX_L1_ENTRIES = (32 * 1024 * 1024) / 8;

/** What the header says about the layout, for an image the differ can read. */
export interface Qcow2Layout {
  readonly version: 2 | 3;
  readonly clusterBits: number;
  readonly clusterSize: number;
  readonly virtualSize: number;
  readonly snapshotCount: number;
  readonly snapshotsOffset: number;
  /** Bytes of the snapshot table are at most this (QEMU: 64 MiB); the reader asks for less. */
  readonly l2Entries: number;
}

/** Why metadata cannot be used and the export must read the whole snapshot instead. */
export class Qcow2Unsupported extends SnapkeepError {
  constructor(why: string) {
    super("UNEXPECTED_OUTPUT", `The image's qcow2 tables cannot be compared: ${why}.`, {
      details: { reason: why },
    });
  }
}

/**
 * The layout of a source image, from its first cluster's header. A backing file, an external data
 * file, encryption, extended L2 entries (subclusters) or a corrupt mark send the export to a full
 * read: each changes what an L2 entry means. `accept` lifts the first two for readers that only
 * count clusters (qcow2-space.ts): a backing file or encryption changes what the data reads as,
 * not which clusters the tables hold.
 */
export function parseLayout(
  header: Buffer,
  accept: { readonly backingFile?: boolean; readonly encrypted?: boolean } = {},
): Qcow2Layout {
  if (header.length < 72 || header.readUInt32BE(0) !== QCOW2_MAGIC) {
    throw new Qcow2Unsupported("it does not start with the qcow2 magic");
  }
  const version = header.readUInt32BE(4);
  if (version !== 2 && version !== 3) {
    throw new Qcow2Unsupported(`its qcow2 version is ${version}`);
  }
  if (accept.backingFile !== true && header.readBigUInt64BE(8) !== 0n) {
    throw new Qcow2Unsupported("it has a backing file, so an unallocated cluster is not zero");
  }
  const clusterBits = header.readUInt32BE(20);
  if (clusterBits < 9 || clusterBits > 21) {
    throw new Qcow2Unsupported(`its cluster size is 2^${clusterBits}`);
  }
  if (accept.encrypted !== true && header.readUInt32BE(32) !== 0) {
    throw new Qcow2Unsupported("it is encrypted");
  }
  if (version === 3) {
    if (header.length < 104) {
      throw new Qcow2Unsupported("its header is cut short");
    }
    const incompatible = header.readBigUInt64BE(72);
    const refuse: [bigint, string][] = [
      [INCOMPATIBLE_CORRUPT, "QEMU marked it corrupt"],
      [INCOMPATIBLE_EXTERNAL_DATA_FILE, "it keeps its data in an external file"],
      [INCOMPATIBLE_EXTENDED_L2, "it uses extended L2 entries (subclusters)"],
    ];
    for (const [bit, why] of refuse) {
      if ((incompatible & bit) !== 0n) {
        throw new Qcow2Unsupported(why);
      }
    }
    if ((incompatible & ~KNOWN_INCOMPATIBLE) !== 0n) {
      throw new Qcow2Unsupported("it uses qcow2 features this reader does not know");
    }
  }
  const virtualSize = header.readBigUInt64BE(24);
  const snapshotsOffset = header.readBigUInt64BE(64);
  if (virtualSize > BigInt(Number.MAX_SAFE_INTEGER) || snapshotsOffset > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new Qcow2Unsupported("its sizes are out of range");
  }
  const clusterSize = 2 ** clusterBits;
  return {
    version,
    clusterBits,
    clusterSize,
    virtualSize: Number(virtualSize),
    snapshotCount: header.readUInt32BE(60),
    snapshotsOffset: Number(snapshotsOffset),
    l2Entries: clusterSize / 8,
  };
}

/** One internal snapshot as its table entry records it. */
export interface SnapshotEntry {
  readonly id: string;
  readonly name: string;
  readonly l1Offset: number;
  readonly l1Size: number;
  /** The guest disk size when it was taken (v3 extra data); null when not recorded. */
  readonly diskSize: number | null;
}

/**
 * The snapshot table: `count` entries from `table` (read from the header's snapshots_offset).
 * Each entry is 40 fixed bytes, extra data, the id, the name, padded to 8 bytes.
 */
export function parseSnapshotTable(table: Buffer, count: number): SnapshotEntry[] {
  const entries: SnapshotEntry[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 40 > table.length) {
      throw new Qcow2Unsupported("its snapshot table is longer than what was read");
    }
    const l1Offset = table.readBigUInt64BE(at);
    const l1Size = table.readUInt32BE(at + 8);
    const idSize = table.readUInt16BE(at + 12);
    const nameSize = table.readUInt16BE(at + 14);
    const extraSize = table.readUInt32BE(at + 36);
    const extraAt = at + 40;
    const idAt = extraAt + extraSize;
    const end = idAt + idSize + nameSize;
    if (end > table.length) {
      throw new Qcow2Unsupported("its snapshot table is longer than what was read");
    }
    const diskSize = extraSize >= 16 ? table.readBigUInt64BE(extraAt + 8) : null;
    if (l1Offset > BigInt(Number.MAX_SAFE_INTEGER) || l1Size > MAX_L1_ENTRIES) {
      throw new Qcow2Unsupported("a snapshot's L1 table is out of range");
    }
    entries.push({
      id: table.toString("utf8", idAt, idAt + idSize),
      name: table.toString("utf8", idAt + idSize, end),
      l1Offset: Number(l1Offset),
      l1Size,
      diskSize: diskSize === null || diskSize > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(diskSize),
    });
    at = Math.ceil(end / 8) * 8;
  }
  return entries;
}

/** A table's entries as big-endian u64s. */
export function parseTable(bytes: Buffer, entries: number): bigint[] {
  if (bytes.length < entries * 8) {
    throw new Qcow2Unsupported("a table is shorter than its size says");
  }
  return Array.from({ length: entries }, (_, i) => bytes.readBigUInt64BE(i * 8));
}

/** An L1 entry's L2 table offset (0: none), checked to lie inside the file. */
export function l2TableOffset(
  entry: bigint,
  layout: Pick<Qcow2Layout, "clusterSize">,
  fileSize: number,
): number {
  const offset = Number(entry & OFFSET_MASK);
  if (offset !== 0 && (offset % layout.clusterSize !== 0 || offset + layout.clusterSize > fileSize)) {
    throw new Qcow2Unsupported("an L1 entry points outside the file");
  }
  return offset;
}

/** L1 indices whose L2 tables differ between the snapshots: only those tables need reading. */
export function differingL1(a: readonly bigint[], b: readonly bigint[]): number[] {
  const length = Math.max(a.length, b.length);
  const differ: number[] = [];
  for (let i = 0; i < length; i++) {
    if (((a[i] ?? 0n) & ~COPIED) !== ((b[i] ?? 0n) & ~COPIED)) {
      differ.push(i);
    }
  }
  return differ;
}

/** Where the newer snapshot's data for a run of changed guest clusters is. */
export type ExtentSource =
  /** Plain data at this host offset of the image file, one cluster after another. */
  | { readonly kind: "data"; readonly hostOffset: number }
  /** Reads as zeros (a zero cluster, or unallocated in an image with no backing file). */
  | { readonly kind: "zero" }
  /** Stored compressed: the reader cannot take it from the file as it is. */
  | { readonly kind: "compressed" };

/** A run of changed guest bytes and where the newer snapshot keeps them. */
export interface ChangedExtent {
  readonly guestOffset: number;
  readonly length: number;
  readonly source: ExtentSource;
}

/**
 * The changed guest clusters under one L1 entry, as extents: `older` and `newer` are the two
 * snapshots' L2 tables there (null: no table, all unallocated). Adjacent clusters merge while
 * their sources continue each other (data that is contiguous in the file, or zeros).
 */
export function diffL2(
  l1Index: number,
  older: readonly bigint[] | null,
  newer: readonly bigint[] | null,
  layout: Qcow2Layout,
  fileSize: number,
): ChangedExtent[] {
  const extents: ChangedExtent[] = [];
  const base = l1Index * layout.l2Entries * layout.clusterSize;
  for (let i = 0; i < layout.l2Entries; i++) {
    const guestOffset = base + i * layout.clusterSize;
    if (guestOffset >= layout.virtualSize) {
      break;
    }
    const a = (older?.[i] ?? 0n) & ~COPIED;
    const b = (newer?.[i] ?? 0n) & ~COPIED;
    if (a === b) {
      continue;
    }
    const length = Math.min(layout.clusterSize, layout.virtualSize - guestOffset);
    const source = sourceOf(b, layout, fileSize);
    const last = extents.at(-1);
    if (last !== undefined && last.guestOffset + last.length === guestOffset && continues(last, source)) {
      extents[extents.length - 1] = { ...last, length: last.length + length };
    } else {
      extents.push({ guestOffset, length, source });
    }
  }
  return extents;
}

/** Where an L2 entry's cluster is: data at a host offset (checked to lie in the file), zero, or compressed. */
export function sourceOf(
  entry: bigint,
  layout: Pick<Qcow2Layout, "clusterSize">,
  fileSize: number,
): ExtentSource {
  if ((entry & L2_COMPRESSED) !== 0n) {
    return { kind: "compressed" };
  }
  const hostOffset = Number(entry & OFFSET_MASK);
  if ((entry & L2_ZERO) !== 0n || hostOffset === 0) {
    return { kind: "zero" };
  }
  if (hostOffset % layout.clusterSize !== 0 || hostOffset + layout.clusterSize > fileSize) {
    throw new Qcow2Unsupported("an L2 entry points outside the file");
  }
  return { kind: "data", hostOffset };
}

function continues(last: ChangedExtent, next: ExtentSource): boolean {
  if (last.source.kind !== next.kind) {
    return false;
  }
  return (
    last.source.kind !== "data" ||
    (next.kind === "data" && last.source.hostOffset + last.length === next.hostOffset)
  );
}

/** Bytes of guest data the extents cover, by kind: what an incremental export reads and sends. */
export function changedBytes(extents: readonly ChangedExtent[]): {
  data: number;
  zero: number;
  compressed: number;
} {
  const sum = { data: 0, zero: 0, compressed: 0 };
  for (const e of extents) {
    sum[e.source.kind] += e.length;
  }
  return sum;
}

/** Bytes of the header a layout needs (v3 with its fields up to 104, and room to spare). */
export const LAYOUT_HEADER_BYTES = 512;

/**
 * The image's size, then its first LAYOUT_HEADER_BYTES in base64. Argument: IMAGE.
 * `stat -L`: a VM's disk may be a link into a pool.
 */
export const HEADER_SCRIPT = `stat -L -c %s -- "$1" && head -c ${LAYOUT_HEADER_BYTES} -- "$1" | base64`;

/**
 * Perl's seek and read, for many ranges in one process. The program is a constant; the image and
 * the numbers come as arguments.
 */
const PERL_READ_RANGES =
  'open(my $f, "<:raw", shift) or exit 3; binmode STDOUT; while (@ARGV >= 2) { my ($o, $l) = splice(@ARGV, 0, 2); seek($f, $o, 0) or exit 3; my $n = read($f, my $b, $l); exit 3 unless defined $n && $n == $l; print $b }';

/**
 * Byte ranges of the image, one after another, in base64 (od's hex was twice as slow and twice as
 * long for a megabyte of L2 tables): one command for any number of tables,
 * so a hundred L2 tables cost one SSH round trip. Arguments: IMAGE OFFSET LENGTH [OFFSET LENGTH]...
 * (numbers only; the caller checks the length of what came back against what it asked for).
 * Perl reads them all in one process where it is installed (Debian's perl-base always is); else
 * one dd per range, which is what a thousand scattered L2 tables cost most: 944 tables took 13 s
 * that way on a busy 2-core host and 0.4 s with perl (bench/space.ts).
 */
export const READ_RANGES_SCRIPT = [
  "f=$1; shift; if command -v perl >/dev/null 2>&1; then",
  `  perl -e '${PERL_READ_RANGES}' "$f" "$@" || exit 3`,
  'else while [ "$#" -ge 2 ]; do',
  '  dd if="$f" iflag=skip_bytes,count_bytes skip="$1" count="$2" bs=65536 status=none || exit 3',
  "  shift 2",
  "done; fi | base64",
].join("\n");

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

export function readRangesArgs(image: string, ranges: readonly ByteRange[]): string[] {
  return [
    "sh",
    "-c",
    READ_RANGES_SCRIPT,
    "snapkeep-read",
    image,
    ...ranges.flatMap((r) => [String(r.offset), String(r.length)]),
  ];
}

/** What HEADER_SCRIPT printed: the file's size and its header bytes. */
export function parseHeaderOutput(output: string): { fileSize: number; header: Buffer } {
  const nl = output.indexOf("\n");
  const size = nl === -1 ? "" : output.slice(0, nl).trim();
  if (!/^\d{1,16}$/.test(size)) {
    throw new SnapkeepError("UNEXPECTED_OUTPUT", "stat did not print the image's size.");
  }
  return { fileSize: Number(size), header: parseBase64(output.slice(nl + 1)) };
}

/** base64's output as bytes; anything else is refused (Buffer.from would skip it silently). */
export function parseBase64(output: string): Buffer {
  const text = output.replace(/\n/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new SnapkeepError(
      "UNEXPECTED_OUTPUT",
      "Reading the image's tables printed something that is not base64.",
    );
  }
  return Buffer.from(text, "base64");
}

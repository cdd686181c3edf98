/**
 * What deleting a qcow2 snapshot frees, on hand-made tables: the refcount layout and widths, which
 * L2 tables are the snapshot's own, and the clusters only its own tables reach (plain, zero-allocated,
 * compressed ones sharing host clusters). The same code on images qemu-img made, against what
 * QEMU really frees, is in test/integration/space.test.ts.
 */
import { describe, expect, it } from "vitest";

import {
  blocksFor,
  blocksReachedBy,
  coalesceRanges,
  freedBySnapshot,
  ownL2Tables,
  parseRefcountLayout,
  parseRefcountTable,
  refcountIn,
  refcountLookup,
  snapshotRefs,
  tallyL2Table,
  type L2Tally,
  type RefcountLayout,
} from "../../core/drivers/qemu-img/qcow2-space.js";
import { Qcow2Unsupported } from "../../core/drivers/qemu-img/qcow2-tables.js";
import { parseQemuIoRead, qemuIoReadArgs } from "../../core/drivers/qemu-img/qemu-io-read.js";

const CLUSTER = 65536;
const FILE = 1024 * CLUSTER;
const COPIED = 1n << 63n;
const COMPRESSED = 1n << 62n;

function header(
  fields: { version?: number; incompatible?: bigint; order?: number; backing?: bigint } = {},
): Buffer {
  const b = Buffer.alloc(512);
  b.writeUInt32BE(0x514649fb, 0);
  b.writeUInt32BE(fields.version ?? 3, 4);
  b.writeBigUInt64BE(fields.backing ?? 0n, 8);
  b.writeUInt32BE(16, 20);
  b.writeBigUInt64BE(1024n * 1024n * 1024n, 24);
  b.writeBigUInt64BE(BigInt(3 * CLUSTER), 48);
  b.writeUInt32BE(1, 56);
  b.writeUInt32BE(2, 60);
  b.writeBigUInt64BE(0x50000n, 64);
  b.writeBigUInt64BE(fields.incompatible ?? 0n, 72);
  b.writeUInt32BE(fields.order ?? 4, 96);
  b.writeUInt32BE(112, 100);
  return b;
}

const layout: RefcountLayout = parseRefcountLayout(header());

/** A refcount table with one block at cluster 4, and that block holding `counts` (16-bit). */
function refcounts(counts: Record<number, number>): ReturnType<typeof refcountLookup> {
  const block = Buffer.alloc(CLUSTER);
  for (const [cluster, count] of Object.entries(counts)) {
    block.writeUInt16BE(count, Number(cluster) * 2);
  }
  return refcountLookup([4 * CLUSTER], new Map([[4 * CLUSTER, block]]), layout);
}

function l2(entries: Record<number, bigint>): Buffer {
  const b = Buffer.alloc(CLUSTER);
  for (const [index, entry] of Object.entries(entries)) {
    b.writeBigUInt64BE(entry, Number(index) * 8);
  }
  return b;
}

const at = (cluster: number): bigint => BigInt(cluster * CLUSTER);
/** A compressed entry at byte `offset`, `sectors` 512-byte sectors long (64 KiB clusters). */
const compressed = (offset: number, sectors: number): bigint =>
  COMPRESSED | (BigInt(sectors - 1) << 54n) | BigInt(offset);

function tallied(
  tables: Record<number, Buffer>,
  refcount: ReturnType<typeof refcountLookup>,
): Map<number, L2Tally> {
  return new Map(
    Object.entries(tables).map(([cluster, t]) => [
      Number(cluster) * CLUSTER,
      tallyL2Table(t, refcount, layout, FILE),
    ]),
  );
}

describe("qcow2 space", () => {
  it("reads where the refcounts are and how wide they are, and refuses stale ones", () => {
    expect(layout).toMatchObject({
      refcountTableOffset: 3 * CLUSTER,
      refcountTableClusters: 1,
      refcountBits: 16,
      refcountsPerBlock: CLUSTER / 2,
    });
    expect(parseRefcountLayout(header({ order: 0 }))).toMatchObject({
      refcountBits: 1,
      refcountsPerBlock: CLUSTER * 8,
    });
    // Version 2 has no refcount_order: always 16 bits (the field holds junk there).
    expect(parseRefcountLayout(header({ version: 2, order: 6 }))).toMatchObject({ refcountBits: 16 });
    // A backing file changes what the data reads as, not which clusters the tables hold.
    expect(parseRefcountLayout(header({ backing: 4096n })).clusterSize).toBe(CLUSTER);
    expect(() => parseRefcountLayout(header({ incompatible: 1n }))).toThrow(/lazy refcounts/);
    expect(() => parseRefcountLayout(header({ order: 7 }))).toThrow(Qcow2Unsupported);
    expect(() => parseRefcountLayout(header({ incompatible: 1n << 1n }))).toThrow(/corrupt/);
  });

  it("reads refcounts of every width, sub-byte ones from the low bits up as QEMU stores them", () => {
    const block = Buffer.from([0b1011_0110, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((i) => refcountIn(block, i, 1))).toEqual([0, 1, 1, 0, 1, 1, 0, 1]);
    expect([0, 1, 2, 3].map((i) => refcountIn(block, i, 2))).toEqual([0b10, 0b01, 0b11, 0b10]);
    expect([0, 1].map((i) => refcountIn(block, i, 4))).toEqual([0b0110, 0b1011]);
    expect(refcountIn(block, 1, 8)).toBe(0x12);
    expect(refcountIn(block, 1, 16)).toBe(0x3456);
    expect(refcountIn(block, 1, 32)).toBe(0x789abcde);
    expect(refcountIn(block, 0, 64)).toBe(Number(0xb6123456789abcden));
  });

  it("parses the refcount table and refuses entries outside the file or with reserved bits", () => {
    const table = Buffer.alloc(24);
    table.writeBigUInt64BE(at(4), 0);
    table.writeBigUInt64BE(at(9), 16);
    expect(parseRefcountTable(table, layout, FILE)).toEqual([4 * CLUSTER, 0, 9 * CLUSTER]);
    table.writeBigUInt64BE(at(4) | 1n, 0);
    expect(() => parseRefcountTable(table, layout, FILE)).toThrow(Qcow2Unsupported);
    table.writeBigUInt64BE(at(2000), 0);
    expect(() => parseRefcountTable(table, layout, FILE)).toThrow(/outside the file/);
    // Each block is asked for once, and a cluster beyond the table needs none.
    expect([...blocksFor([1, 2, CLUSTER / 2 + 1, 10 * CLUSTER], [4 * CLUSTER, 9 * CLUSTER], layout)]).toEqual(
      [4 * CLUSTER, 9 * CLUSTER],
    );
  });

  it("frees a snapshot's L1 table, its own L2 tables and the clusters only they reach", () => {
    // S1: L1 at cluster 10 → its own L2 table at 20 and a table at 22 it shares with the disk.
    // S2: L1 at cluster 11 → L2 table 21, shared with the disk.
    const s1 = snapshotRefs(10 * CLUSTER, [at(20) | COPIED, 0n, at(22)], layout, FILE);
    const s2 = snapshotRefs(11 * CLUSTER, [at(21)], layout, FILE);
    expect(s1).toEqual({ l1Clusters: [10], l2Offsets: [20 * CLUSTER, 22 * CLUSTER] });
    const refcount = refcounts({ 10: 1, 11: 1, 20: 1, 21: 2, 22: 2, 100: 1, 101: 2, 102: 1, 103: 1, 300: 2 });
    const own = l2({
      0: at(100) | COPIED, // only S1 has it
      1: at(101), // S2's tables reach it too
      2: at(102) | 1n, // zero-allocated: still a host cluster
      3: 1n, // a zero cluster without one
      5: at(103) | COPIED,
    });
    // The shared tables are never read (absent here): whatever they reach, their other owner keeps.
    const shared = l2({ 0: at(300) });
    expect(ownL2Tables(s1, refcount, CLUSTER)).toEqual([20 * CLUSTER]);
    expect(ownL2Tables(s2, refcount, CLUSTER)).toEqual([]);
    const tallies = tallied({ 20: own }, refcount);
    // L1 + own L2 + clusters 100, 102, 103
    expect(freedBySnapshot(s1, tallies, refcount, CLUSTER)).toBe(5 * CLUSTER);
    expect(freedBySnapshot(s2, tallies, refcount, CLUSTER)).toBe(1 * CLUSTER);
    // A table it holds alone that was not tallied is a caller's mistake, never a silent zero.
    expect(() => freedBySnapshot(s1, new Map(), refcount, CLUSTER)).toThrow(/not tallied/);
    expect(tallyL2Table(shared, refcount, layout, FILE).clusters).toBe(1);
  });

  it("frees a host cluster of compressed data only when all its references are the snapshot's", () => {
    const s1 = snapshotRefs(10 * CLUSTER, [at(20)], layout, FILE);
    const s2 = snapshotRefs(11 * CLUSTER, [at(21)], layout, FILE);
    const h = (cluster: number, byte: number): number => cluster * CLUSTER + byte;
    const own1 = l2({
      0: compressed(h(200, 0), 8), // host cluster 200
      1: compressed(h(200, 4096), 8), // host cluster 200 again: refcount 2, both S1's
      2: compressed(h(201, 0), 4), // host cluster 201, shared with S2's compressed data
      3: compressed(h(202, CLUSTER - 1024), 4), // straddles 202 and 203
    });
    const own2 = l2({ 0: compressed(h(201, 2048), 2) });
    const refcount = refcounts({ 10: 1, 11: 1, 20: 1, 21: 1, 200: 2, 201: 2, 202: 1, 203: 1 });
    const tallies = tallied({ 20: own1, 21: own2 }, refcount);
    // L1, L2, 200, 202, 203 (not 201: S2 still holds data there)
    expect(freedBySnapshot(s1, tallies, refcount, CLUSTER)).toBe(5 * CLUSTER);
    expect(freedBySnapshot(s2, tallies, refcount, CLUSTER)).toBe(2 * CLUSTER);
    // Blocks needed: only the one block that covers these clusters.
    expect([...blocksReachedBy([own1, own2], [4 * CLUSTER], layout, FILE)]).toEqual([4 * CLUSTER]);
  });

  it("refuses tables that point outside the file, and counts nothing it cannot prove", () => {
    const refcount = refcounts({ 10: 1, 20: 1 });
    expect(() => tallyL2Table(l2({ 0: at(2000) }), refcount, layout, FILE)).toThrow(/outside the file/);
    expect(() => tallyL2Table(l2({ 0: at(20) + 512n }), refcount, layout, FILE)).toThrow(Qcow2Unsupported);
    expect(() => tallyL2Table(l2({ 0: compressed(FILE + 10, 1) }), refcount, layout, FILE)).toThrow(
      /outside the file/,
    );
    expect(() => snapshotRefs(10 * CLUSTER, [at(5000)], layout, FILE)).toThrow(/outside the file/);
    // A refcount below the references (a damaged image) frees nothing rather than too much.
    const s = snapshotRefs(10 * CLUSTER, [at(20)], layout, FILE);
    const low = refcounts({ 10: 1, 20: 1, 200: 1 });
    const two = l2({ 0: compressed(200 * CLUSTER, 1), 1: compressed(200 * CLUSTER + 1024, 1) });
    expect(freedBySnapshot(s, tallied({ 20: two }, low), low, CLUSTER)).toBe(2 * CLUSTER);
  });

  it("joins adjacent reads into one and cuts them back out in the order asked", () => {
    const ranges = [
      { offset: 5 * CLUSTER, length: CLUSTER },
      { offset: 3 * CLUSTER, length: CLUSTER },
      { offset: 4 * CLUSTER, length: CLUSTER },
      { offset: 9 * CLUSTER, length: CLUSTER },
    ];
    expect(coalesceRanges(ranges, 0)).toEqual([
      {
        span: { offset: 3 * CLUSTER, length: 3 * CLUSTER },
        parts: [
          { index: 1, at: 0, length: CLUSTER },
          { index: 2, at: CLUSTER, length: CLUSTER },
          { index: 0, at: 2 * CLUSTER, length: CLUSTER },
        ],
      },
      { span: { offset: 9 * CLUSTER, length: CLUSTER }, parts: [{ index: 3, at: 0, length: CLUSTER }] },
    ]);
    expect(coalesceRanges(ranges, 3 * CLUSTER)).toHaveLength(1);
  });
});

describe("qemu-io reads", () => {
  // Real qemu-io 7.2 output for `read -v 0 40` and `read -v 65536 16` of a qcow2 file read as raw.
  const output = [
    "00000000:  51 46 49 fb 00 00 00 03 00 00 00 00 00 00 00 00  QFI.............",
    "00000010:  00 00 00 00 00 00 00 10 00 00 00 00 80 00 00 00  ................",
    "00000020:  00 00 00 00 00 00 00 04  ........",
    "read 40/40 bytes at offset 0",
    "40 bytes, 1 ops; 00.00 sec (11.701 KiB/sec and 299.5486 ops/sec)",
    "00010000:  00 00 00 00 00 02 00 00 00 00 00 00 00 00 00 00  ................",
    "read 16/16 bytes at offset 65536",
    "16 bytes, 1 ops; 00.00 sec (47.497 KiB/sec and 3039.8186 ops/sec)",
    "",
  ].join("\n");
  const ranges = [
    { offset: 0, length: 40 },
    { offset: 65536, length: 16 },
  ];

  it("asks for every range in one read-only, lock-free qemu-io of the raw file", () => {
    expect(qemuIoReadArgs("/img/-odd name", ranges)).toEqual([
      "qemu-io",
      "-r",
      "-U",
      "-f",
      "raw",
      "-c",
      "read -v 0 40",
      "-c",
      "read -v 65536 16",
      "--",
      "/img/-odd name",
    ]);
  });

  it("reads the dump back into bytes, and refuses one that is short or out of place", () => {
    const [header, l1] = parseQemuIoRead(output, ranges);
    expect(header?.readUInt32BE(0)).toBe(0x514649fb);
    expect(header?.readBigUInt64BE(32)).toBe(4n);
    expect(l1?.readBigUInt64BE(0)).toBe(0x20000n);
    expect(() => parseQemuIoRead(output, [{ offset: 0, length: 48 }])).toThrow(/does not hold 16 bytes/);
    expect(() => parseQemuIoRead(output, [{ offset: 16, length: 16 }])).toThrow(/no dump line for offset 16/);
    expect(() => parseQemuIoRead("read failed: Input/output error\n", ranges)).toThrow(/not understood/);
    // An ASCII column that happens to look like hex is never read as bytes.
    const odd = "00000000:  61 62  ab\nread 2/2 bytes at offset 0\n";
    expect(parseQemuIoRead(odd, [{ offset: 0, length: 2 }])[0]).toEqual(Buffer.from("ab"));
  });
});

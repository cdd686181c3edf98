/**
 * The qcow2 table reader's pure parts on hand-made bytes: what it refuses in a header, how it
 * walks a snapshot table, and how two L2 tables become changed extents. The same code on images
 * qemu-img made is in test/integration/changed-blocks.test.ts.
 */
import { describe, expect, it } from "vitest";

import {
  diffL2,
  differingL1,
  parseHeaderOutput,
  parseLayout,
  parseSnapshotTable,
  Qcow2Unsupported,
  type Qcow2Layout,
} from "../../core/drivers/qemu-img/qcow2-tables.js";

const CLUSTER = 65536;
const COPIED = 1n << 63n;

function header(
  fields: { version?: number; backing?: bigint; incompatible?: bigint; clusterBits?: number } = {},
): Buffer {
  const b = Buffer.alloc(512);
  b.writeUInt32BE(0x514649fb, 0);
  b.writeUInt32BE(fields.version ?? 3, 4);
  b.writeBigUInt64BE(fields.backing ?? 0n, 8);
  b.writeUInt32BE(fields.clusterBits ?? 16, 20);
  b.writeBigUInt64BE(1024n * 1024n * 1024n, 24);
  b.writeUInt32BE(2, 60);
  b.writeBigUInt64BE(0x50000n, 64);
  b.writeBigUInt64BE(fields.incompatible ?? 0n, 72);
  b.writeUInt32BE(112, 100);
  return b;
}

const layout: Qcow2Layout = {
  version: 3,
  clusterBits: 16,
  clusterSize: CLUSTER,
  virtualSize: 1024 * 1024 * 1024,
  snapshotCount: 2,
  snapshotsOffset: 0x50000,
  l2Entries: CLUSTER / 8,
};
const FILE = 64 * 1024 * 1024;

describe("qcow2 tables", () => {
  it("reads a plain v3 header, and refuses what changes an L2 entry's meaning", () => {
    expect(parseLayout(header())).toMatchObject({
      clusterSize: CLUSTER,
      virtualSize: 2 ** 30,
      snapshotCount: 2,
    });
    const refused: [Buffer, RegExp][] = [
      [header({ backing: 4096n }), /backing file/],
      [header({ incompatible: 1n << 1n }), /corrupt/],
      [header({ incompatible: 1n << 2n }), /external file/],
      [header({ incompatible: 1n << 4n }), /extended L2 entries/],
      [header({ incompatible: 1n << 9n }), /does not know/],
      [header({ version: 4 }), /version is 4/],
      [header({ clusterBits: 30 }), /cluster size/],
    ];
    for (const [bytes, why] of refused) {
      expect(() => parseLayout(bytes)).toThrow(why);
      expect(() => parseLayout(bytes)).toThrow(Qcow2Unsupported);
    }
  });

  it("walks a snapshot table: extra data, id, name, padding to 8 bytes", () => {
    const entry = (l1: number, id: string, name: string, diskSize: bigint | null): Buffer => {
      const extra = diskSize === null ? 0 : 16;
      const size = Math.ceil((40 + extra + id.length + name.length) / 8) * 8;
      const b = Buffer.alloc(size);
      b.writeBigUInt64BE(BigInt(l1), 0);
      b.writeUInt32BE(16, 8);
      b.writeUInt16BE(id.length, 12);
      b.writeUInt16BE(name.length, 14);
      b.writeUInt32BE(extra, 36);
      if (diskSize !== null) {
        b.writeBigUInt64BE(diskSize, 48);
      }
      b.write(id, 40 + extra);
      b.write(name, 40 + extra + id.length);
      return b;
    };
    const table = Buffer.concat([
      entry(0x30000, "1", "snapkeep:manual:a", 2n ** 30n),
      entry(0x40000, "12", "older, no extra data", null),
    ]);
    expect(parseSnapshotTable(table, 2)).toEqual([
      { id: "1", name: "snapkeep:manual:a", l1Offset: 0x30000, l1Size: 16, diskSize: 2 ** 30 },
      { id: "12", name: "older, no extra data", l1Offset: 0x40000, l1Size: 16, diskSize: null },
    ]);
    expect(() => parseSnapshotTable(table.subarray(0, 60), 2)).toThrow(/longer than what was read/);
  });

  it("compares L1 entries without the copied bit", () => {
    expect(differingL1([0x10000n | COPIED, 0x20000n, 0n], [0x10000n, 0x30000n, 0n, 0x40000n])).toEqual([
      1, 3,
    ]);
  });

  it("turns two L2 tables into extents: data runs merge where the file's clusters follow each other", () => {
    const older = new Array<bigint>(layout.l2Entries).fill(0n);
    const newer = [...older];
    older[0] = 0x100000n;
    newer[0] = 0x100000n | COPIED; // same cluster, refcount changed: unchanged
    newer[1] = 0x200000n; // new data ...
    newer[2] = 0x210000n; // ... contiguous in the file: one extent
    newer[3] = 0x400000n; // not contiguous: a new extent
    older[5] = 0x500000n;
    newer[5] = 1n; // zeroed
    older[6] = 0x600000n; // discarded (unallocated now): zeros in an image without a backing file
    newer[7] = 1n << 62n; // compressed
    const extents = diffL2(1, older, newer, layout, FILE);
    const base = layout.l2Entries * CLUSTER; // the second L1 entry: from 512 MiB
    expect(extents).toEqual([
      { guestOffset: base + CLUSTER, length: 2 * CLUSTER, source: { kind: "data", hostOffset: 0x200000 } },
      { guestOffset: base + 3 * CLUSTER, length: CLUSTER, source: { kind: "data", hostOffset: 0x400000 } },
      { guestOffset: base + 5 * CLUSTER, length: 2 * CLUSTER, source: { kind: "zero" } },
      { guestOffset: base + 7 * CLUSTER, length: CLUSTER, source: { kind: "compressed" } },
    ]);
  });

  it("refuses a table entry that points outside the file, and stops at the disk's end", () => {
    const newer = new Array<bigint>(layout.l2Entries).fill(0n);
    newer[0] = BigInt(FILE);
    expect(() => diffL2(0, null, newer, layout, FILE)).toThrow(/outside the file/);
    const small = { ...layout, virtualSize: 3 * CLUSTER + 100 };
    const all = new Array<bigint>(layout.l2Entries).fill(1n);
    expect(diffL2(0, null, all, small, FILE)).toEqual([
      { guestOffset: 0, length: 3 * CLUSTER + 100, source: { kind: "zero" } },
    ]);
  });

  it("reads stat's size and base64, and nothing else", () => {
    expect(parseHeaderOutput("1234\nUUZJ\n+w==\n")).toEqual({
      fileSize: 1234,
      header: Buffer.from("514649fb", "hex"),
    });
    expect(() => parseHeaderOutput("stat: cannot stat\n")).toThrow(/did not print the image's size/);
    expect(() => parseHeaderOutput("12\nUUZJ*w==\n")).toThrow(/not base64/);
    expect(() => parseHeaderOutput("12\nUUZ\n")).toThrow(/not base64/);
  });
});

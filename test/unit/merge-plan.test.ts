/**
 * Merging on retention, the pure half: the merged image's clusters (topmost layer wins, zeros kept
 * only above a backing image), the copy runs (bottom layer first, file order, coalesced), and the
 * reader of a Snapkeep-written image on a target, round trip through the writer and with hostile
 * bytes.
 */
import { describe, expect, it } from "vitest";

import {
  LayerBuilder,
  planMergedImage,
  type ClusterSource,
  type LayerClusters,
} from "../../core/domain/plans/merge-plan.js";
import {
  clusterMap,
  ImageRefused,
  l2Offsets,
  parseExportHeader,
} from "../../core/drivers/qemu-img/qcow2-export-image.js";
import { parseTable } from "../../core/drivers/qemu-img/qcow2-tables.js";
import { layoutImage } from "../../core/drivers/qemu-img/qcow2-writer.js";
import { mergeCopyInput, parseMergeCopy } from "../../core/drivers/sh/merge-scripts.js";

const CS = 65536;
const data = (hostOffset: number): ClusterSource => ({ kind: "data", hostOffset });
const ZERO: ClusterSource = { kind: "zero" };

describe("planMergedImage", () => {
  const top = new Map<number, ClusterSource>([
    [1, data(10 * CS)],
    [5, ZERO],
  ]);
  const bottom = new Map<number, ClusterSource>([
    [0, data(20 * CS)],
    [1, data(21 * CS)],
    [2, data(22 * CS)],
    [5, data(23 * CS)],
  ]);

  it("takes each guest cluster from the topmost layer holding it, the bottom layer's runs first", () => {
    const merged = planMergedImage([top, bottom], { clusterSize: CS, virtualSize: 64 * CS, backing: null });
    expect(merged.copies).toEqual([
      { layer: 1, offset: 20 * CS, length: CS },
      { layer: 1, offset: 22 * CS, length: CS },
      { layer: 0, offset: 10 * CS, length: CS },
    ]);
    // Standalone: a zero cluster needs no entry (nothing below to hide).
    expect(merged.image.clusters).toEqual([
      { guestCluster: 0, count: 1, kind: "data" },
      { guestCluster: 2, count: 1, kind: "data" },
      { guestCluster: 1, count: 1, kind: "data" },
    ]);
    expect(merged.dataBytes).toBe(3 * CS);
  });

  it("keeps zero clusters when the merged image rests on another export", () => {
    const merged = planMergedImage([top, bottom], {
      clusterSize: CS,
      virtualSize: 64 * CS,
      backing: "../20260101T000000Z-web01/vda.qcow2",
    });
    expect(merged.image.clusters).toContainEqual({ guestCluster: 5, count: 1, kind: "zero" });
  });

  it("coalesces clusters that follow each other in one layer's file into one run", () => {
    const one = new Map<number, ClusterSource>([
      [7, data(3 * CS)],
      [2, data(1 * CS)],
      [3, data(2 * CS)],
    ]);
    const merged = planMergedImage([one], { clusterSize: CS, virtualSize: 64 * CS, backing: null });
    expect(merged.copies).toEqual([{ layer: 0, offset: CS, length: 3 * CS }]);
    // In file order guest 2, 3 and 7: one run of two, then one.
    expect(merged.image.clusters).toEqual([
      { guestCluster: 2, count: 2, kind: "data" },
      { guestCluster: 7, count: 1, kind: "data" },
    ]);
  });

  it("takes compact layers as maps would give them, and refuses clusters out of order", () => {
    // A bottom layer of 100,000 clusters, every other one data; a top layer over every 7th.
    const bottom = new LayerBuilder();
    const top = new LayerBuilder();
    const bottomMap = new Map<number, ClusterSource>();
    const topMap = new Map<number, ClusterSource>();
    for (let g = 0; g < 100_000; g++) {
      const b = g % 2 === 0 ? data((100_000 - g) * CS) : ZERO;
      bottom.add(g, b);
      bottomMap.set(g, b);
      if (g % 7 === 0) {
        const t = g % 14 === 0 ? data(g * CS) : ZERO;
        top.add(g, t);
        topMap.set(g, t);
      }
    }
    const shape = {
      clusterSize: CS,
      virtualSize: 100_000 * CS,
      backing: "../20260101T000000Z-web01/vda.qcow2",
    };
    const compact = planMergedImage([top.build(), bottom.build()], shape);
    expect(compact).toEqual(planMergedImage([topMap, bottomMap], shape));
    const expanded = compact.image.clusters.flatMap((r) =>
      Array.from({ length: r.count }, (_, i) => r.guestCluster + i),
    );
    expect(new Set(expanded).size).toBe(expanded.length);
    expect(expanded.length).toBe(100_000);
    expect(() => bottom.add(5, ZERO)).toThrow(/out of order/);
  });
});

/** A whole image file as the writer lays it out, each data cluster filled with its guest index. */
function writtenImage(guestClusters: number[], zeros: number[], backing: string | null): Buffer {
  const layout = layoutImage({
    clusterSize: CS,
    virtualSize: 256 * CS,
    backing,
    clusters: [
      ...guestClusters.map((g) => ({ guestCluster: g, kind: "data" as const })),
      ...zeros.map((g) => ({ guestCluster: g, kind: "zero" as const })),
    ],
  });
  return Buffer.concat([...layout.metadata, ...guestClusters.map((g) => Buffer.alloc(CS, g))]);
}

/** A layer's clusters as a map, to look one up. */
function asMap(layer: LayerClusters): Map<number, ClusterSource> {
  const map = new Map<number, ClusterSource>();
  for (let i = 0; i < layer.count; i++) {
    const host = layer.host[i] ?? -1;
    map.set(layer.guest[i] ?? -1, host >= 0 ? data(host) : ZERO);
  }
  return map;
}

function readBack(file: Buffer): { backing: string | null; map: Map<number, ClusterSource> } {
  const head = parseExportHeader(file.subarray(0, 4096), file.length, "test/vda.qcow2");
  const l1 = parseTable(file.subarray(head.l1Offset, head.l1Offset + head.l1Size * 8), head.l1Size);
  const tables = new Map(
    l2Offsets(l1, head, file.length, "t").map((o) => [o, file.subarray(o, o + CS)] as const),
  );
  return { backing: head.backing, map: asMap(clusterMap(l1, tables, head, file.length, "test/vda.qcow2")) };
}

describe("reading back an image Snapkeep wrote", () => {
  it("finds every guest cluster's data where the writer put it, and the zeros and the backing name", () => {
    const backing = "../20260101T000000Z-web01/vda.qcow2";
    const file = writtenImage([9, 3, 200], [4], backing);
    const { backing: name, map } = readBack(file);
    expect(name).toBe(backing);
    expect(map.get(4)).toEqual(ZERO);
    for (const g of [9, 3, 200]) {
      const at = map.get(g);
      expect(at?.kind).toBe("data");
      const offset = at?.kind === "data" ? at.hostOffset : -1;
      expect(file[offset]).toBe(g);
    }
    expect(map.size).toBe(4);
  });

  it("refuses what Snapkeep never writes: another magic, snapshots, feature bits, a stray backing name", () => {
    const good = writtenImage([1], [], null);
    const variant = (edit: (b: Buffer) => void): Buffer => {
      const b = Buffer.from(good);
      edit(b);
      return b;
    };
    const cases: [Buffer, RegExp][] = [
      [variant((b) => b.writeUInt32BE(0x12345678, 0)), /magic/],
      [variant((b) => b.writeUInt32BE(2, 60)), /internal snapshots/],
      [variant((b) => b.writeBigUInt64BE(1n, 72)), /incompatible feature/],
      [variant((b) => b.writeUInt32BE(1, 32)), /encrypted/],
      [variant((b) => (b.writeBigUInt64BE(8000n, 8), b.writeUInt32BE(200, 16))), /backing name lies outside/],
      [variant((b) => b.writeBigUInt64BE(BigInt(good.length) * 4n, 40)), /L1 table lies outside/],
    ];
    for (const [bytes, why] of cases) {
      expect(() => readBack(bytes)).toThrow(why);
      expect(() => readBack(bytes)).toThrow(ImageRefused);
    }
  });

  it("refuses an L2 entry that points outside the file, or at compressed data", () => {
    const good = writtenImage([1], [], null);
    const head = parseExportHeader(good.subarray(0, 4096), good.length, "t");
    const l2At = Number(good.readBigUInt64BE(head.l1Offset) & 0x00ff_ffff_ffff_fe00n);
    const outside = Buffer.from(good);
    outside.writeBigUInt64BE(BigInt(good.length + CS) | (1n << 63n), l2At + 8);
    expect(() => readBack(outside)).toThrow(/outside the file/);
    const compressed = Buffer.from(good);
    compressed.writeBigUInt64BE((1n << 62n) | BigInt(CS), l2At + 8);
    expect(() => readBack(compressed)).toThrow(/compressed/);
  });
});

describe("the merge scripts' input and output", () => {
  it("lists each file's runs with 'next' between files", () => {
    expect(
      mergeCopyInput([
        [
          { offset: 0, length: 5 },
          { offset: 10, length: 5 },
        ],
        [{ offset: 65536, length: 65536 }],
      ]),
    ).toBe("0 5\n10 5\nnext 0\n65536 65536\n");
  });

  it("reads the size and hash the copy printed, from sha256sum or openssl, and nothing else", () => {
    const hash = "a".repeat(64);
    expect(parseMergeCopy(`123\n${hash}  /t/vda.qcow2.merge\n`)).toEqual({ size: 123, sha256: hash });
    expect(parseMergeCopy(`123\n${hash} */t/vda.qcow2.merge\n`)).toEqual({ size: 123, sha256: hash });
    expect(parseMergeCopy(`x\n${hash}  f\n`)).toBeNull();
    expect(parseMergeCopy("")).toBeNull();
  });
});

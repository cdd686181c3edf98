/**
 * The qcow2 image Snapkeep writes itself, checked byte by byte: the header, the L1 and L2 tables
 * (read back with the table reader, qcow2-tables.ts), the refcounts, and the plans it refuses.
 * That QEMU accepts such images is in test/integration/streamed-export.test.ts.
 */
import { describe, expect, it } from "vitest";

import { l2TableOffset, parseLayout, parseTable } from "../../core/drivers/qemu-img/qcow2-tables.js";
import { type ImageLayout, type ImagePlan, layoutImage } from "../../core/drivers/qemu-img/qcow2-writer.js";

const C = 65536;
const GIB = 1024 ** 3;
const COPIED = 1n << 63n;
const BACKING = "../20260101T000000Z-web01/vda.qcow2";

function layout(plan: Partial<ImagePlan>): { image: ImageLayout; meta: Buffer; plan: ImagePlan } {
  const full: ImagePlan = { clusterSize: C, virtualSize: GIB, backing: null, clusters: [], ...plan };
  const image = layoutImage(full);
  return { image, meta: Buffer.concat(image.metadata), plan: full };
}

const n = (b: Buffer, at: number): number => Number(b.readBigUInt64BE(at));

/** Every cluster the image's metadata points at, by what it is, and its refcounts. */
function walk(meta: Buffer, fileSize: number) {
  const cs = 2 ** meta.readUInt32BE(20);
  const l1Size = meta.readUInt32BE(36);
  const l1At = n(meta, 40);
  const rtAt = n(meta, 48);
  const rtClusters = meta.readUInt32BE(56);
  const l1 = parseTable(meta.subarray(l1At), l1Size);
  const table = parseTable(meta.subarray(rtAt), (rtClusters * cs) / 8).filter((e) => e !== 0n);
  const blocks = table.map((e) => Number(e) / cs);
  const counts = blocks.flatMap((b) =>
    Array.from({ length: cs / 2 }, (_, i) => meta.readUInt16BE(b * cs + i * 2)),
  );
  const l2 = new Map<number, bigint[]>();
  for (const [index, entry] of l1.entries()) {
    if (entry !== 0n) {
      expect(entry & COPIED).toBe(COPIED);
      const offset = Number(entry & ~COPIED);
      expect(offset % cs).toBe(0);
      expect(offset + cs).toBeLessThanOrEqual(meta.length);
      l2.set(index, parseTable(meta.subarray(offset), cs / 8));
    }
  }
  const data = [...l2.values()].flatMap((t) => t.filter((e) => e !== 0n && e !== 1n));
  const clusters = [
    0,
    ...range(l1At / cs, Math.ceil((l1Size * 8) / cs)),
    ...range(rtAt / cs, rtClusters),
    ...blocks,
    ...[...l1].filter((e) => e !== 0n).map((e) => Number(e & ~COPIED) / cs),
    ...data.map((e) => {
      expect(e & COPIED).toBe(COPIED);
      return Number(e & ~COPIED) / cs;
    }),
  ];
  expect(fileSize % cs).toBe(0);
  return { l1, l2, counts, clusters, total: fileSize / cs };
}

const range = (from: number, count: number): number[] => Array.from({ length: count }, (_, i) => from + i);

describe("layoutImage", () => {
  it("writes a version 3 header the table reader takes, with no backing file", () => {
    const { image, meta } = layout({ clusters: [{ guestCluster: 9000, kind: "data" }] });
    expect(meta.readUInt32BE(0)).toBe(0x514649fb);
    expect(meta.readUInt32BE(4)).toBe(3);
    expect(n(meta, 8)).toBe(0);
    expect(meta.readUInt32BE(16)).toBe(0);
    expect(meta.readUInt32BE(20)).toBe(16);
    expect(n(meta, 24)).toBe(GIB);
    expect(meta.readUInt32BE(32)).toBe(0); // not encrypted
    expect(meta.readUInt32BE(36)).toBe(2); // 1 GiB at 512 MiB per L2 table
    expect(n(meta, 40)).toBe(C);
    expect(n(meta, 48)).toBe(2 * C);
    expect(meta.readUInt32BE(56)).toBe(1);
    expect(meta.readUInt32BE(60)).toBe(0); // no snapshots
    expect(n(meta, 72)).toBe(0); // no incompatible features: not dirty, not corrupt
    expect(meta.readUInt32BE(96)).toBe(4);
    expect(meta.readUInt32BE(100)).toBe(104);
    expect(n(meta, 104)).toBe(0); // the end of the header extensions
    expect(parseLayout(meta)).toEqual({
      version: 3,
      clusterBits: 16,
      clusterSize: C,
      virtualSize: GIB,
      snapshotCount: 0,
      snapshotsOffset: 0,
      l2Entries: C / 8,
    });
    // header, L1, refcount table, refcount block, one L2 table; then the one data cluster
    expect(image).toMatchObject({ metadataBytes: 5 * C, dataClusters: 1, fileSize: 6 * C });
    expect(meta.length).toBe(image.metadataBytes);
    expect(image.metadata.every((b) => b.length % C === 0)).toBe(true);
  });

  it("points the L2 entries at the data clusters in the planned order, and marks zeros", () => {
    const clusters: ImagePlan["clusters"] = [
      { guestCluster: 5, kind: "data" },
      { guestCluster: 3, kind: "data" },
      { guestCluster: 7, kind: "zero" },
      { guestCluster: 8192 + 2, kind: "data" },
      { guestCluster: 8192 * 2 - 1, kind: "zero" },
    ];
    const { image, meta } = layout({ clusters, virtualSize: GIB + 12345 });
    expect(meta.readUInt32BE(36)).toBe(3);
    const reader = parseLayout(meta);
    const l1 = parseTable(meta.subarray(C), 3);
    expect(l1[2]).toBe(0n);
    const tables = [0, 1].map((i) =>
      parseTable(meta.subarray(l2TableOffset(l1[i] ?? 0n, reader, image.fileSize)), C / 8),
    );
    const [first, second] = tables as [bigint[], bigint[]];
    const at = (k: number): bigint => BigInt(image.metadataBytes + k * C) | COPIED;
    expect(first[5]).toBe(at(0));
    expect(first[3]).toBe(at(1));
    expect(first[7]).toBe(1n);
    expect(second[2]).toBe(at(2));
    expect(second[8191]).toBe(1n);
    expect(first.filter((e) => e !== 0n)).toHaveLength(3);
    expect(second.filter((e) => e !== 0n)).toHaveLength(2);
    expect(image.dataClusters).toBe(3);
    expect(image.fileSize).toBe(image.metadataBytes + 3 * C);
  });

  it("lays out a run of clusters exactly as the same clusters one by one, across L2 tables", () => {
    // 8192 entries per L2 table at 64 KiB clusters: these runs cross table boundaries.
    const runs = [
      { guestCluster: 8000, count: 500, kind: "data" as const },
      { guestCluster: 3, count: 2, kind: "data" as const },
      { guestCluster: 16380, count: 9, kind: "zero" as const },
    ];
    const one = runs.flatMap((r) =>
      Array.from({ length: r.count }, (_, i) => ({ guestCluster: r.guestCluster + i, kind: r.kind })),
    );
    const byRuns = layout({ virtualSize: 2 * GIB, backing: BACKING, clusters: runs });
    const byOne = layout({ virtualSize: 2 * GIB, backing: BACKING, clusters: one });
    expect(byRuns.meta.equals(byOne.meta)).toBe(true);
    expect(byRuns.image.dataClusters).toBe(502);
    expect(byRuns.image.fileSize).toBe(byOne.image.fileSize);
  });

  it("gives every cluster of the file a refcount of one and nothing beyond it", () => {
    const plans: Partial<ImagePlan>[] = [
      { clusters: [] },
      { clusters: [{ guestCluster: 1, kind: "zero" }] },
      { clusters: range(0, 300).map((g) => ({ guestCluster: g * 37, kind: g % 5 === 0 ? "zero" : "data" })) },
      // Small clusters and many of them: several refcount blocks and refcount table clusters.
      {
        clusterSize: 512,
        virtualSize: 10 * 1024 * 1024,
        clusters: range(0, 20000).map((g) => ({ guestCluster: 20479 - g, kind: "data" })),
      },
      // A big disk at small clusters: an L1 table of many clusters.
      { clusterSize: 512, virtualSize: GIB, clusters: [{ guestCluster: 2 * 1024 * 1024 - 1, kind: "data" }] },
    ];
    for (const plan of plans) {
      const { image, meta } = layout(plan);
      const { counts, clusters, total } = walk(meta, image.fileSize);
      expect(image.fileSize).toBe(image.metadataBytes + image.dataClusters * (plan.clusterSize ?? C));
      expect(counts.slice(0, total).every((c) => c === 1)).toBe(true);
      expect(counts.slice(total).every((c) => c === 0)).toBe(true);
      expect(counts.length).toBeGreaterThanOrEqual(total);
      // Each cluster is used once, for one thing, and no cluster is left unused.
      expect(clusters.toSorted((a, b) => a - b)).toEqual(range(0, total));
    }
  });

  it("names its backing file and its format in the header of an incremental image", () => {
    const { meta } = layout({ backing: BACKING, clusters: [{ guestCluster: 0, kind: "zero" }] });
    expect(meta.readUInt32BE(104)).toBe(0xe2792aca);
    expect(meta.readUInt32BE(108)).toBe(5);
    expect(meta.toString("latin1", 112, 120)).toBe("qcow2\0\0\0");
    expect(n(meta, 120)).toBe(0); // the end of the header extensions
    const offset = n(meta, 8);
    expect(offset).toBe(128);
    expect(meta.readUInt32BE(16)).toBe(BACKING.length);
    expect(meta.toString("utf8", offset, offset + BACKING.length)).toBe(BACKING);
    expect(meta[offset + BACKING.length]).toBe(0);
    expect(() => parseLayout(meta)).toThrow(/backing file/);
    const l2 = parseTable(meta.subarray(4 * C), C / 8);
    expect(l2[0]).toBe(1n);
  });

  it("takes a backing name up to what the header cluster and QEMU allow", () => {
    const name = (bytes: number): string => "x".repeat(bytes);
    const header = layout({ clusterSize: 512, virtualSize: 1 << 20, backing: name(512 - 136) }).meta;
    expect(header.readUInt32BE(16)).toBe(376);
    expect(header.toString("utf8", 128, 512)).toBe(name(376) + "\0".repeat(8));
    expect(layout({ backing: name(1023) }).meta.readUInt32BE(16)).toBe(1023);
    expect(layout({ backing: "é".repeat(10) }).meta.readUInt32BE(16)).toBe(20); // bytes, not characters
  });

  it("refuses a plan that is not a valid image", () => {
    const refused: [Partial<ImagePlan>, RegExp][] = [
      [{ clusterSize: 256 }, /cluster size of 256 bytes/],
      [{ clusterSize: 3000 }, /cluster size/],
      [{ clusterSize: 4 * 1024 * 1024 }, /cluster size/],
      [{ clusterSize: 0 }, /cluster size/],
      [{ virtualSize: 0 }, /disk size of 0 bytes/],
      [{ virtualSize: -C }, /disk size/],
      [{ virtualSize: 1.5 }, /disk size/],
      [{ virtualSize: 2 ** 60 }, /disk size/],
      [{ virtualSize: 10 * C, clusters: [{ guestCluster: 10, kind: "data" }] }, /cluster 10 lies outside/],
      [{ clusters: [{ guestCluster: -1, kind: "zero" }] }, /outside the disk/],
      [{ clusters: [{ guestCluster: 0.5, kind: "data" }] }, /outside the disk/],
      [
        {
          clusters: [
            { guestCluster: 4, kind: "data" },
            { guestCluster: 4, kind: "zero" },
          ],
        },
        /cluster 4 is planned twice/,
      ],
      [
        {
          clusters: [
            { guestCluster: 0, count: 10, kind: "data" },
            { guestCluster: 9, count: 2, kind: "zero" },
          ],
        },
        /cluster 9 is planned twice/,
      ],
      [
        { virtualSize: 10 * C, clusters: [{ guestCluster: 8, count: 3, kind: "data" }] },
        /cluster 8 lies outside/,
      ],
      [{ clusters: [{ guestCluster: 1, count: 0, kind: "data" }] }, /outside the disk/],
      [{ backing: "" }, /empty, too long or not text/],
      [{ backing: "x".repeat(1024) }, /too long/],
      [{ backing: "a\0b" }, /not text/],
      [{ clusterSize: 512, backing: "x".repeat(377) }, /does not fit in the header cluster/],
    ];
    for (const [plan, why] of refused) {
      expect(() => layout(plan), JSON.stringify(plan).slice(0, 80)).toThrow(why);
    }
    // The last guest cluster of a disk that ends within it is inside.
    const { image } = layout({ virtualSize: 10 * C + 1, clusters: [{ guestCluster: 10, kind: "data" }] });
    expect(image.dataClusters).toBe(1);
  });
});

/**
 * The streamed export's plan on hand-made extents: data clusters in the source file's order, reads
 * merged across small holes (whose bytes are dropped), zeros only where an incremental needs them,
 * and what cannot be streamed as it is.
 */
import { describe, expect, it } from "vitest";

import { type GuestExtent, planStream, streamable } from "../../core/domain/plans/stream-plan.js";
import { SnapkeepError } from "../../core/errors.js";

const C = 65536;

const data = (guestCluster: number, hostCluster: number, clusters = 1): GuestExtent => ({
  guestOffset: guestCluster * C,
  length: clusters * C,
  source: { kind: "data", hostOffset: hostCluster * C },
});
const zero = (guestCluster: number, clusters = 1): GuestExtent => ({
  guestOffset: guestCluster * C,
  length: clusters * C,
  source: { kind: "zero" },
});

/** The plan's runs as one entry per guest cluster, in order. */
function expand(
  runs: readonly { guestCluster: number; count: number; kind: "data" | "zero" }[],
): { guestCluster: number; kind: "data" | "zero" }[] {
  return runs.flatMap((r) =>
    Array.from({ length: r.count }, (_, i) => ({ guestCluster: r.guestCluster + i, kind: r.kind })),
  );
}

/** A tiny PRNG so the property test is the same on every run. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

describe("planStream", () => {
  it("takes the data clusters in the source file's order, whatever the guest order", () => {
    const plan = planStream([data(0, 10, 2), data(5, 2)], C, false);
    expect(expand(plan.clusters)).toEqual([
      { guestCluster: 5, kind: "data" },
      { guestCluster: 0, kind: "data" },
      { guestCluster: 1, kind: "data" },
    ]);
    expect(plan.reads).toEqual([
      { offset: 2 * C, length: C },
      { offset: 10 * C, length: 2 * C },
    ]);
    // The reads arrive back to back: every byte is kept, as one segment.
    expect(plan.segments).toEqual([{ keep: true, length: 3 * C }]);
    expect(plan).toMatchObject({ readBytes: 3 * C, dataBytes: 3 * C, zeroBytes: 0 });
  });

  it("reads through a hole of up to 4 clusters and drops its bytes, and skips a longer one", () => {
    const plan = planStream([data(0, 0), data(1, 5), data(2, 11)], C, false);
    expect(plan.reads).toEqual([
      { offset: 0, length: 6 * C },
      { offset: 11 * C, length: C },
    ]);
    expect(plan.segments).toEqual([
      { keep: true, length: C },
      { keep: false, length: 4 * C },
      { keep: true, length: 2 * C },
    ]);
    expect(plan.readBytes).toBe(7 * C);
    expect(plan.dataBytes).toBe(3 * C);
  });

  it("merges clusters that follow each other in the file into one read", () => {
    const plan = planStream([data(7, 4), data(3, 3), data(9, 5, 2)], C, false);
    expect(plan.reads).toEqual([{ offset: 3 * C, length: 4 * C }]);
    expect(plan.segments).toEqual([{ keep: true, length: 4 * C }]);
    expect(expand(plan.clusters).map((c) => c.guestCluster)).toEqual([3, 7, 9, 10]);
  });

  it("keeps the zero clusters after the data only for an incremental image", () => {
    const extents = [zero(0, 2), data(4, 1), zero(9)];
    const incremental = planStream(extents, C, true);
    expect(expand(incremental.clusters)).toEqual([
      { guestCluster: 4, kind: "data" },
      { guestCluster: 0, kind: "zero" },
      { guestCluster: 1, kind: "zero" },
      { guestCluster: 9, kind: "zero" },
    ]);
    expect(incremental.zeroBytes).toBe(3 * C);
    expect(incremental.reads).toEqual([{ offset: C, length: C }]);
    const full = planStream(extents, C, false);
    expect(expand(full.clusters)).toEqual([{ guestCluster: 4, kind: "data" }]);
    expect(full.reads).toEqual(incremental.reads);
  });

  it("counts a cut-short last extent (the disk's end) as a whole cluster", () => {
    const plan = planStream(
      [{ guestOffset: 2 * C, length: C + 512, source: { kind: "data", hostOffset: 0 } }],
      C,
      false,
    );
    expect(expand(plan.clusters).map((c) => c.guestCluster)).toEqual([2, 3]);
    expect(plan.reads).toEqual([{ offset: 0, length: 2 * C }]);
  });

  it("keeps an extent as one run however many clusters it has", () => {
    const plan = planStream([data(100, 7, 50_000), zero(0, 30)], C, true);
    expect(plan.clusters).toEqual([
      { guestCluster: 100, count: 50_000, kind: "data" },
      { guestCluster: 0, count: 30, kind: "zero" },
    ]);
    expect(plan.reads).toEqual([{ offset: 7 * C, length: 50_000 * C }]);
    expect(plan).toMatchObject({ dataBytes: 50_000 * C, zeroBytes: 30 * C });
  });

  it("plans nothing for no extents", () => {
    expect(planStream([], C, true)).toEqual({
      clusters: [],
      reads: [],
      segments: [],
      readBytes: 0,
      dataBytes: 0,
      zeroBytes: 0,
    });
  });

  it("refuses compressed clusters and extents that do not start on a cluster", () => {
    const compressed: GuestExtent = { guestOffset: C, length: C, source: { kind: "compressed" } };
    expect(() => planStream([data(0, 0), compressed], C, true)).toThrow(
      /compressed cluster cannot be streamed/,
    );
    const unaligned: GuestExtent = { guestOffset: C + 512, length: C, source: { kind: "zero" } };
    expect(() => planStream([unaligned], C, true)).toThrow(SnapkeepError);
    expect(() => planStream([unaligned], C, true)).toThrow(/does not start on a cluster/);
  });

  it("delivers every data cluster's bytes, once and in the clusters' order, from the reads", () => {
    const next = random(16);
    for (let round = 0; round < 50; round++) {
      // Distinct host clusters for random guest clusters, as a snapshot's table has them.
      const hosts = [...new Set(Array.from({ length: 40 }, () => Math.floor(next() * 200)))];
      const extents = hosts.map((h, i) => data(i * 3, h));
      const guestOf = new Map(hosts.map((h, i) => [h, i * 3]));
      const plan = planStream(extents, C, false);
      // Walk the bytes as they arrive: each kept cluster is the host cluster at that file offset.
      const delivered: number[] = [];
      const offsets = plan.reads.flatMap((r) =>
        Array.from({ length: r.length / C }, (_, k) => r.offset / C + k),
      );
      let at = 0;
      for (const s of plan.segments) {
        expect(s.length % C).toBe(0);
        const clusters = offsets.slice(at, at + s.length / C);
        if (s.keep) {
          delivered.push(...clusters.map((h) => guestOf.get(h) ?? -1));
        } else {
          expect(clusters.every((h) => !guestOf.has(h))).toBe(true);
          expect(s.length).toBeLessThanOrEqual(4 * C);
        }
        at += s.length / C;
      }
      expect(at).toBe(offsets.length);
      expect(delivered).toEqual(expand(plan.clusters).map((c) => c.guestCluster));
      expect(delivered.toSorted((a, b) => a - b)).toEqual(hosts.map((_, i) => i * 3));
      expect(plan.readBytes).toBe(offsets.length * C);
      for (const [i, r] of plan.reads.entries()) {
        const before = plan.reads[i - 1];
        if (before !== undefined) {
          expect(r.offset - (before.offset + before.length)).toBeGreaterThan(4 * C);
        }
      }
    }
  });
});

describe("streamable", () => {
  it("streams qcow2 files and thin LVs only, and names the first disk that is not one", () => {
    const qcow2 = (target: string) => ({ target, format: "qcow2", lv: undefined });
    expect(streamable([qcow2("vda"), qcow2("vdb")])).toBeNull();
    expect(streamable([])).toBeNull();
    expect(
      streamable([
        qcow2("vda"),
        { target: "vdb", format: "raw", lv: undefined },
        { target: "vdc", format: null, lv: undefined },
      ]),
    ).toBe("vdb is a raw image, read in full with qemu-img convert");
    expect(streamable([{ target: "vdc", format: null, lv: undefined }])).toBe(
      "vdc is a raw image, read in full with qemu-img convert",
    );
    expect(streamable([{ target: "vdd", format: "vmdk", lv: undefined }])).toMatch(/^vdd is a vmdk image/);
    expect(streamable([{ target: "vde", format: "raw", lv: { thin: false } }])).toBe(
      "vde is a thick LVM volume, which keeps no record of what changed: read in full with qemu-img convert",
    );
    // A thin volume's pool metadata says what changed: streamed, beside qcow2 files.
    expect(streamable([qcow2("vda"), { target: "vdb", format: "raw", lv: { thin: true } }])).toBeNull();
  });
});

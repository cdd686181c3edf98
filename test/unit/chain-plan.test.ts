/**
 * Chains of exports on hand-made export lists: which names a link may have, how a chain is followed
 * and when it is broken, when a disk is exported incrementally or in full, and what retention
 * merges or keeps because another export is built on it.
 */
import { describe, expect, it } from "vitest";

import {
  backingId,
  backingName,
  chainBelow,
  type ChainExport,
  decideDiskBasis,
  MAX_LINKS,
} from "../../core/domain/plans/chain-plan.js";
import { planMerges } from "../../core/domain/plans/merge-plan.js";
import type { Snapshot, VmWithSnapshots } from "../../core/domain/types.js";

const UUID = "13f71cc3-b118-4340-a65b-6c39d1ff9a3e";
const OTHER = "0d3b7c44-5b0e-4d1e-9f55-0c2a1b3d4e5f";
const GIB = 1024 ** 3;
const createdAt = "2026-01-01T00:00:00.000Z";

const id = (n: number): string => `202601${String(n).padStart(2, "0")}T000000Z-web01`;
const tag = (n: number): string => `snapkeep:manual:s${n}`;

/** Export n of the VM, its vda built on export `base` (null: a full image). */
function exp(
  n: number,
  base: number | null,
  over: { state?: string; uuid?: string; size?: number; virtualSize?: number; target?: string } = {},
): ChainExport {
  const target = over.target ?? "vda";
  return {
    id: id(n),
    state: over.state ?? "verified",
    manifest: {
      source: { vm: { uuid: over.uuid ?? UUID }, snapshot: { tag: tag(n) } },
      disks: [
        {
          target,
          size: over.size ?? (base === null ? 1000 : 10),
          virtualSize: over.virtualSize ?? GIB,
          backing: base === null ? undefined : backingName(id(base), target),
        },
      ],
    },
  };
}

/** A full export 1 and `count` incrementals 2..count+1, each on the one before. */
const chain = (count: number): ChainExport[] => [
  exp(1, null),
  ...Array.from({ length: count }, (_, i) => exp(i + 2, i + 1)),
];

function snapshot(n: number, extra: Partial<Snapshot> = {}): Snapshot {
  return {
    tag: tag(n),
    name: `s${n}`,
    kind: "manual",
    origin: null,
    createdAt,
    disks: [{ target: "vda", imageSnapshotId: String(n + 100), createdAt, vmStateSize: 0 }],
    note: null,
    pinned: false,
    consistency: null,
    incomplete: false,
    hasVmState: false,
    ...extra,
  };
}

function vmWith(snapshots: Snapshot[]): VmWithSnapshots {
  return { host: "local", name: "web01", uuid: UUID, state: "running", active: true, disks: [], snapshots };
}

const allSnapshots = vmWith(Array.from({ length: 20 }, (_, i) => snapshot(i + 1)));

describe("backing names", () => {
  it("reads back the id of a name Snapkeep writes, for the same disk only", () => {
    expect(backingName(id(3), "vda")).toBe(`../${id(3)}/vda.qcow2`);
    expect(backingId(backingName(id(3), "vda"), "vda")).toBe(id(3));
    expect(backingId(backingName(id(3), "vdb"), "vda")).toBeNull();
  });

  it("refuses any other name", () => {
    for (const name of [
      "/etc/passwd",
      `${id(3)}/vda.qcow2`,
      `../../${id(3)}/vda.qcow2`,
      `../${id(3)}/../vda.qcow2`,
      `../${id(3)}/vda.raw`,
      `../${id(3)}/vda.qcow2 `,
      `../${id(3).toUpperCase()}/vda.qcow2`,
      "../20260101T000000-web01/vda.qcow2",
      `../20260101T000000Z-${"a".repeat(41)}/vda.qcow2`,
    ]) {
      expect(backingId(name, "vda"), name).toBeNull();
    }
  });
});

describe("chainBelow", () => {
  it("follows the links nearest first down to the full image", () => {
    const exports = chain(3);
    const below = chainBelow(exports, exports[3] as ChainExport, "vda");
    expect(below).toEqual({ links: [exports[2], exports[1], exports[0]], broken: null });
    expect(chainBelow(exports, exports[0] as ChainExport, "vda")).toEqual({ links: [], broken: null });
    expect(chainBelow(exports, exports[3] as ChainExport, "vdb")).toEqual({ links: [], broken: null });
  });

  it("says why a chain cannot be trusted, with the links seen before the break", () => {
    const top = exp(3, 2);
    const cases: [ChainExport[], RegExp, number][] = [
      [[exp(1, null), top], new RegExp(`${id(2)}, an export it is built on, is missing`), 0],
      [[exp(1, null), exp(2, 1, { state: "partial" }), top], /is partial$/, 0],
      [[exp(1, null), exp(2, 1, { uuid: OTHER }), top], /is of another VM$/, 0],
      [[exp(1, null, { state: "failed" }), exp(2, 1), top], new RegExp(`${id(1)}.* is failed$`), 1],
      [[exp(1, null), exp(2, 1, { target: "vdb" }), top], new RegExp(`${id(2)}.* has no disk vda$`), 1],
      [[exp(1, 2), exp(2, 1), top], new RegExp(`loops back to ${id(2)}$`), 2],
      [[exp(2, 3), top], new RegExp(`loops back to ${id(3)}$`), 1],
    ];
    for (const [exports, broken, links] of cases) {
      const below = chainBelow(exports, top, "vda");
      expect(below.broken).toMatch(broken);
      expect(below.links).toHaveLength(links);
    }
  });

  it("names an odd link by its first 80 characters only", () => {
    const disks = [{ target: "vda", size: 1, virtualSize: GIB, backing: "x".repeat(200) }];
    const source = { vm: { uuid: UUID }, snapshot: { tag: tag(2) } };
    const odd: ChainExport = { id: id(2), state: "verified", manifest: { source, disks } };
    const below = chainBelow([odd], odd, "vda");
    expect(below.broken).toBe(`a link names its base oddly (${"x".repeat(80)})`);
    expect(below.links).toEqual([]);
  });
});

describe("decideDiskBasis", () => {
  const full = (exports: ChainExport[], vm = allSnapshots, size: number | null = GIB): string => {
    const decided = decideDiskBasis(exports, vm, "vda", size);
    expect(decided.mode).toBe("full");
    return decided.why;
  };

  it("exports in full after a compressed export: increments rest on streamed images only", () => {
    const [a] = chain(0) as [ChainExport];
    const compressed: ChainExport = {
      ...a,
      manifest: a.manifest && {
        ...a.manifest,
        disks: a.manifest.disks.map((d) => ({ ...d, compression: "zstd" })),
      },
    };
    expect(full([compressed])).toMatch(
      /is compressed \(--compressed\); increments build on streamed exports only$/,
    );
  });

  it("builds on the newest verified export of the VM, against its snapshot in the image", () => {
    const exports = [...chain(2), exp(4, 3, { state: "partial" }), exp(5, null, { uuid: OTHER })];
    expect(decideDiskBasis(exports, allSnapshots, "vda", GIB)).toEqual({
      mode: "incremental",
      basis: id(3),
      basisSnapshot: { id: "103", name: tag(3) },
      why: `changes since ${id(3)}`,
    });
  });

  it("exports in full when there is nothing verified of this VM to build on", () => {
    expect(full([])).toMatch(/no earlier verified export/);
    expect(full([exp(1, null, { state: "partial" })])).toMatch(/no earlier verified export/);
    expect(full([exp(1, null, { uuid: OTHER })])).toMatch(/no earlier verified export/);
  });

  it("exports in full a disk that is new or resized", () => {
    expect(full([exp(1, null, { target: "vdb" })])).toBe(`vda is not in the previous export (${id(1)})`);
    expect(full([exp(1, null)], allSnapshots, 2 * GIB)).toMatch(/vda was resized since .*20260101/);
    expect(full([exp(1, null)], allSnapshots, null)).toMatch(/resized/);
  });

  it("exports in full when the previous export's chain is broken", () => {
    expect(full([exp(1, null, { state: "partial" }), exp(2, 1)])).toBe(
      `the previous export's chain cannot be trusted: ${id(1)}, an export it is built on, is partial`,
    );
  });

  it(`starts a new full image once a chain would reach ${MAX_LINKS} links`, () => {
    expect(MAX_LINKS).toBe(14);
    expect(decideDiskBasis(chain(MAX_LINKS - 2), allSnapshots, "vda", GIB)).toMatchObject({
      mode: "incremental",
      basis: id(MAX_LINKS - 1),
    });
    expect(full(chain(MAX_LINKS - 1))).toBe(
      `${MAX_LINKS} incremental exports since the last full one (a full one every ${MAX_LINKS})`,
    );
  });

  it("starts a new full image once the increments add up to more than half of it", () => {
    const MiB = 1024 * 1024;
    const at = (a: number, b: number, base = 1000): ChainExport[] => [
      exp(1, null, { size: base * MiB }),
      exp(2, 1, { size: a * MiB }),
      exp(3, 2, { size: b * MiB }),
    ];
    expect(decideDiskBasis(at(300, 200), allSnapshots, "vda", GIB).mode).toBe("incremental");
    expect(full(at(300, 201))).toMatch(/more than half/);
    // An almost empty disk's increments (its tables) never send it back to a full image.
    expect(decideDiskBasis(at(30, 30, 1), allSnapshots, "vda", GIB).mode).toBe("incremental");
    // A full basis is built on whatever its size.
    expect(decideDiskBasis([exp(1, null, { size: 1 })], allSnapshots, "vda", GIB).mode).toBe("incremental");
  });

  it("exports in full when the basis's snapshot is gone, interrupted, not in the image or a thick LV", () => {
    const why = `the snapshot of the previous export (${id(1)}) is no longer on the host`;
    expect(full([exp(1, null)], vmWith([snapshot(2)]))).toBe(why);
    expect(full([exp(1, null)], vmWith([snapshot(1, { incomplete: true })]))).toBe(why);
    const lv = {
      vg: "vg",
      name: "snap",
      path: "/dev/vg/snap",
      thin: false,
      usedPercent: 1,
      cowBytes: 8 << 20,
      invalid: false,
    };
    const onLv = snapshot(1, {
      disks: [{ target: "vda", imageSnapshotId: "x", createdAt, vmStateSize: 0, lv }],
    });
    expect(full([exp(1, null)], vmWith([onLv]))).toBe(why);
    // A thin snapshot LV is a basis: its pool's metadata says what changed since.
    const onThin = snapshot(1, {
      disks: [{ target: "vda", imageSnapshotId: "x", createdAt, vmStateSize: 0, lv: { ...lv, thin: true } }],
    });
    expect(decideDiskBasis([exp(1, null)], vmWith([onThin]), "vda", GIB)).toMatchObject({
      mode: "incremental",
      basisSnapshot: { id: "x" },
    });
  });
});

describe("planMerges", () => {
  it("merges the removed links below a kept export into it, and removes them", () => {
    const [a, b, c] = chain(2) as [ChainExport, ChainExport, ChainExport];
    const d = exp(9, null);
    const decided = planMerges([a, b, c, d], [a, d, b]);
    expect(decided.remove).toEqual([a, d, b]);
    expect(decided.held).toEqual([]);
    expect(decided.merges).toEqual([{ into: c, disks: [{ target: "vda", merged: [b, a], basis: null }] }]);
  });

  it("merges a middle link into the one above it, which then rests on the one below", () => {
    const [a, b, c, d] = chain(3) as [ChainExport, ChainExport, ChainExport, ChainExport];
    const decided = planMerges([a, b, c, d], [b]);
    expect(decided.merges).toEqual([{ into: c, disks: [{ target: "vda", merged: [b], basis: id(1) }] }]);
    expect(decided.remove).toEqual([b]);
  });

  it("removes a whole chain when nothing kept is built on it, and does nothing for nothing", () => {
    const exports = chain(2);
    expect(planMerges(exports, exports)).toEqual({ merges: [], remove: exports, held: [] });
    expect(planMerges(exports, [])).toEqual({ merges: [], remove: [], held: [] });
  });

  it("holds what an unverified export is built on: a merge starts only from data known to be good", () => {
    const [a, b] = chain(1) as [ChainExport, ChainExport];
    const c: ChainExport = { ...exp(3, 2), state: "unverified" };
    const decided = planMerges([a, b, c], [a, b]);
    expect(decided.merges).toEqual([]);
    expect(decided.remove).toEqual([]);
    expect(decided.held.map((h) => h.reason)).toEqual([
      `base of ${id(3)}, which is unverified`,
      `base of ${id(3)}, which is unverified`,
    ]);
  });

  it("holds the base an unfinished export is being written on, and the chain below it", () => {
    const [a, b] = chain(1) as [ChainExport, ChainExport];
    const unfinished: ChainExport = { id: id(5), state: "partial", manifest: null, job: { basis: id(2) } };
    const decided = planMerges([a, b, unfinished], [b]);
    expect(decided.remove).toEqual([]);
    expect(decided.held).toEqual([{ export: b, reason: `base of ${id(5)}, which is being written` }]);
    expect(planMerges([a, b, unfinished], [a, b]).remove).toEqual([]);
    // A job with no basis holds nothing.
    const fresh: ChainExport = { ...unfinished, job: {} };
    expect(planMerges([a, b, fresh], [b]).remove).toEqual([b]);
  });

  it("merges nothing into an export whose chain is broken, and keeps what its images name below", () => {
    const [a, b, c] = chain(2) as [ChainExport, ChainExport, ChainExport];
    const damaged: ChainExport = { ...a, state: "corrupt" };
    const decided = planMerges([damaged, b, c], [b]);
    expect(decided.merges).toEqual([]);
    expect(decided.remove).toEqual([]);
    expect(decided.held).toEqual([{ export: b, reason: `base of ${id(3)}, which is not whole` }]);
  });

  it("keeps an unverified link that a kept export rests on, and what is below it", () => {
    const [a, b, c] = chain(2) as [ChainExport, ChainExport, ChainExport];
    const unverified: ChainExport = { ...b, state: "unverified" };
    const listed = { ...c, state: "corrupt" };
    const decided = planMerges([a, unverified, listed], [unverified, a]);
    expect(decided.remove).toEqual([]);
    expect(decided.held.map((h) => h.export.id)).toEqual([id(2), id(1)]);
  });

  it("tells exports of two VMs with the same id apart", () => {
    const inFolder = (e: ChainExport, vmFolder: string): ChainExport => ({ ...e, vmFolder });
    const [a1, a2, a3] = chain(2).map((e) => inFolder(e, "a-11111111")) as [
      ChainExport,
      ChainExport,
      ChainExport,
    ];
    const [b1, b2, b3] = chain(2).map((e) => inFolder(e, "b-22222222")) as [
      ChainExport,
      ChainExport,
      ChainExport,
    ];
    // VM a loses its full export; VM b its middle one. Same ids, other folders.
    const decided = planMerges([a1, a2, a3, b1, b2, b3], [a1, b2]);
    expect(decided.remove).toEqual([a1, b2]);
    expect(decided.merges).toEqual([
      { into: a2, disks: [{ target: "vda", merged: [a1], basis: null }] },
      { into: b3, disks: [{ target: "vda", merged: [b2], basis: id(1) }] },
    ]);
  });

  it("holds compressed links instead of merging them: their clusters cannot be copied as they are", () => {
    const [a, b] = chain(1) as [ChainExport, ChainExport];
    const compressed: ChainExport = {
      ...a,
      manifest: a.manifest && {
        ...a.manifest,
        disks: a.manifest.disks.map((d) => ({ ...d, compression: "zstd" })),
      },
    };
    const decided = planMerges([compressed, b], [compressed]);
    expect(decided.merges).toEqual([]);
    expect(decided.held[0]?.reason).toMatch(/compressed images \(--compressed\) cannot be merged/);
  });
});

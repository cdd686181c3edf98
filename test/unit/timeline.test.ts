import { describe, expect, it } from "vitest";

import type { Snapshot } from "../../core/domain/types.js";
import { layoutTimeline } from "../../renderer/src/timeline.js";

const now = Date.parse("2026-11-26T12:00:00Z");
const hour = 3600_000;

function snapshot(name: string, hoursAgo: number, disks: string[], extra: Partial<Snapshot> = {}): Snapshot {
  const createdAt = new Date(now - hoursAgo * hour).toISOString();
  return {
    tag: `snapkeep:manual:${name}`,
    name,
    kind: "manual",
    origin: null,
    createdAt,
    disks: disks.map((target, i) => ({ target, imageSnapshotId: String(i + 1), createdAt, vmStateSize: 0 })),
    note: null,
    pinned: false,
    consistency: null,
    incomplete: false,
    hasVmState: false,
    ...extra,
  };
}

describe("snapshot timeline layout", () => {
  const snapshots = [
    snapshot("old", 24 * 40, ["vda", "vdb"]),
    snapshot("week", 24 * 3, ["vda"], { kind: "scheduled", pinned: true }),
    snapshot("fresh", 2, ["vdb"], { kind: "safety" }),
  ];

  it("puts a marker per snapshot and disk in that disk's lane, in time order left to right", () => {
    const layout = layoutTimeline(["vda", "vdb"], snapshots, "all", now);
    expect(layout.lanes).toEqual(["vda", "vdb"]);
    expect(layout.markers.map((m) => [m.name, m.disk, m.lane])).toEqual([
      ["old", "vda", 0],
      ["old", "vdb", 1],
      ["week", "vda", 0],
      ["fresh", "vdb", 1],
    ]);
    const xs = layout.markers.map((m) => m.x);
    expect(xs.every((x) => x > 0 && x < 1)).toBe(true);
    expect(xs[0]).toBeLessThan(xs[2] ?? 0);
    expect(xs[2]).toBeLessThan(xs[3] ?? 0);
    expect(layout.markers.find((m) => m.name === "week")).toMatchObject({ kind: "scheduled", pinned: true });
    expect(layout.hidden).toBe(0);
  });

  it("zooms: a 7-day range hides older snapshots and says how many", () => {
    const layout = layoutTimeline(["vda", "vdb"], snapshots, "week", now);
    expect(layout.markers.map((m) => m.name)).toEqual(["week", "fresh"]);
    expect(layout.hidden).toBe(1);
    expect(layout.ticks.length).toBeGreaterThanOrEqual(3);
    expect(layout.ticks.every((t) => t.x >= 0 && t.x <= 1)).toBe(true);
  });

  it("leaves out disks that are not shown (a CD-ROM) and copes with no snapshots", () => {
    expect(layoutTimeline(["vda"], snapshots, "all", now).markers.map((m) => m.disk)).toEqual(["vda", "vda"]);
    const empty = layoutTimeline(["vda"], [], "day", now);
    expect(empty.markers).toEqual([]);
    expect(empty.to).toBeGreaterThan(empty.from);
  });
});

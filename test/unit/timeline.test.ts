import { describe, expect, it } from "vitest";

import type { Snapshot } from "../../core/domain/types.js";
import { layoutTimeline, ticks } from "../../renderer/src/timeline.js";

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

describe("snapshot timeline at every zoom", () => {
  const second = 1000;
  const burst = (count: number, gapMs: number): Snapshot[] =>
    Array.from({ length: count }, (_, i) => {
      const s = snapshot(`b${i}`, 0, ["vda", "vdb"]);
      const createdAt = new Date(now - (count - i) * gapMs).toISOString();
      return { ...s, createdAt, pinned: i === 1 };
    });

  it("labels snapshots seconds apart with times, at All", () => {
    const layout = layoutTimeline(["vda"], burst(3, 20 * second), "all", now);
    expect(layout.ticks.length).toBeGreaterThanOrEqual(2);
    expect(layout.ticks.length).toBeLessThanOrEqual(7);
    expect(layout.ticks.every((t) => /\d/.test(t.label) && t.x >= 0 && t.x <= 1)).toBe(true);
    // Twenty seconds apart over a range of about a minute: three markers, not one.
    expect(layout.markers.map((m) => m.count)).toEqual([1, 1, 1]);
  });

  it("has labelled ticks at each zoom and for spans from a minute to years", () => {
    for (const zoom of ["day", "week", "month", "year", "all"] as const) {
      const layout = layoutTimeline(["vda"], snapshots3(), zoom, now);
      expect(layout.ticks.length, zoom).toBeGreaterThanOrEqual(2);
      expect(new Set(layout.ticks.map((t) => t.label)).size, zoom).toBe(layout.ticks.length);
    }
    for (const span of [60 * second, 3600 * second, 400 * 24 * hour, 6 * 365 * 24 * hour]) {
      const labels = ticks(now - span, now);
      expect(labels.length, String(span)).toBeGreaterThanOrEqual(2);
      expect(labels.length, String(span)).toBeLessThanOrEqual(7);
    }
  });

  it("clusters snapshots too close to tell apart, with their count, newest first in the cluster", () => {
    // Sixty snapshots a second apart, among snapshots days old: at All they are one dot per lane.
    const many = [snapshot("old", 24 * 30, ["vda", "vdb"]), ...burst(60, second)];
    const layout = layoutTimeline(["vda", "vdb"], many, "all", now);
    const clusters = layout.markers.filter((m) => m.count > 1);
    expect(clusters.map((c) => [c.disk, c.count])).toEqual([
      ["vda", 60],
      ["vdb", 60],
    ]);
    const [first] = clusters;
    expect(first?.name).toBe("b59");
    expect(first?.tags).toHaveLength(60);
    expect(first?.pinned).toBe(true);
    expect(Date.parse(first?.firstAt ?? "")).toBeLessThan(Date.parse(first?.createdAt ?? ""));
    // Every snapshot is in exactly one marker per lane.
    const counted = layout.markers.filter((m) => m.disk === "vda").reduce((n, m) => n + m.count, 0);
    expect(counted).toBe(61);
    // Zoomed to the day, the same burst spreads out more, but a second apart still clusters.
    expect(layoutTimeline(["vda"], many, "day", now).markers.some((m) => m.count > 1)).toBe(true);
  });
});

function snapshots3(): Snapshot[] {
  return [
    snapshot("old", 24 * 40, ["vda"]),
    snapshot("week", 24 * 3, ["vda"]),
    snapshot("fresh", 2, ["vda"]),
  ];
}

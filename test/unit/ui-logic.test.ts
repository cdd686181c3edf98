/**
 * The UI's logic that is not drawing: which rows a windowed list renders, the jobs panel's order,
 * the timeline's exported marker, and how sizes read. The drawing itself is tested in Chromium
 * (ui.test.ts).
 */
import { describe, expect, it } from "vitest";

import type { JobView } from "../../core/api/contract.js";
import { formatBytes } from "../../core/domain/bytes.js";
import { formatBytes as uiFormatBytes } from "../../renderer/src/format.js";
import { orderJobs } from "../../renderer/src/jobs-order.js";
import { layoutTimeline } from "../../renderer/src/timeline.js";
import { visibleRange } from "../../renderer/src/visible-range.js";

describe("windowed rows", () => {
  it("renders the rows in view plus the overscan, with spacers for the rest", () => {
    const r = visibleRange(440, 480, 44, 1000, 8);
    // Row 10 is the first in view; 11 rows fit; 8 more either side.
    expect(r).toEqual({ start: 2, end: 29, padTop: 2 * 44, padBottom: (1000 - 29) * 44 });
    expect(r.padTop + (r.end - r.start) * 44 + r.padBottom).toBe(1000 * 44);
  });

  it("stays inside the list at both ends and for tiny lists", () => {
    expect(visibleRange(0, 480, 44, 3)).toEqual({ start: 0, end: 3, padTop: 0, padBottom: 0 });
    const bottom = visibleRange(1_000_000, 480, 44, 50);
    expect(bottom.end).toBe(50);
    expect(bottom.start).toBeLessThanOrEqual(50);
    expect(bottom.padBottom).toBe(0);
    expect(visibleRange(-20, 0, 44, 0)).toEqual({ start: 0, end: 0, padTop: 0, padBottom: 0 });
  });
});

function job(id: string, state: JobView["state"], startedAt: string, endedAt: string | null): JobView {
  return {
    id,
    kind: "export",
    title: id,
    host: null,
    vm: null,
    state,
    startedAt,
    endedAt,
    progress: null,
    error: null,
    result: null,
    cancellable: state === "running",
  };
}

describe("jobs panel order", () => {
  it("shows running jobs first, oldest first, then the ended ones newest first", () => {
    const ordered = orderJobs([
      job("ended-early", "succeeded", "2026-11-26T10:00:00Z", "2026-11-26T10:05:00Z"),
      job("running-late", "running", "2026-11-26T11:30:00Z", null),
      job("failed-late", "failed", "2026-11-26T10:30:00Z", "2026-11-26T11:40:00Z"),
      job("running-early", "running", "2026-11-26T11:00:00Z", null),
      job("interrupted", "interrupted", "2026-11-26T09:00:00Z", null),
    ]);
    expect(ordered.map((j) => j.id)).toEqual([
      "running-early",
      "running-late",
      "failed-late",
      "ended-early",
      "interrupted",
    ]);
  });
});

describe("exported marker", () => {
  it("marks a snapshot that has a verified export, on every lane it covers", () => {
    const createdAt = "2026-11-26T11:00:00Z";
    const base = {
      kind: "manual" as const,
      origin: null,
      createdAt,
      note: null,
      pinned: false,
      consistency: null,
      incomplete: false,
      hasVmState: false,
      disks: ["vda", "vdb"].map((target) => ({ target, imageSnapshotId: "1", createdAt, vmStateSize: 0 })),
    };
    const layout = layoutTimeline(
      ["vda", "vdb"],
      [
        { ...base, tag: "snapkeep:manual:a", name: "a", exportedTo: ["shelf/20261126T110500Z-a"] },
        // An hour apart: snapshots at the same instant would be one marker with a count.
        { ...base, tag: "snapkeep:manual:b", name: "b", createdAt: "2026-11-26T11:59:00Z" },
      ],
      "all",
      Date.parse("2026-11-26T12:00:00Z"),
    );
    expect(layout.markers.filter((m) => m.exported).map((m) => `${m.name}/${m.disk}`)).toEqual([
      "a/vda",
      "a/vdb",
    ]);
  });
});

describe("sizes in the UI", () => {
  it("are worded by the one formatBytes the CLI and the core's sentences use", () => {
    expect(uiFormatBytes).toBe(formatBytes);
    expect(formatBytes(null)).toBe("-");
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(2 * 1024 ** 3)).toBe("2 GiB");
    expect(formatBytes(640 * 1024 ** 2)).toBe("640 MiB");
    expect(formatBytes(3 * 1024 ** 5)).toBe("3 PiB");
  });
});

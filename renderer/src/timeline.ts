/**
 * The snapshot timeline's geometry: pure, so it is unit-tested and costs nothing to render.
 * A lane per disk; a marker per snapshot on each disk it covers; time runs left to right.
 */
import type { Snapshot } from "../../core/api/contract.js";

export const ZOOMS = [
  { id: "day", label: "24 hours", ms: 24 * 3600_000 },
  { id: "week", label: "7 days", ms: 7 * 24 * 3600_000 },
  { id: "month", label: "30 days", ms: 30 * 24 * 3600_000 },
  { id: "year", label: "1 year", ms: 365 * 24 * 3600_000 },
  { id: "all", label: "All", ms: 0 },
] as const;
export type ZoomId = (typeof ZOOMS)[number]["id"];

export interface Marker {
  readonly tag: string;
  readonly name: string;
  readonly disk: string;
  readonly lane: number;
  /** 0..1 across the visible range. */
  readonly x: number;
  readonly kind: Snapshot["kind"];
  readonly pinned: boolean;
  /** Copied off the host by a verified export. */
  readonly exported: boolean;
  readonly createdAt: string;
}

export interface TimelineLayout {
  readonly lanes: readonly string[];
  readonly markers: readonly Marker[];
  readonly from: number;
  readonly to: number;
  /** Snapshots outside the visible range, so the view can say "12 older not shown". */
  readonly hidden: number;
  readonly ticks: readonly { readonly x: number; readonly label: string }[];
}

export function layoutTimeline(
  disks: readonly string[],
  snapshots: readonly Snapshot[],
  zoom: ZoomId,
  now: number,
): TimelineLayout {
  const times = snapshots.map((s) => Date.parse(s.createdAt));
  const span = ZOOMS.find((z) => z.id === zoom)?.ms ?? 0;
  const earliest = times.length === 0 ? now - 3600_000 : Math.min(...times);
  // "All" spans the first snapshot to now, with a little room either side.
  const from = span === 0 ? earliest - Math.max(5_000, (now - earliest) * 0.05) : now - span;
  const to = now + Math.max(5_000, (now - from) * 0.02);
  const lanes = [...disks];
  const markers: Marker[] = [];
  let hidden = 0;
  snapshots.forEach((snapshot, i) => {
    const t = times[i] ?? now;
    if (t < from || t > to) {
      hidden++;
      return;
    }
    for (const disk of snapshot.disks) {
      const lane = lanes.indexOf(disk.target);
      if (lane === -1) {
        continue;
      }
      markers.push({
        tag: snapshot.tag,
        name: snapshot.name,
        disk: disk.target,
        lane,
        x: (t - from) / (to - from),
        kind: snapshot.kind,
        pinned: snapshot.pinned,
        exported: (snapshot.exportedTo?.length ?? 0) > 0,
        createdAt: snapshot.createdAt,
      });
    }
  });
  return { lanes, markers, from, to, hidden, ticks: ticks(from, to) };
}

/** Three to eight labelled ticks at round times for the range. */
function ticks(from: number, to: number): { x: number; label: string }[] {
  const span = to - from;
  const steps = [
    3600_000,
    6 * 3600_000,
    24 * 3600_000,
    7 * 24 * 3600_000,
    30 * 24 * 3600_000,
    90 * 24 * 3600_000,
  ];
  const step = steps.find((s) => span / s <= 8) ?? 365 * 24 * 3600_000;
  const out: { x: number; label: string }[] = [];
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) {
    const d = new Date(t);
    const label =
      step < 24 * 3600_000
        ? `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`
        : `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
    out.push({ x: (t - from) / span, label });
  }
  return out;
}

/**
 * The snapshot timeline's geometry: pure, so it is unit-tested and costs nothing to render.
 * A lane per disk; a marker per snapshot on each disk it covers; time runs left to right.
 */
import type { Snapshot } from "../../core/api/contract.js";
import { formatter } from "./when.js";

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
  /**
   * Snapshots this marker stands for: more than one when they were taken too close together to
   * tell apart at this zoom (seconds apart at "All"). `tag`, `name` and `createdAt` are then the
   * newest's, `firstAt` the oldest's; `tags` lets the view mark the cluster holding the selection.
   */
  readonly count: number;
  readonly tags: readonly string[];
  readonly firstAt: string;
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
  /** Markers in one slot this wide (a share of the width: 24 px of 830) become one with a count. */
  minGap = 0.029,
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
        count: 1,
        tags: [snapshot.tag],
        firstAt: snapshot.createdAt,
      });
    }
  });
  return { lanes, markers: cluster(markers, minGap), from, to, hidden, ticks: ticks(from, to) };
}

/**
 * Markers of one lane that fall in the same slot of the width (`minGap` wide) become one marker
 * with a count, drawn at the slot's middle, so snapshots seconds apart never hide behind one dot
 * and clusters never overlap each other (their middles are a slot apart). Input is in time order
 * per lane; output is in time order, lanes interleaved as before.
 */
function cluster(markers: readonly Marker[], minGap: number): Marker[] {
  const slots = new Map<string, Marker[]>();
  for (const m of markers) {
    const key = `${m.lane}/${Math.floor(m.x / minGap)}`;
    const members = slots.get(key);
    if (members === undefined) {
      slots.set(key, [m]);
    } else {
      members.push(m);
    }
  }
  const out: Marker[] = [];
  for (const members of slots.values()) {
    const [first] = members;
    const newest = members.at(-1);
    if (first === undefined || newest === undefined) {
      continue;
    }
    out.push(
      members.length === 1
        ? first
        : {
            ...newest,
            x: (Math.floor(first.x / minGap) + 0.5) * minGap,
            count: members.length,
            tags: members.map((m) => m.tag),
            firstAt: first.createdAt,
            pinned: members.some((m) => m.pinned),
            exported: members.some((m) => m.exported),
          },
    );
  }
  return out.sort((a, b) => a.x - b.x || a.lane - b.lane);
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Round steps from seconds to years: any range, even snapshots seconds apart, gets labels. */
const STEPS = [
  SECOND,
  5 * SECOND,
  15 * SECOND,
  30 * SECOND,
  MINUTE,
  5 * MINUTE,
  15 * MINUTE,
  30 * MINUTE,
  HOUR,
  3 * HOUR,
  6 * HOUR,
  12 * HOUR,
  DAY,
  2 * DAY,
  7 * DAY,
  14 * DAY,
  30 * DAY,
  91 * DAY,
  182 * DAY,
  365 * DAY,
  2 * 365 * DAY,
  5 * 365 * DAY,
];

/**
 * Three to seven labelled ticks at round times for the range, at every zoom. Labels say what the
 * step needs: seconds for a minute's range, the time of day within days (with the date at
 * midnight), the day and month over weeks, the month and year over years; in this computer's
 * locale and time zone, as the rest of the UI.
 */
export function ticks(from: number, to: number): { x: number; label: string }[] {
  const span = Math.max(1, to - from);
  const step = STEPS.find((s) => span / s <= 7) ?? 10 * 365 * DAY;
  // Round to the step in local time, so daily ticks fall on local midnight, not UTC's.
  const offset = new Date(from).getTimezoneOffset() * MINUTE;
  const out: { x: number; label: string }[] = [];
  const first =
    step >= DAY ? Math.ceil((from - offset) / step) * step + offset : Math.ceil(from / step) * step;
  for (let t = first; t <= to; t += step) {
    out.push({ x: (t - from) / span, label: tickLabel(new Date(t), step, span) });
  }
  return out;
}

function tickLabel(d: Date, step: number, span: number): string {
  if (step < MINUTE) {
    return formatter({ hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(d);
  }
  if (step < DAY) {
    const time = formatter({ hour: "2-digit", minute: "2-digit" }).format(d);
    if (d.getHours() === 0 && d.getMinutes() === 0) {
      return formatter({ day: "numeric", month: "short" }).format(d);
    }
    // Over most of a day or more, "06:00" would come twice: the weekday tells them apart.
    return span >= 20 * HOUR ? `${formatter({ weekday: "short" }).format(d)} ${time}` : time;
  }
  if (step < 91 * DAY) {
    return formatter({ day: "numeric", month: "short" }).format(d);
  }
  return formatter({ month: "short", year: "numeric" }).format(d);
}

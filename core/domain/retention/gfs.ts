import type { Snapshot } from "../types.js";
import { compareText } from "../compare.js";

/**
 * Count-based retention: keep the latest N, plus optional GFS counts (newest snapshot of each of
 * the last N days / ISO weeks / months, in local time). A count that is absent keeps nothing by
 * itself; a policy with no counts at all keeps everything.
 */
export interface RetentionPolicy {
  readonly keepLast?: number | undefined;
  readonly daily?: number | undefined;
  readonly weekly?: number | undefined;
  readonly monthly?: number | undefined;
}

export interface KeptSnapshot {
  readonly snapshot: Snapshot;
  /** Why it stays, e.g. ["latest-1", "daily-1"], or ["manual"], ["pinned"]. Never empty. */
  readonly reasons: readonly string[];
}

export interface RetentionResult {
  readonly keep: readonly KeptSnapshot[];
  readonly remove: readonly Snapshot[];
}

export function isEmptyPolicy(policy: RetentionPolicy): boolean {
  return [policy.keepLast, policy.daily, policy.weekly, policy.monthly].every(
    (n) => n === undefined || n <= 0,
  );
}

/**
 * Decides which snapshots a schedule keeps and which it removes. Pure: the same input gives the
 * same answer, and applying it to its own kept set removes nothing more.
 *
 * Only snapshots this schedule made (kind "scheduled", origin = scheduleId, as tagged on the host)
 * are ever removed. Manual, safety, foreign and other schedules' snapshots are kept, and so are
 * pinned ones, ones dated after `now` (a clock that went backwards must not make the real newest
 * look old), and this schedule's newest snapshot, whatever the counts say. This schedule's
 * snapshots from interrupted jobs are removed: they are not recovery points.
 */
export function applyRetention(
  snapshots: readonly Snapshot[],
  policy: RetentionPolicy,
  scheduleId: string,
  now: Date,
): RetentionResult {
  // Reasons by input position: plain arrays keep this fast at 100,000 snapshots.
  const reasons: (string[] | undefined)[] = new Array<string[] | undefined>(snapshots.length);
  const add = (index: number, reason: string): void => {
    (reasons[index] ??= []).push(reason);
  };
  const nowIso = now.toISOString(); // ISO timestamps compare correctly as strings
  // Each time is read once, as a number, in the same pass that sorts the snapshots out: the sort
  // and the bucket passes below compare numbers, not text or Date objects, and every snapshot is
  // visited once (in a shuffled list each visit is a cache miss).
  const times = new Float64Array(snapshots.length);
  const candidates: number[] = [];
  snapshots.forEach((snapshot, index) => {
    if (snapshot.kind !== "scheduled" || snapshot.origin !== scheduleId) {
      add(index, snapshot.kind === "scheduled" ? `schedule ${snapshot.origin ?? "?"}` : snapshot.kind);
    } else if (snapshot.pinned) {
      add(index, "pinned");
    } else if (snapshot.incomplete) {
      // Left by an interrupted job: not a recovery point, never counted, always removed.
    } else if (snapshot.createdAt > nowIso) {
      add(index, "dated in the future");
    } else {
      times[index] = epochMs(snapshot.createdAt);
      candidates.push(index);
    }
  });
  // Newest first; the tag breaks ties so the order never depends on the input order.
  const at = (i: number): Snapshot => snapshots[i] as Snapshot;
  sortNewestFirst(candidates, times, at);
  const timeOf = (i: number): number => times[i] as number;

  if (isEmptyPolicy(policy)) {
    candidates.forEach((i) => add(i, "policy is empty"));
  } else {
    candidates.slice(0, Math.max(0, policy.keepLast ?? 0)).forEach((i, n) => add(i, `latest-${n + 1}`));
    keepNewestPerBucket(candidates, timeOf, policy.daily, "daily", startOfDay, add);
    keepNewestPerBucket(candidates, timeOf, policy.weekly, "weekly", startOfIsoWeek, add);
    keepNewestPerBucket(candidates, timeOf, policy.monthly, "monthly", startOfMonth, add);
    // A safety net the counts above always satisfy today; it stays so no future policy can break it.
    const newest = candidates[0];
    if (newest !== undefined && reasons[newest] === undefined) {
      add(newest, "newest");
    }
  }

  const keep: KeptSnapshot[] = [];
  const remove: Snapshot[] = [];
  snapshots.forEach((snapshot, index) => {
    const why = reasons[index];
    if (why === undefined) {
      remove.push(snapshot);
    } else {
      keep.push({ snapshot, reasons: why });
    }
  });
  return { keep, remove };
}

/**
 * Keeps the newest snapshot of each of the newest `count` buckets (local days, ISO weeks, months).
 * A bucket is an interval of time and the list runs newest first, so a snapshot is in the bucket
 * of the one kept before it exactly when it is not older than that bucket's start: one Date per
 * bucket, not one per snapshot.
 */
function keepNewestPerBucket(
  newestFirst: readonly number[],
  timeOf: (index: number) => number,
  count: number | undefined,
  label: string,
  bucketStart: (ms: number) => number,
  add: (index: number, reason: string) => void,
): void {
  if (count === undefined || count <= 0) {
    return;
  }
  let kept = 0;
  let start = Infinity;
  for (const index of newestFirst) {
    const time = timeOf(index);
    if (time >= start) {
      continue;
    }
    start = bucketStart(time);
    kept += 1;
    add(index, `${label}-${kept}`);
    if (kept === count) {
      return;
    }
  }
}

/** Local midnight that starts the day of `ms` (or the first instant of that day, on a DST night). */
function startOfDay(ms: number): number {
  const date = new Date(ms);
  return new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
}

/** Local midnight of the Monday that starts the ISO week of `ms` (weeks start on Monday). */
export function startOfIsoWeek(ms: number): number {
  const date = new Date(ms);
  const sinceMonday = (date.getDay() + 6) % 7;
  return new Date(date.getFullYear(), date.getMonth(), date.getDate() - sinceMonday).getTime();
}

function startOfMonth(ms: number): number {
  const date = new Date(ms);
  return new Date(date.getFullYear(), date.getMonth(), 1).getTime();
}

/** Bits of a packed sort key that hold the snapshot's position; the rest hold its second. */
const POSITION_BITS = 18;
const POSITIONS = 2 ** POSITION_BITS;

/**
 * Sorts positions newest first, by time then tag (both descending, as text compares them).
 *
 * A comparator made a shuffled list of 100,000 several times slower than a sorted one (a million
 * and a half calls). So each time, to the second, is packed with the position into one exact float
 * (35 + 18 bits) and the engine's own numeric sort orders those; only snapshots within one second
 * are then compared in full. Lists too long, or times too far apart, for the packing take the
 * comparator.
 */
function sortNewestFirst(positions: number[], times: Float64Array, at: (position: number) => Snapshot): void {
  const inFull = (a: number, b: number): number =>
    (times[b] as number) - (times[a] as number) ||
    compareText(at(b).createdAt, at(a).createdAt) ||
    compareText(at(b).tag, at(a).tag);
  let oldest = Infinity;
  let newest = -Infinity;
  for (const p of positions) {
    oldest = Math.min(oldest, times[p] as number);
    newest = Math.max(newest, times[p] as number);
  }
  const base = Math.floor(oldest / 1000);
  if (times.length > POSITIONS || !(Math.floor(newest / 1000) - base < 2 ** 35)) {
    positions.sort(inFull);
    return;
  }
  const packed = new Float64Array(positions.length);
  positions.forEach((p, i) => (packed[i] = (Math.floor((times[p] as number) / 1000) - base) * POSITIONS + p));
  packed.sort();
  const secondAt = (i: number): number => Math.floor((packed[packed.length - 1 - i] as number) / POSITIONS);
  for (let i = 0; i < packed.length; i++) {
    positions[i] = (packed[packed.length - 1 - i] as number) % POSITIONS;
  }
  // Within one second the packing ordered by position: those runs get the full order.
  for (let start = 0; start < positions.length;) {
    let end = start + 1;
    while (end < positions.length && secondAt(end) === secondAt(start)) {
      end += 1;
    }
    if (end - start > 1) {
      positions.splice(start, end - start, ...positions.slice(start, end).sort(inFull));
    }
    start = end;
  }
}

/**
 * Milliseconds since the epoch of an ISO 8601 time. Snapkeep's own ("2026-11-26T12:00:00.000Z")
 * are read digit by digit, which is several times cheaper than Date.parse; any other shape goes to
 * Date.parse. An unreadable time counts as the epoch (the oldest), as its text sorted first too.
 */
function epochMs(iso: string): number {
  if (iso.length === 24 && iso.charCodeAt(23) === 90 /* Z */ && iso.charCodeAt(10) === 84 /* T */) {
    const n = (from: number, to: number): number => {
      let value = 0;
      for (let i = from; i < to; i++) {
        value = value * 10 + iso.charCodeAt(i) - 48;
      }
      return value;
    };
    const ms = Date.UTC(n(0, 4), n(5, 7) - 1, n(8, 10), n(11, 13), n(14, 16), n(17, 19), n(20, 23));
    if (Number.isFinite(ms)) {
      return ms;
    }
  }
  return Date.parse(iso) || 0;
}

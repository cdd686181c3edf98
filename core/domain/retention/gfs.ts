import type { Snapshot } from "../types.js";
import { compareText } from "../compare.js";

/**
 * Count-based retention: keep the latest N, plus optional GFS counts (newest item of each of the
 * last N days / ISO weeks / months, in local time). A count that is absent keeps nothing by
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
  const { keep, remove } = retainDated(snapshots, policy, now, (snapshot) => {
    if (snapshot.kind !== "scheduled" || snapshot.origin !== scheduleId) {
      return { keep: snapshot.kind === "scheduled" ? `schedule ${snapshot.origin ?? "?"}` : snapshot.kind };
    }
    if (snapshot.pinned) {
      return { keep: "pinned" };
    }
    // Left by an interrupted job: not a recovery point, never counted, always removed.
    return snapshot.incomplete ? "remove" : "count";
  });
  return { keep: keep.map(({ item, reasons }) => ({ snapshot: item, reasons })), remove };
}

/**
 * What GFS needs of anything it keeps or removes: a snapshot on a host, a copy on a target. The
 * tag only orders items made in the same instant, so that the input order never matters.
 */
export interface DatedItem {
  /** ISO 8601: the instant the item is a recovery point of. */
  readonly createdAt: string;
  readonly tag: string;
}

/**
 * How the counts treat one item: "count" puts it under the policy (keep last N, GFS), "remove"
 * removes it without counting it (it is not a recovery point), and { keep } keeps it for that
 * reason without counting it (not this policy's to remove).
 */
export type Standing = "count" | "remove" | { readonly keep: string };

export interface RetainedItem<T> {
  readonly item: T;
  /** Why it stays, e.g. ["latest-1", "daily-1"], or the reason its standing gave. Never empty. */
  readonly reasons: readonly string[];
}

export interface DatedRetention<T> {
  /** In input order. */
  readonly keep: readonly RetainedItem<T>[];
  /** In input order. */
  readonly remove: readonly T[];
}

/**
 * The retention behind applyRetention, for any dated items: `standing` says which ones the policy
 * counts. Of the counted ones, those dated after `now` stay (a clock that went backwards must not
 * make the real newest look old) and the newest always stays, whatever the counts say.
 */
export function retainDated<T extends DatedItem>(
  items: readonly T[],
  policy: RetentionPolicy,
  now: Date,
  standing: (item: T) => Standing,
): DatedRetention<T> {
  // Reasons by input position: plain arrays keep this fast at 100,000 snapshots.
  const reasons: (string[] | undefined)[] = new Array<string[] | undefined>(items.length);
  const add = (index: number, reason: string): void => {
    (reasons[index] ??= []).push(reason);
  };
  const nowIso = now.toISOString(); // ISO timestamps compare correctly as strings
  // Each time is read once, as a number, in the same pass that sorts the items out: the sort and
  // the bucket passes below compare numbers, not text or Date objects, and every item is visited
  // once (in a shuffled list each visit is a cache miss).
  const times = new Float64Array(items.length);
  const candidates: number[] = [];
  items.forEach((item, index) => {
    const stand = standing(item);
    if (stand === "remove") {
      return;
    }
    if (stand !== "count") {
      add(index, stand.keep);
    } else if (item.createdAt > nowIso) {
      add(index, "dated in the future");
    } else {
      times[index] = epochMs(item.createdAt);
      candidates.push(index);
    }
  });
  // Newest first; the tag breaks ties so the order never depends on the input order.
  const at = (i: number): T => items[i] as T;
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

  const keep: RetainedItem<T>[] = [];
  const remove: T[] = [];
  items.forEach((item, index) => {
    const why = reasons[index];
    if (why === undefined) {
      remove.push(item);
    } else {
      keep.push({ item, reasons: why });
    }
  });
  return { keep, remove };
}

/**
 * Keeps the newest item of each of the newest `count` buckets (local days, ISO weeks, months).
 * A bucket is an interval of time and the list runs newest first, so an item is in the bucket of
 * the one kept before it exactly when it is not older than that bucket's start: one Date per
 * bucket, not one per item.
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
export function startOfDay(ms: number): number {
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

/** Bits of a packed sort key that hold the item's position; the rest hold its second. */
const POSITION_BITS = 18;
const POSITIONS = 2 ** POSITION_BITS;

/**
 * Sorts positions newest first, by time then tag (both descending, as text compares them).
 *
 * A comparator made a shuffled list of 100,000 several times slower than a sorted one (a million
 * and a half calls). So each time, to the second, is packed with the position into one exact float
 * (35 + 18 bits) and the engine's own numeric sort orders those; only items within one second
 * are then compared in full. Lists too long, or times too far apart, for the packing take the
 * comparator.
 */
function sortNewestFirst(
  positions: number[],
  times: Float64Array,
  at: (position: number) => DatedItem,
): void {
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

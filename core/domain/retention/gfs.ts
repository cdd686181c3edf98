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
      candidates.push(index);
    }
  });
  // Newest first; the tag breaks ties so the order never depends on the input order.
  const at = (i: number): Snapshot => snapshots[i] as Snapshot;
  candidates.sort(
    (a, b) => compareText(at(b).createdAt, at(a).createdAt) || compareText(at(b).tag, at(a).tag),
  );

  if (isEmptyPolicy(policy)) {
    candidates.forEach((i) => add(i, "policy is empty"));
  } else {
    candidates.slice(0, Math.max(0, policy.keepLast ?? 0)).forEach((i, n) => add(i, `latest-${n + 1}`));
    keepNewestPerBucket(candidates, at, policy.daily, "daily", dayKey, add);
    keepNewestPerBucket(candidates, at, policy.weekly, "weekly", isoWeekKey, add);
    keepNewestPerBucket(candidates, at, policy.monthly, "monthly", monthKey, add);
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

function keepNewestPerBucket(
  newestFirst: readonly number[],
  at: (index: number) => Snapshot,
  count: number | undefined,
  label: string,
  bucketOf: (date: Date) => string,
  add: (index: number, reason: string) => void,
): void {
  if (count === undefined || count <= 0) {
    return;
  }
  const seen = new Set<string>();
  for (const index of newestFirst) {
    const bucket = bucketOf(new Date(at(index).createdAt));
    if (!seen.has(bucket)) {
      seen.add(bucket);
      add(index, `${label}-${seen.size}`);
      if (seen.size === count) {
        return;
      }
    }
  }
}

function dayKey(date: Date): string {
  return `${date.getFullYear()}-${date.getMonth() + 1}-${date.getDate()}`;
}

function monthKey(date: Date): string {
  return `${date.getFullYear()}-${date.getMonth() + 1}`;
}

/** ISO 8601 week of the local date: weeks start on Monday; week 1 holds the year's first Thursday. */
export function isoWeekKey(date: Date): string {
  const day = new Date(Date.UTC(date.getFullYear(), date.getMonth(), date.getDate()));
  const weekday = day.getUTCDay() || 7;
  day.setUTCDate(day.getUTCDate() + 4 - weekday); // the Thursday of this week decides the year
  const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((day.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${day.getUTCFullYear()}-W${String(week).padStart(2, "0")}`;
}

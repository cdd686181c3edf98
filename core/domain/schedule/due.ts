import type { Schedule, ScheduleState } from "../settings.js";
import { latestSlotAtOrBefore, nextSlots, nominalIntervalMs, sameWallTime, type When } from "./spec.js";

/**
 * Whether a schedule should run now, decided from persisted facts and `now` only, so it gives the
 * same answer after a restart, a sleep or a clock change. Returns the slot to serve, or null.
 *
 * One pending run at most: only the latest slot counts, so three missed days are one catch-up,
 * not three. A clock set backwards makes the latest slot older than the one already served, so
 * nothing runs twice. A failing run waits for its retry time (backoff) before it is due again.
 */
export function dueSlot(schedule: Schedule, state: ScheduleState | undefined, now: Date): Date | null {
  if (!schedule.enabled) {
    return null;
  }
  const slot = latestSlotAtOrBefore(schedule.when, now);
  if (slot === null) {
    return null;
  }
  // A new schedule serves no slot from before it existed. A served slot later than now was
  // recorded while the clock ran ahead: it is ignored (one run now, then the usual rhythm) rather
  // than silencing the schedule until that date comes round.
  const lastSlot = servedSlot(state, now);
  const served = Date.parse(lastSlot ?? schedule.createdAt);
  if (slot.getTime() <= served || (lastSlot !== undefined && sameWallTime(slot, new Date(lastSlot)))) {
    return null;
  }
  // A retry time more than the longest backoff ahead was set by a clock that ran ahead: ignore it.
  const retryAt = state?.nextRetryAt === undefined ? undefined : Date.parse(state.nextRetryAt);
  if (retryAt !== undefined && now.getTime() < retryAt && retryAt - now.getTime() <= retryDelayMs(Infinity)) {
    return null;
  }
  return slot;
}

/** Retry delay after the n-th consecutive failure: 1, 2, 4 ... minutes, at most 30. */
export function retryDelayMs(failures: number): number {
  return Math.min(30, 2 ** Math.max(0, failures - 1)) * 60_000;
}

/**
 * A clock set back by hours (a correction, a wrong zone fixed) keeps the served slot, so nothing
 * runs twice; one that ran ahead by days or years left a served slot far in the future, which would
 * silence the schedule until then, so that one is dropped.
 */
const FUTURE_SLOT_TOLERANCE_MS = 48 * 3600_000;

/** The last served slot, unless it lies far in the future (set while the clock ran ahead). */
function servedSlot(state: ScheduleState | undefined, now: Date): string | undefined {
  const last = state?.lastSlot;
  return last !== undefined && Date.parse(last) > now.getTime() + FUTURE_SLOT_TOLERANCE_MS ? undefined : last;
}

export function stateAfterSuccess(state: ScheduleState | undefined, slot: Date, now: Date): ScheduleState {
  return {
    ...state,
    lastSlot: laterIso(servedSlot(state, now), slot),
    lastRunAt: now.toISOString(),
    lastResult: "ok",
    failures: 0,
    lastError: undefined,
    nextRetryAt: undefined,
  };
}

/** A failed run keeps its slot pending and backs off; the next success serves the latest slot. */
export function stateAfterFailure(state: ScheduleState | undefined, error: string, now: Date): ScheduleState {
  const failures = (state?.failures ?? 0) + 1;
  return {
    ...state,
    lastRunAt: now.toISOString(),
    lastResult: "failed",
    lastError: error,
    failures,
    nextRetryAt: new Date(now.getTime() + retryDelayMs(failures)).toISOString(),
  };
}

function laterIso(previous: string | undefined, slot: Date): string {
  return previous !== undefined && Date.parse(previous) > slot.getTime() ? previous : slot.toISOString();
}

export type RpoLevel = "ok" | "due" | "overdue" | "unscheduled";

export interface RpoStatus {
  readonly level: RpoLevel;
  /** Age of the newest good snapshot in ms, or null when there is none. */
  readonly ageMs: number | null;
  /** Why it is due or overdue, in words a person acts on. */
  readonly reason: string | null;
}

/**
 * How long after a missed slot "due" turns into "overdue": the job had its chance to run. An
 * hour, or half the interval for schedules that run more often than every two hours.
 */
export function overdueAfterMs(when: When, now: Date): number {
  return Math.min(60 * 60_000, nominalIntervalMs(when, now) / 2);
}

/** The oldest slot after the last one served, if it has passed: the run that is pending. */
export function firstMissedSlot(
  schedule: Schedule,
  state: ScheduleState | undefined,
  now: Date,
): Date | null {
  if (!schedule.enabled) {
    return null;
  }
  const served = new Date(servedSlot(state, now) ?? schedule.createdAt);
  const [first, second] = nextSlots(schedule.when, served, 2);
  const next = first !== undefined && sameWallTime(first, served) ? second : first;
  return next !== undefined && next.getTime() <= now.getTime() ? next : null;
}

/**
 * Recovery-point status of one VM: is its newest good snapshot as recent as its schedules promise?
 * "due" means a run is pending (a slot passed, within the grace time); "overdue" means it is late,
 * with the likely reason: the schedule is paused, the host is offline, or the last run failed.
 */
export function rpoStatus(input: {
  readonly schedules: readonly Schedule[];
  readonly states: Readonly<Record<string, ScheduleState>>;
  readonly newestGoodSnapshotAt: Date | null;
  readonly hostOnline: boolean;
  readonly now: Date;
}): RpoStatus {
  const { schedules, states, newestGoodSnapshotAt, hostOnline, now } = input;
  const ageMs = newestGoodSnapshotAt === null ? null : now.getTime() - newestGoodSnapshotAt.getTime();
  if (schedules.length === 0) {
    return { level: "unscheduled", ageMs, reason: null };
  }
  const active = schedules.filter((s) => s.enabled);
  const considered = active.length > 0 ? active : schedules;
  // The most demanding schedule decides: the one whose latest slot is the most recent.
  const expectations = considered
    .map((s) => ({ schedule: s, slot: latestSlotAtOrBefore(s.when, now) }))
    .filter(
      (e): e is { schedule: Schedule; slot: Date } =>
        e.slot !== null && e.slot.getTime() > Date.parse(e.schedule.createdAt),
    );
  const latest = expectations.sort((a, b) => b.slot.getTime() - a.slot.getTime())[0];
  if (latest === undefined || (newestGoodSnapshotAt !== null && newestGoodSnapshotAt >= latest.slot)) {
    return { level: "ok", ageMs, reason: null };
  }
  // Late since the first slot after the newest good snapshot, not since the latest slot.
  const missedSince =
    newestGoodSnapshotAt === null
      ? latest.slot
      : (nextSlots(latest.schedule.when, newestGoodSnapshotAt, 1)[0] ?? latest.slot);
  const lateMs = now.getTime() - missedSince.getTime();
  const level: RpoLevel =
    lateMs < overdueAfterMs(latest.schedule.when, now) && active.length > 0 && hostOnline ? "due" : "overdue";
  const state = states[latest.schedule.id];
  const reason =
    active.length === 0
      ? "the schedule is paused"
      : !hostOnline
        ? "the host is offline"
        : state?.lastResult === "failed"
          ? `the last run failed: ${state.lastError ?? "unknown error"}`
          : level === "due"
            ? "a scheduled run is pending"
            : "the scheduled run has not happened (is a scheduler running?)";
  return { level, ageMs, reason };
}

/**
 * What the tray says about the schedules, from the persisted settings and `now` only: the next
 * run, and what needs the admin. The same facts whether this app or a daemon runs the scheduler.
 */
import { firstMissedSlot, overdueAfterMs } from "../../core/domain/schedule/due.js";
import { isPaused } from "../../core/domain/schedule/pause.js";
import { nextSlots } from "../../core/domain/schedule/spec.js";
import type {
  Schedule,
  SchedulePause,
  ScheduleCopyState,
  ScheduleState,
} from "../../core/domain/settings.js";
import { copyIntervalMs } from "../../core/domain/copy/policy.js";
import { offHostRpo } from "../../core/domain/copy/rpo.js";

/** The soonest run of any active schedule; while all are paused, the first one after the pause. */
export function nextScheduledRun(
  schedules: readonly Schedule[],
  pause: SchedulePause | null,
  now: Date,
): { at: Date; vm: string } | null {
  if (pause !== null && pause.until === null && isPaused(pause, now)) {
    return null;
  }
  const from =
    pause?.until !== undefined && pause.until !== null && isPaused(pause, now) ? new Date(pause.until) : now;
  let best: { at: Date; vm: string } | null = null;
  for (const schedule of schedules.filter((s) => s.enabled)) {
    const at = nextSlots(schedule.when, from, 1)[0];
    if (at !== undefined && (best === null || at < best.at)) {
      best = { at, vm: schedule.vmName };
    }
  }
  return best;
}

/**
 * One line per schedule that needs the admin: its last run failed, a run is overdue, or its
 * off-host copy is overdue (the copy's own words say why: the target is offline, a copy failed).
 */
export function attentionLines(
  schedules: readonly Schedule[],
  states: Readonly<Record<string, ScheduleState>>,
  pause: SchedulePause | null,
  now: Date,
  copyStates: Readonly<Record<string, ScheduleCopyState>> = {},
): string[] {
  const lines: string[] = [];
  for (const schedule of schedules.filter((s) => s.enabled)) {
    const state = states[schedule.id];
    if (state?.lastResult === "failed") {
      lines.push(`${schedule.vmName}: last run failed: ${short(state.lastError ?? "unknown error")}`);
      continue;
    }
    // A pause is the admin's own decision: the runs it holds back are not "overdue".
    const paused = isPaused(pause, now);
    const missed = paused ? null : firstMissedSlot(schedule, state, now);
    if (missed !== null && now.getTime() - missed.getTime() > overdueAfterMs(schedule.when, now)) {
      lines.push(`${schedule.vmName}: scheduled run overdue since ${missed.toLocaleString()}`);
      continue;
    }
    const offHost = paused ? null : offHostLine(schedule, copyStates[schedule.id], now);
    if (offHost !== null) {
      lines.push(offHost);
    }
  }
  return lines;
}

/**
 * A schedule's off-host copy when it needs the admin: overdue, or never landed after a failure.
 * The tray runs in the app that runs the scheduler (or beside a daemon that does): that no
 * scheduler runs is said by the tray's own scheduling line, not once per schedule here.
 */
function offHostLine(schedule: Schedule, copy: ScheduleCopyState | undefined, now: Date): string | null {
  if (schedule.copy === undefined) {
    return null;
  }
  const landed = copy?.newestLanded?.createdAt;
  const failure = copy?.lastAttempt?.failure ?? null;
  const rpo = offHostRpo({
    newestVerifiedCopyAt: landed === undefined ? null : new Date(landed),
    copyIntervalMs: copyIntervalMs(schedule.when, schedule.copy.cadence, now),
    lastCopyFailure: failure,
    schedulerRunning: true,
    now,
  });
  if (rpo.level === "overdue" || (rpo.level === "on-host-only" && failure !== null)) {
    const what = rpo.level === "overdue" ? "off-host copy overdue" : "no off-host copy yet";
    return `${schedule.vmName}: ${what}: ${short(rpo.reason ?? "unknown")}`;
  }
  return null;
}

/** Menu lines are one line: the window shows the whole message. */
function short(text: string): string {
  const line = text.split("\n")[0] ?? "";
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

/**
 * What the tray says about the schedules, from the persisted settings and `now` only: the next
 * run, and what needs the admin. The same facts whether this app or a daemon runs the scheduler.
 */
import { firstMissedSlot, overdueAfterMs } from "../../core/domain/schedule/due.js";
import { isPaused } from "../../core/domain/schedule/pause.js";
import { nextSlots } from "../../core/domain/schedule/spec.js";
import type { Schedule, SchedulePause, ScheduleState } from "../../core/domain/settings.js";

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

/** One line per schedule that needs the admin: its last run failed, or a run is overdue. */
export function attentionLines(
  schedules: readonly Schedule[],
  states: Readonly<Record<string, ScheduleState>>,
  pause: SchedulePause | null,
  now: Date,
): string[] {
  const lines: string[] = [];
  for (const schedule of schedules.filter((s) => s.enabled)) {
    const state = states[schedule.id];
    if (state?.lastResult === "failed") {
      lines.push(`${schedule.vmName}: last run failed: ${short(state.lastError ?? "unknown error")}`);
      continue;
    }
    // A pause is the admin's own decision: the runs it holds back are not "overdue".
    const missed = isPaused(pause, now) ? null : firstMissedSlot(schedule, state, now);
    if (missed !== null && now.getTime() - missed.getTime() > overdueAfterMs(schedule.when, now)) {
      lines.push(`${schedule.vmName}: scheduled run overdue since ${missed.toLocaleString()}`);
    }
  }
  return lines;
}

/** Menu lines are one line: the window shows the whole message. */
function short(text: string): string {
  const line = text.split("\n")[0] ?? "";
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

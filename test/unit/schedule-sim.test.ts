/**
 * A year on virtual time: the scheduler's decisions (dueSlot and the state after each run) are
 * pure functions of the persisted state and `now`, so a simulated clock drives them minute by
 * minute through DST changes, month ends, a 3-day sleep, a host offline for a day, and a clock
 * set backwards. Runs in Europe/Berlin (vitest.config.ts).
 */
import { describe, expect, it } from "vitest";
import { dueSlot, stateAfterFailure, stateAfterSuccess } from "../../core/domain/schedule/due.js";
import type { When } from "../../core/domain/schedule/spec.js";
import type { Schedule, ScheduleState } from "../../core/domain/settings.js";

const MINUTE = 60_000;

function schedule(when: When, createdAt: Date): Schedule {
  return {
    id: "aaaaaaaa",
    host: "h",
    vmUuid: "u",
    vmName: "vm",
    when,
    retention: { keepLast: 3 },
    enabled: true,
    createdAt: createdAt.toISOString(),
  };
}

interface Simulation {
  /** Instants at which a run happened (the job "executed" at that tick). */
  runs: Date[];
  attempts: Date[];
  state: ScheduleState | undefined;
}

/**
 * Ticks from `start` to `end` every `stepMs`, like the daemon's coarse timer. `asleep(now)` skips
 * ticks (the machine is suspended), `fails(now)` makes a run fail (host offline), and `clock(now)`
 * maps real time to what the wall clock shows (to set it backwards).
 */
function simulate(
  s: Schedule,
  start: Date,
  end: Date,
  options: {
    stepMs?: number;
    asleep?: (t: Date) => boolean;
    fails?: (t: Date) => boolean;
    clock?: (t: Date) => Date;
  } = {},
): Simulation {
  const sim: Simulation = { runs: [], attempts: [], state: undefined };
  for (let t = start.getTime(); t <= end.getTime(); t += options.stepMs ?? MINUTE) {
    const real = new Date(t);
    if (options.asleep?.(real) === true) {
      continue;
    }
    const now = options.clock?.(real) ?? real;
    const slot = dueSlot(s, sim.state, now);
    if (slot === null) {
      continue;
    }
    sim.attempts.push(now);
    if (options.fails?.(now) === true) {
      sim.state = stateAfterFailure(sim.state, "host offline", now);
    } else {
      sim.runs.push(now);
      sim.state = stateAfterSuccess(sim.state, slot, now);
    }
  }
  return sim;
}

const dayKey = (d: Date): string => `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;

// CPU-bound (a year of ticks): generous time on a loaded 2-core machine; the results are exact regardless.
describe("a simulated year", { timeout: 30_000 }, () => {
  const start = new Date(2026, 0, 1, 0, 0);
  const end = new Date(2026, 11, 31, 23, 59);

  it("runs a daily 02:30 schedule exactly once every day, DST nights included", () => {
    const sim = simulate(schedule({ every: "daily", at: "02:30" }, start), start, end);
    expect(sim.runs).toHaveLength(365);
    expect(new Set(sim.runs.map(dayKey)).size).toBe(365);
    const spring = sim.runs.find((d) => dayKey(d) === "2026-3-29");
    const fall = sim.runs.filter((d) => dayKey(d) === "2026-10-25");
    expect(spring?.getHours()).toBe(3); // 02:30 does not exist that night: 03:30
    expect(fall).toHaveLength(1); // 02:30 happens twice: one run
    expect(sim.runs.every((d) => d.getMinutes() === 30)).toBe(true);
  });

  it("runs a cron 30 2 * * * schedule exactly once every day, DST nights included", () => {
    const sim = simulate(schedule({ every: "cron", cron: "30 2 * * *" }, start), start, end, {
      stepMs: 5 * MINUTE,
    });
    expect(sim.runs).toHaveLength(365);
    expect(new Set(sim.runs.map(dayKey)).size).toBe(365);
    expect(sim.runs.filter((d) => dayKey(d) === "2026-3-29")).toHaveLength(1);
    expect(sim.runs.filter((d) => dayKey(d) === "2026-10-25")).toHaveLength(1);
  });

  it("keeps running after the clock ran a year ahead and was corrected", () => {
    const from = new Date(2026, 4, 1);
    const aheadFrom = new Date(2026, 4, 3, 1, 0);
    const aheadTo = new Date(2026, 4, 3, 6, 0); // for five hours the clock showed 2027
    const sim = simulate(schedule({ every: "daily", at: "02:30" }, from), from, new Date(2026, 4, 7), {
      clock: (t) => (t >= aheadFrom && t < aheadTo ? new Date(t.getTime() + 365 * 24 * 60 * MINUTE) : t),
    });
    const afterCorrection = sim.runs.filter((d) => d.getFullYear() === 2026 && d >= aheadTo);
    // One run when the clock is right again (the 2027 slot it served is ignored), then 02:30 daily.
    expect(afterCorrection.map((d) => d.toString().slice(4, 21))).toEqual([
      "May 03 2026 06:00",
      "May 04 2026 02:30",
      "May 05 2026 02:30",
      "May 06 2026 02:30",
    ]);
  });

  it("runs a monthly day-31 schedule on every month's last day", () => {
    const sim = simulate(schedule({ every: "monthly", at: "04:00", day: 31 }, start), start, end);
    expect(sim.runs.map((d) => `${d.getMonth() + 1}-${d.getDate()}`)).toEqual([
      "1-31",
      "2-28",
      "3-31",
      "4-30",
      "5-31",
      "6-30",
      "7-31",
      "8-31",
      "9-30",
      "10-31",
      "11-30",
      "12-31",
    ]);
  });

  it("runs a weekly schedule 52 or 53 times, always on its weekday", () => {
    const sim = simulate(schedule({ every: "weekly", at: "23:15", weekday: "thursday" }, start), start, end);
    expect(sim.runs).toHaveLength(53); // 2026 starts and ends on a Thursday
    expect(sim.runs.every((d) => d.getDay() === 4)).toBe(true);
  });

  it("after a 3-day sleep runs exactly one catch-up, then the normal rhythm", () => {
    const sleepFrom = new Date(2026, 5, 10, 22, 0);
    const sleepTo = new Date(2026, 5, 13, 9, 17);
    const sim = simulate(
      schedule({ every: "daily", at: "02:30" }, start),
      new Date(2026, 5, 1),
      new Date(2026, 5, 20),
      {
        asleep: (t) => t >= sleepFrom && t < sleepTo,
      },
    );
    const around = sim.runs.filter((d) => d >= sleepFrom && d < new Date(2026, 5, 14, 12));
    expect(around.map((d) => d.toString().slice(4, 21))).toEqual([
      "Jun 13 2026 09:17", // the one catch-up, at wake-up
      "Jun 14 2026 02:30",
    ]);
  });

  it("retries with backoff while the host is offline for a day, then runs once", () => {
    const offlineFrom = new Date(2026, 6, 1, 0, 0);
    const offlineTo = new Date(2026, 6, 2, 0, 0);
    const sim = simulate(
      schedule({ every: "daily", at: "02:30" }, start),
      new Date(2026, 5, 29),
      new Date(2026, 6, 4),
      {
        fails: (t) => t >= offlineFrom && t < offlineTo,
      },
    );
    const failed = sim.attempts.filter((t) => t >= offlineFrom && t < offlineTo);
    // 1, 2, 4, 8, 16, then every 30 minutes: about 45 attempts in a day, not 1,440.
    expect(failed.length).toBeGreaterThan(30);
    expect(failed.length).toBeLessThan(60);
    const gaps = failed.slice(1).map((t, i) => (t.getTime() - (failed[i] as Date).getTime()) / MINUTE);
    expect(gaps.slice(0, 5)).toEqual([1, 2, 4, 8, 16]);
    expect(Math.max(...gaps)).toBe(30);
    // Back online: one run serves the missed day, then 02:30 as usual.
    expect(
      sim.runs.filter((d) => d >= offlineTo && d < new Date(2026, 6, 3)).map((d) => d.getHours()),
    ).toEqual([0, 2]);
  });

  it("never runs twice when the clock is set back two hours", () => {
    const jump = new Date(2026, 7, 10, 3, 0); // just after the 02:30 run, the clock goes back to 01:00
    const from = new Date(2026, 7, 9);
    const sim = simulate(schedule({ every: "daily", at: "02:30" }, from), from, new Date(2026, 7, 12), {
      clock: (t) => (t >= jump ? new Date(t.getTime() - 2 * 60 * MINUTE) : t),
    });
    // Real time ran on; the clock showed 02:30 on Aug 10 a second time: no second run.
    expect(sim.runs.map((d) => d.toString().slice(4, 21))).toEqual([
      "Aug 09 2026 02:30",
      "Aug 10 2026 02:30",
      "Aug 11 2026 02:30",
    ]);
  });

  it("does not serve slots from before the schedule existed, and a paused schedule never runs", () => {
    const created = new Date(2026, 2, 5, 10, 0);
    const sim = simulate(
      schedule({ every: "daily", at: "02:30" }, created),
      created,
      new Date(2026, 2, 7, 12),
    );
    expect(sim.runs.map(dayKey)).toEqual(["2026-3-6", "2026-3-7"]);
    const paused = { ...schedule({ every: "daily", at: "02:30" }, created), enabled: false };
    expect(simulate(paused, created, new Date(2026, 2, 7, 12)).runs).toEqual([]);
  });
});

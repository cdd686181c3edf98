import schedule from "node-schedule";

/** Timers, passed in so tests run on virtual time. */
export interface TimerPort {
  /** Calls `fn` at `when` (a wall-clock instant). */
  at(when: Date, fn: () => void): { cancel(): void };
  every(ms: number, fn: () => void): { cancel(): void };
}

/**
 * Wall-clock timers for the scheduler: node-schedule fires at a date (its long timeout copes with
 * far-off dates), and a plain interval does the coarse re-check. After a suspend node-schedule
 * fires late by the length of the sleep, which is why the interval and resume() exist: due-ness
 * never depends on a timer having fired on time.
 */
export const wallClockTimers: TimerPort = {
  at(when, fn) {
    const job = schedule.scheduleJob(when, fn);
    return { cancel: () => void job?.cancel() };
  },
  every(ms, fn) {
    const handle = setInterval(fn, ms);
    return { cancel: () => clearInterval(handle) };
  },
};

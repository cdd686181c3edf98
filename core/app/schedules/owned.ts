import { Journal } from "../../infra/journal.js";
import { acquireSchedulerLock, type LockOwner } from "../../infra/scheduler-lock.js";
import { Scheduler, type ScheduleWork, type SchedulerEvent } from "./scheduler.js";
import type { TimerPort } from "../../infra/timers.js";

export interface OwnedSchedulerOptions {
  readonly home: string;
  /** Who runs it, written into the lock so another front end can name it ("snapkeep daemon"). */
  readonly app: string;
  readonly work: ScheduleWork;
  readonly now: () => Date;
  readonly timers: TimerPort;
  readonly onEvent?: (event: SchedulerEvent) => void;
}

/** A scheduler together with the state directory's scheduler lock it holds. */
export interface OwnedScheduler {
  readonly scheduler: Scheduler;
  readonly owner: LockOwner;
  /** Recovers interrupted jobs and starts watching the clock. */
  start(): Promise<void>;
  /** Stops the timers, waits for running jobs, then gives the lock back. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * The one way a front end (`snapkeep daemon`, the desktop app) runs the schedules: take the lock
 * first, so two schedulers never serve one SNAPKEEP_HOME (it throws ALREADY_EXISTS naming the
 * holder), then build the scheduler on a compacted journal.
 */
export function openScheduler(options: OwnedSchedulerOptions): OwnedScheduler {
  const lock = acquireSchedulerLock(options.home, options.app, options.now());
  let scheduler: Scheduler;
  try {
    const journal = new Journal(options.home);
    journal.compact();
    scheduler = new Scheduler({
      work: options.work,
      journal,
      now: options.now,
      timers: options.timers,
      ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
    });
  } catch (error) {
    lock.release();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    scheduler,
    owner: lock.owner,
    start: () => scheduler.start(),
    stop() {
      stopping ??= scheduler.stop().finally(() => lock.release());
      return stopping;
    },
  };
}

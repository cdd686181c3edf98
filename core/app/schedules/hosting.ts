/**
 * Who runs the schedules while a front end that hosts them is open (the desktop app, `snapkeep
 * serve`). One scheduler per state directory: when `snapkeep daemon` (or another front end on a
 * shared home) holds the lock, this one still opens, says who schedules, and takes over by itself
 * once that process has stopped.
 */
import { describeError, isSnapkeepError } from "../../errors.js";
import type { LockOwner } from "../../infra/scheduler-lock.js";
import type { OwnedScheduler } from "./owned.js";
import type { Scheduler } from "./scheduler.js";
import type { TimerPort } from "../../infra/timers.js";

/** Who runs the schedules, as a front end that hosts them sees it. */
export type Scheduling =
  | { readonly kind: "here" }
  /** Another process holds the scheduler lock: usually `snapkeep daemon`. */
  | { readonly kind: "elsewhere"; readonly owner: LockOwner }
  | { readonly kind: "failed"; readonly message: string };

export interface SchedulingOptions {
  /** Takes the lock and builds the scheduler (core openScheduler); throws ALREADY_EXISTS when held. */
  readonly open: () => OwnedScheduler;
  /** The live holder of the lock, read back from its file. */
  readonly holder: () => LockOwner | null;
  readonly timers: Pick<TimerPort, "every">;
  /** How often to try again while someone else schedules. */
  readonly retryEveryMs?: number;
  readonly onChange: (state: Scheduling) => void;
}

export class SchedulingHost {
  readonly #o: SchedulingOptions;
  #owned: OwnedScheduler | null = null;
  #state: Scheduling = { kind: "failed", message: "not started yet" };
  #retry: { cancel(): void } | undefined;
  #stopped = false;

  constructor(options: SchedulingOptions) {
    this.#o = options;
  }

  get state(): Scheduling {
    return this.#state;
  }

  /** The scheduler this app runs, or null while another process schedules. */
  get scheduler(): Scheduler | null {
    return this.#owned?.scheduler ?? null;
  }

  async start(): Promise<void> {
    await this.#attempt();
    this.#retry = this.#o.timers.every(this.#o.retryEveryMs ?? 60_000, () => {
      if (this.#owned === null) {
        void this.#attempt();
      }
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#retry?.cancel();
    const owned = this.#owned;
    this.#owned = null;
    await owned?.stop();
  }

  async #attempt(): Promise<void> {
    if (this.#stopped || this.#owned !== null) {
      return;
    }
    let owned: OwnedScheduler;
    try {
      owned = this.#o.open();
    } catch (error) {
      const owner = isSnapkeepError(error, "ALREADY_EXISTS") ? this.#o.holder() : null;
      this.#set(
        owner === null ? { kind: "failed", message: describeError(error) } : { kind: "elsewhere", owner },
      );
      return;
    }
    this.#owned = owned;
    this.#set({ kind: "here" });
    try {
      await owned.start();
    } catch (error) {
      this.#owned = null;
      await owned.stop();
      this.#set({ kind: "failed", message: describeError(error) });
    }
  }

  #set(state: Scheduling): void {
    const same = JSON.stringify(state) === JSON.stringify(this.#state);
    this.#state = state;
    if (!same) {
      this.#o.onChange(state);
    }
  }
}

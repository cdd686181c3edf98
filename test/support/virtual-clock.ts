/**
 * Time that moves only when a test says so: the scheduler's and the alerts' timers fire in order
 * as the clock advances, with promises let settle after each.
 */
import type { TimerPort } from "../../core/infra/timers.js";

export class VirtualClock implements TimerPort {
  now: Date;
  readonly #timers: { at: number; fn: () => void; every?: number; cancelled: boolean }[] = [];
  constructor(start: Date) {
    this.now = start;
  }
  at(when: Date, fn: () => void): { cancel(): void } {
    const t = { at: when.getTime(), fn, cancelled: false };
    this.#timers.push(t);
    return { cancel: () => void (t.cancelled = true) };
  }
  every(ms: number, fn: () => void): { cancel(): void } {
    const t = { at: this.now.getTime() + ms, fn, every: ms, cancelled: false };
    this.#timers.push(t);
    return { cancel: () => void (t.cancelled = true) };
  }
  /** Moves time forward, firing due timers in order, letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.now.getTime() + ms;
    for (;;) {
      const next = this.#timers.filter((t) => !t.cancelled && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (next === undefined) {
        break;
      }
      this.now = new Date(next.at);
      if (next.every === undefined) {
        next.cancelled = true;
      } else {
        next.at += next.every;
      }
      next.fn();
      await settle();
    }
    this.now = new Date(end);
    await settle();
  }
}

export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) {
    await Promise.resolve();
    await new Promise((r) => setImmediate(r));
  }
}

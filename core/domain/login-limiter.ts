/**
 * Sign-in attempts for `snapkeep serve --listen` (issue 17, part 3): a client (by address) may
 * fail a few times, then waits; and all clients together may fail only so often a minute, so that
 * many addresses cannot guess in parallel faster than one. A success forgets that client's
 * failures. Pure: time comes in as `now`.
 */

export interface LimiterPolicy {
  /** Failures one client may make in `windowMs` before it must wait. */
  readonly perClient: number;
  readonly windowMs: number;
  /** Failures all clients together may make in a minute. */
  readonly perMinute: number;
}

export const LOGIN_POLICY: LimiterPolicy = { perClient: 5, windowMs: 15 * 60_000, perMinute: 30 };

export type LimiterAnswer =
  { readonly allowed: true } | { readonly allowed: false; readonly retryAfterS: number };

export class LoginLimiter {
  readonly #policy: LimiterPolicy;
  readonly #failures = new Map<string, number[]>();
  #recent: number[] = [];

  constructor(policy: LimiterPolicy = LOGIN_POLICY) {
    this.#policy = policy;
  }

  /** Whether `client` may try now; if not, in how many seconds it may. */
  check(client: string, now: Date): LimiterAnswer {
    const t = now.getTime();
    this.#recent = this.#recent.filter((at) => at > t - 60_000);
    const mine = (this.#failures.get(client) ?? []).filter((at) => at > t - this.#policy.windowMs);
    // Only clients with failures in the window are kept: checks alone never grow the map.
    if (mine.length === 0) {
      this.#failures.delete(client);
    } else {
      this.#failures.set(client, mine);
    }
    if (mine.length >= this.#policy.perClient) {
      return { allowed: false, retryAfterS: seconds((mine[0] ?? t) + this.#policy.windowMs - t) };
    }
    if (this.#recent.length >= this.#policy.perMinute) {
      return { allowed: false, retryAfterS: seconds((this.#recent[0] ?? t) + 60_000 - t) };
    }
    return { allowed: true };
  }

  failed(client: string, now: Date): void {
    const t = now.getTime();
    this.#failures.set(client, [...(this.#failures.get(client) ?? []), t]);
    this.#recent.push(t);
    // Forget clients with nothing left in the window, so that many addresses cannot grow the map
    // (an IPv6 client is counted by its /64 already: server/login.ts, clientKey).
    if (this.#failures.size > 10_000) {
      for (const [key, times] of this.#failures) {
        if (times.every((at) => at <= t - this.#policy.windowMs)) {
          this.#failures.delete(key);
        }
      }
    }
  }

  succeeded(client: string): void {
    this.#failures.delete(client);
  }
}

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

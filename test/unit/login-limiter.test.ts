/** Sign-in attempts (domain/login-limiter.ts): a few per client, then a wait; a cap for all. */
import { describe, expect, it } from "vitest";

import { LoginLimiter } from "../../core/domain/login-limiter.js";

const at = (s: number) => new Date(Date.UTC(2026, 11, 6, 12, 0, s));

describe("LoginLimiter", () => {
  it("lets a client fail five times in 15 minutes, then says how long to wait", () => {
    const limiter = new LoginLimiter();
    for (let i = 0; i < 5; i++) {
      expect(limiter.check("10.0.0.5", at(i))).toEqual({ allowed: true });
      limiter.failed("10.0.0.5", at(i));
    }
    expect(limiter.check("10.0.0.5", at(10))).toEqual({ allowed: false, retryAfterS: 15 * 60 - 10 });
    // Another address is not held for it.
    expect(limiter.check("10.0.0.6", at(10))).toEqual({ allowed: true });
    // Once the first failure is out of the window, one more try.
    expect(limiter.check("10.0.0.5", at(15 * 60 + 1))).toEqual({ allowed: true });
  });

  it("forgets a client's failures when it signs in", () => {
    const limiter = new LoginLimiter();
    for (let i = 0; i < 4; i++) {
      limiter.failed("a", at(i));
    }
    limiter.succeeded("a");
    for (let i = 0; i < 4; i++) {
      limiter.failed("a", at(10 + i));
    }
    expect(limiter.check("a", at(20))).toEqual({ allowed: true });
  });

  it("holds everyone when many addresses fail in the same minute", () => {
    const limiter = new LoginLimiter({ perClient: 5, windowMs: 900_000, perMinute: 30 });
    for (let i = 0; i < 30; i++) {
      limiter.failed(`10.0.1.${i}`, at(i));
    }
    expect(limiter.check("10.0.2.1", at(30))).toEqual({ allowed: false, retryAfterS: 30 });
    expect(limiter.check("10.0.2.1", at(61))).toEqual({ allowed: true });
  });
});

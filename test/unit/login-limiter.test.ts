/** Sign-in attempts (domain/login-limiter.ts): a few per client, then a wait; a cap for all. */
import { describe, expect, it } from "vitest";

import { LoginLimiter } from "../../core/domain/login-limiter.js";
import { clientKey } from "../../core/server/login.js";

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

describe("clientKey", () => {
  it("counts an IPv4 address as itself, and an IPv6 address by its /64", () => {
    expect(clientKey("192.0.2.7")).toBe("192.0.2.7");
    expect(clientKey("::ffff:192.0.2.7")).toBe("192.0.2.7");
    expect(clientKey("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(clientKey("2001:0db8:0001:0002:ffff:1:2:3")).toBe("2001:db8:1:2::/64");
    expect(clientKey("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(clientKey("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
    expect(clientKey("::1")).toBe("0:0:0:0::/64");
  });

  it("keeps no entry for a client that only checked", () => {
    const limiter = new LoginLimiter();
    for (let i = 0; i < 50_000; i++) {
      expect(limiter.check(`10.1.${i >> 8}.${i & 255}`, at(0)).allowed).toBe(true);
    }
    // Nothing was recorded, so a client that failed four times still may try.
    for (let i = 0; i < 4; i++) {
      limiter.failed("x", at(i));
    }
    expect(limiter.check("x", at(5))).toEqual({ allowed: true });
  });
});

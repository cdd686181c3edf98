import { describe, expect, it } from "vitest";

import { isLoopbackHost } from "../../core/server/serve.js";

describe("which --host snapkeep serve accepts", () => {
  it("accepts this computer's loopback addresses, however they are spelled", () => {
    for (const host of [
      "127.0.0.1",
      "127.8.9.10",
      "127.255.255.255",
      "::1",
      "0:0:0:0:0:0:0:1",
      "::ffff:127.0.0.1",
      "localhost",
      "LocalHost",
    ]) {
      expect(isLoopbackHost(host), host).toBe(true);
    }
  });

  it("refuses every other address and any other host name, which may resolve to anywhere", () => {
    for (const host of [
      "0.0.0.0",
      "::",
      "128.0.0.1",
      "126.255.255.255",
      "10.0.0.1",
      "192.0.2.1",
      "::2",
      "::ffff:10.0.0.1",
      "fe80::1",
      "127.1",
      "localhost.example.com",
      "example.com",
      "",
    ]) {
      expect(isLoopbackHost(host), host).toBe(false);
    }
  });
});

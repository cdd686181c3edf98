import { describe, expect, it } from "vitest";

import { isHashedAsset, isLoopbackHost } from "../../core/server/serve.js";

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

describe("which served files a browser may cache for good", () => {
  it("is only the bundler's assets, named by their content's hash", () => {
    expect(isHashedAsset("/assets/index-C_yxgPLg.js")).toBe(true);
    expect(isHashedAsset("/assets/index-BAhqHUcw.css")).toBe(true);
    expect(isHashedAsset("/assets/ExportsView-Dx9-aB1c.js")).toBe(true);
  });

  it("is never the page, a file outside assets/ or a name without a hash", () => {
    for (const path of [
      "/",
      "/index.html",
      "/index-C_yxgPLg.js",
      "/assets/index.js",
      "/assets/sub/index-C_yxgPLg.js",
      "/assets/index-C_yxgPLg.js.map",
      "/assets/index-C_yxgPLg.html",
      "/assets/../index-C_yxgPLg.js",
    ]) {
      expect(isHashedAsset(path), path).toBe(false);
    }
  });
});

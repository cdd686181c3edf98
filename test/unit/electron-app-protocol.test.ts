/** The snapkeep:// scheme serves files from the built renderer only. */
import { describe, expect, it } from "vitest";
import { contentType, rendererFile } from "../../electron/lib/app-protocol.js";

const root = "/opt/snapkeep/dist/renderer";

describe("rendererFile", () => {
  it("maps app URLs to files under the renderer folder", () => {
    expect(rendererFile(root, "snapkeep://app/index.html")).toBe(`${root}/index.html`);
    expect(rendererFile(root, "snapkeep://app/")).toBe(`${root}/index.html`);
    expect(rendererFile(`${root}/`, "snapkeep://app/assets/index-abc.js?x=1#y")).toBe(
      `${root}/assets/index-abc.js`,
    );
    expect(rendererFile(root, "snapkeep://app/assets/a%20b.css")).toBe(`${root}/assets/a b.css`);
  });

  it("refuses other hosts and schemes, paths that leave the folder, and broken escapes", () => {
    for (const url of [
      "snapkeep://other/index.html",
      "file:///etc/passwd",
      "snapkeep://app/..%2f..%2fsettings.json",
      "snapkeep://app/%E0%A4%A",
      "snapkeep://app/index.html%00.png",
      "::",
    ]) {
      expect(rendererFile(root, url), url).toBeNull();
    }
    // Plain dot segments are resolved by the URL parser itself, which stops at the root.
    expect(rendererFile(root, "snapkeep://app/../../../etc/passwd")).toBe(`${root}/etc/passwd`);
    expect(rendererFile(root, "snapkeep://app/%2e%2e/%2e%2e/etc/passwd")).toBe(`${root}/etc/passwd`);
    // A sibling folder that merely starts with the same name is outside too.
    expect(rendererFile(root, "snapkeep://app/..%2frenderer-evil/x.js")).toBeNull();
  });

  it("names the types the renderer uses and falls back to bytes", () => {
    expect(contentType("/x/index.html")).toBe("text/html; charset=utf-8");
    expect(contentType("/x/a.js")).toBe("text/javascript; charset=utf-8");
    expect(contentType("/x/a.bin")).toBe("application/octet-stream");
  });
});

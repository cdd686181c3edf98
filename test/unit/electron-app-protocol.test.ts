/** The snapkeep:// scheme serves files from the built renderer only. */
import { describe, expect, it } from "vitest";
import {
  contentType,
  downloadResponse,
  downloadTicket,
  rendererFile,
} from "../../electron/lib/app-protocol.js";

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

describe("the window's downloads from the file browser", () => {
  const ticket = "0123456789abcdef0123456789abcdef";

  it("recognizes only a download URL with a ticket on the app's host", () => {
    expect(downloadTicket(`snapkeep://app/download/${ticket}`)).toBe(ticket);
    for (const url of [
      `snapkeep://other/download/${ticket}`,
      `https://app/download/${ticket}`,
      `snapkeep://app/download/${ticket}/x`,
      "snapkeep://app/download/0123",
      "snapkeep://app/download/../index.html",
      "not a url",
    ]) {
      expect(downloadTicket(url), url).toBeNull();
    }
  });

  it("sends the bytes as an attachment named safely, with their length when known", async () => {
    const response = downloadResponse(
      {
        name: 'nginx "prod"\r\n.conf',
        size: 5,
        send: async (to) => {
          to.write("hello");
          return 5;
        },
      },
      {},
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("content-length")).toBe("5");
    const disposition = response.headers.get("content-disposition") ?? "";
    expect(disposition).toBe(
      "attachment; filename=\"nginx _prod___.conf\"; filename*=UTF-8''nginx%20%22prod%22%0D%0A.conf",
    );
    expect(await response.text()).toBe("hello");
  });

  it("fails the download when the copy breaks off, and says when a ticket is spent", async () => {
    const broken = downloadResponse(
      {
        name: "big.bin",
        size: 10,
        send: async (to) => {
          to.write("12345");
          throw new Error("the appliance stopped");
        },
      },
      {},
    );
    await expect(broken.text()).rejects.toThrow();
    const spent = downloadResponse(null, {});
    expect(spent.status).toBe(404);
    expect(await spent.text()).toMatch(/used already or is too old/);
  });
});

/**
 * The IPC edge: only our own page's top frame may call, the envelope is checked before anything
 * runs, desktop-only methods validate their params, and the rest reaches the core API unchanged.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import type { Response } from "../../core/api/api.js";
import { SnapkeepError } from "../../core/errors.js";
import {
  APP_PAGE,
  createIpcRouter,
  desktopMethod,
  isTrustedSender,
  type DesktopMethod,
} from "../../electron/lib/ipc.js";

const ours = { url: APP_PAGE, isMainFrame: true };

describe("isTrustedSender", () => {
  it("trusts only the top frame of snapkeep://app/index.html", () => {
    expect(isTrustedSender(ours)).toBe(true);
    expect(isTrustedSender({ url: `${APP_PAGE}#/vm/local/db`, isMainFrame: true })).toBe(true);
    expect(isTrustedSender({ url: APP_PAGE, isMainFrame: false })).toBe(false);
    expect(isTrustedSender(null)).toBe(false);
    for (const url of [
      "file:///opt/Snapkeep/resources/app.asar/dist/renderer/index.html",
      "https://app/index.html",
      "snapkeep://evil/index.html",
      "snapkeep://app/other.html",
      "http://127.0.0.1:8484/index.html",
      "not a url",
      "",
    ]) {
      expect(isTrustedSender({ url, isMainFrame: true }), url).toBe(false);
    }
  });
});

describe("createIpcRouter", () => {
  const setup = () => {
    const forwarded: unknown[] = [];
    const after: string[] = [];
    const ran: Record<string, unknown>[] = [];
    const desktop: Record<string, DesktopMethod> = {
      "desktop.autostart": desktopMethod(
        z.object({ enabled: z.boolean().optional() }).strict(),
        async (p) => {
          ran.push(p);
          return { enabled: p.enabled ?? false };
        },
      ),
      "desktop.forgetKeyPassphrase": desktopMethod(z.object({}), async () => {
        throw new SnapkeepError("INVALID_INPUT", "Nothing stored.", { hint: "Nothing to do." });
      }),
    };
    const route = createIpcRouter({
      api: {
        handle: async (raw: unknown): Promise<Response> => {
          forwarded.push(raw);
          const { id, method } = raw as { id: number; method: string };
          return method === "hosts.list"
            ? { id, result: [] }
            : { id, error: { code: "INVALID_INPUT", message: "no", hint: null, action: null } };
        },
      },
      desktop,
      afterCall: (method) => after.push(method),
    });
    return { route, forwarded, after, ran };
  };

  it("refuses other senders before looking at the message", async () => {
    const { route, forwarded } = setup();
    const answer = await route(
      { url: "https://example.org/", isMainFrame: true },
      { id: 1, method: "hosts.list" },
    );
    expect(answer).toEqual({
      id: -1,
      error: {
        code: "INVALID_INPUT",
        message: "Snapkeep answers only its own window.",
        hint: null,
        action: null,
      },
    });
    expect(forwarded).toEqual([]);
  });

  it("refuses envelopes that are not API calls", async () => {
    const { route, forwarded } = setup();
    for (const raw of [
      undefined,
      "hosts.list",
      { id: -1, method: "hosts.list" },
      { id: 1.5, method: "hosts.list" },
      { id: 1, method: "hosts.list; rm -rf /" },
      { id: 1, method: "hosts.list", params: [1, 2] },
      { id: 1, method: "hosts.list", params: {}, extra: true },
      { id: 1, method: "x".repeat(65) },
    ]) {
      const answer = await route(ours, raw);
      expect(answer, JSON.stringify(raw)).toMatchObject({ id: -1, error: { code: "INVALID_INPUT" } });
    }
    expect(forwarded).toEqual([]);
  });

  it("forwards core methods to the API and tells the desktop after a success only", async () => {
    const { route, forwarded, after } = setup();
    expect(await route(ours, { id: 7, method: "hosts.list", params: {} })).toEqual({ id: 7, result: [] });
    expect(await route(ours, { id: 8, method: "vms.list" })).toMatchObject({
      id: 8,
      error: { message: "no" },
    });
    expect(forwarded).toEqual([
      { id: 7, method: "hosts.list", params: {} },
      { id: 8, method: "vms.list" },
    ]);
    expect(after).toEqual(["hosts.list"]);
  });

  it("runs desktop methods with validated params and returns their errors as API errors", async () => {
    const { route, forwarded, ran } = setup();
    expect(await route(ours, { id: 2, method: "desktop.autostart", params: { enabled: true } })).toEqual({
      id: 2,
      result: { enabled: true },
    });
    expect(
      await route(ours, { id: 3, method: "desktop.autostart", params: { enabled: "yes" } }),
    ).toMatchObject({
      id: 3,
      error: {
        code: "INVALID_INPUT",
        message: "The field enabled must be true or false.",
        hint: "In desktop.autostart (enabled).",
      },
    });
    expect(
      await route(ours, { id: 4, method: "desktop.autostart", params: { enabled: true, x: 1 } }),
    ).toMatchObject({
      id: 4,
      error: { code: "INVALID_INPUT" },
    });
    expect(await route(ours, { id: 5, method: "desktop.forgetKeyPassphrase" })).toEqual({
      id: 5,
      error: { code: "INVALID_INPUT", message: "Nothing stored.", hint: "Nothing to do.", action: null },
    });
    expect(ran).toEqual([{ enabled: true }]);
    expect(forwarded).toEqual([]);
  });
});

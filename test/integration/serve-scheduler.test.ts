/**
 * `snapkeep serve` runs the schedules itself, under the same lock as `snapkeep daemon` and the
 * desktop app, and every view says who runs them, or loudly that nobody does. Real processes, the
 * real lock file, the UI in Chromium.
 */
import { spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";

import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../support/chromium.js";
import { buildForUsers, startServe, stopServe } from "../support/serve.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const shots = join(repo, "artifacts", "screenshots");

/** One API call over the server's WebSocket, as the UI makes it. */
async function call(url: string, method: string): Promise<unknown> {
  const api = url.replace(/^http/, "ws").replace(/\/#token=.*/, "/api");
  const token = url.slice(url.indexOf("#token=") + "#token=".length);
  const origin = url.replace(/\/#token=.*/, "");
  const ws = new WebSocket(`${api}?token=${token}`, { headers: { Origin: origin } });
  try {
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    const answer = new Promise<unknown>((resolve) => {
      ws.on("message", (data: Buffer) => {
        const message = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: unknown };
        if (message.id === 1) {
          resolve(message.error ?? message.result);
        }
      });
    });
    ws.send(JSON.stringify({ id: 1, method, params: {} }));
    return await answer;
  } finally {
    ws.close();
  }
}

describe("snapkeep serve and the scheduler", () => {
  let home = "";
  let server: ChildProcess | undefined;
  let browser: Browser | undefined;

  beforeAll(() => {
    buildForUsers(repo);
    mkdirSync(shots, { recursive: true });
    home = mkdtempSync(join(tmpdir(), "snapkeep-serve-sched-"));
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await stopServe(server);
    rmSync(home, { recursive: true, force: true });
  });

  it("runs the schedules itself, and a daemon started beside it refuses, naming it", async () => {
    let url: string;
    ({ server, url } = await startServe(repo, home));
    await expect
      .poll(() => call(url, "schedules.runner"))
      .toMatchObject({
        kind: "here",
        app: "snapkeep serve",
        pid: server.pid,
      });
    const daemon = spawnSync("node", [join(repo, "bin/snapkeep.js"), "daemon"], {
      env: { ...process.env, SNAPKEEP_HOME: home },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(daemon.status).toBe(1);
    expect(daemon.stderr).toMatch(/snapkeep serve/);
    await stopServe(server);
  }, 60_000);

  it("with --no-scheduler, says loudly in the UI that no scheduler runs", async () => {
    let url: string;
    ({ server, url } = await startServe(repo, home, ["--no-scheduler"]));
    expect(await call(url, "schedules.runner")).toEqual({
      kind: "none",
      app: null,
      pid: null,
      hostname: null,
      since: null,
    });
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(url);
    await page.getByRole("button", { name: "Schedules" }).click();
    await page
      .getByRole("region", { name: "Schedules" })
      .getByRole("alert")
      .filter({ hasText: "No scheduler is running: schedules will not fire" })
      .waitFor();
    await page.screenshot({ path: join(shots, "schedules-no-scheduler.png"), fullPage: true });
    await stopServe(server);
  }, 60_000);
});

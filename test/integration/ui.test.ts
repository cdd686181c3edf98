/**
 * The UI end to end: `snapkeep serve` as a user starts it, real libvirt VMs behind it, and Debian's
 * Chromium driven by playwright-core. Screenshots of each view go to artifacts/screenshots/ for a
 * person to look at.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";

import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../support/chromium.js";
import { TestVms, uniqueSuffix } from "../support/libvirt.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const shots = join(repo, "artifacts", "screenshots");

describe("the UI in Chromium, on snapkeep serve", () => {
  const vms = new TestVms();
  const suffix = uniqueSuffix();
  const offName = `sk-ui-off-${suffix}`;
  const runName = `sk-ui-run-${suffix}`;
  let home = "";
  let server: ChildProcess | undefined;
  let url = "";
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    execFileSync("npm", ["run", "build"], { cwd: repo, stdio: "inherit" });
    mkdirSync(shots, { recursive: true });
    home = mkdtempSync(join(tmpdir(), "snapkeep-ui-"));
    await vms.create({
      name: offName,
      running: false,
      disks: [
        { target: "vda", sizeMiB: 8 },
        { target: "vdb", sizeMiB: 8 },
      ],
    });
    await vms.create({ name: runName, running: true, disks: [{ target: "vda", sizeMiB: 8 }] });
    const cli = (...args: string[]): string =>
      execFileSync("node", [join(repo, "bin/snapkeep.js"), ...args], {
        env: { ...process.env, SNAPKEEP_HOME: home },
        encoding: "utf8",
      });
    cli("snapshot", "create", `local/${offName}`, "--name", "first", "--note", "before the upgrade");
    cli("snapshot", "pin", `local/${offName}`, "first");
    server = spawn("node", [join(repo, "bin/snapkeep.js"), "serve", "--port", "0"], {
      env: { ...process.env, SNAPKEEP_HOME: home },
      stdio: ["ignore", "pipe", "inherit"],
    });
    url = await new Promise<string>((resolve, reject) => {
      let out = "";
      server?.stdout?.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const match = /(http:\/\/127\.0\.0\.1:\d+\/#token=[\w-]+)/.exec(out);
        if (match?.[1] !== undefined) {
          resolve(match[1]);
        }
      });
      server?.once("exit", (code) => reject(new Error(`snapkeep serve exited (${code}): ${out}`)));
    });
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    server?.kill("SIGTERM");
    await vms.dispose();
    rmSync(home, { recursive: true, force: true });
  });

  it("refuses the API without the token, from another origin, or for another Host name", async () => {
    const api = url.replace(/^http/, "ws").replace(/\/#token=.*/, "/api");
    const token = url.slice(url.indexOf("#token=") + "#token=".length);
    const origin = url.replace(/\/#token=.*/, "");
    const attempt = (address: string, headers: Record<string, string>): Promise<string> =>
      new Promise((resolve) => {
        const ws = new WebSocket(address, { headers });
        ws.on("open", () => {
          ws.close();
          resolve("open");
        });
        ws.on("unexpected-response", (_req, res) => resolve(String(res.statusCode)));
        ws.on("error", () => resolve("error"));
      });
    expect(await attempt(api, { Origin: origin })).toBe("401");
    expect(await attempt(`${api}?token=wrong${token.slice(5)}`, { Origin: origin })).toBe("401");
    expect(await attempt(`${api}?token=${token}`, { Origin: "http://evil.example" })).toBe("401");
    expect(await attempt(`${api}?token=${token}`, { Origin: origin })).toBe("open");
    const page404 = await fetch(origin.replace("127.0.0.1", "localhost") + "/../../etc/passwd");
    expect(page404.status).toBe(404);
    const index = await fetch(`${origin}/`);
    expect(index.headers.get("content-security-policy")).toContain("script-src 'self'");
  });

  it("lists this computer's VMs, shows a VM's disks and timeline, and takes a snapshot from the dialog", async () => {
    const errors: string[] = [];
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(url);
    await expect.poll(() => page.getByRole("status").filter({ hasText: "connected" }).count()).toBe(1);
    const vmButton = page.getByRole("button", { name: new RegExp(offName) });
    await vmButton.waitFor();
    await page.screenshot({ path: join(shots, "vm-list.png") });

    await vmButton.click();
    await page.getByRole("heading", { name: offName }).waitFor();
    await expect.poll(() => page.locator('[data-snapshot="first"]').count()).toBe(2); // vda and vdb lanes
    expect(await page.locator(".marker.pinned").count()).toBe(2);
    await page.screenshot({ path: join(shots, "vm-detail.png") });

    await page.getByRole("button", { name: "Take snapshot…" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Name").fill("from the UI");
    await dialog.getByLabel("Note").fill("taken in Chromium");
    await dialog.getByRole("checkbox", { name: /vdb/ }).uncheck();
    await page.screenshot({ path: join(shots, "snapshot-dialog.png") });
    await dialog.getByRole("button", { name: "Take snapshot" }).click();
    await dialog.waitFor({ state: "detached" });
    await expect.poll(() => page.locator('[data-snapshot="from the UI"]').count()).toBe(1); // vda only
    await expect.poll(() => page.getByRole("cell", { name: "taken in Chromium" }).count()).toBe(1);
    await page.screenshot({ path: join(shots, "vm-detail-after.png") });

    // What the UI did is what the host has.
    const listed = execFileSync(
      "node",
      [join(repo, "bin/snapkeep.js"), "snapshot", "list", `local/${offName}`, "--json"],
      {
        env: { ...process.env, SNAPKEEP_HOME: home },
        encoding: "utf8",
      },
    );
    const snapshots = JSON.parse(listed) as { name: string; disks: { target: string }[] }[];
    expect(snapshots.find((s) => s.name === "from the UI")?.disks.map((d) => d.target)).toEqual(["vda"]);

    // Errors are sentences: the name is taken.
    await page.getByRole("button", { name: "Take snapshot…" }).click();
    await page.getByRole("dialog").getByLabel("Name").fill("first");
    await page.getByRole("dialog").getByRole("button", { name: "Take snapshot" }).click();
    await page.getByRole("alert").filter({ hasText: 'already has a snapshot named "first"' }).waitFor();
    await page.screenshot({ path: join(shots, "error.png") });
    expect(errors).toEqual([]);
  });

  it("is readable in dark mode too", async () => {
    await page.emulateMedia({ colorScheme: "dark" });
    await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
    expect(await page.locator("html").getAttribute("data-theme")).toBe("dark");
    await page.screenshot({ path: join(shots, "vm-detail-dark.png") });
  });

  it("reverts with the wizard: a summary first, a safety snapshot, and undo afterwards", async () => {
    await page.emulateMedia({ colorScheme: "light" });
    const row = page.getByRole("row", { name: /first/ });
    await row.getByRole("button", { name: "Revert…" }).click();
    const wizard = page.getByRole("dialog");
    const summary = wizard.getByLabel("What will happen");
    await summary.waitFor();
    await expect.poll(() => summary.textContent()).toMatch(/safety snapshot before revert to first \(/);
    expect(await summary.textContent()).toMatch(/vda, vdb are reverted to first/);
    await page.screenshot({ path: join(shots, "revert-summary.png") });
    await wizard.getByRole("button", { name: "Revert", exact: true }).click();
    await wizard.getByText(/(is|are) back at/).waitFor();
    await page.screenshot({ path: join(shots, "revert-done.png") });
    await expect.poll(() => page.getByRole("cell", { name: "safety", exact: true }).count()).toBe(1);

    await wizard.getByRole("button", { name: "Undo this revert" }).click();
    const undo = page.getByRole("dialog");
    await undo.getByRole("heading", { name: /Undo the last revert/ }).waitFor();
    await expect
      .poll(() => undo.getByLabel("What will happen").textContent())
      .toMatch(/reverted to before revert to first/);
    await undo.getByRole("button", { name: "Undo", exact: true }).click();
    await undo.getByText(/(is|are) back at/).waitFor();
    await undo.getByRole("button", { name: "Close" }).click();
    // Two safety snapshots now: before the revert, and before the undo.
    await expect.poll(() => page.getByRole("cell", { name: "safety", exact: true }).count()).toBe(2);
    await page.screenshot({ path: join(shots, "after-undo.png") });
  });
});

/**
 * The UI end to end: `snapkeep serve` as a user starts it, real libvirt VMs behind it, and Debian's
 * Chromium driven by playwright-core. Screenshots of each view go to artifacts/screenshots/ for a
 * person to look at.
 */
import { execFileSync, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";

import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../support/chromium.js";
import { startServe } from "../support/serve.js";
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
  const exportDir = mkdtempSync(join(tmpdir(), "snapkeep-ui-exports-"));
  const importedName = `sk-ui-imported-${suffix}`;
  const clonedName = `sk-ui-clone-${suffix}`;
  const templateName = `sk-ui-tpl-${suffix}`;
  const volumeName = `sk-ui-vol-${suffix}`;
  /** The snapshot table's row of one snapshot (safety snapshots mention it in their names). */
  const snapshotRow = (name: string) =>
    page.locator("table.snapshots tr", {
      has: page.locator("td:first-child", { hasText: new RegExp(`^${name}(pinned)?$`) }),
    });
  /** One of a snapshot row's actions, from its menu (only Revert… has its own button). */
  const rowAction = async (name: string, action: string): Promise<void> => {
    await snapshotRow(name)
      .getByRole("button", { name: `Actions for ${name}` })
      .click();
    await page
      .getByRole("menu", { name: `Actions for ${name}` })
      .getByRole("menuitem", { name: action })
      .click();
  };
  /** A CLI call whose failure does not matter (clean-up of what a failed test may not have made). */
  const cliQuiet = (...args: string[]): void => {
    spawnSync("node", [join(repo, "bin/snapkeep.js"), ...args], {
      env: { ...process.env, SNAPKEEP_HOME: home },
      stdio: "ignore",
    });
  };

  beforeAll(async () => {
    // The bundle users get: vitest sets NODE_ENV=test, which would build React's development mode.
    execFileSync("npm", ["run", "build"], {
      cwd: repo,
      stdio: "inherit",
      env: { ...process.env, NODE_ENV: "production" },
    });
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
    cli("target", "add", "shelf", "--dir", exportDir);
    ({ server, url } = await startServe(repo, home));
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    server?.kill("SIGTERM");
    // What the wizards made, through the CLI's own deletes (they remove only what Snapkeep made).
    for (const made of [importedName, clonedName]) {
      cliQuiet("vm", "delete", `local/${made}`, "--yes", "--force");
    }
    await vms.dispose();
    cliQuiet("volume", "delete", "local", volumeName);
    cliQuiet("template", "delete", "local", templateName);
    rmSync(home, { recursive: true, force: true });
    rmSync(exportDir, { recursive: true, force: true });
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
    // A malformed path is refused, and the server goes on.
    expect((await fetch(`${origin}/%E0%A4%A`)).status).toBe(400);
    const index = await fetch(`${origin}/`);
    expect(index.headers.get("content-security-policy")).toContain("script-src 'self'");
  });

  it("lists this computer's VMs, shows a VM's disks and timeline, and takes a snapshot from the dialog", async () => {
    const errors: string[] = [];
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(url);
    await expect.poll(() => page.getByRole("status").filter({ hasText: "connected" }).count()).toBe(1);
    // The overview opens first; the VM list is where a VM is chosen (both are windowed, and the
    // list's search finds it among the VMs of other tests on this host).
    await page.getByRole("button", { name: "Virtual machines", exact: true }).click();
    await page.getByRole("navigation", { name: "Hosts and VMs" }).getByRole("searchbox").fill(suffix);
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

  it("exports a snapshot with the wizard, watches it in the jobs panel, and restores it as a new VM", async () => {
    await page.getByRole("button", { name: new RegExp(offName) }).click();
    await page.getByRole("heading", { name: offName }).waitFor();
    await rowAction("first", "Export…");
    const wizard = page.getByRole("dialog");
    await expect.poll(() => wizard.getByLabel("Target").inputValue()).toBe("shelf");
    await wizard.getByRole("button", { name: "Next" }).click();
    await expect.poll(() => wizard.locator("dl.summary").textContent()).toMatch(/vda, vdb/);
    await page.screenshot({ path: join(shots, "export-summary.png") });
    await wizard.getByRole("button", { name: "Export", exact: true }).click();
    await wizard.getByText(/Exported and verified on shelf/).waitFor({ timeout: 60_000 });
    await page.screenshot({ path: join(shots, "export-done.png") });
    await wizard.getByRole("button", { name: "Close" }).click();
    // The timeline marks it as exported once the VM is read again.
    await expect.poll(() => page.locator('.marker.exported[data-snapshot="first"]').count()).toBe(2);

    await page.getByRole("button", { name: /^Jobs/ }).click();
    const panel = page.getByRole("complementary", { name: "Jobs" });
    await panel.getByText(/Export .* to shelf/).waitFor();
    expect(await panel.locator(".job-succeeded").count()).toBeGreaterThanOrEqual(1);
    await page.screenshot({ path: join(shots, "jobs-panel.png") });
    await panel.getByRole("button", { name: "Close" }).click();

    await page.getByRole("button", { name: "Exports", exact: true }).click();
    const row = page.getByRole("row", { name: new RegExp(`${offName}.*first`) });
    await row.getByText("good").waitFor();
    await page.screenshot({ path: join(shots, "exports.png") });
    await row.getByRole("button", { name: /^Actions for export / }).click();
    await page.getByRole("menuitem", { name: "Verify" }).click();
    await page.getByRole("button", { name: /^Jobs/ }).click();
    await panel.locator(".job-succeeded", { hasText: /Verify export/ }).waitFor();
    await panel.getByRole("button", { name: "Close" }).click();

    await row.getByRole("button", { name: "Restore…" }).click();
    const restore = page.getByRole("dialog");
    await restore.getByLabel("Name of the new VM").fill(importedName);
    await restore.getByRole("button", { name: "Next" }).click();
    await expect
      .poll(() => restore.locator("dl.summary").textContent())
      .toMatch(new RegExp(`new VM ${importedName}`));
    // The definition is rebuilt from an allowlist: what the new VM gets and what was left out, with why.
    await restore.getByRole("heading", { name: "The new VM gets" }).waitFor();
    await expect.poll(() => restore.locator(".definition-notes").textContent()).toMatch(/emulator .*program/);
    await page.screenshot({ path: join(shots, "restore-summary.png") });
    await restore.getByRole("button", { name: "Restore", exact: true }).click();
    await restore.getByText(/Restored on local/).waitFor({ timeout: 60_000 });
    await restore.getByRole("button", { name: "Close" }).click();
    const vms = JSON.parse(
      execFileSync("node", [join(repo, "bin/snapkeep.js"), "vm", "list", "--json"], {
        env: { ...process.env, SNAPKEEP_HOME: home },
        encoding: "utf8",
      }),
    ) as { vms: { name: string; disks: { target: string }[] }[] }[];
    const imported = vms.flatMap((h) => h.vms).find((v) => v.name === importedName);
    expect(imported?.disks.map((d) => d.target).sort()).toEqual(["vda", "vdb"]);
  });

  it("makes a template and a new VM from it, and a volume attached to a running VM", async () => {
    await page.getByRole("button", { name: "Virtual machines" }).click();
    await page.getByRole("button", { name: new RegExp(offName) }).click();
    await rowAction("first", "Add to library…");
    let wizard = page.getByRole("dialog");
    await wizard.getByRole("radio", { name: /a template for new VMs/ }).check();
    await wizard.getByLabel("Name of the template").fill(templateName);
    await wizard.getByRole("button", { name: "Next" }).click();
    await expect.poll(() => wizard.locator("dl.summary").textContent()).toMatch(/disk vda/);
    await wizard.getByRole("button", { name: "Make template" }).click();
    await wizard.getByText(new RegExp(`Template ${templateName} is ready`)).waitFor({ timeout: 60_000 });
    await wizard.getByRole("button", { name: "Create a VM from it…" }).click();

    wizard = page.getByRole("dialog");
    await wizard.getByLabel("Name of the new VM").fill(clonedName);
    await wizard.getByRole("button", { name: "Next" }).click();
    await expect.poll(() => wizard.locator("dl.summary").textContent()).toMatch(/linked clone/);
    await page.screenshot({ path: join(shots, "new-vm-summary.png") });
    await wizard.getByRole("button", { name: "Create VM" }).click();
    await wizard.getByText(new RegExp(`VM ${clonedName} is there`)).waitFor({ timeout: 60_000 });
    await wizard.getByRole("button", { name: "Close" }).click();
    await page.getByRole("button", { name: new RegExp(clonedName) }).waitFor();

    await rowAction("first", "Add to library…");
    wizard = page.getByRole("dialog");
    await wizard.getByRole("radio", { name: /a volume to attach/ }).check();
    await wizard.getByLabel("Name of the volume").fill(volumeName);
    await wizard.getByRole("button", { name: "Next" }).click();
    await expect.poll(() => wizard.locator("dl.summary").textContent()).toMatch(/disk vdb/);
    await wizard.getByRole("button", { name: "Make volume" }).click();
    await wizard.getByText(new RegExp(`Volume ${volumeName} is ready`)).waitFor({ timeout: 60_000 });
    await wizard.getByRole("button", { name: "Attach it to a VM…" }).click();
    wizard = page.getByRole("dialog");
    await wizard.getByLabel("VM on local").selectOption(runName);
    await wizard.getByRole("button", { name: "Next" }).click();
    await expect.poll(() => wizard.locator("dl.summary").textContent()).toMatch(/now, while it runs/);
    await wizard.getByRole("button", { name: "Attach", exact: true }).click();
    await wizard.getByText(new RegExp(`Attached to ${runName} as vdb`)).waitFor();
    await wizard.getByRole("button", { name: "Close" }).click();
    const live = execFileSync("virsh", ["-q", "-c", "qemu:///system", "domblklist", runName], {
      encoding: "utf8",
    });
    expect(live).toContain(volumeName);

    await page.getByRole("button", { name: "Library", exact: true }).click();
    await page.locator(`[data-library-item="${templateName}"]`).waitFor();
    await page.locator(`[data-library-item="${volumeName}"]`).waitFor();
    // What uses each: the linked clone rests on the template, the running VM has the volume; so
    // neither can be deleted from here, and each says why.
    const template = page.locator(`[data-library-item="${templateName}"]`);
    const volume = page.locator(`[data-library-item="${volumeName}"]`);
    await expect.poll(() => template.locator("td").nth(5).textContent()).toBe(clonedName);
    expect(await volume.locator("td").nth(5).textContent()).toBe(runName);
    const deleteTemplate = template.getByRole("button", { name: "Delete…" });
    expect(await deleteTemplate.isDisabled()).toBe(true);
    expect(await deleteTemplate.getAttribute("title")).toBe(
      `In use by ${clonedName}: delete or detach that first`,
    );
    await page.screenshot({ path: join(shots, "library.png") });
  });

  it("shows the history of jobs, filtered by kind, VM and result, each with its steps and what it sent", async () => {
    await page.getByRole("button", { name: "History", exact: true }).click();
    await page.getByRole("heading", { name: "History" }).waitFor();
    const entries = page.locator(".history-entry");
    await expect.poll(() => entries.count()).toBeGreaterThanOrEqual(3);
    const filters = page.getByRole("form", { name: "Filter the history" });
    await filters.getByLabel("Kind", { exact: true }).selectOption("export");
    await expect
      .poll(() => page.locator(".history-entry .history-title").allTextContents())
      .toEqual([expect.stringMatching(/^Export .*first.* to shelf$/)]);
    const exported = entries.first();
    await exported.locator("summary").click();
    await expect
      .poll(() => exported.locator(".history-details").textContent())
      .toMatch(/Sent [\d.]+ (KiB|MiB) to shelf as export \S+\./);
    // Its log: the phases it went through, and what it decided per disk.
    await expect
      .poll(() => exported.getByRole("list", { name: "Steps" }).locator("li").count())
      .toBeGreaterThanOrEqual(2);
    await page.screenshot({ path: join(shots, "history.png") });
    await filters.getByLabel("Kind", { exact: true }).selectOption("");
    await filters.getByLabel("VM", { exact: true }).selectOption(`local/${offName}`);
    await expect
      .poll(async () =>
        (await page.locator(".history-entry .history-vm").allTextContents()).every(
          (t) => t === `local/${offName}`,
        ),
      )
      .toBe(true);
    await filters.getByLabel("Result", { exact: true }).selectOption("failed");
    await page.getByText("No job matches these filters.").waitFor();
    // No table or list is wider than the page at 1280 px.
    const overflow = await page.evaluate<number>(
      "document.documentElement.scrollWidth - document.documentElement.clientWidth",
    );
    expect(overflow).toBe(0);
  });
});

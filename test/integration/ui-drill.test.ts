/**
 * Restore drills as a person sees them in Chromium (issue 19), on `snapkeep serve` with real
 * libvirt: a drill of a VM with no OS made by the CLI (it fails: nothing boots; its screenshot is
 * SeaBIOS' real screen) shows on the overview (a failed "boots" mark, the VM needs attention) and
 * in the VM view with its screenshot; a drill started from a snapshot's menu runs as a job, and
 * cancelling it removes its throwaway VM, network and folder and records no verdict.
 */
import { execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../support/chromium.js";
import { drillVmsOf, virsh } from "../support/drills.js";
import { TestVms, uniqueSuffix } from "../support/libvirt.js";
import { buildForUsers, startServe, stopServe } from "../support/serve.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const shots = join(repo, "artifacts", "screenshots");
const IMAGES = "/var/lib/libvirt/images";

describe("restore drills in Chromium", () => {
  const vms = new TestVms();
  const vmName = `sk-uid-${uniqueSuffix()}`;
  const work = mkdtempSync(join(tmpdir(), "snapkeep-uid-"));
  const home = join(work, "home");
  let server: ChildProcess | undefined;
  let exportId = "";
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];

  beforeAll(async () => {
    buildForUsers(repo);
    mkdirSync(shots, { recursive: true });
    mkdirSync(home);
    await vms.create({ name: vmName, running: false, disks: [{ target: "vda", sizeMiB: 64 }] });
    const env = { ...process.env, SNAPKEEP_HOME: home };
    const bin = join(repo, "bin/snapkeep.js");
    execFileSync("node", [bin, "snapshot", "create", `local/${vmName}`, "--name", "sunday"], { env });
    // Nothing on the disk boots: the drills (of the snapshot, then of its export on a folder
    // target) fail after their minute, with SeaBIOS' screen as evidence.
    execFileSync("node", [bin, "target", "add", "shelf", "--dir", join(work, "shelf")], { env });
    const exported = execFileSync(
      "node",
      [bin, "export", `local/${vmName}`, "sunday", "--to", "shelf", "--json"],
      {
        env,
        encoding: "utf8",
      },
    );
    exportId = (JSON.parse(exported) as { id: string }).id;
    for (const what of [["sunday"], [exportId, "--export", "shelf"]]) {
      try {
        execFileSync("node", [bin, "drill", `local/${vmName}`, ...what, "--timeout", "1m"], {
          env,
          stdio: "pipe",
        });
        throw new Error("a drill of a disk with no OS passed");
      } catch (error) {
        expect((error as { status?: number }).status).toBe(1);
      }
    }
    let url: string;
    ({ server, url } = await startServe(repo, home));
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("dialog", (d) => {
      errors.push(`native dialog: ${d.message()}`);
      void d.dismiss();
    });
    await page.goto(url);
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    await stopServe(server);
    await vms.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  it("shows a failed drill on the overview and in the VM view, with its screenshot", async () => {
    await page.getByRole("button", { name: "Overview" }).click();
    const row = page.locator(`tr[data-vm="${vmName}"]`);
    await expect
      .poll(() => row.locator(".trio").getAttribute("aria-label"), { timeout: 30_000 })
      .toMatch(/its last restore drill failed$/);
    await expect(row.locator(".problem").textContent()).resolves.toMatch(/Its last restore drill failed/);
    await expect(row.getByText("last drill failed").count()).resolves.toBe(1);
    await page.screenshot({ path: join(shots, "drill-overview.png") });

    await page.getByRole("button", { name: "Virtual machines" }).click();
    await page.locator(".vm", { hasText: vmName }).click();
    // The snapshot the drill could not boot is marked in the list.
    const snapshotRow = page.locator("table.snapshots tbody tr", { hasText: "sunday" });
    await snapshotRow.locator(".badge.drill-bad", { hasText: "drill failed" }).waitFor();
    const drills = page.getByRole("region", { name: "Restore drills" });
    const drill = drills.locator("tbody tr", { hasText: "snapshot sunday" });
    await expect(drill.locator("td.drill-failed").textContent()).resolves.toMatch(
      /Failed: The restored VM's guest agent did not answer within 1 min/,
    );
    await expect(drill.textContent()).resolves.toContain("snapshot sunday");
    await drill.getByRole("button", { name: "Screenshot" }).click();
    const dialog = page.getByRole("dialog", { name: /Console of the drill of snapshot sunday/ });
    const image = dialog.getByRole("img");
    await expect
      .poll(() => image.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth))
      .toBeGreaterThan(600);
    await page.screenshot({ path: join(shots, "drill-screenshot.png") });
    await dialog.getByRole("button", { name: "Close" }).click();
    await dialog.waitFor({ state: "detached" });

    // The export's drill is said on its row in the Exports view.
    await page.getByRole("button", { name: "Exports" }).click();
    const exportRow = page.locator(`tr[data-export="${exportId}"]`);
    await exportRow.locator(".drill-bad-text", { hasText: "drill failed" }).waitFor({ timeout: 30_000 });
    await page.screenshot({ path: join(shots, "drill-exports.png") });
    await page.getByRole("button", { name: "Virtual machines" }).click();
    expect(errors).toEqual([]);
  }, 120_000);

  it("starts a drill from a snapshot's menu as a job; cancelling it leaves nothing and no verdict", async () => {
    const serverPid = server?.pid ?? 0;
    await page.locator(".vm", { hasText: vmName }).click();
    const row = page.locator("table.snapshots tbody tr", { hasText: "sunday" });
    await row.getByRole("button", { name: "Actions for sunday" }).click();
    await page.getByRole("menuitem", { name: "Restore drill…" }).click();
    const confirm = page.getByRole("dialog", { name: "Restore drill of snapshot sunday?" });
    await confirm.getByRole("button", { name: "Start the drill" }).click();
    // The throwaway VM runs (started by the server): then the job is cancelled from the Jobs panel.
    await expect.poll(() => drillVmsOf(serverPid).length, { timeout: 120_000 }).toBe(1);
    const [throwaway = ""] = drillVmsOf(serverPid);
    const id = throwaway.replace("snapkeep-drill-", "");
    const cancel = page.getByRole("button", { name: new RegExp(`^Cancel: Restore drill of ${vmName}`) });
    if ((await cancel.count()) === 0) {
      await page.getByRole("button", { name: /^Jobs/ }).click();
    }
    await page.screenshot({ path: join(shots, "drill-job.png") });
    await cancel.click();
    await expect.poll(() => drillVmsOf(serverPid).length, { timeout: 60_000 }).toBe(0);
    // Then its network, and its folder.
    await expect
      .poll(() => virsh("net-list", "--all", "--name"), { timeout: 30_000 })
      .not.toContain(throwaway);
    await expect
      .poll(() => existsSync(join(IMAGES, `.snapkeep-drill-${id}`)), { timeout: 30_000 })
      .toBe(false);
    // Still the one failed drill: a cancelled one is no verdict.
    const listed = execFileSync("node", [join(repo, "bin/snapkeep.js"), "drill", "list", "--json"], {
      env: { ...process.env, SNAPKEEP_HOME: home },
      encoding: "utf8",
    });
    expect((JSON.parse(listed) as { passed: boolean }[]).map((r) => r.passed)).toEqual([false, false]);
    expect(readdirSync(join(home, "drills"))).toHaveLength(2);
    expect(virsh("domstate", "--domain", vmName).trim()).toBe("shut off");
    expect(errors).toEqual([]);
  }, 300_000);
});

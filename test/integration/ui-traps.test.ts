/**
 * Three traps of issue 18 as a person meets them in Chromium, on `snapkeep serve` with real
 * libvirt: a target's missing folder is said and made only on "Create it"; the snapshot dialog
 * says what a running VM's snapshot holds; the revert wizard offers to power off a guest whose
 * agent does not answer (a VM with no OS, which ignores ACPI), and the revert is then quick.
 */
import { execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../support/chromium.js";
import { buildForUsers, startServe, stopServe } from "../support/serve.js";
import { TestVms, uniqueSuffix, virshOut } from "../support/libvirt.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const shots = join(repo, "artifacts", "screenshots");

describe("issue 18's traps in Chromium", () => {
  const vms = new TestVms();
  const runName = `sk-uit-run-${uniqueSuffix()}`;
  let runUuid = "";
  let home = "";
  let work = "";
  let server: ChildProcess | undefined;
  let url = "";
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  const cli = (...args: string[]): string =>
    execFileSync("node", [join(repo, "bin/snapkeep.js"), ...args], {
      env: { ...process.env, SNAPKEEP_HOME: home },
      encoding: "utf8",
    });

  beforeAll(async () => {
    buildForUsers(repo);
    mkdirSync(shots, { recursive: true });
    home = mkdtempSync(join(tmpdir(), "snapkeep-uit-"));
    work = mkdtempSync(join(tmpdir(), "snapkeep-uit-work-"));
    runUuid = (await vms.create({ name: runName, running: true, disks: [{ target: "vda", sizeMiB: 8 }] }))
      .uuid;
    cli("snapshot", "create", `local/${runName}`, "--name", "base");
    cli("target", "add", "usb", "--dir", join(work, "usb-exports"));
    rmSync(join(work, "usb-exports"), { recursive: true });
    ({ server, url } = await startServe(repo, home));
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("pageerror", (e) => errors.push(e.message));
    // A native dialog would be a trap of its own: none may open.
    page.on("dialog", (d) => {
      errors.push(`native dialog: ${d.message()}`);
      void d.dismiss();
    });
    await page.goto(url);
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await stopServe(server);
    await vms.dispose();
    rmSync(home, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  it("Settings: a missing folder is said, nothing is made until Create it, then a warning about the system disk", async () => {
    await page.getByRole("button", { name: "Settings" }).click();
    const row = page
      .getByRole("region", { name: "Export targets" })
      .getByRole("row", { name: /^usb Folder/ });
    await row.getByRole("button", { name: "Test" }).click();
    await row.getByText(`The folder ${join(work, "usb-exports")} does not exist on this computer`).waitFor();
    expect(await row.textContent()).toMatch(/is on the system disk/);
    expect(existsSync(join(work, "usb-exports"))).toBe(false);
    await page.screenshot({ path: join(shots, "target-test-missing.png") });

    await row.getByRole("button", { name: "Create it" }).click();
    await row.getByText(`Created ${join(work, "usb-exports")}.`).waitFor();
    expect(existsSync(join(work, "usb-exports"))).toBe(true);
    expect(await row.textContent()).toMatch(/writable, .* free on \//);
    expect(await row.textContent()).toMatch(/Warning: .* is on the system disk of this computer/);
    await page.screenshot({ path: join(shots, "target-test-created.png") });
  });

  it("the snapshot dialog says a running VM's snapshot holds its disks, not its memory, and when it is frozen", async () => {
    await page.getByRole("button", { name: "Virtual machines" }).click();
    await page.getByRole("button", { name: new RegExp(runName) }).click();
    await page.getByRole("heading", { name: runName }).waitFor();
    await page.getByRole("button", { name: "Take snapshot…" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByText(/holds its disks at one instant, not its memory/).waitFor();
    expect(await dialog.textContent()).toMatch(/frozen for that instant when the QEMU guest agent answers/);
    // base was taken while it ran, with no agent to freeze it.
    expect(await dialog.textContent()).toMatch(
      /Its last snapshot taken while running was crash-consistent\./,
    );
    await page.screenshot({ path: join(shots, "snapshot-dialog-running.png") });
    await dialog.getByRole("button", { name: "Cancel" }).click();
  });

  it("the revert wizard offers to power off a guest with no agent, and the revert is quick", async () => {
    const row = page.locator("table.snapshots tr", {
      has: page.locator("td:first-child", { hasText: /^base$/ }),
    });
    await row.getByRole("button", { name: "Revert…" }).click();
    const wizard = page.getByRole("dialog");
    await wizard.getByText(`No guest agent answers in ${runName}`).waitFor();
    await page.screenshot({ path: join(shots, "revert-no-agent.png") });
    await wizard.getByRole("radio", { name: /Power it off now/ }).check();
    await wizard.getByRole("button", { name: "Next" }).click();
    const summary = wizard.getByLabel("What will happen");
    await expect.poll(() => summary.textContent()).toMatch(/is powered off at once/);
    const started = performance.now();
    await wizard.getByRole("button", { name: "Revert", exact: true }).click();
    await wizard.getByText(/is back at/).waitFor({ timeout: 60_000 });
    expect((performance.now() - started) / 1000).toBeLessThan(60);
    expect(virshOut("domstate", runUuid).trim()).toBe("running");
    await page.screenshot({ path: join(shots, "revert-powered-off-done.png") });
    await wizard.getByRole("button", { name: "Close" }).click();
  });

  it("a clean shutdown is counted down in the wizard, then the VM is powered off as chosen", async () => {
    const row = page.locator("table.snapshots tr", {
      has: page.locator("td:first-child", { hasText: /^base$/ }),
    });
    await row.getByRole("button", { name: "Revert…" }).click();
    const wizard = page.getByRole("dialog");
    await wizard.getByText(`No guest agent answers in ${runName}`).waitFor();
    await wizard.getByLabel("Wait for the shutdown (seconds)").fill("6");
    await wizard.getByRole("checkbox", { name: "Power it off if it is still running then" }).check();
    await wizard.getByRole("button", { name: "Next" }).click();
    await expect
      .poll(() => wizard.getByLabel("What will happen").textContent())
      .toMatch(/is asked to shut down and given 6 s; if it is still running then, it is powered off/);
    await wizard.getByRole("button", { name: "Revert", exact: true }).click();
    const status = wizard.locator(".revert-status");
    await status
      .getByText(new RegExp(`Waiting for ${runName} to shut down: [1-6] s left, then it is powered off`))
      .waitFor();
    const first = Number(/: (\d) s left/.exec((await status.textContent()) ?? "")?.[1]);
    await page.screenshot({ path: join(shots, "revert-countdown.png") });
    await expect
      .poll(async () => Number(/: (\d) s left/.exec((await status.textContent()) ?? "")?.[1] ?? 0))
      .toBeLessThan(first);
    await wizard.getByText(/is back at/).waitFor({ timeout: 60_000 });
    expect(virshOut("domstate", runUuid).trim()).toBe("running");
    await wizard.getByRole("button", { name: "Close" }).click();
    expect(errors).toEqual([]);
  });
});

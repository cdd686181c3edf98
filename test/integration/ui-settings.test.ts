/**
 * The first run, Settings and Schedules end to end: `snapkeep serve` on its own SNAPKEEP_HOME, real
 * libvirt VMs, a real OpenSSH sshd on loopback as an SSH host, and Debian's Chromium driven by
 * playwright-core. Screenshots go to artifacts/screenshots/ for a person to look at.
 */
import { execFileSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../support/chromium.js";
import { startServe } from "../support/serve.js";
import { TestVms, uniqueSuffix } from "../support/libvirt.js";
import { startSshd, type TestSshd } from "../support/sshd.js";

/**
 * qemu-img on an image the app may be reading at that moment (the page refreshes its listing,
 * which reads a shut-off VM's images with `qemu-img info` and holds their lock for that long):
 * tried again while the lock is taken, as a script beside Snapkeep would.
 */
async function qemuImgWhenFree(args: readonly string[]): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      execFileSync("qemu-img", args, { stdio: ["ignore", "pipe", "pipe"] });
      return;
    } catch (error) {
      const stderr = String((error as { stderr?: unknown }).stderr ?? "");
      if (attempt >= 20 || !stderr.includes("lock")) {
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

const repo = fileURLToPath(new URL("../..", import.meta.url));
const shots = join(repo, "artifacts", "screenshots");

/** A schedule as `snapkeep schedule list --json` prints it. */
interface ListedSchedule {
  readonly id: string;
  readonly vmName: string;
  readonly when: { readonly every: string; readonly at?: string };
  readonly disks?: readonly string[];
  readonly enabled: boolean;
}

describe("first run, settings and schedules in Chromium, on snapkeep serve", () => {
  const vms = new TestVms();
  const vmName = `sk-uis-off-${uniqueSuffix()}`;
  let home = "";
  let vdaImage = "";
  let sshd: TestSshd;
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
  const shot = (name: string): Promise<Buffer> =>
    page.screenshot({ path: join(shots, name), fullPage: true });

  beforeAll(async () => {
    // The bundle users get: vitest sets NODE_ENV=test, which would build React's development mode.
    execFileSync("npm", ["run", "build"], {
      cwd: repo,
      stdio: "inherit",
      env: { ...process.env, NODE_ENV: "production" },
    });
    mkdirSync(shots, { recursive: true });
    home = mkdtempSync(join(tmpdir(), "snapkeep-uis-"));
    sshd = await startSshd();
    const made = await vms.create({
      name: vmName,
      running: false,
      disks: [
        { target: "vda", sizeMiB: 8 },
        { target: "vdb", sizeMiB: 8 },
      ],
    });
    vdaImage = made.diskPaths[0] ?? "";
    // A first start adds "this computer"; removing it gives the state of a machine without libvirt.
    cli("host", "remove", "local");
    ({ server, url } = await startServe(repo, home));
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("pageerror", (e) => errors.push(e.message));
  }, 180_000);

  afterEach(async ({ task }) => {
    if (task.result?.state === "fail") {
      await page.screenshot({
        path: join(shots, `ui-settings-failed-${task.name.slice(0, 40)}.png`),
        fullPage: true,
      });
    }
  });

  afterAll(async () => {
    await browser?.close();
    server?.kill("SIGTERM");
    await vms.dispose();
    await sshd?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it("explains the first run when there are no hosts, and offers an SSH host and the demo", async () => {
    await page.goto(url);
    const firstRun = page.getByRole("region", { name: "No hosts yet" });
    await firstRun.waitFor();
    expect(await firstRun.getByRole("button", { name: "Try it with two demo VMs" }).isEnabled()).toBe(true);
    await shot("first-run.png");
    await firstRun.getByRole("button", { name: "Add an SSH host…" }).click();
    await page.getByRole("heading", { name: "Settings" }).waitFor();
    expect(await page.getByRole("button", { name: "Settings" }).getAttribute("aria-current")).toBe("page");
  });

  it("adds this computer, then an SSH host whose fingerprint the person confirms", async () => {
    const hosts = page.getByRole("region", { name: "Hosts" });
    await hosts.getByRole("radio", { name: "This computer" }).check();
    await hosts.getByLabel("Name").fill("local");
    await hosts.getByRole("button", { name: "Add this computer" }).click();
    await hosts
      .getByRole("row", { name: /local This computer/ })
      .getByText(/online, \d+ VMs?/)
      .waitFor();

    await hosts.getByRole("radio", { name: "An SSH host" }).check();
    await hosts.getByLabel("Name").fill("loop");
    await hosts.getByLabel("SSH address").fill(`${sshd.user}@${sshd.host}:${sshd.port}`);
    await hosts.getByLabel("Identity file").fill(sshd.userKeyPath);
    await hosts.getByRole("button", { name: "Add SSH host" }).click();
    const check = page.getByRole("region", { name: "Is this the host key of host loop?" });
    await check.waitFor();
    expect(await check.getByLabel("Offered fingerprint").textContent()).toBe(sshd.hostFingerprint);
    const untrusted = hosts.getByRole("row", { name: /^loop SSH/ });
    await untrusted.getByText("not trusted", { exact: true }).waitFor();
    await shot("settings-fingerprint.png");
    // Not now: it stays untrusted, and its key can be fetched again from its row.
    await check.getByRole("button", { name: "Not now" }).click();
    await untrusted.getByText("waits until its host key is confirmed").waitFor();
    await untrusted.getByRole("button", { name: "Check host key…" }).click();
    await check.waitFor();
    expect(await check.getByLabel("Offered fingerprint").textContent()).toBe(sshd.hostFingerprint);

    await check.getByRole("button", { name: "It matches — trust loop" }).click();
    await check.waitFor({ state: "detached" });
    const trusted = hosts.getByRole("row", { name: /^loop SSH/ });
    await trusted.getByText(sshd.hostFingerprint).waitFor();
    await trusted.getByText(/online, \d+ VMs?/).waitFor();
    // What the page shows is what the settings hold.
    expect(JSON.parse(cli("host", "list", "--json"))).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: "loop", hostKey: sshd.hostFingerprint })]),
    );

    await page.getByRole("button", { name: "Virtual machines" }).click();
    // The list is flat and windowed: a host's rows (its heading and its VMs) carry its name.
    const loop = page.getByRole("navigation", { name: "Hosts and VMs" }).locator('[data-host="loop"]');
    await loop.getByRole("button", { name: new RegExp(vmName) }).waitFor();
    expect(await loop.getByLabel("online").count()).toBe(1);
    await shot("vm-list-two-hosts.png");
  });

  it("adds a folder export target and tests it; saves the safety-snapshot count", async () => {
    await page.getByRole("button", { name: "Settings" }).click();
    const targets = page.getByRole("region", { name: "Export targets" });
    await targets.getByRole("radio", { name: "A folder on this computer" }).check();
    await targets.getByLabel("Name").fill("usb");
    await targets.getByRole("textbox", { name: "Folder" }).fill(join(home, "exports"));
    await targets.getByLabel("Keep per VM").fill("3");
    await targets.getByRole("button", { name: "Add target" }).click();
    const row = targets.getByRole("row", { name: /^usb Folder/ });
    await row.getByText("3 per VM").waitFor();
    await row.getByRole("button", { name: "Test" }).click();
    await row.getByText(/writable, [\d.]+ [KMGTP]?i?B free/).waitFor();
    expect(await row.textContent()).toMatch(/rsync\s+version/);

    // An SSH target: its key is confirmed the same way before anything is sent there.
    const remoteDir = join(sshd.tmpDir, "exports");
    await targets.getByRole("radio", { name: "A folder on an SSH host" }).check();
    await targets.getByLabel("Name").fill("nas");
    await targets
      .getByLabel("SSH address and folder")
      .fill(`${sshd.user}@${sshd.host}:${sshd.port}:${remoteDir}`);
    await targets.getByLabel("Identity file").fill(sshd.userKeyPath);
    await targets.getByRole("button", { name: "Add target" }).click();
    const check = page.getByRole("region", { name: "Is this the host key of export target nas?" });
    expect(await check.getByLabel("Offered fingerprint").textContent()).toBe(sshd.hostFingerprint);
    await check.getByRole("button", { name: "It matches — trust nas" }).click();
    const nas = targets.getByRole("row", { name: /^nas SSH/ });
    await nas.getByText(sshd.hostFingerprint).waitFor();
    await nas.getByRole("button", { name: "Test" }).click();
    await nas.getByText(/writable, [\d.]+ [KMGTP]?i?B free/).waitFor();
    expect(await nas.textContent()).toMatch(/rsync\s+version/);

    const safety = page.getByRole("region", { name: "Safety snapshots" });
    await safety.getByLabel("Kept per VM").fill("3");
    await safety.getByRole("button", { name: "Save" }).click();
    await expect.poll(() => cli("snapshot", "safety-keep")).toMatch(/keeps the newest 3 safety snapshots/);
    await shot("settings.png");
  });

  it("adds a schedule from the VM's detail with a live preview, and manages it in the Schedules view", async () => {
    await page.getByRole("button", { name: "Virtual machines" }).click();
    // The list is flat and windowed: a host's rows (its heading and its VMs) carry its name.
    const local = page.getByRole("navigation", { name: "Hosts and VMs" }).locator('[data-host="local"]');
    await local.getByRole("button", { name: new RegExp(vmName) }).click();
    await page.getByRole("heading", { name: vmName }).waitFor();
    const section = page.getByRole("region", { name: "Schedules" });
    await section.getByText(/No schedule/).waitFor();
    await section.getByRole("button", { name: "Add schedule…" }).click();

    const dialog = page.getByRole("dialog", { name: `Add a schedule for ${vmName}` });
    await dialog.waitFor();
    // Focus goes into the dialog.
    expect(await page.evaluate("document.activeElement?.closest('[role=dialog]') !== null")).toBe(true);
    // Tab stays inside the dialog: back from the first control is its last button.
    await page.keyboard.press("Shift+Tab");
    expect(await page.evaluate("document.activeElement?.textContent")).toBe("Add schedule");
    await page.keyboard.press("Tab");
    expect(await page.evaluate("document.activeElement?.getAttribute('value')")).toBe("daily");
    const forecast = dialog.getByLabel("Forecast");
    await expect.poll(() => forecast.textContent()).toMatch(/^After a year: 7 snapshots — 7 latest/);

    await dialog.getByLabel("Latest", { exact: true }).fill("3");
    await expect
      .poll(() => forecast.textContent())
      .toMatch(/^After a year: 3 snapshots — 3 latest — the oldest/);
    await dialog.getByLabel("Weeks", { exact: true }).fill("4");
    await expect.poll(() => forecast.textContent()).toMatch(/3 latest, 4 weekly/);

    await dialog.getByRole("radio", { name: "Weekly" }).check();
    await dialog.getByLabel("Weekday").selectOption("sunday");
    await expect
      .poll(async () =>
        (await dialog.getByRole("list", { name: "Next runs" }).getByRole("listitem").allTextContents()).join(
          "|",
        ),
      )
      .toMatch(/^(Sun[^|]*\|){4}Sun[^|]*$/);

    await dialog.getByRole("radio", { name: "Monthly" }).check();
    await dialog.getByLabel("Day of the month").fill("31");
    await dialog.getByText("Runs on the last day of shorter months").waitFor();

    await dialog.getByRole("radio", { name: "Cron (experts)" }).check();
    await dialog.getByLabel("Cron expression").fill("0 3 * *");
    await dialog.getByRole("alert").getByText(/has 4/).waitFor();
    await shot("schedule-editor-error.png");

    await dialog.getByRole("radio", { name: "Daily" }).check();
    await dialog.getByLabel("Time").fill("03:30");
    await dialog.getByRole("checkbox", { name: /vdb/ }).uncheck();
    await dialog.getByLabel("Note").fill("before the nightly dump");
    // A copy off the host, to the folder target: the preview says what the target keeps.
    await dialog.getByRole("checkbox", { name: /export it to a target/ }).check();
    await dialog.getByLabel("Target", { exact: true }).selectOption("usb");
    await dialog.getByLabel("Newest", { exact: true }).fill("2");
    await expect
      .poll(() => dialog.getByLabel("What the target keeps").textContent())
      .toMatch(/^After a year: usb keeps 2 copies of 3\d\d sent, the oldest from .*stay on this host/);
    await expect.poll(() => dialog.getByText("Every day at 03:30").count()).toBe(1);
    await shot("schedule-editor.png");
    await dialog.getByRole("button", { name: "Add schedule" }).click();
    await dialog.waitFor({ state: "detached" });
    await section.getByRole("row", { name: /Every day at 03:30/ }).waitFor();
    // Nothing of it is off the host yet, and the VM's page says so beside its recovery point.
    await page
      .getByRole("status", { name: "Off this host" })
      .filter({ hasText: "on this host only — no copy has been made off this host yet" })
      .waitFor();
    await shot("vm-detail-schedules.png");

    const listed = JSON.parse(cli("schedule", "list", "--json")) as ListedSchedule[];
    expect(listed).toEqual([
      expect.objectContaining({
        vmName,
        when: { every: "daily", at: "03:30" },
        disks: ["vda"],
        enabled: true,
        copy: {
          target: "usb",
          cadence: { every: "runs", n: 1 },
          retention: { keepLast: 2 },
          holdLocalUntilCopied: true,
        },
      }),
    ]);

    await section.getByRole("button", { name: "All schedules" }).click();
    const view = page.getByRole("region", { name: "Schedules" });
    const row = view.getByRole("row", { name: new RegExp(`${vmName}: Every day at 03:30`) });
    await row.waitFor();
    // snapkeep serve runs the schedules itself, and the view says so.
    await view
      .getByRole("status")
      .filter({ hasText: /^Schedules run here \(snapkeep serve, pid \d+/ })
      .waitFor();
    expect(await row.textContent()).toMatch(
      /vdakeeps the latest 3, 4 weeklycopies to usb every run, keeps the latest 2 thereactivenever/,
    );
    expect(await row.getByRole("cell").nth(6).textContent()).toMatch(/03:30|3:30/);
    await shot("schedules.png");

    // "Pause all" from elsewhere (the tray, the CLI) shows here, and can be lifted here.
    cli("schedule", "pause", "--all", "--for", "1h");
    await page.getByRole("button", { name: "Refresh" }).click();
    const banner = view.getByRole("status").filter({ hasText: "All schedules are paused until" });
    await banner.waitFor();
    await shot("schedules-pause-all.png");
    await banner.getByRole("button", { name: "Resume all now" }).click();
    await banner.waitFor({ state: "detached" });
    expect(cli("schedule", "list")).not.toMatch(/All schedules are paused/);
    // And started here: what the CLI (and so the scheduler) sees.
    await view.getByRole("button", { name: "Pause all until resumed" }).click();
    await view.getByRole("status").filter({ hasText: "All schedules are paused until resumed" }).waitFor();
    expect(cli("schedule", "list")).toMatch(/paused/i);
    await view.getByRole("button", { name: "Resume all now" }).click();
    await view.getByRole("button", { name: "Pause all for 1 hour" }).waitFor();

    await row.getByRole("button", { name: "Pause" }).click();
    await row.getByText("paused").waitFor();
    expect(await row.getByRole("cell").nth(6).textContent()).toBe("—");
    await shot("schedules-paused.png");
    await row.getByRole("button", { name: "Resume" }).click();
    await row.getByText("active").waitFor();

    // Three snapshots this schedule made, as a daemon run would tag them on the host (a real run
    // waits for its slot); the editor must name exactly the ones a smaller retention deletes.
    const id = listed[0]?.id ?? "";
    for (const name of ["scheduled-a", "scheduled-b", "scheduled-c"]) {
      await qemuImgWhenFree(["snapshot", "-c", `snapkeep:scheduled@${id}:${name}`, vdaImage]);
      await new Promise((resolve) => setTimeout(resolve, 1100)); // qcow2 dates have whole seconds
    }
    await row.getByRole("button", { name: "Edit…" }).click();
    const edit = page.getByRole("dialog", { name: `Edit the schedule of ${vmName}` });
    expect(await edit.getByLabel("Latest", { exact: true }).inputValue()).toBe("3");
    expect(await edit.getByRole("checkbox", { name: /vdb/ }).isChecked()).toBe(false);
    await edit.getByLabel("Latest", { exact: true }).fill("1");
    await edit.getByLabel("Weeks", { exact: true }).fill("");
    await expect
      .poll(async () =>
        (await edit.getByLabel("Deleted today").getByRole("listitem").allTextContents()).join(),
      )
      .toBe("scheduled-a,scheduled-b");
    await shot("schedule-editor-deletes.png");
    await edit.getByLabel("Latest", { exact: true }).fill("5");
    await expect.poll(() => edit.getByLabel("Deleted today").textContent()).toMatch(/would delete none/);
    await expect.poll(() => edit.getByLabel("Forecast").textContent()).toMatch(/^After a year: 5 snapshots/);
    await shot("schedule-editor-edit.png");
    await edit.getByRole("button", { name: "Save changes" }).click();
    await edit.waitFor({ state: "detached" });
    await view
      .getByRole("row", { name: new RegExp(vmName) })
      .getByText("keeps the latest 5")
      .waitFor();

    // Escape closes the editor without saving.
    await view.getByRole("button", { name: "Edit…" }).click();
    await page.getByRole("dialog").getByLabel("Latest", { exact: true }).fill("9");
    await page.keyboard.press("Escape");
    await page.getByRole("dialog").waitFor({ state: "detached" });
    expect(await view.getByText("keeps the latest 5").count()).toBe(1);
    // ... and gives the focus back to the button that opened it.
    expect(await page.evaluate("document.activeElement?.textContent")).toBe("Edit…");

    // The app's own confirmation, saying what stays; Cancel changes nothing.
    await view.getByRole("button", { name: "Remove" }).click();
    const confirm = page.getByRole("dialog", { name: `Remove the schedule of ${vmName}?` });
    expect(await confirm.textContent()).toMatch(/snapshots it made stay on local/);
    await confirm.getByRole("button", { name: "Cancel" }).click();
    await confirm.waitFor({ state: "detached" });
    expect(JSON.parse(cli("schedule", "list", "--json"))).toHaveLength(1);
    await view.getByRole("button", { name: "Remove" }).click();
    await confirm.getByRole("button", { name: "Remove schedule" }).click();
    await view.getByText(/No schedules yet/).waitFor();
    expect(JSON.parse(cli("schedule", "list", "--json"))).toEqual([]);
    const kept = JSON.parse(cli("snapshot", "list", `local/${vmName}`, "--json")) as { name: string }[];
    expect(kept.map((k) => k.name)).toEqual(["scheduled-a", "scheduled-b", "scheduled-c"]);
  });

  it("is readable in dark mode", async () => {
    await page.emulateMedia({ colorScheme: "dark" });
    await page
      .getByRole("region", { name: "Schedules" })
      .getByRole("button", { name: "Add schedule…" })
      .click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Weeks", { exact: true }).fill("4");
    await expect.poll(() => dialog.getByLabel("Forecast").textContent()).toMatch(/4 weekly/);
    expect(await page.locator("html").getAttribute("data-theme")).toBe("dark");
    await shot("schedule-editor-dark.png");
    await page.keyboard.press("Escape");
    await page.getByRole("button", { name: "Settings" }).click();
    await page.getByRole("region", { name: "Hosts" }).getByText("loop").first().waitFor();
    // The targets' test results outlive a visit to another view.
    const usb = page
      .getByRole("region", { name: "Export targets" })
      .getByRole("row", { name: /^usb Folder/ });
    expect(await usb.textContent()).toMatch(/writable/);
    await shot("settings-dark.png");
    await page.emulateMedia({ colorScheme: "light" });
  });

  it("removes a target and a host after a confirmation that says what stays", async () => {
    // The app's own dialog (a native one would fail the test: none is accepted here).
    const questions: string[] = [];
    const confirmWith = async (action: string): Promise<void> => {
      const dialog = page.getByRole("dialog");
      questions.push((await dialog.textContent()) ?? "");
      await dialog.getByRole("button", { name: action }).click();
      await dialog.waitFor({ state: "detached" });
    };
    const targets = page.getByRole("region", { name: "Export targets" });
    await targets
      .getByRole("row", { name: /^nas SSH/ })
      .getByRole("button", { name: "Remove" })
      .click();
    await confirmWith("Remove target");
    await targets.getByRole("row", { name: /^nas SSH/ }).waitFor({ state: "detached" });
    const hosts = page.getByRole("region", { name: "Hosts" });
    await hosts
      .getByRole("row", { name: /^loop SSH/ })
      .getByRole("button", { name: "Remove" })
      .click();
    await confirmWith("Remove host");
    await hosts.getByRole("row", { name: /^loop SSH/ }).waitFor({ state: "detached" });
    expect(questions).toEqual([
      expect.stringMatching(/exports already there stay where they are/),
      expect.stringMatching(/its VMs, snapshots and\s+images stay/),
    ]);
    expect((JSON.parse(cli("host", "list", "--json")) as { name: string }[]).map((h) => h.name)).toEqual([
      "local",
    ]);
    expect(errors).toEqual([]);
  });
});

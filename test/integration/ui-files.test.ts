/**
 * The file browser as a person uses it in Chromium (issue 19), on `snapkeep serve` with real
 * libvirt and libguestfs (appliance under software emulation): a running VM's snapshot, its
 * folders walked, a file and a folder downloaded through the browser and compared byte for byte,
 * an odd name shown as text, and the browse on the host gone once the dialog closes.
 */
import { execFileSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { filesRoot } from "../../core/drivers/sh/files-script.js";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../support/chromium.js";
import { APPLIANCE_ENV, partitionedDisk } from "../support/guest-disks.js";
import { TestVms, uniqueSuffix, URI } from "../support/libvirt.js";
import { buildForUsers, startServe, stopServe } from "../support/serve.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
/** Where this user's browses keep their folders on this computer. */
const FILES_ROOT = filesRoot(process.getuid?.() ?? 0);
const shots = join(repo, "artifacts", "screenshots");

describe("the file browser in Chromium", () => {
  const vms = new TestVms();
  const vmName = `sk-uif-${uniqueSuffix()}`;
  const work = mkdtempSync(join(tmpdir(), "snapkeep-uif-"));
  const home = join(work, "home");
  const config = "server { listen 80; }\n";
  const payload = randomBytes(2 * 1024 * 1024 + 7);
  let server: ChildProcess | undefined;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  let exportId = "";
  const browsesBefore = new Set(existsSync(FILES_ROOT) ? readdirSync(FILES_ROOT) : []);

  beforeAll(async () => {
    buildForUsers(repo);
    mkdirSync(shots, { recursive: true });
    mkdirSync(home);
    const tree = join(work, "tree");
    mkdirSync(join(tree, "etc/nginx"), { recursive: true });
    writeFileSync(join(tree, "etc/nginx/nginx.conf"), config);
    writeFileSync(join(tree, "payload.bin"), payload);
    writeFileSync(join(tree, "new\nline.txt"), "odd");
    const vm = await vms.create({ name: vmName, running: false, disks: [{ target: "vda", sizeMiB: 64 }] });
    const raw = join(work, "disk.raw");
    partitionedDisk(raw, tree, 64);
    execFileSync("qemu-img", ["convert", "-n", "-f", "raw", "-O", "qcow2", raw, vm.diskPaths[0] ?? ""]);
    execFileSync("virsh", ["-c", URI, "start", vmName]);
    const env = { ...process.env, SNAPKEEP_HOME: home };
    // "local" is this computer, added by the first command on a new state folder.
    execFileSync(
      "node",
      [join(repo, "bin/snapkeep.js"), "snapshot", "create", `local/${vmName}`, "--name", "tuesday"],
      {
        env,
      },
    );
    // An export of that snapshot on a folder target, for the Exports view's browser.
    mkdirSync(join(work, "shelf"));
    execFileSync(
      "node",
      [join(repo, "bin/snapkeep.js"), "target", "add", "shelf", "--dir", join(work, "shelf")],
      {
        env,
      },
    );
    const exported = execFileSync(
      "node",
      [join(repo, "bin/snapkeep.js"), "export", `local/${vmName}`, "tuesday", "--to", "shelf", "--json"],
      { env, encoding: "utf8" },
    );
    exportId = (JSON.parse(exported) as { id: string }).id;
    // The server (and the browse it starts on this host) runs the appliance emulated.
    Object.assign(process.env, APPLIANCE_ENV);
    let url: string;
    ({ server, url } = await startServe(repo, home));
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    page.on("pageerror", (e) => errors.push(e.message));
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
    rmSync(work, { recursive: true, force: true });
  });

  it("walks a running VM's snapshot and downloads a file and a folder, byte for byte", async () => {
    await page.getByRole("button", { name: "Virtual machines" }).click();
    await page.locator(".vm", { hasText: vmName }).click();
    const row = page.locator("table.snapshots tbody tr", { hasText: "tuesday" });
    await row.getByRole("button", { name: "Actions for tuesday" }).click();
    await page.getByRole("menuitem", { name: "Browse files…" }).click();
    const dialog = page.getByRole("dialog", { name: `Files in “tuesday” of ${vmName}` });
    await dialog.getByRole("status").filter({ hasText: "Starting the file browser" }).waitFor();
    // The appliance starts (emulated here): then the root folder.
    const etc = dialog.getByRole("button", { name: "etc/" });
    await etc.waitFor({ timeout: 180_000 });
    await dialog.getByText("/dev/sda1 (ext4) at /").waitFor();
    await expect(dialog.locator("td", { hasText: "new⏎line.txt" }).count()).resolves.toBe(1);
    await page.screenshot({ path: join(shots, "files-browser-root.png") });

    const file = page.waitForEvent("download");
    await dialog.getByRole("button", { name: "Download payload.bin" }).click();
    const saved = join(work, "payload.bin");
    await (await file).saveAs(saved);
    expect(readFileSync(saved).equals(payload)).toBe(true);

    await etc.click();
    await dialog.getByRole("button", { name: "nginx/" }).click();
    await dialog.getByRole("button", { name: "Download nginx.conf" }).waitFor();
    await page.screenshot({ path: join(shots, "files-browser-folder.png") });
    const conf = page.waitForEvent("download");
    await dialog.getByRole("button", { name: "Download nginx.conf" }).click();
    const confDownload = await conf;
    expect(confDownload.suggestedFilename()).toBe("nginx.conf");
    await confDownload.saveAs(join(work, "nginx.conf"));
    expect(readFileSync(join(work, "nginx.conf"), "utf8")).toBe(config);

    // Up to /etc, and its nginx folder as an archive.
    await dialog.getByRole("navigation", { name: "Folder" }).getByRole("button", { name: "etc" }).click();
    const tar = page.waitForEvent("download");
    await dialog.getByRole("button", { name: "Download nginx as a .tar archive" }).click();
    const tarDownload = await tar;
    expect(tarDownload.suggestedFilename()).toBe("nginx.tar");
    await tarDownload.saveAs(join(work, "nginx.tar"));
    const out = join(work, "untarred");
    mkdirSync(out);
    execFileSync("tar", ["-xf", join(work, "nginx.tar"), "-C", out]);
    expect(readFileSync(join(out, "nginx.conf"), "utf8")).toBe(config);
    expect(execFileSync("virsh", ["-c", URI, "domstate", vmName], { encoding: "utf8" }).trim()).toBe(
      "running",
    );

    // Closing the dialog ends the browse on the host.
    await dialog.getByRole("button", { name: "Close" }).click();
    await dialog.waitFor({ state: "detached" });
    await expect
      .poll(() => readdirSync(FILES_ROOT).filter((d) => !browsesBefore.has(d)), { timeout: 30_000 })
      .toEqual([]);
    expect(errors).toEqual([]);
  }, 600_000);

  it("browses an export on its target from the Exports view, the file downloaded byte for byte", async () => {
    await page.getByRole("button", { name: "Exports" }).click();
    const row = page.locator(`tr[data-export="${exportId}"]`);
    await row.getByRole("button", { name: `Actions for export ${exportId}` }).click();
    await page.getByRole("menuitem", { name: "Browse files…" }).click();
    const dialog = page.getByRole("dialog", { name: `Files in export ${exportId} of ${vmName} on shelf` });
    await dialog.getByRole("status").filter({ hasText: "reading the export on shelf" }).waitFor();
    await dialog.getByRole("button", { name: "etc/" }).waitFor({ timeout: 180_000 });
    await page.screenshot({ path: join(shots, "files-browser-export.png") });
    const file = page.waitForEvent("download");
    await dialog.getByRole("button", { name: "Download payload.bin" }).click();
    const saved = join(work, "payload-from-export.bin");
    await (await file).saveAs(saved);
    expect(readFileSync(saved).equals(payload)).toBe(true);

    // Closing ends the browse: its folder, and the QEMU that read the export, are gone.
    await dialog.getByRole("button", { name: "Close" }).click();
    await dialog.waitFor({ state: "detached" });
    await expect
      .poll(() => readdirSync(FILES_ROOT).filter((d) => !browsesBefore.has(d)), { timeout: 30_000 })
      .toEqual([]);
    await expect
      .poll(
        () =>
          execFileSync("sh", ["-c", 'pgrep -f "[q]emu-storage-daemon.*snapkeep-nbd-" || true'], {
            encoding: "utf8",
          }).trim(),
        { timeout: 30_000 },
      )
      .toBe("");
    expect(errors).toEqual([]);
  }, 600_000);
});

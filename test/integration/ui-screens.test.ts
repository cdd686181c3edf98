/**
 * The everyday screens at real size: two dozen real VMs (libvirt, qcow2 images, two running) behind
 * `snapkeep serve`, looked at in Debian's Chromium at 1280×800 and 1440×900, light and dark. The
 * test measures what a person would see: no table wider than its box, every VM on the overview
 * with its marks, a long name whole, search that filters, timeline labels, menus inside the
 * window, and never a native dialog. Screenshots of each view go to artifacts/screenshots/.
 */
import { execFileSync, type ChildProcess } from "node:child_process";
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

import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../support/chromium.js";
import { buildForUsers, startServe, stopServe } from "../support/serve.js";
import { TestVms, uniqueSuffix } from "../support/libvirt.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const shots = join(repo, "artifacts", "screenshots");

const SIZES = [
  { width: 1280, height: 800 },
  { width: 1440, height: 900 },
] as const;
const SCHEMES = ["light", "dark"] as const;
const VIEWS = [
  "Overview",
  "Virtual machines",
  "Exports",
  "Library",
  "Schedules",
  "History",
  "Settings",
] as const;

/**
 * Page-side: every box that scrolls sideways or sticks out of the window, by what it holds. A table
 * in a scroller that scrolls sideways counts as overflowing: the person has to scroll to see it.
 */
const OVERFLOWS = `(() => {
  const out = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth + 1) out.push("page " + doc.scrollWidth + " > " + window.innerWidth);
  for (const table of document.querySelectorAll("table")) {
    const box = table.parentElement;
    const name = table.className || table.querySelector("caption")?.textContent || "table";
    if (table.getBoundingClientRect().right > window.innerWidth + 1) out.push(name + " sticks out of the window");
    if (box.scrollWidth > box.clientWidth + 1) out.push(name + " scrolls sideways: " + box.scrollWidth + " > " + box.clientWidth);
    if (table.scrollWidth > table.clientWidth + 1) out.push(name + " wider than itself: " + table.scrollWidth);
  }
  // Marks inside a cell (3-2-1, badges) are whole, not cut off by the cell's edge.
  for (const mark of document.querySelectorAll("td .trio, td .badge")) {
    const cell = mark.closest("td");
    if (mark.getBoundingClientRect().right > cell.getBoundingClientRect().right + 1) {
      out.push("a mark is cut off in " + (cell.closest("table").className || "a table") + ": " + mark.textContent);
    }
  }
  return out;
})()`;

/** Page-side, on the overview's scroller: every row's VM, scrolled through from the top, in order. */
const SCROLLED_NAMES = `(async () => {
  const el = document.querySelector(".overview-scroll");
  const seen = [];
  for (let top = 0; ; top += el.clientHeight / 2) {
    el.scrollTop = top;
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    for (const row of el.querySelectorAll("tbody tr[data-vm]")) {
      const name = row.getAttribute("data-vm");
      if (!seen.includes(name)) seen.push(name);
    }
    if (top >= el.scrollHeight) break;
  }
  el.scrollTop = 0;
  return seen;
})()`;

describe("the everyday screens at real size", () => {
  const vms = new TestVms();
  const suffix = uniqueSuffix();
  const names = Array.from({ length: 22 }, (_, i) => `sk-scr-${suffix}-${String(i).padStart(2, "0")}`);
  const longName = `sk-scr-${suffix}-the-database-server-of-the-accounting-department`;
  const busy = names[2] ?? "";
  let home = "";
  let server: ChildProcess | undefined;
  let url = "";
  let browser: Browser;
  const exportDir = mkdtempSync(join(tmpdir(), "snapkeep-screens-exports-"));
  const nativeDialogs: string[] = [];
  const pageErrors: string[] = [];
  const cli = (...args: string[]): string =>
    execFileSync("node", [join(repo, "bin/snapkeep.js"), ...args], {
      env: { ...process.env, SNAPKEEP_HOME: home },
      encoding: "utf8",
    });

  const open = async (size: { width: number; height: number }, scheme: "light" | "dark"): Promise<Page> => {
    const page = await browser.newPage({ viewport: size, colorScheme: scheme });
    // The app never uses the browser's own dialogs: one opening is a failure.
    page.on("dialog", (d) => {
      nativeDialogs.push(d.message());
      void d.dismiss();
    });
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(url);
    return page;
  };
  const view = async (page: Page, name: (typeof VIEWS)[number]): Promise<void> => {
    await page.getByRole("navigation", { name: "Views" }).getByRole("button", { name, exact: true }).click();
  };

  beforeAll(async () => {
    buildForUsers(repo);
    mkdirSync(shots, { recursive: true });
    home = mkdtempSync(join(tmpdir(), "snapkeep-screens-"));
    for (const [i, name] of [...names, longName].entries()) {
      await vms.create({ name, running: i < 2, disks: [{ target: "vda", sizeMiB: 4 }] });
    }
    // A burst of snapshots seconds apart (the timeline clusters or spreads them), one pinned with
    // a note, and a verified copy off the host for one VM: the overview's marks have something to say.
    for (let i = 0; i < 6; i++) {
      cli("snapshot", "create", `local/${busy}`, "--name", `burst-${i}`);
    }
    cli(
      "snapshot",
      "create",
      `local/${busy}`,
      "--name",
      "before-upgrade",
      "--note",
      "before the kernel upgrade",
    );
    cli("snapshot", "pin", `local/${busy}`, "before-upgrade");
    for (const name of names.slice(3, 12)) {
      cli("snapshot", "create", `local/${name}`, "--name", "nightly");
    }
    cli("snapshot", "create", `local/${longName}`, "--name", "first");
    cli("target", "add", "shelf", "--dir", exportDir);
    cli("export", `local/${busy}`, "before-upgrade", "--to", "shelf");
    ({ server, url } = await startServe(repo, home));
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await stopServe(server);
    await vms.dispose();
    rmSync(home, { recursive: true, force: true });
    rmSync(exportDir, { recursive: true, force: true });
  });

  it("opens on the overview: every VM with its marks, problems first, a long name whole", async () => {
    const page = await open(SIZES[1], "light");
    const overview = page.getByRole("region", { name: "Overview" });
    const search = overview.getByRole("searchbox", { name: "Search VMs" });
    await overview.locator("tbody tr[data-vm]").first().waitFor();
    // The table is windowed: scrolled through, it lists each of this test's VMs, problems first.
    await search.fill(suffix);
    await expect.poll(() => overview.locator(".overview-scroll").getAttribute("data-rows")).toBe("23");
    const order = (await page.evaluate(SCROLLED_NAMES)) as string[];
    expect([...order].sort()).toEqual([...names, longName].sort());
    // A VM with no snapshot comes before one that is fine.
    expect(order.indexOf(names[20] ?? "")).toBeLessThan(order.indexOf(busy));
    // Verified copy off the host: the 3-2-1 mark of the exported VM is whole once the targets are read.
    await search.fill(busy);
    const exported = overview.locator(`tr[data-vm="${busy}"] .trio`);
    await expect
      .poll(() => exported.getAttribute("aria-label"))
      .toBe("7 snapshots on the host; copies on shelf; its newest export is verified; no restore drill yet");
    await search.fill(names[20] ?? "");
    expect(await overview.locator(`tr[data-vm="${names[20] ?? ""}"] .trio`).getAttribute("aria-label")).toBe(
      "no snapshots on the host; no copy off the host; no export found on the targets; no restore drill yet",
    );
    await search.fill(longName);
    const link = overview.getByRole("button", { name: longName });
    expect(await link.evaluate((el) => el.scrollWidth <= el.clientWidth && el.textContent)).toBe(longName);
    await page.close();
  });

  it("filters with the search and the show menu, in the overview and the VM list, from the keyboard", async () => {
    const page = await open(SIZES[0], "light");
    const overview = page.getByRole("region", { name: "Overview" });
    await overview.locator("tbody tr[data-vm]").first().waitFor();
    await page.keyboard.press("/");
    await page.keyboard.type(`${suffix} accounting`);
    await expect.poll(() => overview.locator("tbody tr[data-vm]").count()).toBe(1);
    await page.getByRole("combobox", { name: "Show" }).selectOption("running");
    await expect.poll(() => overview.locator("tbody tr[data-vm]").count()).toBe(0);
    expect(await overview.getByRole("status").filter({ hasText: "of" }).textContent()).toMatch(
      /^0 of \d+ VMs$/,
    );

    await view(page, "Virtual machines");
    const list = page.getByRole("navigation", { name: "Hosts and VMs" });
    await list.getByRole("searchbox", { name: "Search VMs" }).fill(suffix);
    await list.getByRole("combobox", { name: "Show" }).selectOption("running");
    await expect.poll(() => list.locator("button.vm").count()).toBe(2);
    await list.getByRole("combobox", { name: "Show" }).selectOption("all");
    await list.getByRole("searchbox", { name: "Search VMs" }).fill(`${suffix}-02`);
    await expect.poll(() => list.locator("button.vm").count()).toBe(1);
    // Down from the search to the VM, Enter opens it.
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: busy, level: 2 }).waitFor();
    await page.close();
  });

  it("has no table wider than its box, labels on the timeline and menus inside the window, at both sizes, light and dark", async () => {
    for (const size of SIZES) {
      for (const scheme of SCHEMES) {
        const page = await open(size, scheme);
        const tag = `${size.width}x${size.height}-${scheme}`;
        await page.locator("tbody tr[data-vm]").first().waitFor();
        for (const name of VIEWS) {
          await view(page, name);
          if (name === "Virtual machines") {
            await page.getByRole("button", { name: new RegExp(`^${busy}`) }).click();
            await page.getByRole("heading", { name: busy, level: 2 }).waitFor();
            await page.locator("table.snapshots tbody tr").nth(3).waitFor();
          } else {
            await page.waitForTimeout(300);
          }
          const problems = (await page.evaluate(OVERFLOWS)) as string[];
          expect(problems, `${name} at ${tag}`).toEqual([]);
          await page.screenshot({
            path: join(shots, `screen-${name.toLowerCase().replace(/ /g, "-")}-${tag}.png`),
          });
        }
        await view(page, "Virtual machines");
        await page.getByRole("heading", { name: busy, level: 2 }).waitFor();
        const ticks = await page.locator(".timeline .tick").allTextContents();
        expect(ticks.length, tag).toBeGreaterThanOrEqual(2);
        expect(
          ticks.every((t) => /\d/.test(t)),
          tag,
        ).toBe(true);
        // Every snapshot is on the timeline, alone or in a cluster's count, on its one lane.
        const shown = await page
          .locator(".timeline .marker")
          .evaluateAll((ms) => ms.reduce((n, m) => n + Number(m.getAttribute("data-cluster") ?? 1), 0));
        expect(shown).toBe(7);
        // The row menu of the oldest snapshot opens inside the window, beside its row's name.
        const row = page.getByRole("row", { name: /burst-0/ });
        await row.getByRole("button", { name: "Actions for burst-0" }).click();
        const menu = page.getByRole("menu", { name: "Actions for burst-0" });
        const box = await menu.boundingBox();
        expect(box).not.toBeNull();
        expect((box?.x ?? -1) >= 0 && (box?.y ?? -1) >= 0).toBe(true);
        expect((box?.x ?? 0) + (box?.width ?? 0)).toBeLessThanOrEqual(size.width);
        expect((box?.y ?? 0) + (box?.height ?? 0)).toBeLessThanOrEqual(size.height);
        expect(await row.getByRole("cell", { name: "burst-0", exact: true }).isVisible()).toBe(true);
        await page.screenshot({ path: join(shots, `screen-row-menu-${tag}.png`) });
        await page.keyboard.press("Escape");
        await menu.waitFor({ state: "detached" });
        await page.close();
      }
    }
  });

  it("deletes a snapshot through the app's own dialog, which says what it deletes; Cancel keeps it", async () => {
    const page = await open(SIZES[0], "light");
    await page.locator("tbody tr[data-vm]").first().waitFor();
    await view(page, "Virtual machines");
    await page.getByRole("button", { name: new RegExp(`^${busy}`) }).click();
    await page.getByRole("heading", { name: busy, level: 2 }).waitFor();
    // Space: what deleting each snapshot frees (read from the image's tables), how far back it goes.
    const frees = page.getByRole("row", { name: /before-upgrade/ }).locator("td.frees");
    await expect.poll(() => frees.textContent()).toMatch(/^\d+(\.\d+)? (B|KiB|MiB)$/);
    expect(await page.getByLabel("Space and restore points").textContent()).toMatch(
      /Space used .* on disk.*You can go back to .* \(7 snapshots\)/,
    );
    const actions = page.getByRole("button", { name: "Actions for burst-1" });
    await actions.click();
    await page.getByRole("menuitem", { name: "Delete…" }).click();
    const confirm = page.getByRole("dialog", { name: "Delete snapshot burst-1?" });
    expect(await confirm.textContent()).toMatch(/on vda\. The VM can no longer go back to it/);
    await page.screenshot({ path: join(shots, "screen-confirm-delete.png") });
    await confirm.getByRole("button", { name: "Cancel" }).click();
    await confirm.waitFor({ state: "detached" });
    // The focus is back on the menu button of that row.
    expect(await page.evaluate("document.activeElement?.getAttribute('aria-label')")).toBe(
      "Actions for burst-1",
    );
    expect(cli("snapshot", "list", `local/${busy}`)).toMatch(/burst-1/);

    await actions.click();
    await page.getByRole("menuitem", { name: "Delete…" }).click();
    await confirm.getByRole("button", { name: "Delete snapshot" }).click();
    await page.getByRole("row", { name: /burst-1/ }).waitFor({ state: "detached" });
    expect(cli("snapshot", "list", `local/${busy}`)).not.toMatch(/burst-1/);
    // A pinned snapshot cannot be deleted from its menu, and says why.
    await page.getByRole("button", { name: "Actions for before-upgrade" }).click();
    const pinned = page.getByRole("menuitem", { name: "Delete…" });
    expect(await pinned.isDisabled()).toBe(true);
    expect(await pinned.getAttribute("title")).toBe("Pinned: unpin it first");
    await page.close();
  });

  it("prunes a target after showing what goes: the older export's data merged into the newer", async () => {
    // A second export of the VM, built on the first (changed blocks only).
    cli("export", `local/${busy}`, "burst-3", "--to", "shelf");
    const page = await open(SIZES[0], "light");
    await view(page, "Exports");
    const older = page.getByRole("row", { name: new RegExp(`${busy}.*before-upgrade`) });
    const newer = page.getByRole("row", { name: new RegExp(`${busy}.*burst-3`) });
    await newer.getByText("good").waitFor();
    const olderId = (await older.locator(".mono").textContent()) ?? "";
    // An export of the VM interrupted long ago that nothing will resume: newer ones supersede it.
    const vmFolder = readdirSync(exportDir).find((d) => existsSync(join(exportDir, d, olderId))) ?? "";
    expect(vmFolder).not.toBe("");
    const stale = join(exportDir, vmFolder, "20200101T000000Z-stale.partial");
    mkdirSync(stale);
    writeFileSync(
      join(stale, "job.json"),
      JSON.stringify({
        format: "snapkeep-export",
        id: "20200101T000000Z-stale",
        startedAt: "2020-01-01T00:00:00.000Z",
        host: "local",
        vmUuid: (
          JSON.parse(readFileSync(join(exportDir, vmFolder, olderId, "manifest.json"), "utf8")) as {
            source: { vm: { uuid: string } };
          }
        ).source.vm.uuid,
        vmName: busy,
        snapshotTag: "stale",
        disks: ["vda"],
      }),
    );
    writeFileSync(join(stale, "vda.qcow2"), "the first part of an image");
    execFileSync("find", [stale, "-exec", "touch", "-d", "2 days ago", "{}", "+"]);
    await page.getByRole("region", { name: "shelf" }).getByRole("button", { name: "Prune…" }).click();
    const dialog = page.getByRole("dialog", { name: "Prune exports on shelf" });
    await dialog.getByLabel("Verified exports to keep per VM").fill("1");
    await dialog.getByRole("button", { name: "Check what goes" }).click();
    const plan = dialog.getByRole("status", { name: "What pruning does" });
    await expect.poll(() => plan.textContent()).toMatch(new RegExp(`Removes 1 export: .*${olderId}`));
    expect(await plan.textContent()).toMatch(/takes in/);
    expect(await plan.textContent()).toMatch(
      /And 1 unfinished export that will never be resumed: .*20200101T000000Z-stale\.partial \(unfinished since 2020-01-01 00:00 UTC, superseded by \S+-burst-3, nothing written to it for 24 h\)/,
    );
    await page.screenshot({ path: join(shots, "screen-exports-prune.png") });
    // Nothing went yet: the plan was a dry run.
    expect(cli("exports", "list", "--target", "shelf")).toContain(olderId);
    await dialog.getByRole("button", { name: "Remove 2 exports" }).click();
    await dialog.waitFor({ state: "detached" });
    expect(existsSync(stale)).toBe(false);
    await older.waitFor({ state: "detached" });
    expect(cli("exports", "list", "--target", "shelf")).not.toContain(olderId);
    await newer.getByText("good").waitFor();
    await page.close();
  });

  it("removes an export after showing its dry run in the app's dialog; Cancel keeps it", async () => {
    const page = await open(SIZES[0], "light");
    await view(page, "Exports");
    const row = page.getByRole("row", { name: new RegExp(`${busy}.*burst-3`) });
    await row.getByText("good").waitFor();
    const id = (await row.locator(".mono").textContent()) ?? "";
    expect(cli("exports", "list", "--target", "shelf")).toContain(id);
    const remove = async (): Promise<void> => {
      await row.getByRole("button", { name: `Actions for export ${id}` }).click();
      await page.getByRole("menuitem", { name: "Remove…" }).click();
    };
    await remove();
    const confirm = page.getByRole("dialog", { name: `Remove export ${id}?` });
    expect(await confirm.textContent()).toContain(
      `The copy of ${busy} “burst-3” on shelf is deleted from the target.`,
    );
    await page.screenshot({ path: join(shots, "screen-export-remove.png") });
    await confirm.getByRole("button", { name: "Cancel" }).click();
    await confirm.waitFor({ state: "detached" });
    expect(cli("exports", "list", "--target", "shelf")).toContain(id);
    await remove();
    await confirm.getByRole("button", { name: "Remove export" }).click();
    await row.waitFor({ state: "detached" });
    expect(cli("exports", "list", "--target", "shelf")).not.toContain(id);
    await page.close();
  });

  it("never opened a native dialog and threw no page errors", () => {
    expect(nativeDialogs).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});

/**
 * The desktop settings' file, for real on disk. electron-store loads Electron, which cannot run
 * here; conf is the class it extends and reads and writes the file with the same code, so these
 * tests open the file through conf with the options the app gives electron-store.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

import { openSettingsStore } from "../../core/infra/store/store.js";
import { confDocument } from "../support/desktop-settings.js";
import {
  defaultDesktopSettings,
  openDesktopSettings,
  type DesktopSettingsOptions,
  type SettingsDocument,
  type SettingsDocumentOptions,
} from "../../electron/lib/desktop-settings.js";

const homes: string[] = [];
afterEach(() => homes.splice(0).forEach((home) => rmSync(home, { recursive: true, force: true })));
const now = new Date("2026-11-26T10:00:00Z");
const freshHome = (): string => {
  const home = mkdtempSync(join(tmpdir(), "snapkeep-desktop-settings-"));
  homes.push(home);
  return home;
};

function open(home: string, overrides: Partial<DesktopSettingsOptions> = {}) {
  const log: string[] = [];
  const settings = openDesktopSettings({
    folder: home,
    now,
    openDocument: confDocument,
    core: openSettingsStore(home, now),
    log: (line) => log.push(line),
    ...overrides,
  });
  return { settings, log };
}

const file = (home: string): string => join(home, "desktop-settings.json");
const onDisk = (path: string): unknown => JSON.parse(readFileSync(path, "utf8"));
const names = (home: string): string[] =>
  readdirSync(home)
    .filter((name) => name.startsWith("desktop-settings.json"))
    .sort();

/** A settings.json as Snapkeep wrote it before the desktop settings had their own file. */
function writeOldCoreSettings(home: string, desktop: unknown): string {
  const text = `${JSON.stringify(
    {
      version: 1,
      hosts: [{ name: "local", kind: "local", uri: "qemu:///system" }],
      annotations: {},
      safetyKeep: 7,
      desktop,
    },
    null,
    "\t",
  )}\n`;
  writeFileSync(join(home, "settings.json"), text, { mode: 0o600 });
  return text;
}

const oldDesktop = {
  autostart: true,
  notifications: { jobFailed: true, vmOverdue: false, exportVerified: true },
  keyPassphrase: { ciphertext: "c2VhbGVkOnB3", backend: "gnome_libsecret" },
};

describe("desktop settings", () => {
  it("start with the defaults without writing, then keep each change owner-only with a last good copy", () => {
    const home = freshHome();
    const { settings, log } = open(home);
    expect(settings.read()).toEqual({
      version: 1,
      autostart: false,
      notifications: { jobFailed: true, vmOverdue: true, exportVerified: true },
    });
    expect(settings.recovered).toBeNull();
    expect(names(home)).toEqual([]);

    settings.update((s) => ({ ...s, autostart: true }));
    expect(names(home)).toEqual(["desktop-settings.json", "desktop-settings.json.last-good"]);
    expect(statSync(file(home)).mode & 0o777).toBe(0o600);
    expect(statSync(`${file(home)}.last-good`).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${file(home)}.last-good`, "utf8")).toBe(readFileSync(file(home), "utf8"));
    expect(onDisk(file(home))).toMatchObject({ version: 1, autostart: true });
    expect(open(home).settings.read().autostart).toBe(true);
    expect(log).toEqual([]);
  });

  it("refuses a change the schema does not allow and keeps the file as it was", () => {
    const home = freshHome();
    const { settings } = open(home);
    settings.update((s) => ({ ...s, autostart: true }));
    const before = readFileSync(file(home), "utf8");
    expect(() =>
      settings.update((s) => ({ ...s, window: { x: 0, y: 0, width: -5, height: 10, maximized: false } })),
    ).toThrow();
    expect(() =>
      settings.update((s) => ({ ...s, keyPassphrase: { ciphertext: "not base64!", backend: "x" } })),
    ).toThrow();
    expect(readFileSync(file(home), "utf8")).toBe(before);
    expect(settings.read().window).toBeUndefined();
  });

  it("hands out copies: changing what read() returned changes nothing", () => {
    const { settings } = open(freshHome());
    const seen = settings.read();
    seen.notifications.jobFailed = false;
    expect(settings.read().notifications.jobFailed).toBe(true);
  });

  it("reads a file saved with a byte order mark", () => {
    const home = freshHome();
    writeFileSync(file(home), `\uFEFF${JSON.stringify({ version: 1, autostart: true })}`);
    const { settings } = open(home);
    expect(settings.recovered).toBeNull();
    expect(settings.read().autostart).toBe(true);
  });

  it("removes temporary files a write cut off by a crash left behind", () => {
    const home = freshHome();
    writeFileSync(`${file(home)}.tmp-17640000001a2b3c`, "{");
    writeFileSync(`${file(home)}.last-good.tmp-00ff00`, "");
    writeFileSync(join(home, "settings.json.tmp-aaaa"), "not ours");
    open(home);
    expect(names(home)).toEqual([]);
    expect(readdirSync(home)).toContain("settings.json.tmp-aaaa");
  });
});

describe("an unreadable desktop settings file", () => {
  it.each([
    ["not JSON", "{ this is not json"],
    ["a schema violation", JSON.stringify({ version: 1, autostart: "yes" })],
    ["no version", JSON.stringify({ autostart: true })],
    ["JSON that is no object", "[1, 2]"],
  ])("(%s) is kept aside, reported, and the last good copy takes its place", (_why, content) => {
    const home = freshHome();
    const first = open(home).settings;
    first.update((s) => ({ ...s, autostart: true }));
    const good = readFileSync(file(home), "utf8");
    writeFileSync(file(home), content);

    const { settings } = open(home);
    const movedTo = `${file(home)}.corrupt-2026-11-26T10-00-00.000Z`;
    expect(settings.recovered).toMatchObject({ movedTo });
    expect(settings.recovered?.message).toMatch(
      /^The desktop settings file could not be read \(not (valid JSON|what Snapkeep expects): .+\); it was moved to \S+desktop-settings\.json\.corrupt-2026-11-26T10-00-00\.000Z and the last good desktop settings were restored from \S+desktop-settings\.json\.last-good\.$/,
    );
    expect(readFileSync(movedTo, "utf8")).toBe(content);
    expect(readFileSync(file(home), "utf8")).toBe(good);
    expect(settings.read().autostart).toBe(true);
    expect(statSync(file(home)).mode & 0o777).toBe(0o600);
    // The repaired file opens through electron-store as any other, and takes changes.
    settings.update((s) => ({ ...s, autostart: false }));
    expect(open(home).settings.read().autostart).toBe(false);
  });

  it("without a last good copy, the defaults take its place and the message says so", () => {
    const home = freshHome();
    writeFileSync(file(home), "{");
    const { settings } = open(home);
    expect(settings.recovered?.message).toMatch(
      /and the desktop app started with its default settings \(no start on login, every notification, no stored key passphrase\)\.$/,
    );
    expect(settings.read()).toEqual(defaultDesktopSettings());
    expect(names(home)).toEqual([
      "desktop-settings.json",
      "desktop-settings.json.corrupt-2026-11-26T10-00-00.000Z",
      "desktop-settings.json.last-good",
    ]);
  });

  it("without a last good copy but with the old slice still in settings.json, that slice takes its place", () => {
    const home = freshHome();
    writeOldCoreSettings(home, oldDesktop);
    writeFileSync(file(home), "{");
    const { settings } = open(home);
    expect(settings.recovered?.message).toMatch(
      /and the desktop settings kept in settings\.json were used\.$/,
    );
    expect(settings.read()).toEqual({ version: 1, ...oldDesktop });
    expect(onDisk(join(home, "settings.json"))).not.toHaveProperty("desktop");
  });

  it("written by a newer Snapkeep is refused and left exactly as it was", () => {
    const home = freshHome();
    const newer = JSON.stringify({ version: 2, somethingNew: true });
    writeFileSync(file(home), newer);
    expect(() => open(home)).toThrow(
      expect.objectContaining({
        code: "STORE_CORRUPT",
        message: expect.stringContaining("was written by a newer Snapkeep (version 2"),
        hint: expect.stringContaining("Upgrade Snapkeep"),
      }),
    );
    expect(readFileSync(file(home), "utf8")).toBe(newer);
    expect(names(home)).toEqual(["desktop-settings.json"]);
  });

  it("that cannot be read at all (a folder in its place) is reported as it is, not moved", () => {
    const home = freshHome();
    mkdirSync(file(home));
    expect(() => open(home)).toThrow(
      expect.objectContaining({
        code: "STORE_CORRUPT",
        message: expect.stringMatching(/^Cannot read the desktop settings file \S+desktop-settings\.json: /),
      }),
    );
    expect(names(home)).toEqual(["desktop-settings.json"]);
  });
});

describe("moving the desktop settings out of settings.json", () => {
  it("moves the slice on the first start, then removes it from settings.json and nothing else", () => {
    const home = freshHome();
    writeOldCoreSettings(home, oldDesktop);
    const before = onDisk(join(home, "settings.json")) as Record<string, unknown>;
    const { settings, log } = open(home);

    expect(settings.read()).toEqual({ version: 1, ...oldDesktop });
    expect(onDisk(file(home))).toEqual({ version: 1, ...oldDesktop });
    expect(statSync(file(home)).mode & 0o777).toBe(0o600);
    const { desktop: _moved, ...rest } = before;
    expect(onDisk(join(home, "settings.json"))).toMatchObject(rest);
    expect(onDisk(join(home, "settings.json"))).not.toHaveProperty("desktop");
    expect(readFileSync(join(home, "settings.json"), "utf8")).not.toContain("c2VhbGVkOnB3");
    expect(log).toEqual([
      expect.stringMatching(
        /^The desktop app's settings moved from settings\.json to \S+desktop-settings\.json\.$/,
      ),
    ]);

    // The next start finds the file and leaves settings.json alone.
    const core = readFileSync(join(home, "settings.json"), "utf8");
    const again = open(home);
    expect(again.settings.read()).toEqual({ version: 1, ...oldDesktop });
    expect(again.log).toEqual([]);
    expect(readFileSync(join(home, "settings.json"), "utf8")).toBe(core);
  });

  it("fills what an old slice lacks with the defaults", () => {
    const home = freshHome();
    writeOldCoreSettings(home, { autostart: true });
    expect(open(home).settings.read()).toEqual({
      version: 1,
      autostart: true,
      notifications: { jobFailed: true, vmOverdue: true, exportVerified: true },
    });
  });

  it("loses nothing when the new file cannot be written: settings.json stays as it was and the move finishes with the next change", () => {
    const home = freshHome();
    const text = writeOldCoreSettings(home, oldDesktop);
    let full = true;
    const fullDisk = (options: SettingsDocumentOptions): SettingsDocument => {
      const real = confDocument(options);
      return {
        path: real.path,
        get store() {
          return real.store;
        },
        set store(value) {
          if (full) {
            throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
          }
          real.store = value;
        },
      };
    };
    const { settings, log } = open(home, { openDocument: fullDisk });
    expect(log).toEqual([
      expect.stringMatching(
        /^The desktop app's settings could not be moved from settings\.json to \S+ \(The disk that holds \S+ is full, so the settings could not be saved; they are as they were before\.\); they stay in settings\.json and the move is tried again at the next change or start\.$/,
      ),
    ]);
    expect(readFileSync(join(home, "settings.json"), "utf8")).toBe(text);
    expect(names(home)).toEqual([]);
    // The app goes by the old slice meanwhile.
    expect(settings.read()).toEqual({ version: 1, ...oldDesktop });

    // Still full: a change fails whole and the old slice stays.
    expect(() => settings.update((s) => ({ ...s, autostart: false }))).toThrow(/is full/);
    expect(settings.read().autostart).toBe(true);
    expect(readFileSync(join(home, "settings.json"), "utf8")).toBe(text);

    full = false;
    settings.update((s) => ({ ...s, autostart: false }));
    expect(onDisk(file(home))).toEqual({ version: 1, ...oldDesktop, autostart: false });
    expect(onDisk(join(home, "settings.json"))).not.toHaveProperty("desktop");
  });

  it("tries the removal again at the next start when settings.json could not be written, and the file wins", () => {
    const home = freshHome();
    writeOldCoreSettings(home, oldDesktop);
    const core = openSettingsStore(home, now);
    const refusing: DesktopSettingsOptions["core"] = {
      read: () => core.read(),
      update: () => {
        throw new Error("EROFS: read-only file system");
      },
    };
    const first = open(home, { core: refusing });
    expect(first.log).toEqual([
      expect.stringMatching(/moved from settings\.json/),
      expect.stringMatching(
        /^The desktop settings are in \S+ now, but their old copy could not be removed from settings\.json \(EROFS: read-only file system\); Snapkeep tries again at the next start\.$/,
      ),
    ]);
    first.settings.update((s) => ({ ...s, autostart: false }));
    expect(onDisk(join(home, "settings.json"))).toHaveProperty("desktop");

    const second = open(home);
    expect(second.settings.read().autostart).toBe(false);
    expect(onDisk(join(home, "settings.json"))).not.toHaveProperty("desktop");
  });

  it("keeps settings.json's other settings when the CLI writes it while the slice is there", () => {
    const home = freshHome();
    writeOldCoreSettings(home, oldDesktop);
    const store = openSettingsStore(home, now);
    expect(store.read().desktop).toEqual(oldDesktop);
    store.update((s) => ({ ...s, safetyKeep: 9 }));
    expect(onDisk(join(home, "settings.json"))).toMatchObject({ safetyKeep: 9, desktop: oldDesktop });
  });
});

describe("a desktop settings write cut short", () => {
  it("is noticed: the change is refused, and the next start puts the last good copy back", () => {
    const home = freshHome();
    const { settings } = open(home);
    settings.update((s) => ({ ...s, autostart: true }));
    const good = readFileSync(file(home), "utf8");
    // What atomically does on a nearly full disk: one write(2) that took only part of the file.
    const shortWriter = (options: SettingsDocumentOptions): SettingsDocument => {
      const real = confDocument(options);
      return {
        path: real.path,
        get store() {
          return real.store;
        },
        set store(value) {
          writeFileSync(real.path, options.serialize(value).slice(0, 20));
        },
      };
    };
    const cut = open(home, { openDocument: shortWriter }).settings;
    expect(() => cut.update((s) => ({ ...s, autostart: false }))).toThrow(
      expect.objectContaining({
        code: "NO_SPACE",
        message: expect.stringMatching(
          /^The desktop settings could not be written in full to \S+ \(is the disk that holds it full\?\), so the change was not saved\.$/,
        ),
      }),
    );
    expect(cut.read().autostart).toBe(true);
    expect(readFileSync(`${file(home)}.last-good`, "utf8")).toBe(good);

    const next = open(home).settings;
    expect(next.recovered?.message).toMatch(/the last good desktop settings were restored/);
    expect(next.read().autostart).toBe(true);
  });
});

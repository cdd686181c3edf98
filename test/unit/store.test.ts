import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { snapkeepHome } from "../../core/store/home.js";
import { openSettingsStore } from "../../core/store/store.js";

const homes: string[] = [];
const freshHome = (): string => {
  const home = mkdtempSync(join(tmpdir(), "snapkeep-store-"));
  homes.push(home);
  return home;
};
afterEach(() => {
  for (const home of homes.splice(0)) {
    rmSync(home, { recursive: true, force: true });
  }
});
const now = new Date("2026-11-26T10:00:00Z");

describe("settings store", () => {
  it("starts empty, says it was created, and persists validated changes", () => {
    const home = freshHome();
    const store = openSettingsStore(home, now);
    expect(store.createdNow).toBe(true);
    expect(store.read()).toEqual({
      version: 1,
      hosts: [],
      annotations: {},
      schedules: [],
      scheduleState: {},
      vmSettings: {},
      targets: [],
      safetyKeep: 5,
      managedVms: [],
      schedulePause: null,
      desktop: {
        autostart: false,
        notifications: { jobFailed: true, vmOverdue: true, exportVerified: true },
      },
    });
    store.update((s) => ({ ...s, hosts: [{ name: "local", kind: "local", uri: "qemu:///system" }] }));
    const again = openSettingsStore(home, now);
    expect(again.createdNow).toBe(false);
    expect(again.read().hosts).toEqual([{ name: "local", kind: "local", uri: "qemu:///system" }]);
    expect(JSON.parse(readFileSync(join(home, "settings.json"), "utf8")).hosts).toHaveLength(1);
  });

  it("opens a file written before schedules existed, filling the new parts with defaults", () => {
    const home = freshHome();
    const old = {
      version: 1,
      hosts: [{ name: "local", kind: "local", uri: "qemu:///system" }],
      annotations: {},
    };
    writeFileSync(join(home, "settings.json"), JSON.stringify(old));
    const store = openSettingsStore(home, now);
    expect(store.recovered).toBeNull();
    expect(store.read()).toMatchObject({ ...old, schedules: [], scheduleState: {} });
  });

  it("refuses an invalid change and keeps the file as it was", () => {
    const home = freshHome();
    const store = openSettingsStore(home, now);
    expect(() =>
      store.update((s) => ({ ...s, hosts: [{ name: "bad name/x", kind: "local", uri: "u" }] })),
    ).toThrow();
    expect(openSettingsStore(home, now).read().hosts).toEqual([]);
  });

  it.each([
    ["not JSON", "{ this is not json"],
    [
      "a schema violation",
      JSON.stringify({ version: 1, hosts: [{ name: "x", kind: "martian" }], annotations: {} }),
    ],
  ])("moves a corrupt file (%s) aside and reports it instead of silently resetting", (_why, content) => {
    const home = freshHome();
    writeFileSync(join(home, "settings.json"), content);
    const store = openSettingsStore(home, now);
    expect(store.recovered?.movedTo).toBe(join(home, "settings.json.corrupt-2026-11-26T10-00-00.000Z"));
    expect(store.recovered?.reason.length).toBeGreaterThan(0);
    expect(readFileSync(store.recovered?.movedTo ?? "", "utf8")).toBe(content);
    expect(store.read().hosts).toEqual([]);
    expect(readdirSync(home).sort()).toEqual([
      "settings.json",
      "settings.json.corrupt-2026-11-26T10-00-00.000Z",
    ]);
  });
});

describe("settings the store must not move aside", () => {
  const newer = JSON.stringify({ version: 2, hosts: [], annotations: {}, somethingNew: { a: 1 } });

  it("refuses a file written by a newer Snapkeep and leaves it exactly as it was", () => {
    const home = freshHome();
    writeFileSync(join(home, "settings.json"), newer);
    expect(() => openSettingsStore(home, now)).toThrow(
      expect.objectContaining({
        code: "STORE_CORRUPT",
        message: expect.stringContaining("written by a newer Snapkeep"),
        hint: expect.stringContaining("Upgrade Snapkeep"),
        details: expect.objectContaining({ version: 2, supported: 1 }),
      }),
    );
    expect(readFileSync(join(home, "settings.json"), "utf8")).toBe(newer);
    expect(readdirSync(home)).toEqual(["settings.json"]);
  });

  it("refuses to read or update once a newer Snapkeep has rewritten the file meanwhile", () => {
    const home = freshHome();
    const store = openSettingsStore(home, now);
    writeFileSync(join(home, "settings.json"), newer);
    expect(() => store.read()).toThrow(expect.objectContaining({ code: "STORE_CORRUPT" }));
    expect(() => store.update((s) => s)).toThrow(expect.objectContaining({ code: "STORE_CORRUPT" }));
    expect(readFileSync(join(home, "settings.json"), "utf8")).toBe(newer);
  });

  it("does not move a file aside that broke while running, but refuses to use it", () => {
    const home = freshHome();
    const store = openSettingsStore(home, now);
    writeFileSync(join(home, "settings.json"), "{ nope");
    expect(() => store.read()).toThrow(
      expect.objectContaining({ code: "STORE_CORRUPT", message: expect.stringContaining("not valid JSON") }),
    );
    expect(() => store.update((s) => s)).toThrow(expect.objectContaining({ code: "STORE_CORRUPT" }));
    expect(readdirSync(home)).toEqual(["settings.json"]);
  });

  it("reports a directory in the file's place instead of moving it aside", () => {
    const home = freshHome();
    mkdirSync(join(home, "settings.json"));
    expect(() => openSettingsStore(home, now)).toThrow(
      expect.objectContaining({
        code: "STORE_CORRUPT",
        message: expect.stringMatching(/^Cannot read the settings file .*EISDIR/),
      }),
    );
    expect(readdirSync(home)).toEqual(["settings.json"]);
  });

  // root reads any file whatever its mode, so this can only be checked as another user.
});

describe("state directory", () => {
  it("prefers SNAPKEEP_HOME, else the platform's app-data folder shared with the desktop app", () => {
    expect(snapkeepHome("linux", { SNAPKEEP_HOME: "/srv/sk" }, "/home/a")).toBe("/srv/sk");
    expect(snapkeepHome("linux", {}, "/home/a")).toBe("/home/a/.config/Snapkeep");
    expect(snapkeepHome("linux", { XDG_CONFIG_HOME: "/x" }, "/home/a")).toBe("/x/Snapkeep");
    expect(snapkeepHome("darwin", {}, "/Users/a")).toBe("/Users/a/Library/Application Support/Snapkeep");
    expect(snapkeepHome("win32", { APPDATA: "C:\\AppData" }, "C:\\Users\\a")).toBe("C:\\AppData\\Snapkeep");
    expect(snapkeepHome("win32", {}, "C:\\Users\\a")).toBe("C:\\Users\\a\\AppData\\Roaming\\Snapkeep");
  });
});

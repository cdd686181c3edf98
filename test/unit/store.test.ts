import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { snapkeepHome } from "../../core/infra/store/home.js";
import { openSettingsStore } from "../../core/infra/store/store.js";

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
      copyState: {},
      vmSettings: {},
      targets: [],
      safetyKeep: 5,
      managedVms: [],
      schedulePause: null,
      alertChannels: [],
      alertOpen: {},
      alertHeld: [],
      alertTally: null,
      drills: [],
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

  it("still opens a file holding the desktop app's settings from before they had their own file, and carries them along", () => {
    const home = freshHome();
    const desktop = {
      autostart: true,
      notifications: { jobFailed: false, vmOverdue: true, exportVerified: true },
      keyPassphrase: { ciphertext: "c2VhbGVk", backend: "kwallet6" },
    };
    writeFileSync(
      join(home, "settings.json"),
      JSON.stringify({ version: 1, hosts: [], annotations: {}, desktop }),
    );
    const store = openSettingsStore(home, now);
    expect(store.recovered).toBeNull();
    expect(store.read().desktop).toEqual(desktop);
    store.update((s) => ({ ...s, safetyKeep: 3 }));
    expect(JSON.parse(readFileSync(join(home, "settings.json"), "utf8"))).toMatchObject({
      safetyKeep: 3,
      desktop,
    });
    // Only the desktop app removes it, once its own file holds it (electron/lib/desktop-settings.ts).
    store.update(({ desktop: _moved, ...rest }) => rest);
    expect(openSettingsStore(home, now).read()).not.toHaveProperty("desktop");
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
    expect(store.recovered?.message).toMatch(/and Snapkeep started with empty settings\.$/);
    expect(store.read().hosts).toEqual([]);
    expect(readdirSync(home).sort()).toEqual([
      "settings.json",
      "settings.json.corrupt-2026-11-26T10-00-00.000Z",
      "settings.json.last-good",
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
    expect(readdirSync(home).sort()).toEqual(["settings.json", "settings.json.last-good"]);
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

describe("settings that survive a bad write or a bad edit", () => {
  const local = { name: "local", kind: "local", uri: "qemu:///system" } as const;
  const mode = (path: string): number => statSync(path).mode & 0o777;

  it("writes settings.json and its last good copy 0600, and narrows an older 0644 file when opened", () => {
    const home = freshHome();
    const path = join(home, "settings.json");
    writeFileSync(path, JSON.stringify({ version: 1, hosts: [local], annotations: {} }), { mode: 0o644 });
    chmodSync(path, 0o644);
    const store = openSettingsStore(home, now);
    expect(mode(path)).toBe(0o600);
    store.update((s) => ({ ...s, safetyKeep: 3 }));
    expect(mode(path)).toBe(0o600);
    expect(mode(`${path}.last-good`)).toBe(0o600);
    expect(JSON.parse(readFileSync(`${path}.last-good`, "utf8"))).toEqual(store.read());
  });

  it("reads a settings file that starts with a UTF-8 byte order mark", () => {
    const home = freshHome();
    writeFileSync(
      join(home, "settings.json"),
      `\uFEFF${JSON.stringify({ version: 1, hosts: [local], annotations: {} })}`,
    );
    const store = openSettingsStore(home, now);
    expect(store.recovered).toBeNull();
    expect(store.read().hosts).toEqual([local]);
  });

  it("puts the last good settings back when settings.json is unreadable, keeping the broken file and saying so", () => {
    const home = freshHome();
    const path = join(home, "settings.json");
    const first = openSettingsStore(home, now);
    first.update((s) => ({ ...s, hosts: [local] }));
    const saved = first.update((s) => ({ ...s, safetyKeep: 7 }));
    // What a short write that was renamed into place left behind (issue 13).
    truncateSync(path, Math.floor(statSync(path).size / 2));
    const broken = readFileSync(path, "utf8");

    const store = openSettingsStore(home, now);
    const movedTo = join(home, "settings.json.corrupt-2026-11-26T10-00-00.000Z");
    expect(store.recovered).toEqual({
      movedTo,
      reason: expect.stringMatching(/^not valid JSON/),
      message: `The settings file could not be read (${store.recovered?.reason}); it was moved to ${movedTo} and the last good settings were restored from ${path}.last-good.`,
    });
    expect(store.read()).toEqual(saved);
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual(saved);
    expect(mode(path)).toBe(0o600);
    expect(readFileSync(movedTo, "utf8")).toBe(broken);
    expect(openSettingsStore(home, now).recovered).toBeNull();
  });

  it("checks a libvirt URI read from the file as `host add` does", () => {
    const home = freshHome();
    const path = join(home, "settings.json");
    openSettingsStore(home, now).update((s) => ({ ...s, hosts: [local] }));
    const edited = { ...local, uri: "qemu+ext:///system?command=/tmp/run-me" };
    writeFileSync(path, JSON.stringify({ version: 1, hosts: [edited], annotations: {} }));

    const store = openSettingsStore(home, now);
    expect(store.recovered?.reason).toBe(
      "not what Snapkeep expects: hosts.0.uri: not a libvirt URI Snapkeep uses (qemu:///system or qemu:///session)",
    );
    expect(store.read().hosts).toEqual([local]);
    expect(() => store.update((s) => ({ ...s, hosts: [edited] }))).toThrow(/not a libvirt URI/);
    expect(store.update((s) => ({ ...s, hosts: [{ ...local, uri: "qemu:///session" }] })).hosts).toHaveLength(
      1,
    );
  });

  it("does not let a lock or temporary files left by a writer that died block or fill the next write", () => {
    const home = freshHome();
    const path = join(home, "settings.json");
    const store = openSettingsStore(home, now);
    writeFileSync(`${path}.lock`, JSON.stringify({ pid: 2 ** 30, hostname: hostname(), token: "dead" }));
    writeFileSync(`${path}.tmp-0123456789ab`, '{"version": 1, "hos');
    writeFileSync(`${path}.last-good.tmp-ba9876543210`, "");
    const started = Date.now();
    store.update((s) => ({ ...s, safetyKeep: 9 }));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(readdirSync(home).sort()).toEqual(["settings.json", "settings.json.last-good"]);
    expect(openSettingsStore(home, now).read().safetyKeep).toBe(9);
  });

  it("reads a valid file without taking the lock, so commands that only read are not held up", () => {
    const home = freshHome();
    const path = join(home, "settings.json");
    openSettingsStore(home, now).update((s) => ({ ...s, hosts: [local] }));
    // A live holder (this process) that never lets go.
    writeFileSync(`${path}.lock`, JSON.stringify({ pid: process.pid, hostname: hostname(), token: "busy" }));
    expect(openSettingsStore(home, now).read().hosts).toEqual([local]);
  });
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

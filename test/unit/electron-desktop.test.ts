/**
 * The desktop app's composition without Electron: the real core on a temporary SNAPKEEP_HOME (no
 * hosts, so nothing reaches a hypervisor), with the Electron-only ports recorded.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ApiEvent } from "../../core/api/api.js";
import { acquireSchedulerLock } from "../../core/infra/scheduler-lock.js";
import { openSettingsStore } from "../../core/infra/store/store.js";
import { Desktop, type DesktopPorts } from "../../electron/lib/desktop.js";
import { type DesktopSettings } from "../../electron/lib/desktop-settings.js";
import { APP_PAGE } from "../../electron/lib/ipc.js";
import type { KeyringFacts } from "../../electron/lib/secrets.js";
import type { TrayState } from "../../electron/lib/tray-menu.js";
import { confDocument } from "../support/desktop-settings.js";

const homes: string[] = [];
const open: Desktop[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.dispose()));
  homes.splice(0).forEach((h) => rmSync(h, { recursive: true, force: true }));
});

const ours = { url: APP_PAGE, isMainFrame: true };
const now = new Date("2026-11-26T10:00:00Z");
/** The desktop settings as the app left them on disk. */
const desktopFile = (home: string): DesktopSettings =>
  JSON.parse(readFileSync(join(home, "desktop-settings.json"), "utf8")) as DesktopSettings;

async function openDesktop(
  keyring: KeyringFacts = { platform: "linux", backend: "gnome_libsecret", encryptionAvailable: true },
) {
  const home = mkdtempSync(join(tmpdir(), "snapkeep-desktop-"));
  homes.push(home);
  const seen = {
    trays: [] as TrayState[],
    autostart: [] as boolean[],
    events: [] as ApiEvent[],
    log: [] as string[],
    notices: [] as string[],
  };
  const ports: DesktopPorts = {
    now: () => now,
    timers: { at: () => ({ cancel: () => undefined }), every: () => ({ cancel: () => undefined }) },
    notify: (title) => seen.notices.push(title),
    trayChanged: (state) => seen.trays.push(state),
    broadcast: (event) => seen.events.push(event),
    applyAutostart: async (enabled) => {
      seen.autostart.push(enabled);
    },
    keyring: {
      facts: async () => keyring,
      // Reversible stand-in for the OS keyring: the test checks what is stored, not the cipher.
      encrypt: async (plain) => Buffer.from(`sealed:${plain}`).toString("base64"),
      decrypt: async (base64) =>
        Buffer.from(base64, "base64")
          .toString()
          .replace(/^sealed:/, ""),
    },
    openSettingsDocument: confDocument,
    log: (line) => seen.log.push(line),
  };
  return { home, seen, ports };
}

describe("Desktop", () => {
  it("runs the scheduler itself and answers desktop methods over the IPC router", async () => {
    const { home, seen, ports } = await openDesktop();
    const desktop = await Desktop.open({ home, env: { PATH: "" }, ports });
    open.push(desktop);
    expect(desktop.scheduling.state).toEqual({ kind: "here" });
    expect(desktop.powerTarget()).not.toBeNull();

    expect(
      await desktop.route(ours, { id: 1, method: "desktop.autostart", params: { enabled: true } }),
    ).toEqual({
      id: 1,
      result: { enabled: true },
    });
    expect(seen.autostart).toEqual([true]);
    expect(desktopFile(home).autostart).toBe(true);

    expect(
      await desktop.route(ours, {
        id: 2,
        method: "desktop.notifications",
        params: { exportVerified: false },
      }),
    ).toEqual({ id: 2, result: { jobFailed: true, vmOverdue: true, exportVerified: false } });

    // Core methods reach the API; a pause shows in the tray at once.
    expect(
      await desktop.route(ours, { id: 3, method: "schedules.pauseAll", params: { minutes: 60 } }),
    ).toEqual({
      id: 3,
      result: { since: "2026-11-26T10:00:00.000Z", until: "2026-11-26T11:00:00.000Z" },
    });
    expect(seen.trays.at(-1)?.pause).toEqual({
      since: "2026-11-26T10:00:00.000Z",
      until: "2026-11-26T11:00:00.000Z",
    });
    await desktop.perform({ type: "resume-all" });
    expect(seen.trays.at(-1)?.pause).toBeNull();
  });

  it("stores a passphrase only through a real keyring, decrypts it on the next start, and forgets it", async () => {
    const { home, ports } = await openDesktop();
    const first = await Desktop.open({ home, env: { PATH: "" }, ports });
    open.push(first);
    expect(
      await first.route(ours, { id: 1, method: "desktop.storeKeyPassphrase", params: { passphrase: "pw" } }),
    ).toEqual({
      id: 1,
      // The secrets' state now: the UI shows it without asking again.
      result: { agent: false, stored: true, canStore: { allowed: true, reason: null } },
    });
    const stored = desktopFile(home).keyPassphrase;
    expect(stored).toEqual({
      ciphertext: Buffer.from("sealed:pw").toString("base64"),
      backend: "gnome_libsecret",
    });
    expect(readFileSync(join(home, "desktop-settings.json"), "utf8")).not.toContain('"pw"');
    expect(openSettingsStore(home, now).read()).not.toHaveProperty("desktop");
    expect(await first.route(ours, { id: 2, method: "desktop.secrets" })).toMatchObject({
      result: { stored: true, canStore: { allowed: true, reason: null } },
    });
    await first.dispose();
    open.splice(0);

    const plain = await openDesktop({ platform: "linux", backend: "basic_text", encryptionAvailable: true });
    const second = await Desktop.open({
      home,
      env: { PATH: "" },
      ports: { ...plain.ports, keyring: { ...plain.ports.keyring, decrypt: ports.keyring.decrypt } },
    });
    open.push(second);
    expect(plain.seen.log).toEqual([]); // the stored passphrase decrypted without complaint
    expect(
      await second.route(ours, {
        id: 3,
        method: "desktop.storeKeyPassphrase",
        params: { passphrase: "pw2" },
      }),
    ).toMatchObject({
      error: { code: "INVALID_INPUT", message: expect.stringMatching(/basic_text/) },
    });
    expect(desktopFile(home).keyPassphrase?.ciphertext).toBe(stored?.ciphertext);
    expect(await second.route(ours, { id: 4, method: "desktop.forgetKeyPassphrase" })).toMatchObject({
      id: 4,
      result: { stored: false },
    });
    expect(desktopFile(home).keyPassphrase).toBeUndefined();
  });

  it("opens while a daemon schedules, says so, and leaves power events to the daemon", async () => {
    const { home, seen, ports } = await openDesktop();
    openSettingsStore(home, now); // the daemon's first start made the settings
    const daemon = acquireSchedulerLock(home, "snapkeep daemon", now);
    try {
      const desktop = await Desktop.open({ home, env: { PATH: "" }, ports });
      open.push(desktop);
      expect(desktop.scheduling.state).toMatchObject({
        kind: "elsewhere",
        owner: { app: "snapkeep daemon" },
      });
      expect(desktop.powerTarget()).toBeNull();
      expect(seen.trays.at(-1)?.scheduling.kind).toBe("elsewhere");
      expect(await desktop.route(ours, { id: 1, method: "desktop.status" })).toMatchObject({
        result: {
          scheduling: { kind: "elsewhere", owner: { app: "snapkeep daemon" } },
          pause: null,
          autostart: false,
        },
      });
    } finally {
      daemon.release();
    }
  });
});

describe("Desktop start-up", () => {
  it("renews the login item at each start while it is on, and leaves it alone while off", async () => {
    const { home, seen, ports } = await openDesktop();
    const first = await Desktop.open({ home, env: { PATH: "" }, ports });
    expect(seen.autostart).toEqual([]);
    await first.route(ours, { id: 1, method: "desktop.autostart", params: { enabled: true } });
    await first.dispose();
    const second = await Desktop.open({ home, env: { PATH: "" }, ports });
    open.push(second);
    expect(seen.autostart).toEqual([true, true]);
  });

  it("tells the admin when the settings file was unreadable and moved aside", async () => {
    const { home, seen, ports } = await openDesktop();
    writeFileSync(join(home, "settings.json"), "{ not json");
    const desktop = await Desktop.open({ home, env: { PATH: "" }, ports });
    open.push(desktop);
    expect(seen.notices).toEqual(["Snapkeep's settings were unreadable"]);
    expect(seen.log[0]).toMatch(
      /^The settings file could not be read \(not valid JSON: .*\); it was moved to .*settings\.json\.corrupt-/,
    );
    expect(await desktop.route(ours, { id: 1, method: "desktop.status" })).toMatchObject({
      result: { settingsRecovered: { movedTo: expect.stringContaining("settings.json.corrupt-") } },
    });
  });

  it("tells the admin when its own settings file was unreadable and moved aside", async () => {
    const { home, seen, ports } = await openDesktop();
    writeFileSync(join(home, "desktop-settings.json"), JSON.stringify({ version: 1, autostart: "on" }));
    const desktop = await Desktop.open({ home, env: { PATH: "" }, ports });
    open.push(desktop);
    expect(seen.notices).toEqual(["Snapkeep's desktop settings were unreadable"]);
    expect(seen.log[0]).toMatch(
      /^The desktop settings file could not be read \(not what Snapkeep expects: autostart: .*\); it was moved to \S+desktop-settings\.json\.corrupt-\S+ and the desktop app started with its default settings/,
    );
    expect(await desktop.route(ours, { id: 1, method: "desktop.status" })).toMatchObject({
      result: {
        settingsRecovered: null,
        desktopSettingsRecovered: { movedTo: expect.stringContaining("desktop-settings.json.corrupt-") },
        autostart: false,
      },
    });
  });
});

describe("Desktop after an upgrade", () => {
  it("moves the desktop settings out of an older settings.json at its first start and goes by them", async () => {
    const { home, seen, ports } = await openDesktop();
    const ciphertext = Buffer.from("sealed:pw").toString("base64");
    writeFileSync(
      join(home, "settings.json"),
      JSON.stringify({
        version: 1,
        hosts: [],
        annotations: {},
        desktop: {
          autostart: true,
          notifications: { jobFailed: false, vmOverdue: true, exportVerified: true },
          keyPassphrase: { ciphertext, backend: "gnome_libsecret" },
        },
      }),
    );
    const desktop = await Desktop.open({ home, env: { PATH: "" }, ports });
    open.push(desktop);
    expect(seen.log).toEqual([
      expect.stringMatching(
        /^The desktop app's settings moved from settings\.json to \S+desktop-settings\.json\.$/,
      ),
    ]);
    expect(seen.autostart).toEqual([true]); // renewed at start, as before the move
    expect(await desktop.route(ours, { id: 1, method: "desktop.notifications", params: {} })).toEqual({
      id: 1,
      result: { jobFailed: false, vmOverdue: true, exportVerified: true },
    });
    expect(await desktop.route(ours, { id: 2, method: "desktop.secrets" })).toMatchObject({
      result: { stored: true },
    });
    expect(desktopFile(home).keyPassphrase).toEqual({ ciphertext, backend: "gnome_libsecret" });
    expect(openSettingsStore(home, now).read()).not.toHaveProperty("desktop");
  });

  it("remembers the window's size and place in its settings, written at the latest when it stops", async () => {
    const { home, ports } = await openDesktop();
    const first = await Desktop.open({ home, env: { PATH: "" }, ports });
    const displays = {
      workAreas: [{ x: 0, y: 0, width: 1920, height: 1050 }],
      primary: { x: 0, y: 0, width: 1920, height: 1050 },
    };
    expect(first.window.placement(displays)).toEqual({
      bounds: { width: 1200, height: 800 },
      maximized: false,
    });
    first.window.changed({ x: 40, y: 30, width: 1400, height: 900 }, true);
    await first.dispose();
    expect(desktopFile(home).window).toEqual({ x: 40, y: 30, width: 1400, height: 900, maximized: true });

    const second = await Desktop.open({ home, env: { PATH: "" }, ports });
    open.push(second);
    expect(second.window.placement(displays)).toEqual({
      bounds: { x: 40, y: 30, width: 1400, height: 900 },
      maximized: true,
    });
  });
});

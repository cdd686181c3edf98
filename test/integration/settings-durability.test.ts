/**
 * Issue 13, "the settings file survives a full disk": SNAPKEEP_HOME on a small tmpfs, filled so
 * that no page is free; one or two are (the lock fits, then none or only part of the new file: the
 * short write of the issue); or the new file fits but none or only part of its last good copy does.
 * Every path that writes the settings is driven there: through the `snapkeep` command where one
 * reaches it, through the real core and the desktop app's router otherwise (the desktop app's own
 * settings, desktop-settings.json, through conf: the Node base of electron-store, which needs
 * Electron). Each failing write must say one sentence, exit non-zero, and leave the settings file
 * and its copy byte for byte as they were, with no lock or temporary file beside them; once there is
 * room, the next write must go through at once. A read-only file system is checked the same way.
 */
import { execFileSync, spawnSync } from "node:child_process";
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openCoreContext, type CoreContext } from "../../core/app/context.js";
import { isSnapkeepError } from "../../core/errors.js";
import { sshEnvironmentFromProcess } from "../../core/infra/runner/factory.js";
import { Desktop, type DesktopPorts } from "../../electron/lib/desktop.js";
import { APP_PAGE } from "../../electron/lib/ipc.js";
import type { LabVm } from "../../core/app/lab/lab.js";
import { confDocument } from "../support/desktop-settings.js";
import { TestVms, uniqueSuffix } from "../support/libvirt.js";
import { startSshd, type TestSshd } from "../support/sshd.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const bin = join(repo, "bin/snapkeep.js");
const PAGE = 4096;
const DESKTOP_FILE = "desktop-settings.json";

const FULL =
  /^snapkeep: The disk that holds \S+ is full, so the settings could not be saved; they are as they were before\.\n {2}Free some space on it, then run the command again\.\n$/;
/** A snapshot is made on the host before its record is saved: the sentence says it was made. */
const SNAPSHOT_MADE =
  /^snapkeep: The snapshot "[^"]+" of \S+ was made, but its note and consistency record were not saved: The disk that holds \S+ is full, so the settings could not be saved; they are as they were before\.\n {2}Free some space on it, then run the command again\.\n$/;
/** A VM is deleted from the host before its records go from the settings: the sentence says so. */
const VM_DELETED =
  /^snapkeep: \S+ was deleted with its images, but its schedules and notes are still in the settings \(snapkeep orphans lists them\): The disk that holds \S+ is full, so the settings could not be saved; they are as they were before\.\n {2}Free some space on it, then run the command again\.\n$/;
const READ_ONLY =
  /^snapkeep: \S+ is on a read-only file system, so the settings could not be saved; they are as they were before\.\n {2}Remount it read-write, or set SNAPKEEP_HOME to a writable folder\.\n$/;

describe("settings on a full disk", () => {
  const mountPoint = mkdtempSync(join(tmpdir(), "snapkeep-full-"));
  const home = join(mountPoint, "home");
  const desktopHome = join(mountPoint, "desktop");
  const filler = join(mountPoint, "filler");
  const settings = join(home, "settings.json");
  const outside = mkdtempSync(join(tmpdir(), "snapkeep-full-targets-"));
  const vms = new TestVms();
  const suffix = uniqueSuffix();
  const vmRef = `local/sk-full-${suffix}`;
  let cannotMount: string | undefined;
  let mounted = false;
  let sshd: TestSshd;
  let sshSpec = "";
  let scheduleId = "";
  let gone: LabVm[] = [];
  let core: CoreContext | undefined;
  let desktop: Desktop | undefined;

  /** How many pages of room each round leaves, from the size of the settings file in pages. */
  const levels: [string, (settingsPages: number) => number][] = [
    ["no page free: not even the lock fits", () => 0],
    ["one page free: the lock fits, not a byte of the new file", () => 1],
    ["two pages free: the new file gets a short write (issue 13)", () => 2],
    ["room for the new file but not for its last good copy", (pages) => pages + 1],
    ["room for the new file and a page of its copy: the copy gets a short write", (pages) => pages + 2],
  ];

  const cli = (args: readonly string[], snapkeepHome = home) => {
    const result = spawnSync("node", [bin, ...args], {
      encoding: "utf8",
      env: { ...process.env, SNAPKEEP_HOME: snapkeepHome },
      timeout: 120_000,
    });
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
  };
  const ok = (args: readonly string[]): string => {
    const result = cli(args);
    expect(result.stderr, args.join(" ")).toBe("");
    expect(result.code, args.join(" ")).toBe(0);
    return result.stdout;
  };

  const freePages = (): number => statfsSync(mountPoint).bavail;
  /** Fills the tmpfs to its last page, then gives `pages` back: tmpfs hands out whole pages. */
  const leaveFree = (pages: number): void => {
    rmSync(filler, { force: true });
    const fd = openSync(filler, "w");
    const block = Buffer.alloc(PAGE, 0x5a);
    try {
      for (;;) {
        writeSync(fd, block);
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOSPC") {
        throw error;
      }
    } finally {
      closeSync(fd);
    }
    truncateSync(filler, statSync(filler).size - pages * PAGE);
    expect(freePages()).toBe(pages);
  };
  const room = (): void => rmSync(filler, { force: true });

  const files = (folder = home, file = "settings.json") => ({
    names: readdirSync(folder)
      .filter((name) => name.startsWith(file))
      .sort(),
    main: readFileSync(join(folder, file), "utf8"),
    copy: readFileSync(join(folder, `${file}.last-good`), "utf8"),
  });
  const pagesOf = (folder: string, file = "settings.json"): number =>
    Math.ceil(statSync(join(folder, file)).size / PAGE);
  /** Both settings files whole and as they were, and nothing beside them: no lock, no temporary file. */
  const expectUnchanged = (
    before: ReturnType<typeof files>,
    what: string,
    folder = home,
    file = "settings.json",
  ): void => {
    expect(files(folder, file), what).toEqual(before);
    expect(() => JSON.parse(before.main)).not.toThrow();
    expect(before.names).toEqual([file, `${file}.last-good`]);
  };

  /** The commands that write the settings, as a person types them; `level` keeps new names new. */
  const writingCommands = (level: number): string[][] => {
    const key = ["--identity", sshd.userKeyPath, "--trust", sshd.hostFingerprint];
    return [
      ["host", "add", `here-${level}`, "--local"],
      ["host", "add", `lab-${level}`, "--ssh", sshSpec, ...key],
      ["host", "trust", "lab", sshd.hostFingerprint],
      ["host", "remove", "lab"],
      ["target", "add", `dir-${level}`, "--dir", outside],
      ["target", "add", `ssh-${level}`, "--ssh", `${sshSpec}:${outside}`, ...key],
      ["target", "trust", "remote", sshd.hostFingerprint],
      ["target", "keep", "nas", "5"],
      ["target", "remove", "nas"],
      ["snapshot", "safety-keep", "9"],
      ["snapshot", "create", vmRef, "--name", `full-${level}`],
      ["snapshot", "pin", vmRef, "kept"],
      ["snapshot", "unpin", vmRef, "kept"],
      ["snapshot", "delete", vmRef, `doomed-${level}`],
      ["vm", "consistency", vmRef, "--no-freeze"],
      ["schedule", "add", vmRef, "--every", "daily", "--at", "04:00", "--keep", "2"],
      ["schedule", "pause", scheduleId],
      ["schedule", "resume", scheduleId],
      ["schedule", "pause", "--all"],
      ["schedule", "resume", "--all"],
      ["schedule", "remove", scheduleId],
      ["vm", "delete", `local/${gone[level]?.name ?? ""}`, "--yes"],
    ];
  };

  /** The writes no command reaches: the scheduler's, the UI's schedule editor, exports, imports. */
  const coreWrites = (c: CoreContext, level: number): [string, () => Promise<unknown>][] => [
    [
      "schedules.update (the UI's schedule editor)",
      () =>
        c.schedules.update(scheduleId, {
          host: "local",
          vm: vmRef.slice("local/".length),
          when: { every: "daily", at: "05:00" },
          retention: { keepLast: 4 },
        }),
    ],
    [
      "schedules.recordState (the scheduler after a run)",
      async () =>
        c.schedules.recordState(scheduleId, {
          lastSlot: "2026-11-26T03:00:00.000Z",
          lastResult: "ok",
          failures: 0,
        }),
    ],
    [
      "annotations.forgetExports (a pruned export)",
      async () => c.annotations.forgetExports([`nas/gone-${level}`]),
    ],
    [
      "library.recordManaged (an imported VM)",
      async () =>
        c.library.recordManaged({
          host: "local",
          uuid: `00000000-0000-4000-8000-00000000000${level}`,
          name: `imported-${level}`,
          createdAt: "2026-11-26T10:00:00.000Z",
          from: "export:nas/x",
          files: [],
        }),
    ],
  ];

  const desktopWrites: [string, unknown][] = [
    ["desktop.autostart", { enabled: true }],
    ["desktop.notifications", { jobFailed: false }],
    ["desktop.storeKeyPassphrase", { passphrase: "pw" }],
    ["desktop.forgetKeyPassphrase", {}],
  ];

  beforeAll(async () => {
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", mountPoint], {
        stdio: "pipe",
      });
      mounted = true;
    } catch (error) {
      cannotMount = `cannot mount a tmpfs here (${String((error as { stderr?: unknown }).stderr ?? error).trim()}); the durability test needs root and mount permission`;
      return;
    }
    // The bin runs the bundled CLI, as after `npm install`.
    execFileSync("npm", ["run", "--silent", "build:cli"], { cwd: repo, stdio: "inherit" });
    sshd = await startSshd();
    sshSpec = `${sshd.user}@${sshd.host}:${sshd.port}`;
    await vms.create({
      name: vmRef.slice("local/".length),
      running: false,
      disks: [{ target: "vda", sizeMiB: 8 }],
    });
    gone = await Promise.all(
      levels.map((_, n) =>
        vms.create({
          name: `sk-full-gone${n}-${suffix}`,
          running: false,
          disks: [{ target: "vda", sizeMiB: 1 }],
        }),
      ),
    );

    ok(["host", "list"]); // the first start adds this computer
    const key = ["--identity", sshd.userKeyPath, "--trust", sshd.hostFingerprint];
    ok(["host", "add", "lab", "--ssh", sshSpec, ...key]);
    ok(["target", "add", "nas", "--dir", outside]);
    ok(["target", "add", "remote", "--ssh", `${sshSpec}:${outside}`, ...key]);
    // Notes make the file several pages long, so that a page or two of room is a short write.
    const note = "n".repeat(2000);
    ok(["snapshot", "create", vmRef, "--name", "kept", "--note", note]);
    for (const n of [1, 2, 3]) {
      ok(["snapshot", "create", vmRef, "--name", `ballast-${n}`, "--note", note]);
    }
    for (const n of levels.keys()) {
      ok(["snapshot", "create", vmRef, "--name", `doomed-${n}`, "--note", note]);
    }
    scheduleId = JSON.parse(
      ok(["schedule", "add", vmRef, "--every", "daily", "--at", "03:00", "--keep", "3", "--json"]),
    ).id;

    core = openCoreContext({
      home,
      ssh: sshEnvironmentFromProcess(process.env),
      path: process.env["PATH"],
      now: () => new Date(),
    });
    for (const vm of gone) {
      core.library.recordManaged({
        host: "local",
        uuid: vm.uuid,
        name: vm.name,
        createdAt: new Date().toISOString(),
        from: "template:none",
        files: [...vm.diskPaths],
      });
    }
    desktop = await Desktop.open({ home: desktopHome, env: { PATH: "" }, ports: desktopPorts() });
  });

  afterAll(async () => {
    await desktop?.dispose();
    await core?.dispose();
    await vms.dispose();
    await sshd?.stop();
    if (mounted) {
      execFileSync("umount", [mountPoint]);
    }
    rmSync(mountPoint, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it.for(levels.map(([why, pages], level) => [why, pages, level] as const))(
    "%s: every write says one sentence and changes nothing",
    async ([, pagesFor, level], ctx) => {
      ctx.skip(cannotMount !== undefined, cannotMount);
      const pages = pagesOf(home);
      // From four pages on, two pages of room is a short write, and a write that shrinks the file
      // by a page (a removal) still does not fit twice in the last levels' room.
      expect(pages).toBeGreaterThanOrEqual(4);
      const free = pagesFor(pages);
      leaveFree(free);
      const before = files();

      for (const args of writingCommands(level)) {
        const result = cli(args);
        const expected =
          args[1] === "create" ? SNAPSHOT_MADE : args[1] === "delete" && args[0] === "vm" ? VM_DELETED : FULL;
        expect(result.stderr, args.join(" ")).toMatch(expected);
        expect(result.code, args.join(" ")).not.toBe(0);
        expectUnchanged(before, args.join(" "));
        expect(freePages(), args.join(" ")).toBe(free);
      }

      for (const [what, write] of coreWrites(core as CoreContext, level)) {
        const error = await write().then(
          () => undefined,
          (thrown: unknown) => thrown,
        );
        expect(isSnapkeepError(error, "NO_SPACE"), what).toBe(true);
        expect((error as Error).message, what).toMatch(/^[^\n]+ is full, so the settings could not be saved/);
        expectUnchanged(before, what);
      }
    },
  );

  it("fails the desktop app's settings writes whole too: autostart, notifications, the key passphrase, the window", async (ctx) => {
    ctx.skip(cannotMount !== undefined, cannotMount);
    room();
    // desktop-settings.json is written at the first change; settings.json is not touched by these.
    const first = await desktop?.route(
      { url: APP_PAGE, isMainFrame: true },
      { id: 0, method: "desktop.notifications", params: {} },
    );
    expect(first).toHaveProperty("result");
    const core = files(desktopHome);
    // It fits in one page and needs no lock (one app per state folder writes it), so a write either
    // gets a whole page or none: with no page free it fails; with one it goes through, because the
    // rename frees the page of the file it replaces before the copy is written. A short write cannot
    // happen at this size; the unit tests cut one short on purpose.
    expect(pagesOf(desktopHome, DESKTOP_FILE)).toBe(1);
    leaveFree(0);
    const before = files(desktopHome, DESKTOP_FILE);
    for (const [index, [method, params]] of desktopWrites.entries()) {
      const answer = await desktop?.route(
        { url: APP_PAGE, isMainFrame: true },
        { id: index, method, params },
      );
      expect(answer, method).toMatchObject({
        error: {
          code: "NO_SPACE",
          message: expect.stringMatching(/is full, so the settings could not be saved/),
        },
      });
      expectUnchanged(before, method, desktopHome, DESKTOP_FILE);
    }
    // The window's place is written when the window hides: a failure is logged, not thrown.
    desktop?.window.changed({ x: 10, y: 10, width: 900, height: 700 }, false);
    expect(() => desktop?.window.flush()).not.toThrow();
    expectUnchanged(before, "the window's place", desktopHome, DESKTOP_FILE);
    expectUnchanged(core, "settings.json beside it", desktopHome);

    leaveFree(1);
    desktop?.window.changed({ x: 20, y: 20, width: 900, height: 700 }, false);
    desktop?.window.flush();
    expect(JSON.parse(files(desktopHome, DESKTOP_FILE).main).window).toEqual({
      x: 20,
      y: 20,
      width: 900,
      height: 700,
      maximized: false,
    });
    expect(files(desktopHome, DESKTOP_FILE).copy).toBe(files(desktopHome, DESKTOP_FILE).main);
    room();
    for (const [index, [method, params]] of desktopWrites.entries()) {
      const answer = await desktop?.route(
        { url: APP_PAGE, isMainFrame: true },
        { id: index, method, params },
      );
      expect(answer, method).toHaveProperty("result");
    }
  });

  it("refuses a first start on a full disk without leaving a settings file or a lock behind", (ctx) => {
    ctx.skip(cannotMount !== undefined, cannotMount);
    for (const free of [0, 1]) {
      const fresh = join(mountPoint, `fresh-${free}`);
      leaveFree(free);
      const result = cli(["host", "list"], fresh);
      expect(result.stderr).toMatch(FULL);
      expect(result.code).not.toBe(0);
      expect(readdirSync(fresh)).toEqual([]);
    }
    room();
    const first = cli(["host", "list", "--json"], join(mountPoint, "fresh-0"));
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual([{ name: "local", kind: "local", uri: "qemu:///system" }]);
  });

  it("keeps an unreadable settings file and its last good copy when there is no room to put the copy back", (ctx) => {
    ctx.skip(cannotMount !== undefined, cannotMount);
    room();
    const good = files();
    // What a short write renamed into place left behind: the start of the file.
    const broken = good.main.slice(0, 100);
    writeFileSync(settings, broken);
    leaveFree(0);
    const refused = cli(["host", "list"]);
    expect(refused.stderr).toMatch(FULL);
    expect(refused.code).not.toBe(0);
    expect(readFileSync(settings, "utf8")).toBe(broken);
    expect(files().copy).toBe(good.copy);

    room();
    const restored = cli(["host", "list", "--json"]);
    expect(restored.code).toBe(0);
    expect(restored.stderr).toMatch(
      /^snapkeep: warning: The settings file could not be read \(not valid JSON: [^\n]*\); it was moved to \S+settings\.json\.corrupt-\S+ and the last good settings were restored from \S+settings\.json\.last-good\.\n$/,
    );
    expect(readFileSync(settings, "utf8")).toBe(good.copy);
    expect(JSON.parse(restored.stdout).map((h: { name: string }) => h.name)).toEqual(["local", "lab"]);
    for (const name of readdirSync(home).filter((n) => n.includes(".corrupt-"))) {
      expect(readFileSync(join(home, name), "utf8")).toBe(broken);
      rmSync(join(home, name));
    }
  });

  it("says one sentence and changes nothing on a read-only file system, and still reads", async (ctx) => {
    ctx.skip(cannotMount !== undefined, cannotMount);
    room();
    const before = files();
    const desktopBefore = files(desktopHome, DESKTOP_FILE);
    execFileSync("mount", ["-o", "remount,ro", mountPoint]);
    try {
      for (const [index, [method, params]] of desktopWrites.entries()) {
        const answer = await desktop?.route(
          { url: APP_PAGE, isMainFrame: true },
          { id: index, method, params },
        );
        expect(answer, method).toMatchObject({
          error: {
            message: expect.stringMatching(
              /is on a read-only file system, so the settings could not be saved/,
            ),
          },
        });
      }
      for (const args of [
        ["snapshot", "safety-keep", "9"],
        ["host", "add", "here-ro", "--local"],
        ["schedule", "pause", "--all"],
      ]) {
        const result = cli(args);
        expect(result.stderr, args.join(" ")).toMatch(READ_ONLY);
        expect(result.code, args.join(" ")).not.toBe(0);
      }
      expect(JSON.parse(ok(["host", "list", "--json"])).map((h: { name: string }) => h.name)).toEqual([
        "local",
        "lab",
      ]);
    } finally {
      execFileSync("mount", ["-o", "remount,rw", mountPoint]);
    }
    expectUnchanged(before, "after read-only");
    expectUnchanged(desktopBefore, "desktop settings after read-only", desktopHome, DESKTOP_FILE);
  });

  it("writes at once when there is room again: no lock or leftover in the way, and the file reads back whole", (ctx) => {
    ctx.skip(cannotMount !== undefined, cannotMount);
    room();
    const before = JSON.parse(files().main);
    const started = Date.now();
    ok(["snapshot", "safety-keep", "9"]);
    ok(["schedule", "pause", scheduleId]);
    expect(Date.now() - started).toBeLessThan(10_000);
    const after = JSON.parse(files().main);
    expect(after).toEqual({
      ...before,
      safetyKeep: 9,
      schedules: before.schedules.map((s: { id: string }) =>
        s.id === scheduleId ? { ...s, enabled: false } : s,
      ),
    });
    expect(files().copy).toBe(files().main);
    expect(files().names).toEqual(["settings.json", "settings.json.last-good"]);
    expect(statSync(settings).mode & 0o777).toBe(0o600);
  });

  function desktopPorts(): DesktopPorts {
    return {
      now: () => new Date(),
      timers: { at: () => ({ cancel: () => undefined }), every: () => ({ cancel: () => undefined }) },
      notify: () => undefined,
      trayChanged: () => undefined,
      broadcast: () => undefined,
      applyAutostart: async () => undefined,
      keyring: {
        facts: async () => ({ platform: "linux", backend: "gnome_libsecret", encryptionAvailable: true }),
        encrypt: async (plain) => Buffer.from(plain).toString("base64"),
        decrypt: async (base64) => Buffer.from(base64, "base64").toString(),
      },
      openSettingsDocument: confDocument,
      log: () => undefined,
    };
  }
});

/**
 * Testing an export target (issue 18: "Test" made a missing folder with mkdir -p and called it
 * writable). A missing folder is an answer and nothing is made; it is made only when asked; a
 * folder on the file system of / is warned about, one on a file system of its own is not. Real
 * folders, a real tmpfs mount, a real sshd on loopback, and the CLI as bin/snapkeep.js runs it.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Targets } from "../../core/app/targets.js";
import { runCli } from "../../core/cli/main.js";
import { openSettingsStore } from "../../core/infra/store/store.js";
import { startSshd, type TestSshd } from "../support/sshd.js";

describe("testing a target", () => {
  let home: string;
  let work: string;
  let mounted = "";
  let targets: Targets;
  let sshd: TestSshd;

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), "snapkeep-home-"));
    work = mkdtempSync(join(tmpdir(), "snapkeep-target-test-"));
    // A file system of its own, as a USB disk mounted under /media would be.
    mounted = join(work, "usb");
    mkdirSync(mounted);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", mounted]);
    sshd = await startSshd();
    targets = new Targets({
      store: openSettingsStore(home, new Date()),
      ssh: { homeDir: home, defaultUser: "root", agentSocket: undefined, passphrase: undefined },
    });
  });

  afterAll(async () => {
    await targets?.dispose();
    await sshd?.stop();
    if (mounted !== "") {
      execFileSync("umount", [mounted]);
    }
    rmSync(work, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  });

  it("a folder on this computer: missing is an answer and nothing is made; made when asked, with a warning", async () => {
    const folder = join(work, "exports");
    const added = await targets.add({ name: "local-dir", dir: folder });
    // Made on add, as the person asked; said at once to be on the system disk.
    expect(added.warning).toMatch(/is on the system disk of this computer/);
    rmSync(folder, { recursive: true });

    const missing = await targets.test("local-dir");
    expect(missing).toMatchObject({ state: "missing", path: folder });
    expect(missing.state === "missing" && missing.message).toBe(
      `The folder ${folder} does not exist on this computer; nothing was created.`,
    );
    // /tmp is on the system disk here: the nearest folder says so.
    expect(missing.state === "missing" && missing.detail).toMatch(
      new RegExp(`^${work}, the nearest folder above it, is on the system disk`),
    );
    expect(existsSync(folder)).toBe(false);

    const created = await targets.test("local-dir", { create: true });
    expect(created).toMatchObject({ state: "ok", created: true, onRootFileSystem: true, mountPoint: "/" });
    expect(created.state === "ok" && created.warning).toMatch(/is on the system disk of this computer/);
    expect(existsSync(folder)).toBe(true);
    // And again, with create or without: there now, not made again.
    expect(await targets.test("local-dir")).toMatchObject({ state: "ok", created: false });
    expect(await targets.test("local-dir", { create: true })).toMatchObject({ state: "ok", created: false });
  });

  it("a folder on a file system of its own: no warning; missing under it says where that is mounted", async () => {
    const folder = join(mounted, "vm-exports");
    expect((await targets.add({ name: "usb", dir: folder })).warning).toBeNull();
    const tested = await targets.test("usb");
    expect(tested).toMatchObject({
      state: "ok",
      onRootFileSystem: false,
      mountPoint: mounted,
      warning: null,
    });
    expect(tested.state === "ok" && tested.freeBytes).toBeGreaterThan(0);
    expect(tested.state === "ok" && tested.freeBytes).toBeLessThanOrEqual(4 * 1024 * 1024);

    rmSync(folder, { recursive: true });
    const missing = await targets.test("usb");
    expect(missing.state === "missing" && missing.detail).toBe(
      `${mounted}, the nearest folder above it, is on the file system mounted at ${mounted}.`,
    );
    expect(existsSync(folder)).toBe(false);
  });

  it("an SSH target: the same answers, over SSH", async () => {
    const folder = join(sshd.tmpDir, "nas-exports");
    const added = await targets.add({
      name: "nas",
      ssh: `${sshd.user}@${sshd.host}:${sshd.port}:${folder}`,
      identityFile: sshd.userKeyPath,
      trust: sshd.hostFingerprint,
    });
    expect(existsSync(folder)).toBe(true);
    expect(added.warning).toMatch(/is on the system disk of /);
    rmSync(folder, { recursive: true });

    const missing = await targets.test("nas");
    expect(missing).toMatchObject({ state: "missing", path: folder });
    expect(missing.state === "missing" && missing.message).toMatch(
      /does not exist on .*; nothing was created\.$/,
    );
    expect(existsSync(folder)).toBe(false);

    const created = await targets.test("nas", { create: true });
    expect(created).toMatchObject({ state: "ok", created: true, onRootFileSystem: true });
    expect(created.state === "ok" && created.rsync).toMatch(/^rsync\s+version/);
    expect(created.state === "ok" && created.warning).toMatch(/is on the system disk of /);
    expect(existsSync(folder)).toBe(true);
  });

  it("the CLI: a missing folder is an error that says how to make it; --create makes it and warns", async () => {
    const cliHome = mkdtempSync(join(tmpdir(), "snapkeep-home-"));
    const folder = join(work, "cli-exports");
    const cli = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
      let out = "";
      let err = "";
      const code = await runCli(args, {
        out: (text) => (out += text),
        err: (text) => (err += text),
        env: { ...process.env, SNAPKEEP_HOME: cliHome, SNAPKEEP_DEBUG: "" },
      });
      return { code, out, err };
    };
    try {
      const added = await cli("target", "add", "box", "--dir", folder);
      expect(added.code).toBe(0);
      expect(added.out).toMatch(
        /^Added target box \(.*\)\.\nWarning: .* is on the system disk of this computer/,
      );
      rmSync(folder, { recursive: true });

      const missing = await cli("target", "test", "box");
      expect(missing.code).not.toBe(0);
      expect(missing.err).toContain(
        `The folder ${folder} does not exist on this computer; nothing was created.`,
      );
      expect(missing.err).toContain("snapkeep target test box --create");
      expect(existsSync(folder)).toBe(false);

      const created = await cli("target", "test", "box", "--create");
      expect(created.code).toBe(0);
      expect(created.out).toContain(`Created ${folder}.`);
      expect(created.out).toMatch(/box is writable, .* free on \/, rsync\s+version/);
      expect(created.out).toMatch(/Warning: .* is on the system disk of this computer/);
      expect(existsSync(folder)).toBe(true);
    } finally {
      rmSync(cliHome, { recursive: true, force: true });
    }
  });
});

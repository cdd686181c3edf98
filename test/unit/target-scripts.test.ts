import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

import { LocalRunner } from "../../core/infra/runner/local.js";
import {
  folderProbeArgs,
  parseFolderProbe,
  parseSweep,
  sweepArgs,
} from "../../core/drivers/sh/target-scripts.js";

describe("a target folder's probe", () => {
  it("passes the path as an argument, never inside the script", () => {
    const argv = folderProbeArgs("/media/usb/it's mine");
    expect(argv.slice(0, 2)).toEqual(["sh", "-c"]);
    expect(argv[2]).not.toContain("usb");
    expect(argv.slice(3)).toEqual(["snapkeep-probe", "/media/usb/it's mine"]);
  });

  // Real output of the script (Debian 12, coreutils 9.1).
  it("reads a folder on the root file system", () => {
    const out = "present\n/tmp\ndev 65024 65024\n/dev/vda         264212084 26887324  79503588      26% /\n";
    expect(parseFolderProbe(out, "this computer")).toEqual({
      state: "present",
      measured: "/tmp",
      mountPoint: "/",
      onRootFileSystem: true,
      freeBytes: 79503588 * 1024,
    });
  });

  it("reads a missing folder by its nearest parent, on a file system of its own", () => {
    const out =
      "missing\n/dev/shm\ndev 26 65024\ntmpfs             24683748     0  24683748       0% /dev/shm\n";
    expect(parseFolderProbe(out, "this computer")).toMatchObject({
      state: "missing",
      measured: "/dev/shm",
      mountPoint: "/dev/shm",
      onRootFileSystem: false,
    });
  });

  it("keeps a mount point with spaces whole", () => {
    const out = "present\n/media/My Disk/x\ndev 2049 2050\n/dev/sdb1 1000 10 990 1% /media/My Disk\n";
    expect(parseFolderProbe(out, "nas").mountPoint).toBe("/media/My Disk");
  });

  it("refuses output it does not know, naming where it came from", () => {
    expect(() => parseFolderProbe("present\n/x\ndev  1\n", "nas")).toThrow(
      /on nas printed something unexpected/,
    );
    expect(() => parseFolderProbe("", "nas")).toThrow(/unexpected/);
  });
});

describe("abandoned export folders, checked and removed in one command", () => {
  const root = mkdtempSync(join(tmpdir(), "snapkeep-sweep-"));
  const runner = new LocalRunner();
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  function folder(name: string, files: readonly string[], age: string | null): void {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    for (const file of files) {
      writeFileSync(join(dir, file), "x");
    }
    if (age !== null) {
      execFileSync("find", [dir, "-exec", "touch", "-h", "-d", age, "{}", "+"]);
    }
  }

  it("removes only plain folders nothing in which was written within the time, links never followed", async () => {
    folder("vm-1/old.partial", ["vda.qcow2", "job.json"], "2 days ago");
    folder("vm-1/new.partial", ["vda.qcow2"], null);
    folder("vm-1/one-new-file.partial", ["vda.qcow2", "job.json"], "2 days ago");
    writeFileSync(join(root, "vm-1/one-new-file.partial/.vda.qcow2.Xy12"), "rsync at work");
    folder("vm-1/-rf $(touch pwned).partial", [], "2 days ago");
    folder("elsewhere/kept.partial", ["vda.qcow2"], "2 days ago");
    symlinkSync(join(root, "vm-1/old.partial"), join(root, "vm-1/link.partial"));
    symlinkSync(join(root, "elsewhere"), join(root, "vm-link"));
    const asked = [
      { vmFolder: "vm-1", name: "old.partial" },
      { vmFolder: "vm-1", name: "new.partial" },
      { vmFolder: "vm-1", name: "one-new-file.partial" },
      { vmFolder: "vm-1", name: "-rf $(touch pwned).partial" },
      { vmFolder: "vm-1", name: "link.partial" },
      { vmFolder: "vm-link", name: "kept.partial" },
      { vmFolder: "vm-1", name: "gone.partial" },
    ];
    const checked = await runner.run(sweepArgs(root, 24 * 60, "check", asked));
    expect(checked.code).toBe(0);
    expect(parseSweep(checked.stdout, asked.length, "nas")).toEqual([
      "quiet",
      "busy",
      "busy",
      "quiet",
      "-",
      "-",
      "-",
    ]);
    expect(existsSync(join(root, "vm-1/old.partial"))).toBe(true);

    const removed = await runner.run(sweepArgs(root, 24 * 60, "remove", asked));
    expect(parseSweep(removed.stdout, asked.length, "nas")).toEqual([
      "removed",
      "busy",
      "busy",
      "removed",
      "-",
      "-",
      "-",
    ]);
    expect(existsSync(join(root, "vm-1/old.partial"))).toBe(false);
    expect(existsSync(join(root, "vm-1/new.partial/vda.qcow2"))).toBe(true);
    expect(existsSync(join(root, "vm-1/one-new-file.partial/job.json"))).toBe(true);
    expect(existsSync(join(root, "elsewhere/kept.partial/vda.qcow2"))).toBe(true);
    expect(existsSync(join(root, "pwned"))).toBe(false);
    expect(existsSync("pwned")).toBe(false);
  });

  it("refuses a quiet time that is not whole minutes, and answers it does not know", () => {
    expect(() => sweepArgs(root, 0, "check", [])).toThrow(/at least 1/);
    expect(() => sweepArgs(root, 1.5, "check", [])).toThrow(/whole number/);
    // Cut short: the first folders' words stand, the rest are unknown.
    expect(parseSweep("quiet\n", 2, "nas")).toEqual(["quiet"]);
    expect(() => parseSweep("quiet\nbusy\nbusy\n", 2, "nas")).toThrow(/2 unfinished exports on nas/);
    expect(() => parseSweep("quiet\nmaybe\n", 2, "nas")).toThrow(/maybe/);
  });
});

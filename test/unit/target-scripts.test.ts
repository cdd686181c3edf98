import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

import { LocalRunner } from "../../core/infra/runner/local.js";
import {
  folderProbeArgs,
  parseFolderProbe,
  parseQuiet,
  quietArgs,
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

describe("which unfinished export folders nothing wrote to lately", () => {
  const root = mkdtempSync(join(tmpdir(), "snapkeep-quiet-"));
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

  it("says quiet only when nothing in the folder, itself included, was written within the time", async () => {
    folder("vm-1/old.partial", ["vda.qcow2", "job.json"], "2 days ago");
    folder("vm-1/new.partial", ["vda.qcow2"], null);
    folder("vm-1/one-new-file.partial", ["vda.qcow2", "job.json"], "2 days ago");
    writeFileSync(join(root, "vm-1/one-new-file.partial/.vda.qcow2.Xy12"), "rsync at work");
    folder("vm-1/-rf $(touch pwned).partial", [], "2 days ago");
    symlinkSync(join(root, "vm-1/old.partial"), join(root, "vm-1/link.partial"));
    const asked = [
      "vm-1/old.partial",
      "vm-1/new.partial",
      "vm-1/one-new-file.partial",
      "vm-1/-rf $(touch pwned).partial",
      "vm-1/link.partial",
      "vm-1/gone.partial",
    ];
    const result = await runner.run(quietArgs(root, 24 * 60, asked));
    expect(result.code).toBe(0);
    expect(parseQuiet(result.stdout, asked.length, "nas")).toEqual([true, false, false, true, false, false]);
    expect(result.stdout.split("\n")).toEqual(["quiet", "busy", "busy", "quiet", "-", "-", ""]);
    expect(existsSync(join(root, "pwned"))).toBe(false);
    expect(existsSync("pwned")).toBe(false);
  });

  it("refuses a quiet time that is not whole minutes, and answers it does not know", () => {
    expect(() => quietArgs(root, 0, ["a"])).toThrow(/at least 1/);
    expect(() => quietArgs(root, 1.5, ["a"])).toThrow(/whole number/);
    expect(() => parseQuiet("quiet\n", 2, "nas")).toThrow(/2 folders on nas/);
    expect(() => parseQuiet("quiet\nmaybe\n", 2, "nas")).toThrow(/maybe/);
  });
});

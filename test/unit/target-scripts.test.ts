import { describe, expect, it } from "vitest";

import { folderProbeArgs, parseFolderProbe } from "../../core/drivers/sh/target-scripts.js";

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

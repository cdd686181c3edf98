import { describe, expect, it } from "vitest";

import {
  fileTypeOf,
  gfMarkerCommand,
  gfString,
  normalizeGuestPath,
  parseFilesystems,
  parseLs0,
  parseLstatns,
  parseMountpoints,
} from "../../core/drivers/guestfs/guestfish.js";
import { FILES_SCRIPT, filesScriptProblem, filesSessionArgs } from "../../core/drivers/sh/files-script.js";
import { modeString } from "../../core/domain/files.js";

describe("guest paths as guestfish arguments", () => {
  it("leaves plain bytes and escapes every other one, so no name ends the string or starts a command", () => {
    expect(gfString("/etc/nginx/nginx.conf")).toBe('"/etc/nginx/nginx.conf"');
    expect(gfString('/a "b"')).toBe('"/a\\x20\\x22b\\x22"');
    expect(gfString("/x\ny")).toBe('"/x\\x0ay"');
    expect(gfString("/$(rm -rf /)")).toBe('"/\\x24\\x28rm\\x20-rf\\x20/\\x29"');
    expect(gfString("/a\\b;c`d'e#f")).toBe('"/a\\x5cb\\x3bc\\x60d\\x27e\\x23f"');
    // Multi-byte UTF-8: each byte on its own.
    expect(gfString("/ü")).toBe('"/\\xc3\\xbc"');
  });

  it("never lets a quote, backslash, newline, space or shell character through unescaped", () => {
    for (let code = 0; code < 0x80; code++) {
      const char = String.fromCharCode(code);
      if (code === 0) {
        continue;
      }
      const quoted = gfString(char).slice(1, -1);
      if (/[A-Za-z0-9/._+,:@=-]/.test(char)) {
        expect(quoted).toBe(char);
      } else {
        expect(quoted).toBe(`\\x${code.toString(16).padStart(2, "0")}`);
      }
    }
  });

  it("refuses a NUL byte, which no guest name can hold", () => {
    expect(() => gfString("/a\0b")).toThrow(/NUL/);
  });

  it("asks for markers that are long random words only", () => {
    expect(gfMarkerCommand("SNAPKEEP_0123456789abcdef")).toBe("echo SNAPKEEP_0123456789abcdef");
    expect(() => gfMarkerCommand("short")).toThrow();
    expect(() => gfMarkerCommand("SNAPKEEP_0123456789abcdef; rm")).toThrow();
  });
});

describe("what guestfish prints", () => {
  const stat = [
    "st_dev: 2048",
    "st_ino: 13",
    "st_mode: 33184",
    "st_nlink: 1",
    "st_uid: 0",
    "st_gid: 33",
    "st_rdev: 0",
    "st_size: 12",
    "st_blksize: 1024",
    "st_blocks: 2",
    "st_atime_sec: 1796607766",
    "st_atime_nsec: 0",
    "st_mtime_sec: 1793701230",
    "st_mtime_nsec: 5",
    "st_ctime_sec: 1796607766",
    "st_ctime_nsec: 0",
    "st_spare1: 0",
    "",
  ].join("\n");

  it("reads lstatns's fields and refuses output it does not know", () => {
    expect(parseLstatns(stat)).toEqual({ mode: 0o100640, size: 12, uid: 0, gid: 33, mtime: 1793701230 });
    expect(() => parseLstatns(stat.replace("st_size: 12\n", ""))).toThrow(/lacks/);
    expect(() => parseLstatns(`${stat}something else\n`)).toThrow(/unexpected/);
    expect(() => parseLstatns(stat.replace("st_size: 12", "st_size: 99999999999999999999"))).toThrow(
      /out of range/,
    );
  });

  it("tells the file types from the mode", () => {
    expect(fileTypeOf(0o100644)).toBe("file");
    expect(fileTypeOf(0o040755)).toBe("dir");
    expect(fileTypeOf(0o120777)).toBe("symlink");
    expect(fileTypeOf(0o020666)).toBe("other");
    expect(modeString(0o100640)).toBe("-rw-r-----");
    expect(modeString(0o040755)).toBe("drwxr-xr-x");
    expect(modeString(0o120777)).toBe("lrwxrwxrwx");
  });

  it("splits NUL-ended names (newlines and all) and refuses what no folder can hold", () => {
    expect(parseLs0(Buffer.from("a\0new\nline\0$(x)\0"))).toEqual(["a", "new\nline", "$(x)"]);
    expect(parseLs0(Buffer.alloc(0))).toEqual([]);
    expect(() => parseLs0(Buffer.from("a\0b"))).toThrow(/NUL/);
    expect(() => parseLs0(Buffer.from("..\0"))).toThrow(/no folder/);
    expect(() => parseLs0(Buffer.from("a/b\0"))).toThrow(/no folder/);
    expect(() => parseLs0(Buffer.from("a\0\0"))).toThrow(/no folder/);
  });

  it("reads file systems and mount points, shortest mount point first", () => {
    expect(parseFilesystems("/dev/sda1: ext4\n/dev/sda2: swap\n/dev/vg0/root: xfs\n")).toEqual([
      { device: "/dev/sda1", type: "ext4" },
      { device: "/dev/sda2", type: "swap" },
      { device: "/dev/vg0/root", type: "xfs" },
    ]);
    expect(() => parseFilesystems("sda1 ext4\n")).toThrow(/unexpected/);
    expect(parseMountpoints("/boot: /dev/sda1\n/: /dev/vg0/root\n/var/lib: /dev/sdb1\n")).toEqual([
      { mountpoint: "/", device: "/dev/vg0/root" },
      { mountpoint: "/boot", device: "/dev/sda1" },
      { mountpoint: "/var/lib", device: "/dev/sdb1" },
    ]);
    expect(() => parseMountpoints("boot: /dev/sda1\n")).toThrow(/unexpected/);
  });

  it("accepts absolute guest paths only, without . or .. parts", () => {
    expect(normalizeGuestPath("/")).toBe("/");
    expect(normalizeGuestPath("/etc//nginx/")).toBe("/etc/nginx");
    expect(normalizeGuestPath("etc")).toBeNull();
    expect(normalizeGuestPath("/etc/../root")).toBeNull();
    expect(normalizeGuestPath("/./etc")).toBeNull();
    expect(normalizeGuestPath("/a\0b")).toBeNull();
    expect(normalizeGuestPath("/...")).toBe("/...");
  });
});

describe("the host's browse script", () => {
  it("gets every name as an argument, commas doubled for QEMU's option syntax", () => {
    const args = filesSessionArgs(
      {
        kind: "qcow2",
        image: "/var/lib/a,b $(x).qcow2",
        snapshotId: "3",
        snapshotTag: "snapkeep:manual:x,y",
      },
      () => "unused",
    );
    expect(args.slice(0, 5)).toEqual(["sh", "-c", FILES_SCRIPT, "snapkeep-files", "qcow2"]);
    expect(args[5]).toBe(
      "driver=qcow2,file.driver=file,file.filename=/var/lib/a,,b $(x).qcow2,file.locking=off",
    );
    expect(args[6]).toBe("snapshot.id=3,snapshot.name=snapkeep:manual:x,,y");
    const block = filesSessionArgs(
      { kind: "block", device: "/dev/vg/snap one" },
      (d) => `add-drive ${gfString(d)}`,
    );
    expect(block).toEqual([
      "sh",
      "-c",
      FILES_SCRIPT,
      "snapkeep-files",
      "block",
      'add-drive "/dev/vg/snap\\x20one"',
    ]);
  });

  it("says its own exit codes in words", () => {
    expect(filesScriptProblem(20)).toMatch(/guestfish/);
    expect(filesScriptProblem(21)).toMatch(/qemu-nbd/);
    expect(filesScriptProblem(22)).toMatch(/could not open/);
    expect(filesScriptProblem(23)).toMatch(/not a folder of its own/);
    expect(filesScriptProblem(1)).toBeNull();
  });
});

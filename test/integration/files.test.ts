/**
 * File-level restore on real components (issue 19): a GPT-partitioned disk with an ext4 file
 * system made by mkfs.ext4 -d (no root mount), planted files with known bytes, modes, times and
 * odd names; a real VM, snapshotted shut off and then running, through the CLI a user runs;
 * libguestfs' appliance under software emulation (a Linux kernel under KVM hangs on these
 * machines). A second disk made by guestfish itself: MBR, an XFS partition, and LVM inside the
 * guest (a volume group the host does not have). Listed and fetched byte for byte from the qcow2
 * snapshots while the VM runs, on this computer and through an SSH host; a browse killed with
 * SIGKILL leaves nothing behind after the next one.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { FILES_SCRIPT, filesRoot } from "../../core/drivers/sh/files-script.js";
import { TestVms, uniqueSuffix, URI } from "../support/libvirt.js";
import { startSshd, type TestSshd } from "../support/sshd.js";
import { APPLIANCE_ENV, partitionedDisk } from "../support/guest-disks.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
/** Where this user's browses keep their folders on this computer. */
const FILES_ROOT = filesRoot(process.getuid?.() ?? 0);
const MiB = 1024 * 1024;
const ODD = ["$(touch pwned)", "new\nline", `quote"s and 'single'`, "sp ace", "ünï cödé", "-dash"];

/** The CLI as a user runs it, on this test's state folder; the appliance under APPLIANCE_ENV (see above). */
function cli(home: string, ...args: string[]): { code: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync("node", [join(repo, "bin/snapkeep.js"), ...args], {
      env: { ...process.env, SNAPKEEP_HOME: home, ...APPLIANCE_ENV },
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 600_000,
    });
    return { code: 0, stdout, stderr: "" };
  } catch (error) {
    const e = error as { status?: number; stdout?: string; stderr?: string };
    return { code: e.status ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/**
 * A raw disk made by guestfish (read-write, a file of the test's): MBR, an XFS partition, and a
 * partition holding the guest's own volume group with an ext4 volume.
 */
function mbrXfsLvmDisk(path: string): void {
  execFileSync("truncate", ["-s", "512M", path]);
  const script = [
    `add-drive ${path} format:raw`,
    "run",
    "part-init /dev/sda mbr",
    "part-add /dev/sda p 2048 657407",
    "part-add /dev/sda p 657408 -2048",
    "mkfs xfs /dev/sda1",
    "pvcreate /dev/sda2",
    "vgcreate guestvg /dev/sda2",
    "lvcreate data guestvg 32",
    "mkfs ext4 /dev/guestvg/data",
    "mount /dev/sda1 /",
    "mkdir /xdir",
    'write /xdir/hello.txt "xfs says hi"',
    "umount /",
    "mount /dev/guestvg/data /",
    'write /in-lvm.txt "from the guest\x27s LVM"',
    "umount-all",
    "",
  ].join("\n");
  execFileSync("guestfish", [], {
    input: script,
    env: { ...process.env, ...APPLIANCE_ENV },
    stdio: ["pipe", "ignore", "inherit"],
  });
}

describe("files ls and files get on a snapshot's disk (libguestfs, read-only)", () => {
  const vms = new TestVms();
  const work = mkdtempSync(join(tmpdir(), "snapkeep-files-"));
  const home = join(work, "home");
  const payload = randomBytes(3 * MiB + 123);
  const config = "server { listen 80; }\n# before\n";
  let vmName = "";
  let image = "";
  let ref = "";
  let sshd: TestSshd | undefined;

  beforeAll(async () => {
    mkdirSync(home);
    // Before: the tree the first snapshot holds. After: the second one's (a file changed, one added).
    const before = join(work, "before");
    mkdirSync(join(before, "etc/nginx"), { recursive: true });
    mkdirSync(join(before, "odd"), { recursive: true });
    mkdirSync(join(before, "empty"));
    writeFileSync(join(before, "etc/nginx/nginx.conf"), config, { mode: 0o640 });
    writeFileSync(join(before, "payload.bin"), payload);
    for (const name of ODD) {
      writeFileSync(join(before, "odd", name), `content of ${name}`);
    }
    symlinkSync("/etc/nginx/nginx.conf", join(before, "link"));
    const when = new Date("2026-11-03T10:20:30Z");
    utimesSync(join(before, "etc/nginx/nginx.conf"), when, when);
    const after = join(work, "after");
    execFileSync("cp", ["-a", before, after]);
    writeFileSync(join(after, "etc/nginx/nginx.conf"), "server { listen 443; }\n# after\n");
    writeFileSync(join(after, "added-later.txt"), "new\n");

    vmName = `sk-files-${uniqueSuffix()}`;
    const vm = await vms.create({
      name: vmName,
      running: false,
      disks: [
        { target: "vda", sizeMiB: 64 },
        { target: "vdb", sizeMiB: 512 },
      ],
    });
    image = vm.diskPaths[0] ?? "";
    ref = `here/${vmName}`;
    const raw = join(work, "disk.raw");
    partitionedDisk(raw, before, 64);
    execFileSync("qemu-img", ["convert", "-n", "-f", "raw", "-O", "qcow2", raw, image]);
    const raw2 = join(work, "disk2.raw");
    mbrXfsLvmDisk(raw2);
    execFileSync("qemu-img", ["convert", "-n", "-f", "raw", "-O", "qcow2", raw2, vm.diskPaths[1] ?? ""]);
    expect(cli(home, "host", "add", "here", "--local").code).toBe(0);
    // The same libvirt through SSH: the browse runs there, the bytes come back over ssh2. sshd
    // passes the appliance's setting on, as it would pass nothing on a real host.
    sshd = await startSshd({
      extraConfig: [
        `SetEnv ${Object.entries(APPLIANCE_ENV)
          .map(([k, v]) => `${k}=${v}`)
          .join(" ")}`,
      ],
    });
    const added = cli(
      home,
      "host",
      "add",
      "loop",
      "--ssh",
      `${sshd.user}@${sshd.host}:${sshd.port}`,
      "--identity",
      sshd.userKeyPath,
      "--trust",
      sshd.hostFingerprint,
    );
    expect(added.code, added.stderr).toBe(0);
    expect(cli(home, "snapshot", "create", ref, "--name", "before").code).toBe(0);
    // The disk changes, then the VM runs and is snapshotted running.
    partitionedDisk(raw, after, 64);
    execFileSync("qemu-img", ["convert", "-n", "-f", "raw", "-O", "qcow2", raw, image]);
    execFileSync("virsh", ["-c", URI, "start", vmName]);
    const taken = cli(home, "snapshot", "create", ref, "--name", "after");
    expect(taken.code, taken.stderr).toBe(0);
  }, 300_000);

  /**
   * A browse (`files ls ARGS`) killed with SIGKILL once under way leaves its folder and its QEMU
   * (qemu-nbd, or qemu-storage-daemon for an export); the next browse removes both, and an
   * export browse's NBD socket folder here too.
   */
  async function killedBrowseLeavesNothing(args: string[], next: string[]): Promise<void> {
    const before = new Set(existsSync(FILES_ROOT) ? readdirSync(FILES_ROOT) : []);
    const sockets = (): string[] => readdirSync(tmpdir()).filter((d) => /^snapkeep-nbd-\d+-/.test(d));
    const socketsBefore = new Set(sockets());
    const child = spawn("node", [join(repo, "bin/snapkeep.js"), "files", "ls", ...args], {
      env: { ...process.env, SNAPKEEP_HOME: home, ...APPLIANCE_ENV },
      stdio: "ignore",
      detached: true,
    });
    // Killed once its browse is under way: its folder and QEMU's pid are there.
    let leftover: string | undefined;
    for (let i = 0; i < 600 && leftover === undefined; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      leftover = (existsSync(FILES_ROOT) ? readdirSync(FILES_ROOT) : []).find(
        (d) => !before.has(d) && existsSync(join(FILES_ROOT, d, "nbd.pid")),
      );
    }
    expect(leftover, "a browse folder with QEMU's pid").toBeDefined();
    const nbdPid = Number(readFileSync(join(FILES_ROOT, leftover ?? "", "nbd.pid"), "utf8"));
    process.kill(-(child.pid ?? 0), "SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    // QEMU forked away from the killed group: still running, the folder still there.
    expect(existsSync(`/proc/${nbdPid}`)).toBe(true);
    expect(existsSync(join(FILES_ROOT, leftover ?? ""))).toBe(true);

    const again = cli(home, "files", "ls", ...next);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/An empty folder/);
    expect(existsSync(join(FILES_ROOT, leftover ?? ""))).toBe(false);
    for (let i = 0; i < 50 && existsSync(`/proc/${nbdPid}`); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(existsSync(`/proc/${nbdPid}`)).toBe(false);
    // And its own browse cleaned up after itself.
    expect(readdirSync(FILES_ROOT).filter((d) => !before.has(d))).toEqual([]);
    expect(sockets().filter((d) => !socketsBefore.has(d))).toEqual([]);
  }

  afterAll(async () => {
    await sshd?.stop();
    await vms.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  it("lists a folder of each snapshot as it was, while the VM runs, with modes, sizes, times and links", () => {
    const listed = cli(home, "files", "ls", ref, "before", "/", "--json");
    expect(listed.code, listed.stderr).toBe(0);
    const root = JSON.parse(listed.stdout) as {
      mounts: { mountpoint: string; device: string; type: string }[];
      entries: { name: string; type: string; size: number; target?: string }[];
    };
    expect(root.mounts).toEqual([{ mountpoint: "/", device: "/dev/sda1", type: "ext4" }]);
    const names = root.entries.map((e) => e.name);
    expect(names).toEqual(
      expect.arrayContaining(["etc", "odd", "empty", "payload.bin", "link", "lost+found"]),
    );
    expect(names).not.toContain("added-later.txt");
    expect(root.entries.find((e) => e.name === "payload.bin")).toMatchObject({
      type: "file",
      size: payload.length,
    });
    expect(root.entries.find((e) => e.name === "link")).toMatchObject({
      type: "symlink",
      target: "/etc/nginx/nginx.conf",
    });

    const nginx = JSON.parse(cli(home, "files", "ls", ref, "before", "/etc/nginx", "--json").stdout) as {
      entries: { name: string; mode: number; mtime: string }[];
    };
    expect(nginx.entries).toEqual([
      expect.objectContaining({ name: "nginx.conf", mode: 0o100640, mtime: "2026-11-03T10:20:30.000Z" }),
    ]);
    // The snapshot taken while running has what the disk held then.
    const later = cli(home, "files", "ls", ref, "after", "/");
    expect(later.code, later.stderr).toBe(0);
    expect(later.stdout).toContain("added-later.txt");
    expect(later.stdout).toMatch(/^-rw-r--r-- .* payload\.bin$/m);
    expect(execFileSync("virsh", ["-c", URI, "domstate", vmName], { encoding: "utf8" }).trim()).toBe(
      "running",
    );
  }, 300_000);

  it("lists and fetches odd names as data, byte for byte, and folders as tar archives", () => {
    const listed = cli(home, "files", "ls", ref, "before", "/odd", "--json");
    expect(listed.code, listed.stderr).toBe(0);
    expect(
      (JSON.parse(listed.stdout) as { entries: { name: string }[] }).entries.map((e) => e.name).sort(),
    ).toEqual([...ODD].sort());
    // The terminal never gets a raw newline or control byte from a guest name.
    const human = cli(home, "files", "ls", ref, "before", "/odd");
    expect(human.stdout).toContain('"new\\nline"');

    const to = join(work, "fetched");
    mkdirSync(to);
    const got = cli(
      home,
      "files",
      "get",
      ref,
      "before",
      "/payload.bin",
      "/etc/nginx/nginx.conf",
      ...ODD.map((n) => `/odd/${n}`),
      "/etc",
      "--to",
      to,
      "--json",
    );
    expect(got.code, got.stderr).toBe(0);
    expect(readFileSync(join(to, "payload.bin")).equals(payload)).toBe(true);
    expect(readFileSync(join(to, "nginx.conf"), "utf8")).toBe(config);
    expect(statSync(join(to, "nginx.conf")).mode & 0o777).toBe(0o640);
    for (const name of ODD) {
      expect(readFileSync(join(to, name), "utf8")).toBe(`content of ${name}`);
    }
    expect(existsSync(join(process.cwd(), "pwned")) || existsSync(join(to, "pwned"))).toBe(false);
    const members = execFileSync("tar", ["-tf", join(to, "etc.tar")], { encoding: "utf8" });
    expect(members.split("\n")).toEqual(expect.arrayContaining(["./nginx/", "./nginx/nginx.conf"]));
    const extracted = join(work, "extracted");
    mkdirSync(extracted);
    execFileSync("tar", ["-xf", join(to, "etc.tar"), "-C", extracted]);
    expect(readFileSync(join(extracted, "nginx/nginx.conf"), "utf8")).toBe(config);

    // Never over a file that is there: the one fetched before stays as it was.
    const again = cli(home, "files", "get", ref, "after", "/etc/nginx/nginx.conf", "--to", to);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/nginx\.conf/);
    expect(again.stderr).toMatch(/never writes over a file/);
    expect(readFileSync(join(to, "nginx.conf"), "utf8")).toBe(config);
  }, 600_000);

  it("reads an MBR disk with XFS and the guest's own LVM, naming the file systems when it must choose", () => {
    const choose = cli(home, "files", "ls", ref, "before", "/", "--disk", "vdb");
    expect(choose.code).toBe(1);
    expect(choose.stderr).toMatch(/several file systems/);
    expect(choose.stderr).toContain("--fs");
    expect(choose.stderr).toContain("/dev/sda1 (xfs)");
    expect(choose.stderr).toContain("/dev/guestvg/data (ext4)");
    const xfs = cli(
      home,
      "files",
      "ls",
      ref,
      "before",
      "/xdir",
      "--disk",
      "vdb",
      "--fs",
      "/dev/sda1",
      "--json",
    );
    expect(xfs.code, xfs.stderr).toBe(0);
    expect(JSON.parse(xfs.stdout)).toMatchObject({
      disk: "vdb",
      mounts: [{ mountpoint: "/", device: "/dev/sda1", type: "xfs" }],
      entries: [{ name: "hello.txt", type: "file", size: 11 }],
    });
    // The guest's volume group stays in the appliance: the host never sees it.
    const to = join(work, "from-lvm");
    mkdirSync(to);
    const got = cli(
      home,
      "files",
      "get",
      ref,
      "before",
      "/in-lvm.txt",
      "--disk",
      "vdb",
      "--fs",
      "/dev/guestvg/data",
      "--to",
      to,
    );
    expect(got.code, got.stderr).toBe(0);
    expect(readFileSync(join(to, "in-lvm.txt"), "utf8")).toBe("from the guest's LVM");
    expect(
      execFileSync("sh", ["-c", "vgs --noheadings -o vg_name 2>/dev/null || true"], { encoding: "utf8" }),
    ).not.toContain("guestvg");
  }, 300_000);

  it("fetches through an SSH host, the bytes over its ssh2 connection", () => {
    const to = join(work, "over-ssh");
    mkdirSync(to);
    const got = cli(
      home,
      "files",
      "get",
      `loop/${vmName}`,
      "after",
      "/payload.bin",
      "/etc/nginx/nginx.conf",
      "--to",
      to,
    );
    expect(got.code, got.stderr).toBe(0);
    expect(readFileSync(join(to, "payload.bin")).equals(payload)).toBe(true);
    expect(readFileSync(join(to, "nginx.conf"), "utf8")).toBe("server { listen 443; }\n# after\n");
    expect(execFileSync("virsh", ["-c", URI, "domstate", vmName], { encoding: "utf8" }).trim()).toBe(
      "running",
    );
  }, 300_000);

  describe("an export, read where it is on its target", () => {
    const ids: Record<string, { before: string; after: string }> = {};

    beforeAll(() => {
      const sshTarget = join(sshd?.tmpDir ?? work, "backups");
      mkdirSync(sshTarget, { recursive: true });
      mkdirSync(join(work, "shelf"));
      const added = [
        cli(home, "target", "add", "shelf", "--dir", join(work, "shelf")),
        cli(
          home,
          "target",
          "add",
          "nas",
          "--ssh",
          `${sshd?.user ?? ""}@${sshd?.host ?? ""}:${sshd?.port ?? 0}:${sshTarget}`,
          "--identity",
          sshd?.userKeyPath ?? "",
          "--trust",
          sshd?.hostFingerprint ?? "",
        ),
      ];
      for (const a of added) {
        expect(a.code, a.stderr).toBe(0);
      }
      // Two exports to each: the second is built on the first (a chain of two images).
      for (const target of ["shelf", "nas"]) {
        const made = { before: "", after: "" };
        for (const snapshot of ["before", "after"] as const) {
          const exported = cli(home, "export", ref, snapshot, "--to", target, "--disk", "vda", "--json");
          expect(exported.code, exported.stderr).toBe(0);
          made[snapshot] = (JSON.parse(exported.stdout) as { id: string }).id;
        }
        ids[target] = made;
      }
    }, 600_000);

    it("lists and fetches from an incremental export on an SSH target, only what is read crossing", () => {
      const id = ids.nas?.after ?? "";
      const listed = cli(home, "files", "ls", ref, id, "--export", "nas", "/", "--json");
      expect(listed.code, listed.stderr).toBe(0);
      const root = JSON.parse(listed.stdout) as {
        export: { target: string; id: string; links: number };
        entries: { name: string }[];
      };
      // Built on the first export: both images read, in the order the manifests say.
      expect(root.export).toEqual({ target: "nas", id, links: 2 });
      expect(root.entries.map((e) => e.name)).toEqual(expect.arrayContaining(["added-later.txt", "odd"]));
      const to = join(work, "from-nas");
      mkdirSync(to);
      const got = cli(
        home,
        "files",
        "get",
        ref,
        id,
        "--export",
        "nas",
        "/payload.bin",
        "/etc/nginx/nginx.conf",
        ...ODD.map((n) => `/odd/${n}`),
        "--to",
        to,
      );
      expect(got.code, got.stderr).toBe(0);
      expect(readFileSync(join(to, "payload.bin")).equals(payload)).toBe(true);
      expect(readFileSync(join(to, "nginx.conf"), "utf8")).toBe("server { listen 443; }\n# after\n");
      for (const name of ODD) {
        expect(readFileSync(join(to, name), "utf8")).toBe(`content of ${name}`);
      }
      // The first export is the disk as it was before.
      const before = cli(home, "files", "ls", ref, ids.nas?.before ?? "", "--export", "nas", "/");
      expect(before.code, before.stderr).toBe(0);
      expect(before.stdout).not.toContain("added-later.txt");
    }, 600_000);

    it("leaves nothing behind after an export browse killed outright, once the next one ran", async () => {
      const id = ids.nas?.after ?? "";
      await killedBrowseLeavesNothing(
        [ref, id, "--export", "nas", "/"],
        [ref, id, "--export", "nas", "/empty"],
      );
    }, 600_000);

    it("reads a folder target's export through descriptors, and refuses a link whose header lies", () => {
      const id = ids.shelf?.after ?? "";
      const to = join(work, "from-shelf");
      mkdirSync(to);
      const got = cli(
        home,
        "files",
        "get",
        ref,
        id,
        "--export",
        "shelf",
        "/etc/nginx/nginx.conf",
        "--to",
        to,
      );
      expect(got.code, got.stderr).toBe(0);
      expect(readFileSync(join(to, "nginx.conf"), "utf8")).toBe("server { listen 443; }\n# after\n");

      // The incremental image made to name a host file as its backing: refused before QEMU opens
      // anything, and nothing is left running.
      const folder = readdirSync(join(work, "shelf"), { recursive: true, encoding: "utf8" }).find(
        (p) => p.endsWith(`${id}/vda.qcow2`) || (p.includes(id) && p.endsWith("vda.qcow2")),
      );
      expect(folder).toBeDefined();
      const image = join(work, "shelf", folder ?? "");
      const bytes = readFileSync(image);
      const offset = Number(bytes.readBigUInt64BE(8));
      const length = bytes.readUInt32BE(16);
      const hostile = Buffer.alloc(length, 0);
      Buffer.from("/etc/passwd").copy(hostile);
      writeFileSync(
        image,
        Buffer.concat([bytes.subarray(0, offset), hostile, bytes.subarray(offset + length)]),
      );
      const refused = cli(home, "files", "ls", ref, id, "--export", "shelf", "/");
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/not a standalone qcow2 image.*nothing was read/);
      const wrongVm = cli(
        home,
        "files",
        "ls",
        "here/someone-else",
        ids.shelf?.before ?? "",
        "--export",
        "shelf",
      );
      expect(wrongVm.code).toBe(1);
      expect(wrongVm.stderr).toMatch(/is of VM sk-files-/);
      expect(
        execFileSync("sh", ["-c", 'pgrep -u "$(id -u)" -f "[q]emu-storage-daemon.*snapkeep-nbd-" || true'], {
          encoding: "utf8",
        }).trim(),
      ).toBe("");
    }, 600_000);
  });

  it("refuses what it does not understand before starting anything, with what to do", () => {
    const dots = cli(home, "files", "ls", ref, "before", "/etc/../etc");
    expect(dots.code).toBe(1);
    expect(dots.stderr).toMatch(/no "\." or "\.\." parts/);
    const relative = cli(home, "files", "get", ref, "before", "etc/passwd", "--to", work);
    expect(relative.code).toBe(1);
    expect(relative.stderr).toMatch(/starts with \//);
    const missing = cli(home, "files", "ls", ref, "no-such-snapshot", "/");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no-such-snapshot/);
  }, 120_000);

  it("refuses a browse folder someone else made first under /var/tmp (a link, or a folder not the user's)", () => {
    // As the user nobody, whose folder is /var/tmp/snapkeep-files-65534: planted by root here.
    const planted = filesRoot(65534);
    const run = (): number => {
      try {
        execFileSync(
          "setpriv",
          [
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
            FILES_SCRIPT,
            "snapkeep-files",
            "block",
            "run",
          ],
          { stdio: ["ignore", "ignore", "ignore"] },
        );
        return 0;
      } catch (error) {
        return (error as { status?: number }).status ?? -1;
      }
    };
    rmSync(planted, { recursive: true, force: true });
    try {
      symlinkSync("/tmp", planted);
      expect(run()).toBe(23);
      rmSync(planted);
      mkdirSync(planted, { mode: 0o777 });
      expect(run()).toBe(23);
      expect(readdirSync(planted)).toEqual([]);
    } finally {
      rmSync(planted, { recursive: true, force: true });
    }
  });

  it("leaves nothing behind after a browse killed outright, once the next browse ran", async () => {
    await killedBrowseLeavesNothing([ref, "before", "/"], [ref, "before", "/empty"]);
  }, 600_000);
});

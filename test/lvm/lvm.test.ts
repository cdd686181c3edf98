/**
 * LVM snapshots and application-consistent snapshots on a real guest with its own kernel
 * (scripts/lvm-guest.sh): Snapkeep reaches it over SSH as an LVM host, and the same guest is a
 * running VM with qemu-guest-agent on this machine's libvirt.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { VmModules } from "../../core/app/vm-modules.js";
import { Exports } from "../../core/app/exports/exports.js";
import { Targets } from "../../core/app/targets.js";
import { openSealKey } from "../../core/infra/seal-key.js";
import { openLvSnapshotReadable } from "../../core/hypervisor/lvm.js";
import { Schedules, scheduledTag } from "../../core/app/schedules/schedules.js";
import { runChecked } from "../../core/infra/runner/checked.js";
import type { CommandRunner } from "../../core/infra/runner/types.js";
import { makeApp } from "../support/app.js";
import { guestHost, lvmGuest, type LvmGuest } from "../support/lvm-guest.js";
import { isSnapkeepError } from "../../core/errors.js";

const MiB = 1024 * 1024;

describe("LVM host (a real Debian guest)", () => {
  let ctx: ReturnType<typeof makeApp>;
  let app: VmModules;
  let guest: LvmGuest;
  let runner: CommandRunner;

  const sh = async (...argv: string[]): Promise<string> =>
    (await runChecked(runner, argv, `test: ${argv.join(" ")}`, { timeoutMs: 300_000 })).stdout;
  const hash = async (device: string): Promise<string> => (await sh("sha256sum", device)).slice(0, 64);
  const scribble = (device: string, mib: number): Promise<string> =>
    sh("dd", "if=/dev/urandom", `of=${device}`, "bs=1M", `count=${mib}`, "oflag=direct", "status=none");
  const lvNames = async (): Promise<string[]> =>
    (await sh("lvs", "--noheadings", "-o", "lv_name", "vgsk"))
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean);

  /** The export engine as the app builds it, to targets of its own. */
  const exportsOn = (targets: Targets): Exports =>
    new Exports({
      ...app,
      targets,
      sealKey: () => openSealKey(ctx.home),
      now: () => new Date(),
      stagingRoot: "/var/tmp/snapkeep-export",
      sleep: async () => undefined,
    });

  beforeAll(async () => {
    guest = lvmGuest();
    ctx = makeApp();
    app = ctx.app;
    await app.hosts.addSsh(guestHost("lvm", guest));
    runner = app.hosts.libvirt("lvm").runner;
  });

  afterAll(async () => {
    await ctx?.dispose();
  });

  it("lists VMs whose disks are thick and thin LVs as snapshottable, sized from lvs", async () => {
    const vm1 = await app.vms.get("lvm", "sk-lvm-vm1");
    expect(vm1.disks.map((d) => [d.target, d.type, d.snapshotBlocker, d.virtualSize])).toEqual([
      ["vda", "block", null, 64 * MiB],
      ["vdb", "block", null, 32 * MiB],
    ]);
    const mixed = await app.vms.get("lvm", "sk-lvm-mixed");
    expect(mixed.disks.map((d) => [d.target, d.snapshotBlocker])).toEqual([
      ["vda", null],
      ["vdb", null],
    ]);
  });

  it("thick: creates a tagged COW snapshot, reverts by merge (content back, snapshot kept), deletes", async () => {
    await scribble("/dev/vgsk/vm1-data", 2);
    const before = await hash("/dev/vgsk/vm1-data");
    const snapshot = await app.snapshots.create("lvm", "sk-lvm-vm1", {
      name: "before it's changed",
      disks: ["vdb"],
    });
    expect(snapshot.kind).toBe("manual");
    expect(snapshot.disks[0]?.lv).toMatchObject({ vg: "vgsk", thin: false, invalid: false });
    const tags = await sh(
      "lvs",
      "--noheadings",
      "-o",
      "lv_tags",
      `vgsk/${snapshot.disks[0]?.lv?.name ?? ""}`,
    );
    expect(tags).toMatch(/snapkeep,snapkeep\.of\.vm1-data,snapkeep\.tag\./); // lvs sorts the tags

    await scribble("/dev/vgsk/vm1-data", 4);
    expect(await hash("/dev/vgsk/vm1-data")).not.toBe(before);
    const dry = await app.revert.revert("lvm", "sk-lvm-vm1", snapshot.name, { dryRun: true });
    expect(dry.dryRun).toBe(true);
    await app.revert.revert("lvm", "sk-lvm-vm1", snapshot.name, { stopRunning: true });
    expect(await hash("/dev/vgsk/vm1-data")).toBe(before);

    const after = await app.snapshots.list("lvm", "sk-lvm-vm1");
    expect(after.map((s) => s.kind).sort()).toEqual(["manual", "safety"]);
    // LVM's merge consumed the snapshot; Snapkeep took it again with the same identity and time.
    const kept = after.find((s) => s.kind === "manual");
    expect(kept).toMatchObject({ tag: snapshot.tag, createdAt: snapshot.createdAt });

    await app.snapshots.delete("lvm", "sk-lvm-vm1", snapshot.name, { dryRun: true });
    expect((await app.snapshots.list("lvm", "sk-lvm-vm1")).length).toBe(2);
    for (const s of after) {
      await app.snapshots.delete("lvm", "sk-lvm-vm1", s.tag);
    }
    expect((await lvNames()).filter((n) => n.startsWith("vm1-data."))).toEqual([]);
  });

  it("refuses to merge into an LV that something holds open, rather than let LVM defer it", async () => {
    const snapshot = await app.snapshots.create("lvm", "sk-lvm-vm1", { name: "held", disks: ["vdb"] });
    const pid = (
      await sh("sh", "-c", 'setsid sleep 300 < "$1" > /dev/null 2>&1 & echo $!', "hold", "/dev/vgsk/vm1-data")
    ).trim();
    try {
      await expect(
        app.revert.revert("lvm", "sk-lvm-vm1", snapshot.name, { stopRunning: true }),
      ).rejects.toThrow(/vgsk\/vm1-data is open .* nothing was reverted/);
    } finally {
      await sh("kill", pid);
    }
    for (const s of await app.snapshots.list("lvm", "sk-lvm-vm1")) {
      await app.snapshots.delete("lvm", "sk-lvm-vm1", s.tag);
    }
  });

  it("detects a tiny thick snapshot whose COW space ran out: reported, never reverted to", async () => {
    // 20% of the 64 MiB origin is 16 MiB of COW space; 24 MiB of changes overrun it.
    const tiny = await app.snapshots.create("lvm", "sk-lvm-vm1", { name: "tiny", disks: ["vda"] });
    await scribble("/dev/vgsk/vm1-root", 24);
    const listed = (await app.snapshots.list("lvm", "sk-lvm-vm1")).find((s) => s.tag === tiny.tag);
    expect(listed?.disks[0]?.lv).toMatchObject({ invalid: true });
    await expect(app.revert.revert("lvm", "sk-lvm-vm1", "tiny", { stopRunning: true })).rejects.toThrow(
      /invalid on vda: its LVM COW space ran out/,
    );
    const next = await app.snapshots.take("lvm", "sk-lvm-vm1", {
      kind: "manual",
      name: "next",
      disks: ["vda"],
    });
    expect(next.warnings.join("\n")).toMatch(/"tiny" of vda is invalid/);
    await app.snapshots.delete("lvm", "sk-lvm-vm1", "tiny");
    await app.snapshots.delete("lvm", "sk-lvm-vm1", "next");
  });

  it("refuses a snapshot that would not fit the volume group, with the numbers", async () => {
    await sh("lvcreate", "--quiet", "-y", "-l", "100%FREE", "-n", "sk-filler", "vgsk");
    try {
      const error: unknown = await app.snapshots
        .create("lvm", "sk-lvm-vm1", { name: "too big", disks: ["vdb"] })
        .catch((e: unknown) => e);
      expect(isSnapkeepError(error, "NO_SPACE")).toBe(true);
      expect(String(error)).toMatch(/needs 8 MiB of COW space in volume group vgsk, which has 0 B free/);
    } finally {
      await sh("lvremove", "--quiet", "-y", "vgsk/sk-filler");
    }
    expect(await app.snapshots.list("lvm", "sk-lvm-vm1")).toEqual([]);
  });

  it("thin: snapshot skips activation, exports with the snapshot's content, reverts by merge", async () => {
    await scribble("/dev/vgsk/vm2-root", 3);
    const before = await hash("/dev/vgsk/vm2-root");
    const snapshot = await app.snapshots.create("lvm", "sk-lvm-vm2", { name: "thin one" });
    const lv = snapshot.disks[0]?.lv;
    expect(lv).toMatchObject({ thin: true, usedPercent: null });
    expect((await sh("lvs", "--noheadings", "-o", "lv_attr", `vgsk/${lv?.name ?? ""}`)).trim()).toMatch(
      /^Vwi---tz-k$/,
    );
    await scribble("/dev/vgsk/vm2-root", 2);

    const work = mkdtempSync(join(tmpdir(), "snapkeep-lvm-export-"));
    try {
      const targets = new Targets({ store: ctx.store, ssh: ctx.ssh });
      const exports = exportsOn(targets);
      await targets.add({ name: "folder", dir: join(work, "target") });
      await exports.export({ host: "lvm", vm: "sk-lvm-vm2", snapshot: "thin one", target: "folder" });
      const vmDir = join(work, "target", readdirSync(join(work, "target"))[0] ?? "");
      const exported = join(vmDir, readdirSync(vmDir).find((f) => !f.startsWith(".")) ?? "", "vda.qcow2");
      const raw = join(work, "vda.raw");
      execFileSync("qemu-img", ["convert", "-f", "qcow2", "-O", "raw", exported, raw]);
      expect(execFileSync("sha256sum", [raw], { encoding: "utf8" }).slice(0, 64)).toBe(before);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    // The export activated the thin snapshot only for the read.
    expect((await sh("lvs", "--noheadings", "-o", "lv_active", `vgsk/${lv?.name ?? ""}`)).trim()).toBe("");

    await app.revert.revert("lvm", "sk-lvm-vm2", "thin one", { stopRunning: true });
    expect(await hash("/dev/vgsk/vm2-root")).toBe(before);
    for (const s of await app.snapshots.list("lvm", "sk-lvm-vm2")) {
      await app.snapshots.delete("lvm", "sk-lvm-vm2", s.tag);
    }
  });

  it("thin: a file browse activates the snapshot with a read-only device, for its time only", async () => {
    await scribble("/dev/vgsk/vm2-root", 1);
    const before = await hash("/dev/vgsk/vm2-root");
    const snapshot = await app.snapshots.create("lvm", "sk-lvm-vm2", { name: "browse me" });
    const lv = snapshot.disks[0]?.lv;
    await scribble("/dev/vgsk/vm2-root", 1);
    const readable = await openLvSnapshotReadable(runner, "vda", snapshot.disks[0]?.imageSnapshotId ?? "", {
      readOnly: true,
    });
    try {
      expect(readable.path).toBe(`/dev/vgsk/${lv?.name ?? ""}`);
      expect(await hash(readable.path)).toBe(before);
      expect((await sh("blockdev", "--getro", readable.path)).trim()).toBe("1");
      const write = await runner.run(
        ["dd", "if=/dev/zero", `of=${readable.path}`, "bs=4k", "count=1", "oflag=direct"],
        {
          timeoutMs: 60_000,
        },
      );
      expect(write.code).not.toBe(0);
      // LVM says so itself: "R", a read-only activation of a volume that is writable in its
      // metadata (the permission stays as it was: a merge later needs it writable).
      expect((await sh("lvs", "--noheadings", "-o", "lv_attr", `vgsk/${lv?.name ?? ""}`)).trim()).toMatch(
        /^VRi-a/,
      );
    } finally {
      await readable.release();
    }
    expect((await sh("lvs", "--noheadings", "-o", "lv_active", `vgsk/${lv?.name ?? ""}`)).trim()).toBe("");
    expect(await hash("/dev/vgsk/vm2-root")).not.toBe(before);
    await app.snapshots.delete("lvm", "sk-lvm-vm2", snapshot.tag);
  });

  it("thin: exports stream only what changed, found in the pool's metadata, and fall back with the reason", async () => {
    const origin = "/dev/vgsk/vm2-root";
    const work = mkdtempSync(join(tmpdir(), "snapkeep-thin-chain-"));
    const targets = new Targets({ store: ctx.store, ssh: ctx.ssh });
    const exports = exportsOn(targets);
    const restoredHash = (exportId: string): string => {
      const vmDir = join(work, "target", readdirSync(join(work, "target"))[0] ?? "");
      const raw = join(work, `${exportId}.raw`);
      // Stock qemu-img follows the chain of backing files, as RESTORE.md says.
      execFileSync("qemu-img", [
        "convert",
        "-f",
        "qcow2",
        "-O",
        "raw",
        join(vmDir, exportId, "vda.qcow2"),
        raw,
      ]);
      const sum = execFileSync("sha256sum", [raw], { encoding: "utf8" }).slice(0, 64);
      rmSync(raw);
      return sum;
    };
    const held = async (): Promise<string> =>
      (await sh("dmsetup", "status", "vgsk-pool-tpool")).trim().split(/\s+/)[6] ?? "?";
    const exportOf = (snapshot: string) =>
      exports.export({ host: "lvm", vm: "sk-lvm-vm2", snapshot, target: "thin-chain" });
    try {
      await targets.add({ name: "thin-chain", dir: join(work, "target") });
      await scribble(origin, 8);
      await app.snapshots.create("lvm", "sk-lvm-vm2", { name: "chain one" });
      const one = await hash(origin);
      // Scattered 64 KiB writes, and a discard of data the first snapshot holds (it reads as
      // zeros afterwards: a block only the older snapshot maps).
      for (const at of ["300", "301", "1000"]) {
        await sh(
          "dd",
          "if=/dev/urandom",
          `of=${origin}`,
          "bs=64K",
          "count=1",
          `seek=${at}`,
          "oflag=direct",
          "status=none",
        );
      }
      await sh("blkdiscard", "-o", String(2 * MiB), "-l", String(MiB), origin);
      await app.snapshots.create("lvm", "sk-lvm-vm2", { name: "chain two" });
      const two = await hash(origin);
      expect(two).not.toBe(one);

      const first = await exportOf("chain one");
      expect(first.engine).toBe("stream");
      expect(first.notes.join("\n")).toMatch(/vda full: there is no earlier verified export/);
      // What the thin snapshot maps (8 MiB written), not the 128 MiB volume.
      expect(first.bytesRead).toBeGreaterThanOrEqual(8 * MiB);
      expect(first.bytesRead).toBeLessThan(12 * MiB);
      const second = await exportOf("chain two");
      expect(second.engine).toBe("stream");
      expect(second.notes.join("\n")).toMatch(new RegExp(`vda incremental: changes since ${first.id}`));
      // Three written blocks and the 1 MiB discarded: under 2 MiB read, however big the volume.
      expect(second.bytesRead).toBeLessThan(2 * MiB);
      expect(restoredHash(first.id)).toBe(one);
      expect(restoredHash(second.id)).toBe(two);
      // The pool's metadata snapshot was released after each read.
      expect(await held()).toBe("-");

      // The basis export's snapshot deleted on the host: a full export, saying why.
      await app.snapshots.delete("lvm", "sk-lvm-vm2", "chain two");
      await sh(
        "dd",
        "if=/dev/urandom",
        `of=${origin}`,
        "bs=64K",
        "count=2",
        "seek=40",
        "oflag=direct",
        "status=none",
      );
      await app.snapshots.create("lvm", "sk-lvm-vm2", { name: "chain three" });
      const three = await hash(origin);
      const third = await exportOf("chain three");
      expect(third.notes.join("\n")).toMatch(
        new RegExp(
          `vda full: the snapshot of the previous export \\(${second.id}\\) is no longer on the host`,
        ),
      );
      expect(restoredHash(third.id)).toBe(three);

      // Another tool holds the pool's metadata snapshot: left alone, and the export goes the old way.
      await sh("dmsetup", "message", "vgsk-pool-tpool", "0", "reserve_metadata_snap");
      try {
        const fourth = await exportOf("chain three");
        expect(fourth.engine).toBe("convert");
        expect(fourth.notes.join("\n")).toMatch(/metadata snapshot of vgsk-pool is held by something else/);
        expect(restoredHash(fourth.id)).toBe(three);
        expect(await held()).not.toBe("-");
      } finally {
        await sh("dmsetup", "message", "vgsk-pool-tpool", "0", "release_metadata_snap");
      }
      // A reader killed outright (SIGKILL) left its reservation, with the root it recorded: the
      // next export releases that one, and streams.
      await sh("dmsetup", "message", "vgsk-pool-tpool", "0", "reserve_metadata_snap");
      await sh(
        "sh",
        "-c",
        'printf "%s\\n" "$1" > /run/lock/snapkeep-thin-vgsk-pool.held',
        "mark",
        await held(),
      );
      const fifth = await exportOf("chain three");
      expect(fifth.engine).toBe("stream");
      expect(restoredHash(fifth.id)).toBe(three);
      expect(await held()).toBe("-");
    } finally {
      rmSync(work, { recursive: true, force: true });
      await targets.dispose();
      for (const s of await app.snapshots.list("lvm", "sk-lvm-vm2")) {
        await app.snapshots.delete("lvm", "sk-lvm-vm2", s.tag);
      }
    }
  });

  it("a schedule keeps the newest N scheduled snapshots of an LV and prunes only its own", async () => {
    const schedules = new Schedules(app, () => new Date());
    const manual = await app.snapshots.create("lvm", "sk-lvm-vm2", { name: "manual stays" });
    const schedule = await schedules.add({
      host: "lvm",
      vm: "sk-lvm-vm2",
      when: { every: "daily", at: "02:30" },
      retention: { keepLast: 2 },
    });
    const pruned: string[] = [];
    for (const day of [1, 2, 3]) {
      const result = await schedules.run(
        schedule,
        scheduledTag(schedule, new Date(Date.UTC(2026, 10, day, 1, 30))),
      );
      pruned.push(...result.pruned);
    }
    const left = await app.snapshots.list("lvm", "sk-lvm-vm2");
    expect(left.filter((s) => s.kind === "scheduled")).toHaveLength(2);
    expect(pruned).toHaveLength(1);
    expect(left.some((s) => s.tag === manual.tag)).toBe(true);
    expect((await lvNames()).filter((n) => n.startsWith("vm2-root."))).toHaveLength(3);
    for (const s of left) {
      await app.snapshots.delete("lvm", "sk-lvm-vm2", s.tag);
    }
  });
});

describe("the same guest as a running VM: freeze/thaw and hooks through its guest agent", () => {
  let ctx: ReturnType<typeof makeApp>;
  let app: VmModules;
  let runner: CommandRunner;

  beforeAll(async () => {
    ctx = makeApp();
    app = ctx.app;
    app.hosts.addLocal("local");
    await app.hosts.addSsh(guestHost("lvm", lvmGuest()));
    runner = app.hosts.libvirt("lvm").runner;
  });

  afterAll(async () => {
    await ctx?.dispose();
  });

  const agent = (command: string): string =>
    execFileSync("virsh", ["-q", "-c", "qemu:///system", "qemu-agent-command", "sk-lvm-guest", command], {
      encoding: "utf8",
    });

  it("takes a frozen, hooked snapshot while a process writes, thaws the guest, and logs the hook's output", async () => {
    const vm = await app.vms.get("local", "sk-lvm-guest");
    const writer = (
      await runChecked(
        runner,
        [
          "sh",
          "-c",
          'setsid sh -c "while :; do date +%s%N >> /root/writer.log; sleep 0.05; done" > /dev/null 2>&1 & echo $!',
        ],
        "starting a writer",
      )
    ).stdout.trim();
    try {
      app.annotations.setConsistency("local", vm.uuid, {
        freeze: true,
        pre: {
          where: "guest",
          argv: ["/bin/sh", "-c", "echo pre-hook in $(hostname); sync"],
          timeoutSeconds: 120,
        },
      });
      const schedules = new Schedules(app, () => new Date());
      const schedule = await schedules.add({
        host: "local",
        vm: "sk-lvm-guest",
        when: { every: "daily", at: "03:00" },
        retention: { keepLast: 1 },
      });
      const run = await schedules.run(schedule, scheduledTag(schedule, new Date()));
      expect(run.snapshot.consistency).toBe("frozen+hooked");
      expect(run.log.join("\n")).toMatch(/pre-snapshot hook .* \(guest\) printed: pre-hook in sk-lvm-guest/);
      expect(JSON.parse(agent('{"execute":"guest-fsfreeze-status"}'))).toEqual({ return: "thawed" });
      const lines = async (): Promise<number> =>
        Number((await runChecked(runner, ["wc", "-l", "/root/writer.log"], "counting")).stdout.split(" ")[0]);
      const now = await lines();
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect(await lines()).toBeGreaterThan(now); // the writer goes on: nothing stayed frozen
      await app.snapshots.delete("local", "sk-lvm-guest", run.snapshot.tag);
    } finally {
      await runChecked(runner, ["kill", writer], "stopping the writer");
    }
  });
});

/**
 * The driver contract, run twice against real libvirtd + QEMU: once through this computer's
 * runner and once through a real OpenSSH sshd on loopback (the same libvirtd behind it).
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isSnapkeepError } from "../../core/errors.js";
import type { VmModules } from "../../core/app/vm-modules.js";
import { makeApp } from "../support/app.js";
import { trustedHost, startSshd, type TestSshd } from "../support/sshd.js";
import { hasPattern, qemuIo, TestVms, uniqueSuffix, virshOut, writeLive } from "../support/libvirt.js";
import { waitFor } from "../support/wait.js";

const hosts = [
  { label: "local", hostName: "local" },
  { label: "ssh", hostName: "loop" },
] as const;

describe.each(hosts)("snapshot contract via $label", ({ hostName }) => {
  const vms = new TestVms();
  let sshd: TestSshd | undefined;
  let ctx: ReturnType<typeof makeApp>;
  let app: VmModules;
  const suffix = uniqueSuffix();
  const offName = `sk-off-${suffix}`;
  const runName = `sk-run-${suffix}`;
  let offDisks: readonly string[] = [];
  let runUuid = "";
  let runDisks: readonly string[] = [];

  beforeAll(async () => {
    ctx = makeApp();
    app = ctx.app;
    if (hostName === "local") {
      app.hosts.addLocal("local");
    } else {
      sshd = await startSshd();
      await app.hosts.addSsh(trustedHost("loop", sshd));
    }
    const off = await vms.create({
      name: offName,
      running: false,
      disks: [
        { target: "vda", sizeMiB: 16 },
        { target: "vdb", sizeMiB: 16 },
      ],
    });
    offDisks = off.diskPaths;
    const run = await vms.create({
      name: runName,
      running: true,
      disks: [
        { target: "vda", sizeMiB: 16 },
        { target: "vdb", sizeMiB: 16 },
      ],
    });
    runUuid = run.uuid;
    runDisks = run.diskPaths;
  });

  afterAll(async () => {
    await ctx?.dispose();
    await vms.dispose();
    await sshd?.stop();
  });

  it("finds a VM by its UUID as well as its name", async () => {
    expect((await app.vms.get(hostName, runUuid)).name).toBe(runName);
  });

  it("lists VMs with state, disks, roles and sizes", async () => {
    const [result] = await app.vms.list(hostName);
    expect(result?.error).toBeNull();
    const off = result?.vms.find((v) => v.name === offName);
    const run = result?.vms.find((v) => v.name === runName);
    expect(off).toMatchObject({ state: "shut off", active: false, host: hostName });
    expect(run).toMatchObject({ state: "running", active: true });
    for (const vm of [off, run]) {
      expect(vm?.disks.map((d) => [d.target, d.role, d.format, d.virtualSize, d.snapshotBlocker])).toEqual([
        ["vda", "root", "qcow2", 16 * 1024 * 1024, null],
        ["vdb", "additional", "qcow2", 16 * 1024 * 1024, null],
      ]);
      expect(vm?.uuid).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it("snapshots a shut-off VM, reverts after a change, and deletes", async () => {
    const [vda, vdb] = offDisks as [string, string];
    qemuIo(vda, "write -P 0xa1 0 64k");
    qemuIo(vdb, "write -P 0xb1 0 64k");
    const snap = await app.snapshots.create(hostName, offName, { name: "before change", note: "a note" });
    expect(snap).toMatchObject({
      name: "before change",
      kind: "manual",
      note: "a note",
      tag: "snapkeep:manual:before change",
    });
    expect(snap.disks.map((d) => d.target)).toEqual(["vda", "vdb"]);
    // Recognisable on the host itself, without Snapkeep's settings.
    expect(execInfoSnapshots(vda)).toContain("snapkeep:manual:before change");

    qemuIo(vda, "write -P 0xa2 0 64k");
    qemuIo(vdb, "write -P 0xb2 0 64k");
    const reverted = await app.revert.revert(hostName, offName, "before change");
    expect(reverted).toMatchObject({ disks: ["vda", "vdb"], restarted: false });
    expect(hasPattern(vda, 0xa1)).toBe(true);
    expect(hasPattern(vdb, 0xb1)).toBe(true);

    // The revert kept what was there in a safety snapshot of the same disks.
    const safety = (await app.snapshots.list(hostName, offName)).find((s) => s.kind === "safety");
    expect(safety).toMatchObject({ name: reverted.safety.name, tag: reverted.safety.tag });
    expect(safety?.disks.map((d) => d.target)).toEqual(["vda", "vdb"]);

    await app.snapshots.delete(hostName, offName, "before change");
    await app.snapshots.delete(hostName, offName, reverted.safety.tag);
    expect(await app.snapshots.list(hostName, offName)).toEqual([]);
    expect(execInfoSnapshots(vda)).toEqual([]);
  });

  it("snapshots one chosen disk of a running VM and reverts it with a managed stop and start", async () => {
    const [vda, vdb] = runDisks as [string, string];
    writeLive(runUuid, "virtio-disk1", 0xc1);
    writeLive(runUuid, "virtio-disk0", 0xd1);
    const snap = await app.snapshots.create(hostName, runName, { disks: ["vdb"], name: "live-1" });
    expect(snap.disks.map((d) => d.target)).toEqual(["vdb"]);
    writeLive(runUuid, "virtio-disk1", 0xc2);
    writeLive(runUuid, "virtio-disk0", 0xd2);

    // Reverting needs the VM stopped, and Snapkeep says so instead of doing it unasked.
    await expect(app.revert.revert(hostName, runName, "live-1")).rejects.toMatchObject({
      code: "VM_RUNNING",
    });
    expect(virshOut("domstate", runUuid).trim()).toBe("running");

    // A VM with no OS ignores ACPI shutdown: the timeout then needs --force.
    await expect(
      app.revert.revert(hostName, runName, "live-1", { stopRunning: true, shutdownTimeoutMs: 1000 }),
    ).rejects.toMatchObject({ code: "VM_RUNNING" });
    const result = await app.revert.revert(hostName, runName, "live-1", {
      stopRunning: true,
      force: true,
      shutdownTimeoutMs: 1000,
    });
    expect(result).toMatchObject({ disks: ["vdb"], restarted: true });
    expect(virshOut("domstate", runUuid).trim()).toBe("running");

    virshOut("destroy", runUuid);
    expect(hasPattern(vdb, 0xc1)).toBe(true); // reverted
    expect(hasPattern(vda, 0xd2)).toBe(true); // not chosen, untouched
    virshOut("start", runUuid);

    const listed = await app.snapshots.list(hostName, runName);
    expect(listed.map((s) => s.name)).toEqual(["live-1", result.safety.name]);
    expect(listed[1]?.disks.map((d) => d.target)).toEqual(["vdb"]);
    await app.snapshots.delete(hostName, runName, "live-1");
    await app.snapshots.delete(hostName, runName, result.safety.tag);
    expect(await app.snapshots.list(hostName, runName)).toEqual([]);
  });

  it("snapshots all disks of a running VM in one transaction and deletes live", async () => {
    const snap = await app.snapshots.create(hostName, runName, { name: "both" });
    expect(snap.disks.map((d) => d.target)).toEqual(["vda", "vdb"]);
    const createdAt = new Date(snap.createdAt).getTime();
    expect(Math.abs(createdAt - Date.now())).toBeLessThan(60_000);
    await app.snapshots.delete(hostName, runName, "both");
    expect(await app.snapshots.list(hostName, runName)).toEqual([]);
  });

  it("runs hooks on the host around a running VM's snapshot; a failing pre-hook stops it", async () => {
    const marker = `/tmp/snapkeep-post-hook-${suffix}-${hostName}`;
    app.annotations.setConsistency(hostName, runUuid, {
      freeze: true, // no guest agent in this VM: the snapshot is hooked, not frozen
      pre: { where: "host", argv: ["true"], timeoutSeconds: 30 },
      post: { where: "host", argv: ["touch", marker], timeoutSeconds: 30 },
    });
    try {
      const hooked = await app.snapshots.create(hostName, runName, { name: "hooked" });
      expect(hooked.consistency).toBe("hooked");
      expect(existsSync(marker)).toBe(true);
      rmSync(marker);

      app.annotations.setConsistency(hostName, runUuid, {
        freeze: false,
        pre: { where: "host", argv: ["sh", "-c", "echo database busy; exit 3"], timeoutSeconds: 30 },
        post: { where: "host", argv: ["touch", marker], timeoutSeconds: 30 },
      });
      await expect(app.snapshots.create(hostName, runName, { name: "refused" })).rejects.toMatchObject({
        code: "HOOK_FAILED",
        message: expect.stringContaining("exit code 3; no snapshot was taken"),
        hint: expect.stringContaining("database busy"),
      });
      expect((await app.snapshots.list(hostName, runName)).map((s) => s.name)).toEqual(["hooked"]);
      expect(existsSync(marker)).toBe(false); // the pre-hook failed, so nothing to undo after
    } finally {
      app.annotations.setConsistency(hostName, runUuid, { freeze: true });
      rmSync(marker, { force: true });
    }
    await app.snapshots.delete(hostName, runName, "hooked");
  });

  it("refuses duplicate names, unknown disks and unknown snapshots clearly", async () => {
    await app.snapshots.create(hostName, offName, { name: "dup" });
    await expect(app.snapshots.create(hostName, offName, { name: "dup" })).rejects.toMatchObject({
      code: "ALREADY_EXISTS",
    });
    await expect(app.snapshots.create(hostName, offName, { disks: ["vdz"] })).rejects.toMatchObject({
      code: "NOT_FOUND",
      message: expect.stringContaining("vdz"),
    });
    await expect(app.revert.revert(hostName, offName, "nope")).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    await expect(app.snapshots.create(hostName, "no-such-vm")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await app.snapshots.delete(hostName, offName, "dup");
  });

  it("never deletes a snapshot it did not make, or a pinned one, dry run included", async () => {
    const [vda] = offDisks as [string, string];
    execFileSync("qemu-img", ["snapshot", "-c", "made-by-hand", vda]);
    const listed = await app.snapshots.list(hostName, offName);
    expect(listed.find((s) => s.tag === "made-by-hand")).toMatchObject({
      kind: "foreign",
      disks: [{ target: "vda" }],
    });
    await expect(app.snapshots.delete(hostName, offName, "made-by-hand")).rejects.toMatchObject({
      code: "INVALID_INPUT",
      message: expect.stringContaining("not made by Snapkeep"),
    });
    await expect(
      app.snapshots.delete(hostName, offName, "made-by-hand", { dryRun: true }),
    ).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });

    await app.snapshots.create(hostName, offName, { name: "keep-me" });
    await app.snapshots.setPinned(hostName, offName, "keep-me", true);
    await expect(app.snapshots.delete(hostName, offName, "keep-me", { dryRun: true })).rejects.toMatchObject({
      message: expect.stringContaining("is pinned"),
    });
    await expect(app.snapshots.delete(hostName, offName, "keep-me")).rejects.toMatchObject({
      message: expect.stringContaining("is pinned"),
    });
    await app.snapshots.setPinned(hostName, offName, "keep-me", false);
    expect((await app.snapshots.delete(hostName, offName, "keep-me", { dryRun: true })).name).toBe("keep-me");
    expect(execInfoSnapshots(vda)).toEqual(["made-by-hand", "snapkeep:manual:keep-me"]);
    await app.snapshots.delete(hostName, offName, "keep-me");
    expect(execInfoSnapshots(vda)).toEqual(["made-by-hand"]);
    execFileSync("qemu-img", ["snapshot", "-d", "made-by-hand", vda]);
  });

  it("leaves no partial snapshot when one disk of a shut-off VM fails", async () => {
    const [vda, vdb] = offDisks as [string, string];
    // The failure must come after vda's snapshot exists: another process takes vdb's write lock
    // the moment Snapkeep asks qemu-img to snapshot vdb, so the real qemu-img fails on it.
    let holder: ReturnType<typeof spawn> | undefined;
    const faulty = makeApp(
      {},
      {
        wrapRunner: (inner) => ({
          label: inner.label,
          dispose: () => inner.dispose(),
          async run(argv, options) {
            if (
              argv.includes("-c") &&
              argv.some((a) => a.endsWith(`file.filename=${vdb}`)) &&
              holder === undefined
            ) {
              holder = spawn("qemu-io", ["-f", "qcow2", vdb], { stdio: ["pipe", "ignore", "ignore"] });
              await waitFor(() => lockedFor(vdb), 10_000, "qemu-io holding vdb's lock");
            }
            return inner.run(argv, options);
          },
        }),
      },
    );
    try {
      if (hostName === "local") {
        faulty.app.hosts.addLocal("local");
      } else {
        const d = sshd as TestSshd;
        await faulty.app.hosts.addSsh(trustedHost("loop", d));
      }
      const error = await faulty.app.snapshots
        .create(hostName, offName, { name: "partial" })
        .catch((e: unknown) => e);
      expect(holder).toBeDefined();
      expect(isSnapkeepError(error, "COMMAND_FAILED")).toBe(true);
      expect(String((error as Error).message)).toMatch(/Snapshotting vdb failed/);
      expect(String((error as Error).message)).not.toMatch(/could not be removed/);
    } finally {
      holder?.stdin?.end("quit\n");
      // It may have exited already (then 'exit' never comes again); else wait for it.
      if (holder !== undefined && holder.exitCode === null && holder.signalCode === null) {
        await new Promise((resolve) => holder?.once("exit", resolve));
      }
      await faulty.dispose();
    }
    // vda's part was made, then rolled back.
    expect(execInfoSnapshots(vda)).toEqual([]);
    expect(execInfoSnapshots(vdb)).toEqual([]);
  });

  it("keeps hostile VM and snapshot names inert end to end", async () => {
    // libvirt refuses "/" in VM names, so the VM's payload touches a file in the working directory.
    const markerName = `snapkeep-pwned-${suffix}-${hostName}`;
    const marker = `/tmp/${markerName}`;
    const hostileVm = `it's "$(touch ${markerName})" \`touch ${markerName}\`; x-${suffix}`;
    const hostileSnap = `'; touch ${marker}; echo '$(touch ${marker}) -rf --help`;
    await vms.create({ name: hostileVm, running: false, disks: [{ target: "vda", sizeMiB: 8 }] });
    const snap = await app.snapshots.create(hostName, hostileVm, { name: hostileSnap, note: "$(reboot)" });
    expect(snap.name).toBe(hostileSnap);
    const listed = await app.snapshots.list(hostName, hostileVm);
    expect(listed.map((s) => [s.name, s.note])).toEqual([[hostileSnap, "$(reboot)"]]);
    const reverted = await app.revert.revert(hostName, hostileVm, hostileSnap);
    // The safety snapshot's name carries the hostile one, and stays just as inert.
    expect(reverted.safety.name.startsWith(`before revert to ${hostileSnap}`.slice(0, 80))).toBe(true);
    await app.snapshots.delete(hostName, hostileVm, hostileSnap);
    await app.snapshots.delete(hostName, hostileVm, reverted.safety.tag);
    expect(await app.snapshots.list(hostName, hostileVm)).toEqual([]);
    await expect(app.snapshots.create(hostName, hostileVm, { name: "bad\nname" })).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
    for (const place of [marker, markerName, `${homedir()}/${markerName}`, `/root/${markerName}`]) {
      expect(existsSync(place)).toBe(false);
    }
  });

  it("names the disk and the reason when a disk cannot be snapshotted", async () => {
    const raw = await vms.create({
      name: `sk-raw-${suffix}`,
      running: false,
      disks: [
        { target: "vda", sizeMiB: 8 },
        { target: "vdb", sizeMiB: 8, format: "raw" },
      ],
    });
    await expect(app.snapshots.create(hostName, `sk-raw-${suffix}`)).rejects.toMatchObject({
      code: "DISK_UNSUPPORTED",
      message: expect.stringMatching(/vdb is in raw format/),
      action: { do: "choose-disks", disks: ["vda"] },
    });
    expect(execInfoSnapshots(raw.diskPaths[0] as string)).toEqual([]);
    // The qcow2 disk alone works.
    await app.snapshots.create(hostName, `sk-raw-${suffix}`, { disks: ["vda"], name: "only-vda" });

    // A CD-ROM drive is not a disk: "every disk" leaves it out, choosing it is refused.
    const withCd = await vms.create({
      name: `sk-cd-${suffix}`,
      running: false,
      disks: [
        { target: "vda", sizeMiB: 8 },
        { target: "sda", sizeMiB: 1, format: "raw", device: "cdrom" },
      ],
    });
    expect(
      (await app.snapshots.create(hostName, `sk-cd-${suffix}`, { name: "no-cd" })).disks.map((d) => d.target),
    ).toEqual(["vda"]);
    await expect(app.snapshots.create(hostName, `sk-cd-${suffix}`, { disks: ["sda"] })).rejects.toMatchObject(
      {
        code: "DISK_UNSUPPORTED",
        message: expect.stringContaining("sda is a CD-ROM drive"),
      },
    );
    expect(withCd.diskPaths).toHaveLength(2);

    rmSync(raw.diskPaths[0] as string);
    await expect(
      app.snapshots.create(hostName, `sk-raw-${suffix}`, { disks: ["vda"] }),
    ).rejects.toMatchObject({
      code: "DISK_UNSUPPORTED",
      message: expect.stringContaining("does not exist"),
    });
  });
});

function execInfoSnapshots(path: string): string[] {
  const out = JSON.parse(
    execFileSync("qemu-img", ["info", "-U", "--output=json", path], { encoding: "utf8" }),
  ) as { snapshots?: { name: string }[] };
  return (out.snapshots ?? []).map((s) => s.name);
}

function lockedFor(path: string): boolean {
  try {
    execFileSync("qemu-img", ["info", path], { stdio: "ignore" });
    return false;
  } catch {
    return true;
  }
}

/**
 * A schedule that copies off the host, against real things: a libvirt VM, qemu-img, a folder
 * target, the export engine. Runs are driven one by one (Schedules.run with the tag of each slot,
 * as the scheduler calls it), so the test decides when the target goes away and comes back.
 */
import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Exports } from "../../core/app/exports/exports.js";
import { ScheduleCopies, type CopyRunResult } from "../../core/app/schedules/copies.js";
import { Schedules, scheduledTag, type ScheduledRunResult } from "../../core/app/schedules/schedules.js";
import { Targets } from "../../core/app/targets.js";
import type { Schedule } from "../../core/domain/settings.js";
import type { Snapshot } from "../../core/domain/types.js";
import { manifestSchema } from "../../core/drivers/bundle/bundle.js";
import { openSealKey } from "../../core/infra/seal-key.js";
import { makeApp } from "../support/app.js";
import { createNetns, type TestNetns } from "../support/netns.js";
import { startSshd, type TestSshd } from "../support/sshd.js";
import { TestVms, uniqueSuffix } from "../support/libvirt.js";

describe("schedules that copy off the host", () => {
  const vms = new TestVms();
  const suffix = uniqueSuffix();
  const vmName = `sk-copy-${suffix}`;
  let ctx: ReturnType<typeof makeApp>;
  let targets: Targets;
  let exports: Exports;
  let schedules: Schedules;
  let work = "";
  let folder = "";
  let mounted = false;
  let schedule: Schedule;
  let vmUuid = "";
  let slot = Date.parse("2026-12-01T00:00:00Z");
  let netns: TestNetns | undefined;
  let sshd: TestSshd | undefined;

  beforeAll(async () => {
    ctx = makeApp();
    work = mkdtempSync(join(tmpdir(), "snapkeep-copy-"));
    folder = join(work, "nas");
    mkdirSync(folder);
    targets = new Targets({ store: ctx.store, ssh: ctx.ssh });
    const now = (): Date => new Date();
    exports = new Exports({
      ...ctx.app,
      targets,
      now,
      sealKey: () => openSealKey(ctx.home),
      stagingRoot: join(work, "staging"),
    });
    schedules = new Schedules(ctx.app, now, new ScheduleCopies({ store: ctx.store, exports, targets, now }));
    ctx.app.hosts.addLocal("local");
    const vm = await vms.create({ name: vmName, running: false, disks: [{ target: "vda", sizeMiB: 16 }] });
    vmUuid = vm.uuid;
    await targets.add({ name: "nas", dir: folder });
  }, 120_000);

  afterAll(async () => {
    if (mounted) {
      execFileSync("umount", [folder]);
    }
    await targets?.dispose();
    await sshd?.stop();
    netns?.dispose();
    await ctx?.dispose();
    await vms.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  interface RunAndCopy {
    readonly snapshot: Snapshot;
    /** What the run decided; the copy job that follows it, when one was due. */
    readonly decision: ScheduledRunResult["copy"];
    readonly copy: CopyRunResult | null;
    /** Held by the last prune: the copy job's once its copy landed, else the run's. */
    readonly held: readonly string[];
  }

  /** One scheduled run for the next slot, then the copy job the scheduler queues after it. */
  async function runOnce(by: Schedules = schedules, which: Schedule = schedule): Promise<RunAndCopy> {
    slot += 3600_000;
    const run = await by.run(which, scheduledTag(which, new Date(slot)));
    const copied = run.copy?.due === true ? await by.copy(which) : null;
    return {
      snapshot: run.snapshot,
      decision: run.copy,
      copy: copied?.copy ?? null,
      held: copied !== null && copied.copy.exportId !== null ? copied.held : run.held,
    };
  }

  /** The exports on the target: id, the schedule that made it (null by hand) and its snapshot. */
  function onTarget(): { folder: string; scheduleId: string | null; snapshot: string }[] {
    const vmFolders = readdirSync(folder);
    return vmFolders.flatMap((vmFolder) =>
      readdirSync(join(folder, vmFolder))
        .filter((name) => !name.endsWith(".partial"))
        .map((name) => {
          const manifest = manifestSchema.parse(
            JSON.parse(readFileSync(join(folder, vmFolder, name, "manifest.json"), "utf8")),
          );
          return {
            folder: name,
            scheduleId: manifest.scheduleId ?? null,
            snapshot: manifest.source.snapshot.name,
          };
        }),
    );
  }

  async function ownSnapshots(): Promise<string[]> {
    const vm = await ctx.app.vms.get("local", vmUuid);
    return vm.snapshots.filter((s) => s.kind === "scheduled" && s.origin === schedule.id).map((s) => s.name);
  }

  it("sends every run's snapshot, keeps its own copies to the count, and never touches a manual export", async () => {
    await ctx.app.snapshots.create("local", vmName, { name: "by-hand" });
    const offHost = async (schedulerRunning: boolean) =>
      schedules.offHostOf([await ctx.app.vms.get("local", vmUuid)], schedulerRunning)[0];
    expect(await offHost(true)).toMatchObject({ level: "on-host-only", ageMs: null });
    const manual = await exports.export({ host: "local", vm: vmName, snapshot: "by-hand", target: "nas" });
    schedule = await schedules.add({
      host: "local",
      vm: vmName,
      when: { every: "daily", at: "02:00" },
      retention: { keepLast: 2 },
      copy: { target: "nas", retention: { keepLast: 2 } },
    });
    expect(schedule.copy).toEqual({
      target: "nas",
      cadence: { every: "runs", n: 1 },
      retention: { keepLast: 2 },
      holdLocalUntilCopied: true,
    });

    const runs: RunAndCopy[] = [];
    for (let i = 0; i < 3; i++) {
      runs.push(await runOnce());
    }
    for (const run of runs) {
      expect(run.copy?.attempted).toBe(true);
      expect(run.copy?.failure).toBeNull();
      expect(run.copy?.exportId).not.toBeNull();
    }
    // The third run's copy removed the first run's copy: two of the schedule's copies stay.
    expect(runs[2]?.copy?.prunedCopies).toHaveLength(1);
    const copies = onTarget().filter((e) => e.scheduleId === schedule.id);
    expect(copies.map((c) => c.snapshot).sort()).toEqual(
      [runs[1]?.snapshot.name, runs[2]?.snapshot.name].sort(),
    );
    // The export made by hand is still there, unlisted by the schedule's retention.
    expect(
      onTarget()
        .filter((e) => e.scheduleId === null)
        .map((e) => e.folder),
    ).toEqual([manual.id]);
    // Every copy is verified (sealed) on the target.
    const listed = (await exports.list("nas"))[0]?.exports ?? [];
    expect(listed.map((e) => e.state)).toEqual(["verified", "verified", "verified"]);
    // Local retention: the two newest of its own snapshots.
    expect(await ownSnapshots()).toEqual([runs[1]?.snapshot.name, runs[2]?.snapshot.name]);
    // Off the host: the newest copy is minutes old against a daily promise.
    expect(await offHost(true)).toMatchObject({ level: "ok", reason: null });
    expect((await offHost(false))?.reason).toMatch(/no scheduler is running/);
  }, 300_000);

  it("holds local snapshots owed a copy while the target is away, and sends the newest once it is back", async () => {
    // The target's folder becomes a read-only file system: every copy fails.
    execFileSync("mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", folder]);
    mounted = true;
    const failed: RunAndCopy[] = [];
    for (let i = 0; i < 3; i++) {
      failed.push(await runOnce());
    }
    for (const run of failed) {
      expect(run.copy?.attempted).toBe(true);
      expect(run.copy?.exportId).toBeNull();
      expect(run.copy?.failure?.kind).toBe("copy-failed");
    }
    // Keep 2 would have removed the first snapshot of the outage by now: it is owed a copy, so it stays.
    expect(failed[2]?.held).toEqual([failed[0]?.snapshot.name]);
    expect(await ownSnapshots()).toEqual(failed.map((r) => r.snapshot.name));
    const history = new ScheduleCopies({ store: ctx.store, exports, targets, now: () => new Date() }).history(
      schedule.id,
    );
    expect(history.owedSince?.tag).toBe(failed[0]?.snapshot.tag);

    execFileSync("umount", [folder]);
    mounted = false;
    const back = await runOnce();
    expect(back.copy?.failure).toBeNull();
    expect(back.copy?.exportId).not.toBeNull();
    // One copy, of the newest snapshot, settles what was owed; the local retention applies again.
    expect(back.held).toEqual([]);
    expect(await ownSnapshots()).toEqual([failed[2]?.snapshot.name, back.snapshot.name]);
    const copies = onTarget().filter((e) => e.scheduleId === schedule.id);
    expect(copies).toHaveLength(2);
    expect(copies.map((c) => c.snapshot)).toContain(back.snapshot.name);
    expect(onTarget().filter((e) => e.scheduleId === null)).toHaveLength(1);
  }, 300_000);

  it("treats a target folder that is gone as an unmounted disk: nothing is written under it", async () => {
    const away = `${folder}-unplugged`;
    renameSync(folder, away);
    try {
      const run = await runOnce();
      expect(run.copy?.failure?.kind).toBe("target-offline");
      expect(run.copy?.failure?.detail).toMatch(/is not there .*not mounted now; nothing was written/);
      expect(existsSync(folder)).toBe(false);
    } finally {
      renameSync(away, folder);
    }
    const back = await runOnce();
    expect(back.copy?.failure).toBeNull();
    expect(back.held).toEqual([]);
  }, 300_000);

  it("checks one older copy again per run once its check is a month old, and marks a rotten one damaged", async () => {
    // Forty days on, as the scheduler's clock sees it; the disks' dates stay real.
    const later = (): Date => new Date(Date.now() + 40 * 24 * 3600_000);
    const monthOn = new Schedules(
      ctx.app,
      later,
      new ScheduleCopies({ store: ctx.store, exports, targets, now: later }),
    );
    const own = (await exports.copiesOn("nas"))
      .filter((c) => c.scheduleId === schedule.id)
      .sort((a, b) => Date.parse(a.snapshotCreatedAt ?? "") - Date.parse(b.snapshotCreatedAt ?? ""));
    // The newer of the two copies there rots on the target's disk; the older one goes with this
    // run's prune (keep 2), so the rotten one is the copy checked longest ago that remains.
    const rotten = own.at(-1);
    const vmFolder = readdirSync(folder).find((f) => existsSync(join(folder, f, rotten?.id ?? "-")));
    const image = join(folder, vmFolder ?? "-", rotten?.id ?? "-", "vda.qcow2");
    const bytes = readFileSync(image);
    bytes[bytes.length - 100] = (bytes[bytes.length - 100] ?? 0) ^ 0xff;
    writeFileSync(image, bytes);

    const run = await runOnce(monthOn);
    expect(run.copy?.failure).toBeNull();
    expect(run.copy?.reverified).toEqual({
      exportId: rotten?.id,
      ok: false,
      detail: "vda.qcow2 no longer match their checksums",
    });
    const listed = (await exports.list("nas"))[0]?.exports ?? [];
    expect(listed.find((e) => e.id === rotten?.id)?.state).toBe("corrupt");
    // The copy that run made was streamed on top of the rotten one (its damage was found after):
    // it cannot be restored either, and is listed so, never a basis again.
    const onRotten = listed.find((e) => e.id === run.copy?.exportId);
    expect(onRotten?.manifest?.basis).toBe(rotten?.id);
    expect(onRotten?.state).toBe("corrupt");
    expect(onRotten?.reason).toMatch(/^it cannot be restored: /);
    // So the next copy does not build on either, and is the one checked next (forty "days" on).
    const next = await runOnce(monthOn);
    const made = ((await exports.list("nas"))[0]?.exports ?? []).find((e) => e.id === next.copy?.exportId);
    expect([rotten?.id, run.copy?.exportId]).not.toContain(made?.manifest?.basis);
    expect(next.copy?.reverified).toEqual({ exportId: next.copy?.exportId, ok: true, detail: null });
  }, 300_000);

  it("a manual prune by count leaves the schedule's copies alone", async () => {
    const before = onTarget().filter((e) => e.scheduleId === schedule.id);
    // Two verified copies and the damaged one, which stays for a person to look at.
    expect(before).toHaveLength(3);
    const result = await exports.prune("nas", { keep: 1, dryRun: false });
    expect(result.removed).toEqual([]);
    expect(onTarget().filter((e) => e.scheduleId === schedule.id)).toEqual(before);
  });

  it("to an SSH target in its own network namespace: killed for several runs, then back", async () => {
    netns = createNetns();
    sshd = await startSshd({ netns: { name: netns.name, address: netns.address } });
    await targets.add({
      name: "offsite",
      ssh: `${sshd.user}@${sshd.host}:${sshd.port}:${join(sshd.tmpDir, "copies")}`,
      identityFile: sshd.userKeyPath,
      trust: sshd.hostFingerprint,
    });
    const offsite = await schedules.add({
      host: "local",
      vm: vmName,
      when: { every: "daily", at: "03:00" },
      retention: { keepLast: 2 },
      copy: { target: "offsite", retention: { keepLast: 2 } },
    });
    const own = async (): Promise<string[]> =>
      (await ctx.app.vms.get("local", vmUuid)).snapshots
        .filter((x) => x.kind === "scheduled" && x.origin === offsite.id)
        .map((x) => x.name);
    const first = await runOnce(schedules, offsite);
    expect(first.copy).toMatchObject({ failure: null, exportId: expect.any(String) });

    // The target host loses power: sshd and everything in its namespace are gone.
    netns.killAll();
    const away: RunAndCopy[] = [];
    for (let i = 0; i < 3; i++) {
      away.push(await runOnce(schedules, offsite));
    }
    for (const run of away) {
      expect(run.copy?.failure?.kind).toBe("target-offline");
    }
    // Keep 2 would remove the first snapshot of the outage: it is owed a copy, so it stays.
    expect(away[2]?.held).toEqual([away[0]?.snapshot.name]);
    // The run before the outage was copied, so the retention took it as usual.
    expect(await own()).toEqual(away.map((r) => r.snapshot.name));
    // Three days on, the off-host recovery point is overdue, and says why.
    const later = (): Date => new Date(Date.now() + 3 * 24 * 3600_000);
    const threeDaysOn = new Schedules(
      ctx.app,
      later,
      new ScheduleCopies({ store: ctx.store, exports, targets, now: later }),
    );
    const rpo = threeDaysOn.offHostOf([await ctx.app.vms.get("local", vmUuid)], true)[0];
    expect(rpo).toMatchObject({ level: "overdue", reason: expect.stringMatching(/^the target is offline/) });

    // Back: one copy, of the newest snapshot, settles what was owed; the hold is let go.
    await sshd.restart();
    const back = await runOnce(schedules, offsite);
    expect(back.copy).toMatchObject({ failure: null, snapshotTag: back.snapshot.tag });
    expect(back.held).toEqual([]);
    expect(await own()).toEqual([away[2]?.snapshot.name, back.snapshot.name]);
    const onOffsite = (await exports.copiesOn("offsite")).filter((c) => c.scheduleId === offsite.id);
    expect(onOffsite.map((c) => [c.state, c.snapshotTag])).toEqual([
      ["verified", first.snapshot.tag],
      ["verified", back.snapshot.tag],
    ]);
    expect(schedules.offHostOf([await ctx.app.vms.get("local", vmUuid)], true)[0]).toMatchObject({
      level: "ok",
    });
  }, 300_000);

  it("a schedule's retention removes its own copy, not another VM's export with the same id", async () => {
    // Two VMs snapshotted by schedules of the same name at the same minute get the same export
    // id, each in its VM's folder: retention must tell them apart by folder.
    await runOnce();
    const verified = (await exports.copiesOn("nas"))
      .filter((c) => c.scheduleId === schedule.id && c.state === "verified")
      .sort((a, b) => a.id.localeCompare(b.id));
    expect(verified).toHaveLength(2);
    const id = verified[0]?.id ?? "";
    const own = onTarget().filter((e) => e.folder === id);
    const oldest = readdirSync(folder)
      .filter((f) => readdirSync(join(folder, f)).includes(id))
      .map((f) => join(folder, f, id));
    expect(oldest).toHaveLength(1);
    const stamp = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-/.exec(id);
    const other = await vms.create({
      name: `${vmName}-z`,
      running: false,
      disks: [{ target: "vda", sizeMiB: 8 }],
    });
    const snapshotName = own[0]?.snapshot ?? "";
    await ctx.app.snapshots.create("local", other.name, { name: snapshotName });
    const sameMinute = new Exports({
      ...ctx.app,
      targets,
      // The end of the same second: listed after the schedule's copy, which an id-only lookup takes.
      now: () => new Date(`${stamp?.slice(1, 4).join("-")}T${stamp?.slice(4, 7).join(":")}.999Z`),
      sealKey: () => openSealKey(ctx.home),
      stagingRoot: join(work, "staging"),
    });
    const twin = await sameMinute.export({
      host: "local",
      vm: other.name,
      snapshot: snapshotName,
      target: "nas",
    });
    expect(twin.id).toBe(id);

    const result = await exports.pruneCopies(
      "nas",
      { id: schedule.id, vmUuid },
      { keepLast: 1 },
      { dryRun: false },
    );
    expect(result.removed).toEqual([relative(folder, oldest[0] ?? "?")]);
    expect(existsSync(oldest[0] ?? "?")).toBe(false);
    const twinFolder = readdirSync(folder).find((f) => f.startsWith(`${vmName}-z-`)) ?? "?";
    expect(existsSync(join(folder, twinFolder, id, "manifest.json"))).toBe(true);

    // Copies of this schedule interrupted long ago, superseded by the kept copy: the schedule's
    // retention clears its own abandoned attempt, and leaves one made by hand to `exports prune`.
    const vmFolder = join(oldest[0] ?? "?", "..");
    const abandoned = (name: string, scheduleId: string | undefined): string => {
      const dir = join(vmFolder, `20200101T00000${name.length}Z-${name}.partial`);
      mkdirSync(dir);
      const job = {
        format: "snapkeep-export",
        id: `20200101T00000${name.length}Z-${name}`,
        startedAt: "2020-01-01T00:00:00.000Z",
        host: "local",
        vmUuid,
        vmName,
        snapshotTag: name,
        disks: ["vda"],
        ...(scheduleId === undefined ? {} : { scheduleId }),
      };
      writeFileSync(join(dir, "job.json"), JSON.stringify(job));
      writeFileSync(join(dir, "vda.qcow2"), "the first part of an image");
      execFileSync("find", [dir, "-exec", "touch", "-d", "2 days ago", "{}", "+"]);
      return dir;
    };
    const mine = abandoned("scheduled", schedule.id);
    const byHand = abandoned("by-hand", undefined);
    const swept = await exports.pruneCopies(
      "nas",
      { id: schedule.id, vmUuid },
      { keepLast: 1 },
      { dryRun: false },
    );
    expect(swept.abandoned.map((a) => a.folder)).toEqual([relative(folder, mine)]);
    expect(existsSync(mine)).toBe(false);
    expect(existsSync(byHand)).toBe(true);
    const byPrune = await exports.prune("nas", { vmUuid, keep: 100, dryRun: false });
    expect(byPrune.abandoned.map((a) => a.folder)).toEqual([relative(folder, byHand)]);
    expect(existsSync(byHand)).toBe(false);
  }, 300_000);
});

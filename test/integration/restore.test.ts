/**
 * The restore engine against real libvirt + KVM: revert with a safety net and undo, templates and
 * VMs cloned from them, volumes attached to a running VM, deleting what Snapkeep made, the seeds'
 * rules, and a copy that fails half way leaving the source as it was.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Library, TEMPLATES_DIR, VOLUMES_DIR } from "../../core/app/library/library.js";
import type { VmModules } from "../../core/app/vm-modules.js";
import { failure } from "../support/failure.js";
import { qemuIo, TestVms, uniqueSuffix, virshOut, writeLive } from "../support/libvirt.js";
import { hintOf } from "../../core/domain/explain.js";
import { makeApp } from "../support/app.js";

function hasPattern(path: string, pattern: number, offset = 0, shared = false): boolean {
  try {
    const out = shared
      ? execFileSync(
          "qemu-io",
          ["-U", "-r", "-f", "qcow2", "-c", `read -P 0x${pattern.toString(16)} ${offset} 64k`, path],
          { encoding: "utf8" },
        )
      : qemuIo(path, `read -P 0x${pattern.toString(16)} ${offset} 64k`);
    return !/Pattern verification failed/.test(out);
  } catch {
    return false;
  }
}

function sha256(path: string): string {
  return execFileSync("sha256sum", [path], { encoding: "utf8" }).split(" ")[0] ?? "";
}

describe("restore engine", () => {
  const vms = new TestVms();
  const suffix = uniqueSuffix();
  let ctx: ReturnType<typeof makeApp>;
  let app: VmModules;
  let library: Library;
  const offName = `sk-rst-off-${suffix}`;
  const runName = `sk-rst-run-${suffix}`;
  let offDisks: readonly string[] = [];
  let runUuid = "";
  const artifacts: string[] = [];
  const madeVms: string[] = [];

  beforeAll(async () => {
    ctx = makeApp();
    app = ctx.app;
    library = new Library(app, () => new Date());
    app.hosts.addLocal("local");
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
  }, 120_000);

  afterAll(async () => {
    for (const name of madeVms) {
      for (const args of [
        ["destroy", name],
        ["undefine", name, "--nvram"],
      ]) {
        // Most are deleted by their test already: virsh's complaint about that is muted.
        spawnSync("virsh", ["-q", "-c", "qemu:///system", ...args], { stdio: "ignore" });
      }
    }
    for (const path of artifacts) {
      rmSync(path, { force: true });
      rmSync(path.replace(/\.qcow2$/, ".json"), { force: true });
    }
    await ctx?.dispose();
    await vms.dispose();
  });

  it("takes a safety snapshot before a revert, and undo gives back what was there", async () => {
    const vda = offDisks[0] as string;
    qemuIo(vda, "write -P 0xa1 0 64k");
    await app.snapshots.create("local", offName, { name: "good" });
    qemuIo(vda, "write -P 0xb2 0 64k");
    // The definition changes after the snapshot: the revert says so, and does not undo it.
    virshOut("setmaxmem", offName, "64M", "--config");

    const dry = await app.revert.revert("local", offName, "good", { dryRun: true });
    expect(dry.safety.name).toMatch(
      /^before revert to good \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d\)$/,
    );
    expect(dry.definitionChanges?.map((c) => c.what)).toContain("memory");
    expect((await app.snapshots.list("local", offName)).map((s) => s.kind)).toEqual(["manual"]);

    const reverted = await app.revert.revert("local", offName, "good");
    expect(hasPattern(vda, 0xa1)).toBe(true);
    const snapshots = await app.snapshots.list("local", offName);
    expect(snapshots.map((s) => [s.kind, s.name])).toEqual([
      ["manual", "good"],
      ["safety", reverted.safety.name],
    ]);

    const undone = await app.revert.undo("local", offName);
    expect(undone.snapshot.name).toBe(reverted.safety.name);
    expect(hasPattern(vda, 0xb2)).toBe(true);
    expect(undone.safety.name).toMatch(/^before undo \(/);
  });

  it("keeps only the configured number of safety snapshots, never pinned ones", async () => {
    app.revert.setSafetyKeep(2);
    const first = (await app.snapshots.list("local", offName)).find((s) => s.kind === "safety");
    await app.snapshots.setPinned("local", offName, first?.tag ?? "", true);
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 1100)); // safety names carry the second
      await app.revert.revert("local", offName, "good");
    }
    const safety = (await app.snapshots.list("local", offName)).filter((s) => s.kind === "safety");
    expect(safety.filter((s) => !s.pinned)).toHaveLength(2);
    expect(safety.some((s) => s.tag === first?.tag)).toBe(true);
    app.revert.setSafetyKeep(5);
  });

  it("reverts a running VM: stops it, reverts, starts it again", async () => {
    writeLive(runUuid, "virtio-disk0", 0xc1);
    await app.snapshots.create("local", runName, { name: "live" });
    writeLive(runUuid, "virtio-disk0", 0xc2);
    const result = await app.revert.revert("local", runName, "live", {
      stopRunning: true,
      force: true,
      shutdownTimeoutMs: 2000,
    });
    expect(result.restarted).toBe(true);
    expect(virshOut("domstate", runUuid).trim()).toBe("running");
    const safety = (await app.snapshots.list("local", runName)).filter((s) => s.kind === "safety");
    expect(safety.map((s) => s.name)).toEqual([result.safety.name]);
  });

  it("turns a root-disk snapshot into a template, clones VMs from it with their own identity, and guards it", async () => {
    const name = `tpl-${suffix}`;
    const dry = await library.createTemplate({
      host: "local",
      vm: runName,
      snapshot: "live",
      name,
      dryRun: true,
    });
    expect(existsSync(dry.artifact.image)).toBe(false);
    const made = await library.createTemplate({ host: "local", vm: runName, snapshot: "live", name });
    artifacts.push(made.artifact.image);
    expect(made.artifact.source.disk).toBe("vda");
    expect(hasPattern(made.artifact.image, 0xc1, 0, true)).toBe(true);
    expect(execFileSync("stat", ["-c", "%a", made.artifact.image], { encoding: "utf8" }).trim()).toBe("444");
    expect((await library.list("template", "local")).map((t) => t.name)).toContain(name);

    const linked = `sk-clone-${suffix}`;
    const full = `sk-full-${suffix}`;
    madeVms.push(linked, full);
    const clone = await library.createVm({ host: "local", name: linked, template: name, start: true });
    expect(clone.linked).toBe(true);
    expect(clone.uuid).not.toBe(runUuid);
    expect(virshOut("domstate", linked).trim()).toBe("running");
    expect(hasPattern(clone.disk, 0xc1, 0, true)).toBe(true);
    const info = JSON.parse(
      execFileSync("qemu-img", ["info", "-U", "--output=json", clone.disk], { encoding: "utf8" }),
    ) as { "backing-filename"?: string };
    expect(info["backing-filename"]).toBe(made.artifact.image);
    const copy = await library.createVm({ host: "local", name: full, template: name, full: true });
    expect(copy.linked).toBe(false);
    expect(hasPattern(copy.disk, 0xc1)).toBe(true);
    expect(virshOut("dumpxml", full)).not.toContain(runUuid);

    const refused = await failure(library.deleteArtifact("template", "local", name, false));
    expect(refused.message).toContain(linked);
    expect(refused.message).not.toContain(full);

    // Deleting a VM Snapkeep made: the plan first, then only its own image goes.
    // The plan is the run: the running clone is refused without force, in the dry run as for real.
    expect(
      (await failure(library.deleteVm("local", linked, { dryRun: true, force: false }))).message,
    ).toMatch(/is running; it is only deleted when stopped, or with --force/);
    const plan = await library.deleteVm("local", linked, { dryRun: true, force: true });
    expect(plan.running).toBe(true);
    expect(plan.files.map((f) => f.path)).toEqual([clone.disk]);
    expect(plan.survives).toContain(`template ${name}`);
    expect(existsSync(clone.disk)).toBe(true);
    await library.deleteVm("local", linked, { dryRun: false, force: true });
    await library.deleteVm("local", full, { dryRun: false, force: false });
    expect(existsSync(clone.disk)).toBe(false);
    expect(existsSync(made.artifact.image)).toBe(true);
    // virsh fails to find it (its complaint is not printed into the test output).
    expect(
      spawnSync("virsh", ["-q", "-c", "qemu:///system", "domuuid", linked], { stdio: "ignore" }).status,
    ).not.toBe(0);
    // A VM Snapkeep did not make is never deleted.
    expect(
      (await failure(library.deleteVm("local", offName, { dryRun: true, force: false }))).message,
    ).toMatch(/not made by Snapkeep/);

    await library.deleteArtifact("template", "local", name, false);
    expect(existsSync(made.artifact.image)).toBe(false);
  });

  it("refuses the seeds' rules: no template from an additional disk, no volume from a root disk", async () => {
    const tpl = await failure(
      library.createTemplate({
        host: "local",
        vm: runName,
        snapshot: "live",
        name: `x-${suffix}`,
        disk: "vdb",
      }),
    );
    expect(tpl.message).toMatch(/additional disk .* only a root-disk snapshot can become an OS template/);
    expect(hintOf(tpl, "cli")).toContain("snapkeep volume create");
    const vol = await failure(
      library.createVolume({
        host: "local",
        vm: runName,
        snapshot: "live",
        name: `y-${suffix}`,
        disk: "vda",
      }),
    );
    expect(vol.message).toMatch(/root disk .* not a volume/);
  });

  it("turns an additional-disk snapshot into a volume and attaches it read-only to a running VM", async () => {
    const vdb = offDisks[1] as string;
    qemuIo(vdb, "write -P 0x5d 0 64k");
    await app.snapshots.create("local", offName, { name: "data", disks: ["vdb"] });
    qemuIo(vdb, "write -P 0x6e 0 64k");
    const name = `vol-${suffix}`;
    const made = await library.createVolume({
      host: "local",
      vm: offName,
      snapshot: "data",
      name,
      disk: "vdb",
    });
    artifacts.push(made.artifact.image);
    expect(hasPattern(made.artifact.image, 0x5d)).toBe(true);

    const attached = await library.attachVolume("local", name, runName, false);
    expect(attached).toMatchObject({ readonly: true, target: "vdc" });
    const live = virshOut("dumpxml", runUuid);
    const disk = live.slice(
      live.indexOf(made.artifact.image) - 200,
      live.indexOf("</disk>", live.indexOf(made.artifact.image)),
    );
    expect(disk).toContain("<readonly/>");
    const blocks = JSON.parse(virshOut("qemu-monitor-command", runUuid, '{"execute":"query-block"}')) as {
      return: { inserted?: { file: string; ro: boolean } }[];
    };
    expect(blocks.return.find((b) => b.inserted?.file === made.artifact.image)?.inserted?.ro).toBe(true);
    expect(virshOut("dumpxml", "--inactive", runUuid)).toContain(made.artifact.image);

    const refused = await failure(library.deleteArtifact("volume", "local", name, false));
    expect(refused.message).toContain(runName);
    const detached = await library.detachVolume("local", name, runName);
    expect(detached.target).toBe("vdc");
    expect(virshOut("dumpxml", "--inactive", runUuid)).not.toContain(made.artifact.image);
    // A guest with no OS never answers the unplug: the running VM still has the disk, and the
    // answer says so (it goes at the next shutdown), not that it was detached.
    expect(virshOut("dumpxml", runUuid)).toContain(made.artifact.image);
    expect(detached.pending).toBe(true);
  });

  it("leaves the source exactly as it was when the copy fails half way (template folder full)", async () => {
    const vda = offDisks[0] as string;
    qemuIo(vda, `write -P 0x77 0 12M`);
    await app.snapshots.create("local", offName, { name: "big" });
    const before = {
      sha: sha256(vda),
      snapshots: (await app.snapshots.list("local", offName)).map((s) => s.tag),
    };
    mkdirSync(TEMPLATES_DIR, { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", TEMPLATES_DIR]);
    try {
      const error = await failure(
        library.createTemplate({ host: "local", vm: offName, snapshot: "big", name: `full-${suffix}` }),
      );
      expect(error.code).toBe("TARGET_FULL");
      expect(readdirSync(TEMPLATES_DIR)).toEqual([]);
    } finally {
      execFileSync("umount", [TEMPLATES_DIR]);
    }
    expect(sha256(vda)).toBe(before.sha);
    expect((await app.snapshots.list("local", offName)).map((s) => s.tag)).toEqual(before.snapshots);
    expect(existsSync(VOLUMES_DIR)).toBe(true);
  });

  it("lists what points at VMs that are gone", async () => {
    ctx.store.update((s) => ({
      ...s,
      annotations: {
        ...s.annotations,
        "local/00000000-0000-4000-8000-00000000dead/snapkeep:manual:x": { note: "old", pinned: false },
      },
    }));
    const { orphans, skipped } = await library.orphans("local");
    expect(skipped).toEqual([]);
    expect(orphans).toContainEqual(expect.objectContaining({ kind: "annotation", host: "local", what: "x" }));
  });
});

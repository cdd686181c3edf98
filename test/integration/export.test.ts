/**
 * Exports against real things: libvirt + KVM VMs, qemu-img, rsync, this computer's sshd as an SSH
 * hypervisor host, and a second sshd in its own network namespace as the SSH target.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { isSnapkeepError } from "../../core/errors.js";
import { createSshRunner } from "../../core/infra/runner/factory.js";
import { Targets } from "../../core/app/targets.js";
import { Exports, type ExportProgress } from "../../core/app/exports/exports.js";
import { openSealKey } from "../../core/infra/seal-key.js";
import { manifestSchema } from "../../core/drivers/bundle/bundle.js";
import type { VmModules } from "../../core/app/vm-modules.js";
import { failure } from "../support/failure.js";
import { restoreExport } from "../../core/app/exports/restore.js";
import { qemuIo, TEST_IMAGE_DIR, TestVms, uniqueSuffix, virshOut, writeLive } from "../support/libvirt.js";
import { createNetns, type TestNetns } from "../support/netns.js";
import { makeApp } from "../support/app.js";
import { startSshd, trustedHost, type TestSshd } from "../support/sshd.js";
import { hintOf } from "../../core/domain/explain.js";

const MiB = 1024 * 1024;
const PATTERN_AT = 40 * MiB;

function sha256sumCheck(dir: string): string {
  return execFileSync("sha256sum", ["-c", "SHA256SUMS"], { cwd: dir, encoding: "utf8" });
}

/** Whether the image holds the pattern there; qemu-io exits non-zero on a mismatch. */
function hasPattern(path: string, pattern: number, offset: number, length = "64k"): boolean {
  try {
    return !/Pattern verification failed/.test(
      qemuIo(path, `read -P 0x${pattern.toString(16)} ${offset} ${length}`),
    );
  } catch {
    return false;
  }
}

function flipByte(path: string, offset: number): void {
  const fd = readFileSync(path);
  fd[offset] = (fd[offset] ?? 0) ^ 0xff;
  writeFileSync(path, fd);
}

describe("exports", () => {
  const vms = new TestVms();
  const suffix = uniqueSuffix();
  let ctx: ReturnType<typeof makeApp>;
  let app: VmModules;
  let exports: Exports;
  let targets: Targets;
  let hostSshd: TestSshd;
  let netns: TestNetns;
  let targetSshd: TestSshd;
  let work: string;
  let folder: string;
  let remoteFolder: string;
  let stagingRoot: string;
  let small = "";
  let ro = "";
  const vmName = `sk-exp-${suffix}`;
  let vmUuid = "";

  beforeAll(async () => {
    ctx = makeApp();
    app = ctx.app;
    work = mkdtempSync(join(tmpdir(), "snapkeep-export-"));
    folder = join(work, "folder-target");
    remoteFolder = join(work, "ssh-target");
    stagingRoot = join(work, "staging");
    targets = new Targets({ store: ctx.store, ssh: ctx.ssh });
    exports = new Exports({
      ...app,
      targets,
      sealKey: () => openSealKey(ctx.home),
      now: () => new Date(),
      stagingRoot,
      sleep: async () => undefined,
    });
    app.hosts.addLocal("local");
    hostSshd = await startSshd();
    await app.hosts.addSsh(trustedHost("loop", hostSshd));
    netns = createNetns();
    // Small and read-only filesystems for the fault tests, mounted before the target's sshd starts:
    // `ip netns exec` gives it its own copy of the mount table, which later mounts do not reach.
    small = join(work, "small");
    ro = join(work, "ro");
    mkdirSync(small, { recursive: true });
    mkdirSync(ro, { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", small]);
    execFileSync("mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", ro]);
    targetSshd = await startSshd({ netns: { name: netns.name, address: netns.address } });

    // 64 MiB disk: 24 MiB of random data, zeros, and a marker pattern that changes after the snapshot.
    const vm = await vms.create({
      name: vmName,
      running: false,
      disks: [
        { target: "vda", sizeMiB: 64 },
        { target: "vdb", sizeMiB: 16 },
      ],
    });
    vmUuid = vm.uuid;
    const random = join(work, "random.bin");
    writeFileSync(random, randomBytes(24 * MiB));
    execFileSync("qemu-io", [
      "-f",
      "qcow2",
      "-c",
      `write -s ${random} 0 ${24 * MiB}`,
      vm.diskPaths[0] as string,
    ]);
    execFileSync("qemu-io", [
      "-f",
      "qcow2",
      "-c",
      `write -P 0xa1 ${PATTERN_AT} 64k`,
      vm.diskPaths[0] as string,
    ]);
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x5b 0 64k", vm.diskPaths[1] as string]);
    virshOut("start", vmUuid);
    await app.snapshots.create("local", vmName, { name: "before-b" });
    // The disk changes after the snapshot, through the running QEMU.
    writeLive(vmUuid, "virtio-disk0", 0xb2, PATTERN_AT);

    await targets.add({ name: "folder", dir: folder });
    await targets.add({
      name: "nas",
      ssh: `${targetSshd.user}@${targetSshd.host}:${targetSshd.port}:${remoteFolder}`,
      identityFile: targetSshd.userKeyPath,
      trust: targetSshd.hostFingerprint,
    });
  }, 180_000);

  afterAll(async () => {
    await targets?.dispose();
    await ctx?.dispose();
    await vms.dispose();
    await targetSshd?.stop();
    await hostSshd?.stop();
    netns?.dispose();
    for (const mount of [small, ro]) {
      if (mount !== "") {
        execFileSync("umount", [mount]);
      }
    }
    rmSync(work, { recursive: true, force: true });
  });

  function checkBundle(dir: string, engine: "stream" | "convert" = "stream"): void {
    const manifest = manifestSchema.parse(JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")));
    expect(manifest.source.vm.uuid).toBe(vmUuid);
    expect(manifest.disks.map((d) => d.target)).toEqual(["vda", "vdb"]);
    expect(manifest.disks[0]?.role).toBe("root");
    expect(manifest.disks[0]?.virtualSize).toBe(64 * MiB);
    expect(sha256sumCheck(dir)).toMatch(/vda\.qcow2: OK\n/);
    expect(readFileSync(join(dir, "domain.xml"), "utf8")).toContain(`<uuid>${vmUuid}</uuid>`);
    expect(readFileSync(join(dir, "RESTORE.md"), "utf8")).toContain("sha256sum -c SHA256SUMS");
    const vda = join(dir, "vda.qcow2");
    // Whole VM disks and their definition: readable by their owner only, wherever they landed.
    for (const file of ["vda.qcow2", "vdb.qcow2", "domain.xml", "manifest.json"]) {
      expect({ file, mode: statSync(join(dir, file)).mode & 0o077 }).toEqual({ file, mode: 0 });
    }
    expect(statSync(dir).mode & 0o077).toBe(0);
    // The snapshot's content, not what the running VM wrote afterwards.
    expect(hasPattern(vda, 0xa1, PATTERN_AT)).toBe(true);
    expect(hasPattern(vda, 0xb2, PATTERN_AT)).toBe(false);
    expect(hasPattern(join(dir, "vdb.qcow2"), 0x5b, 0)).toBe(true);
    const info = JSON.parse(
      execFileSync("qemu-img", ["info", "--output=json", vda], { encoding: "utf8" }),
    ) as {
      format: string;
      "virtual-size": number;
      "backing-filename"?: string;
      "format-specific": { data: { "compression-type": string } };
    };
    expect(info.format).toBe("qcow2");
    if (engine === "convert") {
      expect(info["backing-filename"]).toBeUndefined();
      expect(info["format-specific"].data["compression-type"]).toBe("zstd");
      expect(manifest.disks.map((d) => d.compression)).toEqual(["zstd", "zstd"]);
    } else {
      // Streamed: the snapshot's clusters as they were, backed by the previous export when there is one.
      expect(manifest.disks.map((d) => d.compression)).toEqual(["none", "none"]);
      expect(info["backing-filename"]).toBe(
        manifest.basis === undefined ? undefined : `../${manifest.basis}/vda.qcow2`,
      );
      execFileSync("qemu-img", ["check", vda]);
    }
  }

  it("exports a running VM's snapshot from this computer into a folder, verified", async () => {
    const phases = new Set<string>();
    const result = await exports.export({
      host: "local",
      vm: vmName,
      snapshot: "before-b",
      target: "folder",
      onProgress: (p: ExportProgress) => phases.add(p.phase),
    });
    expect([...phases]).toEqual(["prepare", "transfer", "verify", "finish"]);
    expect(result.engine).toBe("stream");
    expect(result.notes).toEqual([
      "vda full: there is no earlier verified export of this VM on the target",
      "vdb full: there is no earlier verified export of this VM on the target",
    ]);
    expect(result.folder.startsWith(folder)).toBe(true);
    checkBundle(result.folder);
    const listed = await exports.list("folder");
    expect(listed[0]?.exports.map((e) => [e.id, e.state])).toEqual([[result.id, "verified"]]);
    // The snapshot knows it was exported (the timeline marks it).
    const snapshot = (await app.vms.get("local", vmName)).snapshots.find((s) => s.name === "before-b");
    expect(snapshot?.exportedTo).toContain(`folder/${result.id}`);
  });

  it.each([
    { from: "local", to: "nas", engine: "stream", label: "this computer → SSH target (push)" },
    { from: "loop", to: "folder", engine: "stream", label: "SSH host → folder (pull)" },
    { from: "loop", to: "nas", engine: "stream", label: "SSH host → SSH target (relayed)" },
    { from: "local", to: "nas", engine: "convert", label: "this computer → SSH target (push)" },
    { from: "loop", to: "folder", engine: "convert", label: "SSH host → folder (pull)" },
    { from: "loop", to: "nas", engine: "convert", label: "SSH host → SSH target (relayed)" },
  ] as const)("exports $label, $engine, over ssh2", async ({ from, to, engine }) => {
    const progress: ExportProgress[] = [];
    const result = await exports.export({
      host: from,
      vm: vmName,
      snapshot: "before-b",
      target: to,
      engine,
      onProgress: (p) => progress.push(p),
    });
    expect(result.engine).toBe(engine);
    checkBundle(result.folder, engine);
    expect(result.bytesSent).toBeGreaterThan(0);
    const transfer = progress.filter((p) => p.phase === "transfer");
    expect(transfer.length).toBeGreaterThan(0);
    expect(transfer.at(-1)?.bytesDone).toBe(transfer.at(-1)?.bytesTotal);
    // Staging on the source host is cleaned up after a verified export.
    expect(
      existsSync(stagingRoot) ? execFileSync("find", [stagingRoot, "-type", "f"], { encoding: "utf8" }) : "",
    ).toBe("");
  });

  it("re-exports only what changed, against the previous export, which stays intact", async () => {
    const before = await exports.list("nas");
    const previous = before[0]?.exports.filter((e) => e.state === "verified").at(-1);
    expect(previous).toBeDefined();
    // 1 MiB changes in the running VM, then a new snapshot.
    writeLive(vmUuid, "virtio-disk0", 0xc3, 8 * MiB, "1M");
    await app.snapshots.create("local", vmName, { name: "after-change" });
    const result = await exports.export({
      host: "local",
      vm: vmName,
      snapshot: "after-change",
      target: "nas",
      engine: "convert",
    });
    expect(result.basis).toBe(previous?.id);
    const size = result.manifest.disks.reduce((sum, d) => sum + d.size, 0);
    expect(size).toBeGreaterThan(20 * MiB);
    // rsync's literal data: the changed megabyte and the qcow2 metadata around it, not the image.
    expect(result.literalBytes).toBeLessThan(size * 0.15);
    expect(hasPattern(join(result.folder, "vda.qcow2"), 0xc3, 8 * MiB, "1M")).toBe(true);
    const check = await exports.verify("nas", previous?.id ?? "");
    expect(check.ok).toBe(true);
  });

  it("names the corrupted file when an export is verified again, and lists it as not good", async () => {
    const listed = (await exports.list("folder"))[0]?.exports ?? [];
    const victim = listed.find((e) => e.state === "verified");
    expect(victim).toBeDefined();
    flipByte(join(folder, victim?.folder ?? "", "vdb.qcow2"), 70_000);
    const result = await exports.verify("folder", victim?.id ?? "");
    expect(result).toMatchObject({ ok: false, badFiles: ["vdb.qcow2"] });
    const after = ((await exports.list("folder"))[0]?.exports ?? []).find((e) => e.id === victim?.id);
    expect(after?.state).toBe("corrupt");
    expect(after?.reason).toContain("vdb.qcow2");
    // A damaged copy no longer counts as the snapshot's export.
    const snapshot = (await app.vms.get("local", vmName)).snapshots.find((s) => s.name === "before-b");
    expect(snapshot?.exportedTo ?? []).not.toContain(`folder/${victim?.id ?? ""}`);
  });

  it("refuses to finish an export whose copy changed on the target, and sends the file again next time", async () => {
    // The target's runner, with one fault: a byte of the landed image flips just before the check.
    const tamperingTargets = new Targets({
      store: ctx.store,
      ssh: ctx.ssh,
      runnerFor: (target) => {
        if (target.kind !== "ssh") {
          return undefined;
        }
        const real = createSshRunner(
          {
            name: target.name,
            kind: "ssh",
            uri: "",
            host: target.host,
            port: target.port,
            user: target.user,
            identityFile: target.identityFile,
          },
          ctx.ssh,
          target.hostKey,
          "target",
        );
        return {
          label: real.label,
          run: (argv, options) => {
            if (argv[3] === "snapkeep-finish") {
              flipByte(join(argv[4] ?? "", "vdb.qcow2"), 70_000);
            }
            return real.run(argv, options);
          },
          dispose: () => real.dispose(),
        };
      },
    });
    const tampering = new Exports({
      ...app,
      targets: tamperingTargets,
      sealKey: () => openSealKey(ctx.home),
      now: () => new Date(),
      stagingRoot,
    });
    try {
      const error = await failure(
        tampering.export({ host: "local", vm: vmName, snapshot: "before-b", target: "nas" }),
      );
      expect(error.code).toBe("VERIFY_FAILED");
      expect(error.message).toContain("vdb.qcow2");
    } finally {
      await tamperingTargets.dispose();
    }
    const partial = ((await exports.list("nas"))[0]?.exports ?? []).filter((e) => e.state === "partial");
    expect(partial).toHaveLength(1);
    const again = await exports.export({ host: "local", vm: vmName, snapshot: "before-b", target: "nas" });
    expect(again.resumed).toBe(true);
    checkBundle(again.folder, again.engine);
  });

  it("survives the target dying mid-transfer: nothing listed as good, and the next run resumes", async () => {
    const target = join(work, "resume-target");
    await targets.add({
      name: "flaky",
      ssh: `${targetSshd.user}@${targetSshd.host}:${targetSshd.port}:${target}`,
      identityFile: targetSshd.userKeyPath,
      trust: targetSshd.hostFingerprint,
    });
    let killed = false;
    const error = await failure(
      exports.export({
        host: "local",
        vm: vmName,
        snapshot: "before-b",
        target: "flaky",
        disks: ["vda"],
        // Slow enough to be caught in the middle.
        bwlimitKiB: 4096,
        onProgress: (p) => {
          if (!killed && p.phase === "transfer" && p.bytesDone > 6 * MiB) {
            killed = true;
            netns.killAll();
          }
        },
      }),
    );
    expect(killed).toBe(true);
    expect(["TRANSFER_FAILED", "HOST_UNREACHABLE", "COMMAND_FAILED"]).toContain(error.code);
    await targetSshd.restart();
    const listed = (await exports.list("flaky"))[0]?.exports ?? [];
    expect(listed.map((e) => e.state)).toEqual(["partial"]);
    expect(listed[0]?.reason).toMatch(/did not finish/);

    const resumed = await exports.export({
      host: "local",
      vm: vmName,
      snapshot: "before-b",
      target: "flaky",
      disks: ["vda"],
    });
    expect(resumed.resumed).toBe(true);
    expect(resumed.id).toBe(listed[0]?.id);
    const size = resumed.manifest.disks[0]?.size ?? 0;
    // What arrived before the kill was not sent again.
    expect(resumed.literalBytes).toBeLessThan(size - 4 * MiB);
    expect(hasPattern(join(resumed.folder, "vda.qcow2"), 0xa1, PATTERN_AT)).toBe(true);
    expect(((await exports.list("flaky"))[0]?.exports ?? []).map((e) => e.state)).toEqual(["verified"]);
  });

  it("refuses a full target with a clear error before sending, and leaves the source alone", async () => {
    {
      await targets.add({ name: "tiny-dir", dir: join(small, "exports") });
      await targets.add({
        name: "tiny-ssh",
        ssh: `${targetSshd.user}@${targetSshd.host}:${targetSshd.port}:${join(small, "ssh")}`,
        identityFile: targetSshd.userKeyPath,
        trust: targetSshd.hostFingerprint,
      });
      const snapshotsBefore = (await app.snapshots.list("local", vmName)).map((s) => s.tag);
      for (const target of ["tiny-ssh", "tiny-dir"]) {
        const error = await failure(
          exports.export({ host: "local", vm: vmName, snapshot: "before-b", target }),
        );
        expect(error.code).toBe("TARGET_FULL");
        expect(error.message).toMatch(/full|free/);
        const listed = (await exports.list(target))[0]?.exports ?? [];
        expect(listed.every((e) => e.state !== "verified")).toBe(true);
      }
      expect((await app.snapshots.list("local", vmName)).map((s) => s.tag)).toEqual(snapshotsBefore);
    }
  });

  it("refuses a target path it may not write, and a changed host key", async () => {
    {
      // Its folder is made when it is added: one that cannot be made is refused then, not kept.
      const error = await failure(
        targets.add({
          name: "readonly",
          ssh: `${targetSshd.user}@${targetSshd.host}:${targetSshd.port}:${join(ro, "x")}`,
          identityFile: targetSshd.userKeyPath,
          trust: targetSshd.hostFingerprint,
        }),
      );
      expect(error.code).toBe("TARGET_UNWRITABLE");
      expect(error.message).toContain(join(ro, "x"));
      expect(targets.list().map((t) => t.name)).not.toContain("readonly");
    }

    // The same address now answers with another host key: refused, nothing written.
    const impostor = await startSshd({ netns: { name: netns.name, address: netns.address } });
    try {
      const spot = join(work, "impostor");
      ctx.store.update((s) => ({
        ...s,
        targets: [
          ...s.targets,
          {
            name: "pinned",
            kind: "ssh",
            host: impostor.host,
            port: impostor.port,
            user: impostor.user,
            identityFile: impostor.userKeyPath,
            path: spot,
            hostKey: targetSshd.hostFingerprint,
          },
        ],
      }));
      const error = await failure(
        exports.export({ host: "local", vm: vmName, snapshot: "before-b", target: "pinned" }),
      );
      expect(error.code).toBe("HOST_KEY_CHANGED");
      expect(hintOf(error, "cli")).toContain("snapkeep target trust pinned");
      expect(existsSync(spot)).toBe(false);
    } finally {
      await impostor.stop();
    }
  });

  it("cancels cleanly: the export is not listed as good, and pruning keeps the newest", async () => {
    const stop = new AbortController();
    const error = await failure(
      exports.export({
        host: "loop",
        vm: vmName,
        snapshot: "after-change",
        target: "folder",
        bwlimitKiB: 4096,
        // The old engine: its staged image is big enough to be stopped in the middle.
        engine: "convert",
        signal: stop.signal,
        onProgress: (p) => {
          if (p.phase === "transfer" && p.bytesDone > 2 * MiB) {
            stop.abort(new Error("stop"));
          }
        },
      }),
    );
    expect(isSnapkeepError(error) ? error.code : "CANCELLED").toBe("CANCELLED");
    const listed = (await exports.list("folder"))[0]?.exports ?? [];
    expect(listed.filter((e) => e.snapshotName.includes("after-change")).map((e) => e.state)).toEqual([
      "partial",
    ]);

    const verified = listed.filter((e) => e.state === "verified").map((e) => e.folder);
    expect(verified.length).toBeGreaterThanOrEqual(1);
    const dry = await exports.prune("folder", { keep: 1, dryRun: true });
    expect(dry.kept).toEqual([verified.at(-1)]);
    expect(dry.removed).toEqual(verified.slice(0, -1));
    expect(verified.every((f) => existsSync(join(folder, f)))).toBe(true);
    const done = await exports.prune("folder", { keep: 1, dryRun: false });
    expect(done.removed).toEqual(dry.removed);
    // Pruned exports leave the snapshots' export marks too.
    const marks = (await app.vms.get("local", vmName)).snapshots.flatMap((s) => s.exportedTo ?? []);
    for (const gone of done.removed) {
      expect(marks).not.toContain(`folder/${gone.split("/").at(-1) ?? ""}`);
    }
    expect(existsSync(join(folder, verified.at(-1) ?? ""))).toBe(true);
    // The partial one is not touched by pruning. The damaged export stays, and so does the one
    // streamed on top of it, listed as damaged as it cannot be restored.
    const after = (await exports.list("folder"))[0]?.exports ?? [];
    expect(after.map((e) => e.state).sort()).toEqual(["corrupt", "corrupt", "partial", "verified"]);
    expect(after.filter((e) => e.state === "corrupt").map((e) => e.reason)).toContainEqual(
      expect.stringMatching(/^it cannot be restored: .*, an export it is built on, is corrupt$/),
    );
  });

  it("restores an export as a new VM with its own identity, which boots, and adds disks to a running VM", async () => {
    const name = `sk-imp-${suffix}`;
    const listed = ((await exports.list("nas"))[0]?.exports ?? []).filter((e) => e.state === "verified");
    const source = listed.find((e) => e.snapshotName === "before-b");
    expect(source).toBeDefined();
    const dry = await restoreExport(
      { ...app, targets, exports },
      {
        target: "nas",
        export: source?.id ?? "",
        host: "local",
        name,
        dir: TEST_IMAGE_DIR,
        dryRun: true,
      },
    );
    expect(dry.disks.map((d) => d.target)).toEqual(["vda", "vdb"]);
    expect(dry.disks.every((d) => !existsSync(d.file))).toBe(true);
    const made: string[] = [];
    try {
      const result = await restoreExport(
        { ...app, targets, exports },
        {
          target: "nas",
          export: source?.id ?? "",
          host: "local",
          name,
          dir: TEST_IMAGE_DIR,
        },
      );
      made.push(...result.disks.map((d) => d.file));
      expect(result.vmUuid).not.toBe(vmUuid);
      const vda = result.disks.find((d) => d.target === "vda")?.file ?? "";
      expect(hasPattern(vda, 0xa1, PATTERN_AT)).toBe(true);
      const xml = virshOut("dumpxml", name);
      expect(xml).toContain(vda);
      expect(xml).not.toContain(vmUuid);
      expect(xml).not.toContain("snapkeep.dev/xmlns/lab");
      virshOut("start", name);
      expect(virshOut("domstate", name).trim()).toBe("running");
      // The same name again is refused, and nothing is overwritten.
      const again = await failure(
        restoreExport(
          { ...app, targets, exports },
          {
            target: "nas",
            export: source?.id ?? "",
            host: "local",
            name,
            dir: TEST_IMAGE_DIR,
          },
        ),
      );
      expect(again.code).toBe("ALREADY_EXISTS");

      const attached = await restoreExport(
        { ...app, targets, exports },
        {
          target: "nas",
          export: source?.id ?? "",
          host: "local",
          into: vmName,
          disks: ["vdb"],
          dir: TEST_IMAGE_DIR,
        },
      );
      made.push(...attached.disks.map((d) => d.file));
      expect(attached.disks.map((d) => d.target)).toEqual(["vdc"]);
      expect(virshOut("domblklist", vmUuid)).toContain(attached.disks[0]?.file ?? "?");
      expect(virshOut("dumpxml", "--inactive", vmUuid)).toContain(attached.disks[0]?.file ?? "?");
    } finally {
      try {
        virshOut("destroy", name);
      } catch {
        // Not running.
      }
      try {
        virshOut("undefine", name, "--nvram");
      } catch {
        // Never defined.
      }
      for (const file of made) {
        rmSync(file, { force: true });
      }
    }
  });

  it("refuses to restore a damaged export and creates nothing", async () => {
    const corrupt = ((await exports.list("folder"))[0]?.exports ?? []).find((e) => e.state === "corrupt");
    expect(corrupt).toBeDefined();
    const name = `sk-bad-${suffix}`;
    const error = await failure(
      restoreExport(
        { ...app, targets, exports },
        {
          target: "folder",
          export: corrupt?.id ?? "",
          host: "local",
          name,
          dir: TEST_IMAGE_DIR,
        },
      ),
    );
    expect(error.code).toBe("VERIFY_FAILED");
    expect(error.message).toContain("vdb.qcow2");
    expect(existsSync(join(TEST_IMAGE_DIR, `${name}-vda.qcow2`))).toBe(false);
    // virsh fails to find it (its complaint is not printed into the test output).
    expect(
      spawnSync("virsh", ["-q", "-c", "qemu:///system", "domuuid", name], { stdio: "ignore" }).status,
    ).not.toBe(0);
  });
});

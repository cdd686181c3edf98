/**
 * Streamed, incremental exports (issue 16) against real things: libvirt + KVM VMs (one running,
 * one shut off), qemu-img, a folder target and an SSH target in its own network namespace.
 *
 * A chain of five exports per VM, each restored with stock qemu-img as its RESTORE.md says and
 * compared with its snapshot; removal and retention merging what kept exports are built on; every fallback
 * (damaged basis export, basis snapshot deleted, disk resized, disk added, target killed in the
 * middle) ending in a correct export with its reason; a chain restored as a new VM by Snapkeep.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Targets } from "../../core/app/targets.js";
import { Exports, type ExportResult } from "../../core/app/exports/exports.js";
import { restoreExport } from "../../core/app/exports/restore.js";
import { openSealKey } from "../../core/infra/seal-key.js";
import type { VmModules } from "../../core/app/vm-modules.js";
import { failure } from "../support/failure.js";
import { TEST_IMAGE_DIR, TestVms, uniqueSuffix, virshOut, writeLive } from "../support/libvirt.js";
import { createNetns, type TestNetns } from "../support/netns.js";
import { makeApp } from "../support/app.js";
import { startSshd, type TestSshd } from "../support/sshd.js";

const MiB = 1024 * 1024;
const KiB = 1024;

/** A snapshot's raw content, read shared (the VM may run): what a restore must equal. */
function snapshotRaw(image: string, tag: string, out: string): void {
  execFileSync("qemu-img", ["convert", "-U", "-l", `snapshot.name=${tag}`, "-O", "raw", image, out]);
}

/** Damage on the target: one byte near the end of an image flipped. */
function flipNearEnd(file: string): void {
  const bytes = readFileSync(file);
  bytes[bytes.length - 100] = (bytes[bytes.length - 100] ?? 0) ^ 0xff;
  writeFileSync(file, bytes);
}

interface Subject {
  readonly label: string;
  readonly vm: string;
  readonly uuid: string;
  readonly disk: string;
  readonly vdb: string;
  readonly target: string;
  readonly running: boolean;
  readonly made: { result: ExportResult; tag: string }[];
}

describe("streamed, incremental exports", () => {
  const vms = new TestVms();
  const suffix = uniqueSuffix();
  let ctx: ReturnType<typeof makeApp>;
  let app: VmModules;
  let exports: Exports;
  let targets: Targets;
  let netns: TestNetns;
  let sshd: TestSshd;
  let work = "";
  const subjects: Subject[] = [];

  beforeAll(async () => {
    ctx = makeApp();
    app = ctx.app;
    work = mkdtempSync(join(tmpdir(), "snapkeep-stream-"));
    targets = new Targets({ store: ctx.store, ssh: ctx.ssh });
    exports = new Exports({
      ...app,
      targets,
      sealKey: () => openSealKey(ctx.home),
      now: () => new Date(),
      stagingRoot: join(work, "staging"),
      sleep: async () => undefined,
    });
    app.hosts.addLocal("local");
    netns = createNetns();
    sshd = await startSshd({ netns: { name: netns.name, address: netns.address } });
    await targets.add({ name: "folder", dir: join(work, "folder") });
    await targets.add({
      name: "nas",
      ssh: `${sshd.user}@${sshd.host}:${sshd.port}:${join(work, "nas")}`,
      identityFile: sshd.userKeyPath,
      trust: sshd.hostFingerprint,
    });
    for (const running of [true, false]) {
      const name = `sk-str-${running ? "run" : "off"}-${suffix}`;
      const vm = await vms.create({
        name,
        running: false,
        disks: [
          { target: "vda", sizeMiB: 64 },
          { target: "vdb", sizeMiB: 16 },
        ],
      });
      // 24 MiB of random data to start with, as a used disk has.
      const random = join(work, "random.bin");
      writeFileSync(random, randomBytes(24 * MiB));
      execFileSync("qemu-io", [
        "-f",
        "qcow2",
        "-c",
        `write -s ${random} 0 ${24 * MiB}`,
        vm.diskPaths[0] ?? "",
      ]);
      if (running) {
        virshOut("start", vm.uuid);
      }
      subjects.push({
        label: running ? "a running VM to an SSH target" : "a shut-off VM to a folder",
        vm: name,
        uuid: vm.uuid,
        disk: vm.diskPaths[0] ?? "",
        vdb: vm.diskPaths[1] ?? "",
        target: running ? "nas" : "folder",
        running,
        made: [],
      });
    }
  }, 180_000);

  afterAll(async () => {
    await targets?.dispose();
    await ctx?.dispose();
    await vms.dispose();
    await sshd?.stop();
    netns?.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  /** Scattered 64 KiB writes and one contiguous megabyte, through QEMU when the VM runs. */
  function change(s: Subject, round: number): void {
    const pattern = 0x10 + round;
    const offsets = [1, 7, 13, 29, 41, 55].map((n) => (n * MiB + round * 192 * KiB) % (60 * MiB));
    for (const offset of offsets) {
      write(s, pattern, offset - (offset % (64 * KiB)), "64k");
    }
    write(s, pattern, (30 + round) * MiB, "1M");
  }

  function write(s: Subject, pattern: number, offset: number, length: string): void {
    if (s.running) {
      writeLive(s.uuid, "virtio-disk0", pattern, offset, length);
    } else {
      execFileSync("qemu-io", ["-f", "qcow2", "-c", `write -P ${pattern} ${offset} ${length}`, s.disk]);
    }
  }

  async function snapshotAndExport(
    s: Subject,
    name: string,
    extra: { disks?: string[]; bwlimitKiB?: number; onBytes?: (done: number) => void } = {},
  ): Promise<ExportResult> {
    const snapshot = await app.snapshots.create("local", s.vm, { name });
    const result = await exports.export({
      host: "local",
      vm: s.vm,
      snapshot: name,
      target: s.target,
      disks: extra.disks,
      bwlimitKiB: extra.bwlimitKiB,
      onProgress: (p) => (p.phase === "transfer" ? extra.onBytes?.(p.bytesDone) : undefined),
    });
    s.made.push({ result, tag: snapshot.tag });
    return result;
  }

  /** What RESTORE.md says: check the sums in each folder of the chain, then qemu-img convert. */
  function restoreWithStockTools(
    s: Subject,
    made: { result: ExportResult; tag: string },
    disk = "vda",
  ): void {
    const folder = made.result.folder;
    const notes = readFileSync(join(folder, "RESTORE.md"), "utf8");
    // Read where it lies: a merge on retention may have rewritten it since it was made.
    const top = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8")) as {
      disks: { target: string; backing?: string }[];
    };
    const chained = top.disks.find((d) => d.target === disk)?.backing !== undefined;
    // QEMU's own consistency check of the image Snapkeep wrote (or merged): no errors, no leaks.
    execFileSync("qemu-img", ["check", "-f", "qcow2", join(folder, `${disk}.qcow2`)]);
    expect(notes).toContain(
      chained ? `qemu-img convert -f qcow2 -O qcow2 ${disk}.qcow2` : `cp --sparse=always ${disk}.qcow2`,
    );
    let dir = folder;
    for (;;) {
      execFileSync("sha256sum", ["-c", "--quiet", "SHA256SUMS"], { cwd: dir });
      const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as {
        basis?: string;
        disks: { target: string; backing?: string }[];
      };
      const backing = manifest.disks.find((d) => d.target === disk)?.backing;
      if (backing === undefined) {
        break;
      }
      dir = join(dir, "..", manifest.basis ?? "?");
    }
    const restored = join(work, `restored-${made.result.id}-${disk}.qcow2`);
    execFileSync("qemu-img", [
      "convert",
      "-f",
      "qcow2",
      "-O",
      "qcow2",
      join(folder, `${disk}.qcow2`),
      restored,
    ]);
    const image = disk === "vda" ? s.disk : s.vdb;
    const reference = join(work, `reference-${made.result.id}-${disk}.raw`);
    snapshotRaw(image, made.tag, reference);
    // Exit 0: identical content; 1: they differ (the message says where).
    execFileSync("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", restored, reference]);
    rmSync(restored);
    rmSync(reference);
  }

  it("makes a chain of five exports, each restorable with stock qemu-img, sending only the changes", async () => {
    for (const s of subjects) {
      for (let round = 1; round <= 5; round++) {
        change(s, round);
        const result = await snapshotAndExport(s, `chain-${round}`);
        expect(result.engine).toBe("stream");
        if (round === 1) {
          expect(result.basis).toBeNull();
          expect(result.notes[0]).toMatch(/^vda full: there is no earlier verified export/);
        } else {
          expect(result.basis).toBe(s.made.at(-2)?.result.id);
          expect(result.notes[0]).toBe(`vda incremental: changes since ${result.basis ?? ""}`);
          // About 1.4 MiB of guest data changed: the re-export sends that, not the 24 MiB disk.
          expect(result.bytesSent).toBeLessThan(4 * MiB);
          expect(result.bytesSent).toBeLessThan((s.made[0]?.result.bytesSent ?? 0) * 0.15);
        }
      }
      for (const made of s.made) {
        restoreWithStockTools(s, made);
        restoreWithStockTools(s, made, "vdb");
      }
    }
  }, 600_000);

  it("merges a removed export into the one built on it, so every remaining export still restores", async () => {
    for (const s of subjects) {
      const [, , middle, above] = s.made as { result: ExportResult; tag: string }[];
      if (middle === undefined || above === undefined) {
        throw new Error("the chain of five was not made");
      }
      const planned = await exports.remove(s.target, [middle.result.id], { dryRun: true });
      expect(planned.merged).toEqual([
        {
          into: expect.stringMatching(new RegExp(`/${above.result.id}$`)) as unknown as string,
          from: [middle.result.id],
          bytesWritten: null,
        },
      ]);
      expect(existsSync(middle.result.folder)).toBe(true);

      const done = await exports.remove(s.target, [middle.result.id], { dryRun: false });
      expect(done.removed).toEqual([expect.stringMatching(new RegExp(`/${middle.result.id}$`))]);
      expect(done.merged[0]?.bytesWritten).toBeGreaterThan(0);
      expect(existsSync(middle.result.folder)).toBe(false);
      s.made.splice(2, 1);
      const manifest = JSON.parse(readFileSync(join(above.result.folder, "manifest.json"), "utf8")) as {
        basis?: string;
        disks: { target: string; why?: string }[];
      };
      // It now rests on the export below the removed one, and says so.
      expect(manifest.basis).toBe(s.made[1]?.result.id);
      expect(manifest.disks[0]?.why).toContain(`merged with ${middle.result.id}`);
      for (const made of s.made) {
        restoreWithStockTools(s, made);
        restoreWithStockTools(s, made, "vdb");
      }
      const listed = await exports.list(s.target);
      expect(
        listed
          .flatMap((t) => t.exports)
          .filter((e) => e.vmUuid === s.uuid)
          .map((e) => e.state),
      ).toEqual(s.made.map(() => "verified"));
    }
  }, 600_000);

  it("merges the exports retention prunes into the oldest it keeps, which becomes a full one", async () => {
    for (const s of subjects) {
      const pruned = await exports.prune(s.target, { vmUuid: s.uuid, keep: 2, dryRun: false });
      const [first, second, kept] = s.made as { result: ExportResult; tag: string }[];
      expect(pruned.held).toEqual([]);
      expect(pruned.removed).toHaveLength(2);
      expect(pruned.merged.map((m) => m.from)).toEqual([[second?.result.id, first?.result.id]]);
      expect(existsSync(first?.result.folder ?? "")).toBe(false);
      s.made.splice(0, 2);
      const manifest = JSON.parse(readFileSync(join(kept?.result.folder ?? "", "manifest.json"), "utf8")) as {
        basis?: string;
        disks: { backing?: string }[];
      };
      expect(manifest.basis).toBeUndefined();
      expect(manifest.disks.every((d) => d.backing === undefined)).toBe(true);
      for (const made of s.made) {
        restoreWithStockTools(s, made);
        restoreWithStockTools(s, made, "vdb");
      }
      expect((await exports.verifyChain(s.target, s.made.at(-1)?.result.id ?? "")).ok).toBe(true);
      // The next export still builds on the newest, whose chain is now the merged full one.
      change(s, 5);
      const next = await snapshotAndExport(s, "after-merge");
      expect(next.basis).toBe(s.made.at(-2)?.result.id);
      restoreWithStockTools(s, s.made.at(-1) as { result: ExportResult; tag: string });
    }
  }, 600_000);

  it("builds on the newest export that is still good when the newest one is damaged", async () => {
    const s = subjects[1] as Subject;
    const newest = s.made.at(-1) as { result: ExportResult; tag: string };
    const file = join(newest.result.folder, "vda.qcow2");
    const size = statSync(file).size;
    flipNearEnd(file);
    // A streamed image has per-chunk hashes: the verify says where it differs, the chunk that
    // holds the flipped byte (64 MiB chunks: the last one, up to the end of the file).
    const verified = await exports.verify(s.target, newest.result.id);
    expect(verified).toMatchObject({ ok: false, badFiles: ["vda.qcow2"] });
    const chunk = 64 * 1024 * 1024;
    expect(verified.badRanges).toEqual([
      { file: "vda.qcow2", start: Math.floor((size - 100) / chunk) * chunk, end: size },
    ]);
    change(s, 6);
    const result = await snapshotAndExport(s, "after-damage");
    expect(result.basis).toBe(s.made.at(-3)?.result.id);
    restoreWithStockTools(s, s.made.at(-1) as { result: ExportResult; tag: string });
  }, 120_000);

  it("exports in full, saying why, when the basis snapshot is gone, the disk was resized or added", async () => {
    const s = subjects[1] as Subject;
    await app.snapshots.delete("local", s.vm, "after-damage");
    change(s, 7);
    const gone = await snapshotAndExport(s, "basis-gone");
    expect(gone.basis).toBeNull();
    expect(gone.notes[0]).toMatch(
      /^vda full: the snapshot of the previous export \(.*\) is no longer on the host$/,
    );
    restoreWithStockTools(s, s.made.at(-1) as { result: ExportResult; tag: string });

    execFileSync("qemu-img", ["resize", "-f", "qcow2", s.disk, `${80 * MiB}`]);
    change(s, 8);
    const resized = await snapshotAndExport(s, "resized");
    expect(resized.notes).toContain("vda full: vda was resized since the previous export (" + gone.id + ")");
    // vdb did not change size: it still builds on the previous export.
    expect(resized.notes).toContain(`vdb incremental: changes since ${gone.id}`);
    restoreWithStockTools(s, s.made.at(-1) as { result: ExportResult; tag: string });

    change(s, 9);
    const onlyVda = await snapshotAndExport(s, "only-vda", { disks: ["vda"] });
    expect(onlyVda.notes).toEqual([`vda incremental: changes since ${resized.id}`]);
    change(s, 10);
    const both = await snapshotAndExport(s, "both-again");
    expect(both.notes).toEqual([
      `vda incremental: changes since ${onlyVda.id}`,
      `vdb full: vdb is not in the previous export (${onlyVda.id})`,
    ]);
    restoreWithStockTools(s, s.made.at(-1) as { result: ExportResult; tag: string });
    restoreWithStockTools(s, s.made.at(-1) as { result: ExportResult; tag: string }, "vdb");
  }, 300_000);

  it("survives the target dying in the middle: nothing listed as good, and the next run completes it", async () => {
    const s = subjects[0] as Subject;
    // A full export (its basis snapshot deleted), slow enough to be caught in the middle.
    await app.snapshots.delete("local", s.vm, "after-merge");
    change(s, 11);
    let killed = false;
    const error = await failure(
      snapshotAndExport(s, "killed", {
        bwlimitKiB: 4096,
        onBytes: (done) => {
          if (!killed && done > 8 * MiB) {
            killed = true;
            netns.killAll();
          }
        },
      }),
    );
    expect(killed).toBe(true);
    expect(["TRANSFER_FAILED", "HOST_UNREACHABLE", "COMMAND_FAILED"]).toContain(error.code);
    await sshd.restart();
    const listed = (await exports.list("nas"))[0]?.exports ?? [];
    expect(listed.filter((e) => e.state === "partial")).toHaveLength(1);
    const again = await exports.export({ host: "local", vm: s.vm, snapshot: "killed", target: "nas" });
    expect(again.resumed).toBe(true);
    expect(again.basis).toBeNull();
    // What arrived before the kill was not sent again.
    expect(again.bytesSent).toBeLessThan(again.manifest.disks.reduce((sum, d) => sum + d.size, 0) - 6 * MiB);
    const tag = (await app.vms.get("local", s.vm)).snapshots.find((x) => x.name === "killed")?.tag ?? "";
    restoreWithStockTools(s, { result: again, tag });
    s.made.push({ result: again, tag });
  }, 300_000);

  it("restores an incremental export as a new VM: the chain is checked, copied and joined", async () => {
    const s = subjects[0] as Subject;
    // Built on the export retention merged the older ones into.
    const made = s.made[1] as { result: ExportResult; tag: string };
    expect(made.result.basis).toBe(s.made[0]?.result.id);
    const name = `sk-str-back-${suffix}`;
    const files: string[] = [];
    try {
      const result = await restoreExport(
        { ...app, targets, exports },
        { target: s.target, export: made.result.id, host: "local", name, dir: TEST_IMAGE_DIR },
      );
      files.push(...result.disks.map((d) => d.file));
      const vda = result.disks.find((d) => d.target === "vda")?.file ?? "";
      const info = JSON.parse(
        execFileSync("qemu-img", ["info", "-U", "--output=json", vda], { encoding: "utf8" }),
      ) as {
        "backing-filename"?: string;
      };
      expect(info["backing-filename"]).toBeUndefined();
      const reference = join(work, "reference-restored.raw");
      snapshotRaw(s.disk, made.tag, reference);
      execFileSync("qemu-img", ["compare", "-U", "-f", "qcow2", "-F", "raw", vda, reference]);
    } finally {
      for (const args of [
        ["destroy", name],
        ["undefine", name, "--remove-all-storage"],
      ]) {
        try {
          virshOut(...args);
        } catch {
          // Not running, or not defined.
        }
      }
    }
  }, 300_000);

  it("names a damaged link when an export is verified in full, and lists what is built on it as damaged", async () => {
    const s = subjects[0] as Subject;
    // The merged full export, and two built on it.
    const [first, second, third] = s.made.map((m) => m.result);
    expect([second?.basis, third?.basis]).toEqual([first?.id, second?.id]);
    const file = join(first?.folder ?? "", "vda.qcow2");
    flipNearEnd(file);
    // Its own files are intact: a plain verify reads only what it added.
    expect((await exports.verify(s.target, third?.id ?? "")).ok).toBe(true);
    const full = await exports.verifyChain(s.target, third?.id ?? "");
    expect(full).toMatchObject({ ok: false, badFiles: [`${first?.id ?? ""}/vda.qcow2`] });
    const listed = (await exports.list(s.target))[0]?.exports ?? [];
    for (const built of [second, third]) {
      const entry = listed.find((e) => e.id === built?.id);
      expect(entry?.state).toBe("corrupt");
      expect(entry?.reason).toMatch(/^it cannot be restored: /);
    }
  }, 120_000);

  it("refuses to merge from an image that no longer matches its checksum, and removes nothing", async () => {
    const s = subjects[1] as Subject;
    const listed = (await exports.list(s.target))[0]?.exports ?? [];
    const good = new Set(listed.filter((e) => e.state === "verified").map((e) => e.id));
    const pairs = s.made.flatMap((upper, i) =>
      s.made
        .slice(0, i)
        .filter((lower) => upper.result.basis === lower.result.id)
        .map((lower) => ({ lower: lower.result, upper: upper.result })),
    );
    const pair = pairs.filter((p) => good.has(p.lower.id) && good.has(p.upper.id)).at(-1);
    if (pair === undefined) {
      throw new Error("no verified export built on another verified one");
    }
    // Damage the kept export after its check: it is still listed as verified.
    flipNearEnd(join(pair.upper.folder, "vda.qcow2"));
    const error = await failure(exports.remove(s.target, [pair.lower.id], { dryRun: false }));
    expect(error.code).toBe("VERIFY_FAILED");
    expect(error.message).toContain(`${pair.upper.id}/vda.qcow2`);
    expect(existsSync(pair.lower.folder)).toBe(true);
    expect(readFileSync(join(pair.upper.folder, "manifest.json"), "utf8")).toContain(pair.lower.id);
  }, 120_000);

  it("prunes an unfinished export a newer one superseded, once nothing has written to it for a day", async () => {
    const s = subjects[1] as Subject;
    change(s, 30);
    // Enough change that the copy, held to 4 MiB/s, is still running when it is cancelled.
    write(s, 0x5a, 40 * MiB, "8M");
    await app.snapshots.create("local", s.vm, { name: "abandoned" });
    const stop = new AbortController();
    const error = await failure(
      exports.export({
        host: "local",
        vm: s.vm,
        snapshot: "abandoned",
        target: s.target,
        bwlimitKiB: 4096,
        signal: stop.signal,
        onProgress: (p) => (p.phase === "transfer" && p.bytesDone > 2 * MiB ? stop.abort() : undefined),
      }),
    );
    expect(error.code).toBe("CANCELLED");
    const partials = async (): Promise<string[]> =>
      ((await exports.list(s.target))[0]?.exports ?? [])
        .filter((e) => e.state === "partial" && e.vmUuid === s.uuid)
        .map((e) => e.folder);
    const [partial] = await partials();
    if (partial === undefined) {
      throw new Error("the cancelled export left no unfinished folder");
    }
    const folder = join(work, "folder", partial);
    change(s, 31);
    const newer = await snapshotAndExport(s, "supersedes");
    const prune = (dryRun: boolean): ReturnType<Exports["prune"]> =>
      exports.prune(s.target, { vmUuid: s.uuid, keep: 100, dryRun });

    // Written a moment ago: an export may still be at work on it.
    expect((await prune(true)).abandoned).toEqual([]);
    // Nothing written to it for two days.
    execFileSync("find", [folder, "-exec", "touch", "-h", "-d", "2 days ago", "{}", "+"]);
    const planned = await prune(true);
    expect(planned.abandoned).toEqual([
      {
        folder: partial,
        reason: expect.stringMatching(
          new RegExp(`superseded by ${newer.id}, nothing written to it for 24 h$`),
        ),
      },
    ]);
    expect(existsSync(folder)).toBe(true);
    const done = await prune(false);
    expect(done.abandoned.map((a) => a.folder)).toEqual([partial]);
    expect(existsSync(folder)).toBe(false);
    expect(await partials()).toEqual([]);
    const listed = (await exports.list(s.target))[0]?.exports ?? [];
    expect(listed.find((e) => e.id === newer.id)?.state).toBe("verified");
  }, 180_000);
});

/**
 * What deleting a snapshot frees, measured from the image's metadata, against what QEMU really
 * frees when it deletes it: on a copy of the image, `qemu-img snapshot -d`, then the clusters whose
 * refcount went to zero (less the snapshot table QEMU rewrites) must be exactly the bytes
 * measured, and the file's allocation must drop by them within that one table. Images made with
 * qemu-img and qemu-io (plain, 4 KiB clusters with 64-bit refcounts, compressed, with a backing
 * file), and a running VM's disks snapshotted through Snapkeep, measured while it runs, through this
 * computer's runner and through SSH, and by the CLI.
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { qcow2SnapshotSpace } from "../../core/app/qcow2-space.js";
import type { VmModules } from "../../core/app/vm-modules.js";
import { openCoreContext } from "../../core/app/context.js";
import { Api } from "../../core/api/api.js";
import { runCli } from "../../core/cli/main.js";
import {
  parseRefcountLayout,
  parseRefcountTable,
  refcountIn,
} from "../../core/drivers/qemu-img/qcow2-space.js";
import { readRangesArgs } from "../../core/drivers/qemu-img/qcow2-tables.js";
import { LocalRunner } from "../../core/infra/runner/local.js";
import { makeApp } from "../support/app.js";
import { startSshd, trustedHost, type TestSshd } from "../support/sshd.js";
import { snapshotKey, TestVms, uniqueSuffix, URI, writeLive } from "../support/libvirt.js";

const KiB = 1024;
const MiB = 1024 * KiB;

/** Clusters with a refcount above zero, and the clusters of the snapshot table, read from the whole file. */
function clustersInUse(file: string): { used: number; tableClusters: number; clusterSize: number } {
  const bytes = readFileSync(file);
  const layout = parseRefcountLayout(bytes.subarray(0, 512));
  const cs = layout.clusterSize;
  const table = parseRefcountTable(
    bytes.subarray(
      layout.refcountTableOffset,
      layout.refcountTableOffset + layout.refcountTableClusters * cs,
    ),
    layout,
    bytes.length,
  );
  let used = 0;
  for (const offset of table.filter((o) => o !== 0)) {
    const block = bytes.subarray(offset, offset + cs);
    for (let i = 0; i < layout.refcountsPerBlock; i++) {
      if (refcountIn(block, i, layout.refcountBits) > 0) {
        used++;
      }
    }
  }
  // The snapshot table's length: 40 fixed bytes, extra data, id and name per entry, padded to 8.
  let at = layout.snapshotsOffset;
  for (let i = 0; i < layout.snapshotCount; i++) {
    const end =
      at + 40 + bytes.readUInt32BE(at + 36) + bytes.readUInt16BE(at + 12) + bytes.readUInt16BE(at + 14);
    at = Math.ceil(end / 8) * 8;
  }
  return { used, tableClusters: Math.ceil((at - layout.snapshotsOffset) / cs), clusterSize: cs };
}

/** Deletes the snapshot from a fully allocated copy with qemu-img: what QEMU freed, two ways. */
function freedByQemu(image: string, name: string, work: string): { exact: number; fileDrop: number } {
  const copy = join(work, `copy-${randomBytes(3).toString("hex")}.qcow2`);
  execFileSync("cp", ["--sparse=never", image, copy]);
  try {
    const before = clustersInUse(copy);
    const blocksBefore = statSync(copy).blocks;
    execFileSync("qemu-img", ["snapshot", "-d", name, copy]);
    execFileSync("qemu-img", ["check", copy]); // exits non-zero on leaks or corruption
    const after = clustersInUse(copy);
    const blocksAfter = statSync(copy).blocks;
    return {
      // The old snapshot table is freed and a new one written: not the snapshot's to count.
      exact: (before.used - after.used - before.tableClusters + after.tableClusters) * before.clusterSize,
      fileDrop: (blocksBefore - blocksAfter) * 512,
    };
  } finally {
    rmSync(copy, { force: true });
  }
}

function fingerprint(file: string): string {
  const s = statSync(file);
  return `${s.mtimeMs}:${s.size}:${createHash("sha256").update(readFileSync(file)).digest("hex")}`;
}

describe("what deleting a qcow2 snapshot frees, against QEMU", () => {
  const runner = new LocalRunner();
  let work = "";
  const io = (file: string, ...commands: string[]): void => {
    execFileSync("qemu-io", ["-f", "qcow2", ...commands.flatMap((c) => ["-c", c]), file], { stdio: "pipe" });
  };
  const writeRandom = (file: string, offset: number, length: number): void => {
    const source = join(work, "random");
    writeFileSync(source, randomBytes(length));
    io(file, `write -s ${source} ${offset} ${length}`);
  };
  const snapshot = (file: string, name: string): void => {
    execFileSync("qemu-img", ["snapshot", "-c", name, file]);
  };
  /** Measures the image, then checks every snapshot against QEMU deleting it; returns the bytes by name. */
  const checkAgainstQemu = async (
    file: string,
    names: readonly string[],
  ): Promise<Record<string, number>> => {
    const before = fingerprint(file);
    const space = await qcow2SnapshotSpace(runner, file);
    expect(fingerprint(file), "measuring never writes the image").toBe(before);
    const measured: Record<string, number> = {};
    for (const name of names) {
      const bytes = space.freedById.get(snapshotKey(file, name).id);
      const qemu = freedByQemu(file, name, work);
      expect(bytes, `snapshot ${name}`).toBe(qemu.exact);
      expect(
        Math.abs(qemu.fileDrop - (bytes ?? -1)),
        `file allocation after deleting ${name}`,
      ).toBeLessThanOrEqual(space.clusterSize);
      measured[name] = bytes ?? -1;
    }
    return measured;
  };

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "snapkeep-space-"));
  });

  afterAll(async () => {
    await runner.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  it("frees what only the snapshot holds: overwritten data, its own tables", async () => {
    const image = join(work, "plain.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, `${64 * MiB}`]);
    writeRandom(image, 0, 8 * MiB);
    snapshot(image, "s1");
    writeRandom(image, 0, 4 * MiB); // s1 alone keeps its first 4 MiB
    snapshot(image, "s2");
    writeRandom(image, 2 * MiB, 1 * MiB); // s2 alone keeps 1 MiB
    writeRandom(image, 40 * MiB, 1 * MiB); // new data: nobody's but the disk's
    snapshot(image, "s3"); // shares everything with the disk
    const measured = await checkAgainstQemu(image, ["s1", "s2", "s3"]);
    // Data, plus its own L2 table and L1 table (64 KiB clusters); s3 only its L1 table.
    expect(measured).toEqual({ s1: 4 * MiB + 128 * KiB, s2: 1 * MiB + 128 * KiB, s3: 64 * KiB });
  });

  it("agrees with QEMU on small clusters with 64-bit refcounts: many L2 tables and refcount blocks", async () => {
    const image = join(work, "small.qcow2");
    execFileSync("qemu-img", [
      "create",
      "-q",
      "-f",
      "qcow2",
      "-o",
      "cluster_size=4096,refcount_bits=64",
      image,
      `${64 * MiB}`,
    ]);
    const names: string[] = [];
    for (let round = 0; round < 5; round++) {
      // Scattered writes over the whole disk, some over what earlier snapshots hold.
      for (let k = 0; k < 30; k++) {
        writeRandom(image, Math.floor(Math.random() * 16000) * 4096, 4096 * (1 + (k % 3)));
      }
      names.push(`r${round}`);
      snapshot(image, `r${round}`);
    }
    writeRandom(image, 0, 2 * MiB);
    const measured = await checkAgainstQemu(image, names);
    expect(Object.values(measured).some((b) => b > 4 * 4096)).toBe(true);
  });

  it("counts a host cluster of compressed data freed only when all it holds is the snapshot's", async () => {
    const source = join(work, "source.qcow2");
    const image = join(work, "compressed.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", source, `${32 * MiB}`]);
    // Patterned 4 KiB runs compress to a few dozen bytes: many guest clusters share a host cluster.
    for (let i = 0; i < 64; i++) {
      io(source, `write -P ${(i % 250) + 1} ${i * 64 * KiB} 4k`);
    }
    writeRandom(source, 8 * MiB, 1 * MiB); // and some that do not compress
    execFileSync("qemu-img", ["convert", "-c", "-O", "qcow2", source, image]);
    snapshot(image, "c1");
    // Overwrite some compressed clusters and half the incompressible ones.
    for (let i = 0; i < 64; i += 3) {
      io(image, `write -P 7 ${i * 64 * KiB} 64k`);
    }
    writeRandom(image, 8 * MiB, 512 * KiB);
    snapshot(image, "c2");
    io(image, `write -P 9 0 ${4 * MiB}`);
    const measured = await checkAgainstQemu(image, ["c1", "c2"]);
    expect(measured["c1"]).toBeGreaterThan(512 * KiB);
  });

  it("measures an image with a backing file, and finds nothing in an image without snapshots", async () => {
    const base = join(work, "base.qcow2");
    const overlay = join(work, "overlay.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", base, `${16 * MiB}`]);
    writeRandom(base, 0, 4 * MiB);
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", overlay]);
    expect((await qcow2SnapshotSpace(runner, overlay)).freedById.size).toBe(0);
    writeRandom(overlay, 0, 1 * MiB);
    snapshot(overlay, "o1");
    writeRandom(overlay, 0, 1 * MiB);
    expect(await checkAgainstQemu(overlay, ["o1"])).toEqual({ o1: 1 * MiB + 128 * KiB });
  });

  it("reads ranges with perl in one process, and with one dd each where perl is missing: the same bytes", () => {
    const file = join(work, "ranges.bin");
    const content = randomBytes(1 * MiB);
    writeFileSync(file, content);
    const ranges = [
      { offset: 70_000, length: 65536 },
      { offset: 3, length: 5 },
      { offset: 1 * MiB - 8, length: 8 },
      { offset: 4096, length: 0 },
    ];
    const expected = Buffer.concat(ranges.map((r) => content.subarray(r.offset, r.offset + r.length)));
    const [command, ...args] = readRangesArgs(file, ranges);
    // A PATH with the shell's tools but no perl: the dd loop.
    const bare = join(work, "bare-bin");
    mkdirSync(bare, { recursive: true });
    for (const tool of ["sh", "dd", "base64"]) {
      symlinkSync(
        execFileSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).trim(),
        join(bare, tool),
      );
    }
    for (const PATH of [process.env["PATH"] ?? "", bare]) {
      const out = execFileSync(command ?? "sh", args, { encoding: "utf8", env: { PATH } });
      expect(Buffer.from(out, "base64").equals(expected), `PATH=${PATH}`).toBe(true);
    }
    // Past the end of the file: short, and the reader's length check refuses it.
    const [, ...past] = readRangesArgs(file, [{ offset: 1 * MiB - 4, length: 8 }]);
    for (const PATH of [process.env["PATH"] ?? "", bare]) {
      const out = execFileSync(command ?? "sh", past, { encoding: "utf8", env: { PATH } });
      expect(Buffer.from(out, "base64").length).toBeLessThan(8);
    }
  });

  it("says why for a file that is not qcow2", async () => {
    const raw = join(work, "disk.raw");
    writeFileSync(raw, Buffer.alloc(1 * MiB));
    await expect(qcow2SnapshotSpace(runner, raw)).rejects.toThrow(/qcow2 magic/);
  });
});

describe("space of a running VM, through Snapkeep", () => {
  const vms = new TestVms();
  const suffix = uniqueSuffix();
  const vmName = `sk-space-${suffix}`;
  let ctx: ReturnType<typeof makeApp>;
  let app: VmModules;
  let sshd: TestSshd;
  let uuid = "";
  let disks: readonly string[] = [];
  let work = "";

  /** Makes QEMU write its cached tables and refcounts, as it does on its own sooner or later. */
  const flush = (alias: string): void => {
    execFileSync("virsh", [
      "-q",
      "-c",
      URI,
      "qemu-monitor-command",
      "--hmp",
      uuid,
      `qemu-io -d /machine/peripheral/${alias}/virtio-backend "flush"`,
    ]);
  };

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "snapkeep-space-vm-"));
    ctx = makeApp();
    app = ctx.app;
    app.hosts.addLocal("local");
    sshd = await startSshd();
    await app.hosts.addSsh(trustedHost("loop", sshd));
    const vm = await vms.create({
      name: vmName,
      running: true,
      disks: [
        { target: "vda", sizeMiB: 32 },
        { target: "vdb", sizeMiB: 32 },
      ],
    });
    uuid = vm.uuid;
    disks = vm.diskPaths;
  });

  afterAll(async () => {
    await ctx?.dispose();
    await vms.dispose();
    await sshd?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it("measures what each snapshot frees while the VM runs, as QEMU frees it", async () => {
    writeLive(uuid, "virtio-disk0", 0x11, 0, "4M");
    writeLive(uuid, "virtio-disk1", 0x21, 0, "2M");
    const a = await app.snapshots.create("local", vmName, { name: "a" });
    writeLive(uuid, "virtio-disk0", 0x12, 0, "1M"); // a alone keeps 1 MiB of vda
    const b = await app.snapshots.create("local", vmName, { name: "b" });
    writeLive(uuid, "virtio-disk0", 0x13, 8 * MiB, "512k"); // new data: b keeps only its tables
    flush("virtio-disk0");
    flush("virtio-disk1");

    const before = disks.map(fingerprint);
    const { vm, space } = await app.vms.space("local", vmName);
    expect(disks.map(fingerprint), "the images are never written").toEqual(before);
    expect(vm.state).toBe("running");
    // vda: a's 1 MiB, its L2 and L1 tables; b's L2 and L1 tables. vdb: each its L1 table only.
    const expected = [
      { tag: a.tag, freesBytes: 1 * MiB + 192 * KiB, disks: [1 * MiB + 128 * KiB, 64 * KiB] },
      { tag: b.tag, freesBytes: 192 * KiB, disks: [128 * KiB, 64 * KiB] },
    ];
    expect(space.snapshots.map((s) => ({ ...s, disks: s.disks.map((d) => d.freesBytes) }))).toEqual(expected);
    expect(vm.snapshots.map((s) => [s.tag, s.freesBytes, s.disks.map((d) => d.freesBytes)])).toEqual(
      expected.map((e) => [e.tag, e.freesBytes, e.disks]),
    );
    expect(space.oldestRestorePoint).toBe(a.createdAt);
    const allocated = disks.map((d) => statSync(d).blocks * 512);
    expect(space.disks).toEqual([
      { target: "vda", virtualSize: 32 * MiB, allocatedSize: allocated[0], freesUnknownReason: null },
      { target: "vdb", virtualSize: 32 * MiB, allocatedSize: allocated[1], freesUnknownReason: null },
    ]);
    expect(space.usedBytes).toBe((allocated[0] ?? 0) + (allocated[1] ?? 0));

    // Over SSH: the same numbers through the remote runner (qemu-io and dd on the far side).
    const remote = await app.vms.space("loop", vmName);
    expect(remote.space.snapshots).toEqual(space.snapshots);

    // And what QEMU frees, deleting each from a copy of the image as it is on disk now.
    for (const [index, image] of disks.entries()) {
      for (const s of [a, b]) {
        const copy = join(work, `vd${index}.qcow2`);
        copyFileSync(image, copy);
        const freed = freedByQemu(copy, s.tag, work);
        const measured = space.snapshots.find((x) => x.tag === s.tag)?.disks[index]?.freesBytes;
        expect(measured, `${s.name} on disk ${index}`).toBe(freed.exact);
      }
    }
  });

  it("lists what each snapshot frees in `snapshot list`, JSON and table, and the VM's total in `vm list`", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const cli = async (...args: string[]): Promise<string> => {
      out.length = 0;
      const code = await runCli(args, {
        out: (t) => out.push(t),
        err: (t) => err.push(t),
        env: { ...process.env, SNAPKEEP_HOME: ctx.home },
      });
      expect(code, err.join("")).toBe(0);
      return out.join("");
    };
    const json = JSON.parse(await cli("snapshot", "list", `local/${vmName}`, "--json")) as {
      name: string;
      freesBytes: number | null;
      disks: { target: string; freesBytes: number | null }[];
    }[];
    expect(json.map((s) => [s.name, s.freesBytes, s.disks.map((d) => d.freesBytes)])).toEqual([
      ["a", 1 * MiB + 192 * KiB, [1 * MiB + 128 * KiB, 64 * KiB]],
      ["b", 192 * KiB, [128 * KiB, 64 * KiB]],
    ]);
    const table = await cli("snapshot", "list", `local/${vmName}`);
    expect(table).toMatch(/^CREATED\s+NAME\s+KIND\s+DISKS\s+FREES\s+PINNED\s+NOTE$/m);
    expect(table).toMatch(/ a\s+manual\s+vda,vdb\s+1\.2 MiB$/m);
    expect(table).toMatch(/ b\s+manual\s+vda,vdb\s+192 KiB$/m);
    expect(table).toMatch(
      /^Oldest restore point: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\. On disk: .+ \(vda .+ of 32 MiB, vdb .+ of 32 MiB\)\.$/m,
    );
    const listed = JSON.parse(await cli("vm", "list", "--host", "local", "--json")) as {
      vms: {
        name: string;
        spaceUsedBytes: number | null;
        oldestSnapshotAt: string | null;
        snapshots: { createdAt: string }[];
      }[];
    }[];
    const vm = listed[0]?.vms.find((v) => v.name === vmName);
    expect(vm?.spaceUsedBytes).toBe(disks.reduce((sum, d) => sum + statSync(d).blocks * 512, 0));
    expect(vm?.oldestSnapshotAt).toBe(vm?.snapshots[0]?.createdAt);
  });

  it("answers vms.space and vms.list through the API, the shapes the UI reads", async () => {
    const core = openCoreContext({
      home: ctx.home,
      ssh: ctx.ssh,
      path: process.env["PATH"],
      now: () => new Date(),
    });
    const api = new Api(core);
    try {
      const space = await api.handle({ id: 1, method: "vms.space", params: { host: "local", vm: vmName } });
      expect(space).toMatchObject({
        id: 1,
        result: {
          host: "local",
          vm: vmName,
          uuid,
          usedBytes: expect.any(Number),
          oldestRestorePoint: expect.any(String),
          disks: [{ target: "vda" }, { target: "vdb" }],
          snapshots: [
            { tag: "snapkeep:manual:a", freesBytes: 1 * MiB + 192 * KiB },
            { tag: "snapkeep:manual:b", freesBytes: 192 * KiB },
          ],
        },
      });
      const listed = await api.handle({ id: 2, method: "vms.list", params: { host: "local" } });
      const vms = "result" in listed ? (listed.result as { vms: Record<string, unknown>[] }[])[0]?.vms : [];
      const vm = vms?.find((v) => v["name"] === vmName);
      const result =
        "result" in space ? (space.result as { usedBytes: number; oldestRestorePoint: string }) : null;
      expect(vm).toMatchObject({
        spaceUsedBytes: result?.usedBytes,
        oldestSnapshotAt: result?.oldestRestorePoint,
        snapshotCount: 2,
      });
      const refused = await api.handle({ id: 3, method: "vms.space", params: { host: "local" } });
      expect(refused).toMatchObject({ error: { code: "INVALID_INPUT" } });
    } finally {
      await api.dispose();
      await core.dispose();
    }
  });
});

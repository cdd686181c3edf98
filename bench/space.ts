/**
 * What deleting each snapshot would free, measured on images with many snapshots (issue 18: "a VM
 * with 1,000 snapshots must not take minutes"):
 *
 *   many-snapshots   8 GiB, 1,000 snapshots, one 64 KiB write before each (regions in turn):
 *                    most snapshots share their L2 tables with the next one
 *   own-tables       8 GiB, 60 snapshots, a write into each of the 16 L2 regions before each:
 *                    ~940 L2 tables that only one snapshot holds, each read once
 *
 * The images are made by one QEMU process driven over QMP (writes through HMP qemu-io, then
 * blockdev-snapshot-internal-sync): `qemu-img snapshot -c` in a loop took 5.5 minutes for 1,000.
 * Printed: time (median of 3), commands, metadata bytes read, the sum of what the snapshots free.
 *
 * Usage: npx tsx bench/space.ts   (needs qemu-system-x86_64, qemu-img and qemu-io)
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

import { qcow2SnapshotSpace, type Qcow2SnapshotSpace } from "../core/app/qcow2-space.js";
import { formatBytes } from "../core/domain/bytes.js";
import { LocalRunner } from "../core/infra/runner/local.js";

const REGION = 512 * 1024 * 1024; // what one L2 table covers at 64 KiB clusters

/** An image with `snapshots` snapshots, `writes(i)` giving the offsets written before snapshot i. */
function makeImage(path: string, snapshots: number, writes: (i: number) => number[]): void {
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", path, "8G"]);
  const lines = [JSON.stringify({ execute: "qmp_capabilities" })];
  for (let i = 1; i <= snapshots; i++) {
    for (const offset of writes(i)) {
      const io = `qemu-io disk0 "write -P ${i % 256} ${offset} 64k"`;
      lines.push(JSON.stringify({ execute: "human-monitor-command", arguments: { "command-line": io } }));
    }
    lines.push(
      JSON.stringify({
        execute: "blockdev-snapshot-internal-sync",
        arguments: { device: "disk0", name: `s${i}` },
      }),
    );
  }
  lines.push(JSON.stringify({ execute: "quit" }));
  execFileSync(
    "qemu-system-x86_64",
    [
      ...["-machine", "none", "-nodefaults", "-display", "none", "-qmp", "stdio"],
      ...["-blockdev", `driver=qcow2,node-name=disk0,file.driver=file,file.filename=${path}`],
    ],
    { input: lines.join("\n") + "\n", stdio: ["pipe", "ignore", "inherit"], maxBuffer: 1 << 30 },
  );
}

async function measure(
  runner: LocalRunner,
  image: string,
): Promise<{ ms: number; space: Qcow2SnapshotSpace }> {
  const runs: { ms: number; space: Qcow2SnapshotSpace }[] = [];
  for (let i = 0; i < 3; i++) {
    const start = performance.now();
    const space = await qcow2SnapshotSpace(runner, image);
    runs.push({ ms: performance.now() - start, space });
  }
  return runs.sort((a, b) => a.ms - b.ms)[1] as { ms: number; space: Qcow2SnapshotSpace };
}

const work = mkdtempSync(join(tmpdir(), "snapkeep-bench-space-"));
const runner = new LocalRunner();
try {
  const cases = [
    {
      name: "many-snapshots",
      snapshots: 1000,
      writes: (i: number) => [(i % 16) * REGION + (i % 4096) * 65536],
    },
    {
      name: "own-tables",
      snapshots: 60,
      writes: (i: number) => Array.from({ length: 16 }, (_, r) => r * REGION + (i % 100) * 65536),
    },
  ];
  console.log("case             snapshots  time      commands  metadata   frees (sum)");
  for (const c of cases) {
    const image = join(work, `${c.name}.qcow2`);
    makeImage(image, c.snapshots, c.writes);
    const { ms, space } = await measure(runner, image);
    const sum = [...space.freedById.values()].reduce((a, b) => a + b, 0);
    console.log(
      `${c.name.padEnd(17)}${String(space.freedById.size).padEnd(11)}${`${Math.round(ms)} ms`.padEnd(10)}${String(space.commands).padEnd(10)}${formatBytes(space.metadataBytes).padEnd(11)}${formatBytes(sum)}`,
    );
  }
} finally {
  await runner.dispose();
  rmSync(work, { recursive: true, force: true });
}

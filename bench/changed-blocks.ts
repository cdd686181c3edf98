/**
 * Finding what changed between two internal snapshots, next to reading the whole snapshot, in the
 * same run on the same image (issue 16's first step: the choice of mechanism, with numbers).
 *
 * For a 1 GiB and a 4 GiB qcow2 (70% random data, 64 KiB clusters), snapshot, then 1% of the disk
 * rewritten (scattered 64 KiB writes and one contiguous run), snapshot again, and:
 *
 *   tables     changedBlocks(): header, snapshot table, L1 tables, the differing L2 tables
 *   full read  `qemu-img convert -l` of the newer snapshot into QEMU's null driver (what any
 *              engine that reads the whole disk pays at least)
 *   today      `qemu-img convert -l -c -O qcow2` into a staging file, as today's export does
 *              before rsync reads it and the previous export again
 *
 * Printed: time (median of 3), bytes read from the image for the tables, extents found. The
 * page cache is not dropped (no root needed): every method reads warm data, so full reads look
 * cheaper here than on a real disk, which favours the old way.
 *
 * Usage: npx tsx bench/changed-blocks.ts   (part of npm run bench; needs qemu-img and qemu-io)
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

import { changedBlocks } from "../core/app/exports/changed-blocks.js";
import { changedBytes } from "../core/drivers/qemu-img/qcow2-tables.js";
import { LocalRunner } from "../core/infra/runner/local.js";
import { snapshotKey } from "../test/support/libvirt.js";

const MiB = 1024 * 1024;
const CHUNK = 8 * MiB;
const PIECE = 64 * 1024;

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
}

async function time(fn: () => unknown): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return median(times);
}

function makeImage(work: string, sizeMiB: number): string {
  const image = join(work, `disk-${sizeMiB}.qcow2`);
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, `${sizeMiB}M`]);
  const random = join(work, "chunk.bin");
  const commands: string[] = [];
  // 70% random: seven of every ten 8 MiB chunks.
  for (let at = 0; at < sizeMiB * MiB; at += CHUNK) {
    if ((at / CHUNK) % 10 < 7) {
      commands.push("-c", `write -s ${random} ${at} ${CHUNK}`);
    }
  }
  writeFileSync(random, randomBytes(CHUNK));
  for (let i = 0; i < commands.length; i += 64) {
    execFileSync("qemu-io", ["-f", "qcow2", ...commands.slice(i, i + 64), image], { stdio: "ignore" });
  }
  execFileSync("qemu-img", ["snapshot", "-c", "before", image]);
  // 1%: half as scattered 64 KiB writes, half as one contiguous run.
  const change = Math.round(sizeMiB * MiB * 0.01);
  const piece = join(work, "piece.bin");
  writeFileSync(piece, randomBytes(PIECE));
  const scattered: string[] = [];
  for (let i = 0; i < change / 2 / PIECE; i++) {
    const at = Math.floor(Math.random() * ((sizeMiB * MiB) / PIECE)) * PIECE;
    scattered.push("-c", `write -s ${piece} ${at} ${PIECE}`);
  }
  for (let i = 0; i < scattered.length; i += 128) {
    execFileSync("qemu-io", ["-f", "qcow2", ...scattered.slice(i, i + 128), image], { stdio: "ignore" });
  }
  const run = join(work, "run.bin");
  const runBytes = Math.round(change / 2 / PIECE) * PIECE;
  const runAt = Math.floor((sizeMiB * MiB) / 3 / PIECE) * PIECE;
  writeFileSync(run, randomBytes(runBytes));
  execFileSync("qemu-io", ["-f", "qcow2", "-c", `write -s ${run} ${runAt} ${runBytes}`, image], {
    stdio: "ignore",
  });
  execFileSync("qemu-img", ["snapshot", "-c", "after", image]);
  return image;
}

async function measure(work: string, runner: LocalRunner, sizeMiB: number): Promise<void> {
  const image = makeImage(work, sizeMiB);
  const before = snapshotKey(image, "before");
  const after = snapshotKey(image, "after");
  let found = await changedBlocks(runner, image, before, after);
  const tables = await time(async () => {
    found = await changedBlocks(runner, image, before, after);
  });
  // Read and thrown away: qemu's null driver is the target, so nothing is written.
  const fullRead = await time(() =>
    execFileSync("qemu-img", [
      "convert",
      "-n",
      "-l",
      "snapshot.name=after",
      image,
      "--target-image-opts",
      `driver=null-co,size=${sizeMiB * MiB}`,
    ]),
  );
  const staged = join(work, "staged.qcow2");
  const today = await time(() =>
    execFileSync("qemu-img", [
      "convert",
      "-l",
      "snapshot.name=after",
      "-c",
      "-O",
      "qcow2",
      "-o",
      "compression_type=zstd",
      image,
      staged,
    ]),
  );
  const stagedBytes = statSync(staged).size;
  rmSync(staged);
  const bytes = changedBytes(found.extents);
  console.log(
    `${sizeMiB / 1024} GiB disk, 1% changed: tables ${tables.toFixed(0)} ms ` +
      `(${(found.metadataBytes / MiB).toFixed(2)} MiB of metadata read in ${found.commands} commands; ` +
      `${found.extents.length} extents, ${(bytes.data / MiB).toFixed(1)} MiB data + ${(bytes.zero / MiB).toFixed(1)} MiB zeros) | ` +
      `full read of the snapshot ${fullRead.toFixed(0)} ms | ` +
      `today's staging convert ${today.toFixed(0)} ms, ${(stagedBytes / MiB).toFixed(0)} MiB staged | ` +
      `tables take ${((tables / fullRead) * 100).toFixed(1)}% of a full read`,
  );
  rmSync(image);
}

const work = mkdtempSync(join(tmpdir(), "snapkeep-bench-cbt-"));
const runner = new LocalRunner();
try {
  await measure(work, runner, 1024);
  await measure(work, runner, 4096);
} finally {
  await runner.dispose();
  rmSync(work, { recursive: true, force: true });
}

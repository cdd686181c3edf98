/**
 * Streamed, incremental exports (issue 16) next to today's engine and the plain tools, side by
 * side in one run on the same machine, with the issue's goals checked against what was measured.
 *
 * For each disk size (4 GiB and 1 GiB by default), one shut-off lab VM with one qcow2 disk, 70%
 * of it random data written with qemu-io in 4 MiB chunks spread evenly (the other 30% never
 * written), and three snapshots, each exported to an SSH target (OpenSSH's sshd on loopback):
 *
 *   s1  the disk as filled: the first export, a full one
 *   s2  after 1% changed as scattered 64 KiB writes at random aligned offsets: exported again
 *   s3  after 1% changed as one contiguous run: exported again
 *
 * "1%" is 1% of the largest disk, the same bytes for every size, so that "a re-export's time
 * grows with the change, not with the disk" can be read off the table. Each step is exported by:
 *
 *   streamed          Snapkeep's default engine: the snapshot's (changed) clusters read with dd
 *                     and written as a qcow2 on the target, incremental against the previous export
 *   convert+rsync     Snapkeep with engine "convert" (CLI --compressed), into its own target
 *                     folder (its own chain): qemu-img convert into staging, then rsync with the
 *                     previous export as --copy-dest basis
 *   qemu-img + rsync  (s1 only) `qemu-img convert -O qcow2` into a local file, then `rsync -e ssh`
 *                     (OpenSSH) to the same sshd: the plain tools' first full copy
 *
 * Measured: wall time; bytes read on the source (the streamed engine's own count; for a convert,
 * the snapshot's allocated data, all of which it reads); bytes that crossed the SSH connection
 * (Snapkeep's count, rsync's "Total bytes sent" for the plain tools); the peak temporary space on
 * the source (`du -sb` of Snapkeep's staging folder polled every 100 ms, minus what was there
 * before; the converted file for the plain tools). One run of each; `sync` before each timed step;
 * the page cache is not dropped (the source image is warm for every engine).
 *
 * Usage: npm run bench:export   (as root; prepares the test host like the integration tests do)
 *        npx tsx bench/incremental.ts
 *        BENCH_INCR_SIZES_GIB="0.25,0.0625" for a quick check (default "4,1")
 *        BENCH_TIMELINE=1 also prints each command's start and end within each export
 */
import { execFile, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { Readable } from "node:stream";
import { promisify } from "node:util";

import type { Snapshot } from "../core/domain/types.js";
import { isSnapkeepError } from "../core/errors.js";
import { parseStats } from "../core/drivers/rsync/parse.js";
import { changedBytes } from "../core/drivers/qemu-img/qcow2-tables.js";
import { changedBlocks } from "../core/app/exports/changed-blocks.js";
import { Targets } from "../core/app/targets.js";
import { Exports, type ExportResult } from "../core/app/exports/exports.js";
import { openSealKey } from "../core/infra/seal-key.js";
import { createLabVm, removeLabVms, type LabVm } from "../core/app/lab/lab.js";
import { LocalRunner } from "../core/infra/runner/local.js";
import { createSshRunner } from "../core/infra/runner/factory.js";
import type { CommandRunner, RunOptions, RunResult } from "../core/infra/runner/types.js";
import type { VmModules } from "../core/app/vm-modules.js";
import { makeApp } from "../test/support/app.js";
import { startSshd, type TestSshd } from "../test/support/sshd.js";
import { URI } from "../test/support/libvirt.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const IMAGE_DIR = "/var/lib/libvirt/images/snapkeep-bench";
/** Fill: random data in chunks of this size, 7 of every 10 written, spread evenly. */
const FILL_CHUNK = 4 * MiB;
const FILL_FRACTION = { written: 7, of: 10 };
const FILL_BATCH = 16;
const PIECE = 64 * KiB;
const PIECE_BATCH = 128;
const POLL_MS = 100;
const repo = fileURLToPath(new URL("..", import.meta.url));
const execFileAsync = promisify(execFile);

const SIZES_MIB = (process.env["BENCH_INCR_SIZES_GIB"] ?? "4,1").split(",").map((text) => {
  const gib = Number(text.trim());
  const mib = Math.round(gib * 1024);
  if (!Number.isFinite(gib) || mib < 16 || mib % 4 !== 0) {
    throw new Error(`BENCH_INCR_SIZES_GIB: ${text} is not a size of at least 16 MiB in whole 4 MiB`);
  }
  return mib;
});
/** 1% of the largest disk, in whole 64 KiB pieces: the same change for every size. */
const CHANGE_BYTES = Math.floor((0.01 * Math.max(...SIZES_MIB) * MiB) / PIECE) * PIECE;

/** The issue's goals. */
const GOAL = {
  reExportTime: 0.1,
  wireOfDisk: 0.02,
  sizeRatio: 1.5,
  firstSpeed: 0.9,
};

// ---- small helpers ---------------------------------------------------------------------------

const seconds = (ms: number): string => (ms / 1000).toFixed(2);
const mib = (bytes: number): string => (bytes / MiB).toFixed(1);
const pct = (part: number, whole: number): string => `${((100 * part) / whole).toFixed(1)}%`;
const times = (value: number): string => `${value.toFixed(2)}x`;
const mark = (ok: boolean): string => (ok ? "✓" : "✗");
const sizeLabel = (sizeMiB: number): string =>
  sizeMiB % 1024 === 0 ? `${sizeMiB / 1024} GiB` : `${sizeMiB} MiB`;

/** Ends the run cleanly (cleanup included) on Ctrl-C or a kill. */
const stop = new AbortController();
for (const name of ["SIGINT", "SIGTERM"] as const) {
  process.once(name, () => {
    console.error(`\n${name}: stopping, then cleaning up`);
    stop.abort(new Error(`interrupted by ${name}`));
  });
}

/** Runs a program (no shell) and returns its stdout; throws with its stderr when it fails. */
async function sh(argv: readonly string[]): Promise<string> {
  const [command, ...args] = argv as [string, ...string[]];
  try {
    const { stdout } = await execFileAsync(command, args, {
      encoding: "utf8",
      maxBuffer: 64 * MiB,
      signal: stop.signal,
    });
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? "";
    throw new Error(`${argv.join(" ").slice(0, 200)} failed: ${stderr.trim() || String(error)}`, {
      cause: error,
    });
  }
}

/** Before each timed step: no dirty pages left from the previous one to be written back during it. */
function settle(): void {
  execFileSync("sync");
}

/**
 * libvirtd on this test host is shared: another session's `scripts/test-host.sh down` (the
 * integration tests' teardown) stops it whoever started it. Starts it again when it does not answer;
 * true when it had to.
 */
function ensureLibvirt(): boolean {
  try {
    execFileSync("virsh", ["-q", "-c", URI, "version"], { stdio: "ignore" });
    return false;
  } catch {
    execFileSync("bash", [join(repo, "scripts/test-host.sh"), "up"], { stdio: "inherit" });
    return true;
  }
}

/** Runs a step that needs libvirt; repeats it once, from scratch, if libvirtd was stopped under it. */
async function withLibvirt<T>(what: string, fn: () => Promise<T>, reset: () => void): Promise<T> {
  ensureLibvirt();
  try {
    return await fn();
  } catch (error) {
    if (!isSnapkeepError(error, "HOST_UNREACHABLE") || !ensureLibvirt()) {
      throw error;
    }
    console.log(
      `  (libvirtd was stopped during ${what} by another user of this host: started again, ${what} repeated)`,
    );
    reset();
    return fn();
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Removes unfinished exports (so a repeat starts afresh rather than resuming) and Snapkeep's staging. */
function clearPartials(targetDir: string, staging: string): void {
  rmSync(staging, { recursive: true, force: true });
  for (const vmFolder of readdirSafe(targetDir)) {
    for (const name of readdirSafe(join(targetDir, vmFolder))) {
      if (name.endsWith(".partial")) {
        rmSync(join(targetDir, vmFolder, name), { recursive: true, force: true });
      }
    }
  }
}

/** `du -sb` of a folder (0 when it is not there). */
async function duBytes(dir: string): Promise<number> {
  try {
    const { stdout } = await execFileAsync("du", ["-sb", dir], { encoding: "utf8" });
    return Number(stdout.split("\t")[0]) || 0;
  } catch {
    return 0;
  }
}

/**
 * Polls `du -sb` of `dir` every POLL_MS until stopped; the peak above what was there at the start.
 * The polling loop is one shell of its own: spawning `du` from this process every 100 ms took an
 * eighth of its main thread during an export (a CPU profile showed it), and the streamed engine's
 * data passes through that thread.
 */
async function pollPeak(dir: string): Promise<{ stop(): Promise<number> }> {
  const baseline = await duBytes(dir);
  let peak = 0;
  let pending = "";
  const loop = spawn(
    "sh",
    ["-c", `while :; do du -sb -- "$1" 2>/dev/null || echo 0; sleep ${POLL_MS / 1000}; done`, "sh", dir],
    { stdio: ["ignore", "pipe", "ignore"] },
  );
  loop.stdout.setEncoding("utf8");
  loop.stdout.on("data", (text: string) => {
    const lines = (pending + text).split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      peak = Math.max(peak, (Number(line.split("\t")[0]) || 0) - baseline);
    }
  });
  const ended = new Promise<void>((resolve) => loop.once("close", () => resolve()));
  return {
    stop: async () => {
      // One last reading, as the loop may be asleep since the last change.
      peak = Math.max(peak, (await duBytes(dir)) - baseline);
      loop.kill();
      await ended;
      return peak;
    },
  };
}

/** Column-aligned text table: numbers (and ✓/✗) right-aligned, the rest left. */
function printTable(headers: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const numeric = headers.map((_, i) => rows.every((r) => /^(-|[\d.,]+(%|x| MiB)?|✓|✗|)$/.test(r[i] ?? "")));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (numeric[i] === true ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  console.log(line(headers));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows) {
    console.log(line(row));
  }
}

// ---- what Snapkeep runs ------------------------------------------------------------------------

interface Command {
  /** "source" (this computer, the VM's host) or "target" (the SSH target). */
  readonly side: "source" | "target";
  readonly argv: readonly string[];
  /** When it started (performance.now()). */
  readonly at: number;
  readonly ms: number;
}

const commands: Command[] = [];

/** Passes every call through unchanged and records what ran, where, and for how long. */
class TimingRunner implements CommandRunner {
  readonly isLocal: boolean;

  constructor(
    private readonly inner: CommandRunner,
    private readonly side: Command["side"],
  ) {
    this.isLocal = inner.isLocal === true;
  }

  get label(): string {
    return this.inner.label;
  }

  async run(argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    const start = performance.now();
    try {
      return await this.inner.run(argv, options);
    } finally {
      commands.push({ side: this.side, argv: [...argv], at: start, ms: performance.now() - start });
    }
  }

  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}

/** "sh:snapkeep-read" for Snapkeep's scripts, "virsh dumpxml" for virsh, else the program. */
function commandName(argv: readonly string[]): string {
  const [program, first, , name] = argv;
  if (program === "sh" && first === "-c" && name !== undefined) {
    return `sh:${name}`;
  }
  if (program === "qemu-img" || program === "rsync") {
    return `${program} ${argv[1] ?? ""}`.trim();
  }
  return program ?? "?";
}

/** One export's commands: how many on each side, and the slowest ones with their seconds. */
function describeCommands(run: readonly Command[]): string {
  const parts = (["source", "target"] as const).map((side) => {
    const mine = run.filter((c) => c.side === side);
    const slow = [...mine]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 3)
      .map((c) => `${commandName(c.argv)} ${seconds(c.ms)}`);
    return `${side} ${mine.length} commands (${seconds(mine.reduce((sum, c) => sum + c.ms, 0))} s; slowest ${slow.join(", ")})`;
  });
  return parts.join(" | ");
}

/** BENCH_TIMELINE=1: each command's start and end from the export's start, to see where time goes. */
function timeline(run: readonly Command[], startedAt: number, totalMs: number): string {
  const lines = [...run]
    .sort((a, b) => a.at - b.at)
    .map(
      (c) =>
        `      ${seconds(c.at - startedAt).padStart(6)} → ${seconds(c.at - startedAt + c.ms).padStart(6)}  ${c.side.padEnd(6)} ${commandName(c.argv)}`,
    );
  return [...lines, `      ${seconds(totalMs).padStart(6)}    the export returns`].join("\n");
}

/** CPU time the machine has spent busy (not idle or waiting for I/O) since boot, ms. */
function machineBusyMs(): number {
  const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "")
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = fields;
  // /proc/stat counts in USER_HZ, 100 on every Linux architecture.
  return ((user + nice + system + irq + softirq) / 100) * 1000;
}

// ---- the disk ----------------------------------------------------------------------------------

/** 70% random data in FILL_CHUNK chunks spread evenly over the disk; returns the bytes written. */
function fill(disk: string, sizeBytes: number, scratch: string): number {
  const chunks = sizeBytes / FILL_CHUNK;
  const offsets: number[] = [];
  for (let i = 0; i < chunks; i++) {
    const before = Math.floor((i * FILL_FRACTION.written) / FILL_FRACTION.of);
    const after = Math.floor(((i + 1) * FILL_FRACTION.written) / FILL_FRACTION.of);
    if (after > before) {
      offsets.push(i * FILL_CHUNK);
    }
  }
  for (let i = 0; i < offsets.length; i += FILL_BATCH) {
    stop.signal.throwIfAborted();
    const commands = offsets.slice(i, i + FILL_BATCH).flatMap((offset, j) => {
      const file = join(scratch, `fill-${j}.bin`);
      writeFileSync(file, randomBytes(FILL_CHUNK));
      return ["-c", `write -q -s ${file} ${offset} ${FILL_CHUNK}`];
    });
    execFileSync("qemu-io", ["-f", "qcow2", ...commands, disk]);
  }
  clearScratch(scratch);
  return offsets.length * FILL_CHUNK;
}

/** Rewrites CHANGE_BYTES with new random data: 64 KiB pieces at random aligned offsets, or one run. */
function change(disk: string, sizeBytes: number, scratch: string, how: "scattered" | "contiguous"): void {
  const commands: string[] = [];
  if (how === "scattered") {
    const slots = sizeBytes / PIECE;
    const picked = new Set<number>();
    while (picked.size < CHANGE_BYTES / PIECE) {
      picked.add(Math.floor(Math.random() * slots));
    }
    for (const [i, slot] of [...picked].sort((a, b) => a - b).entries()) {
      const file = join(scratch, `piece-${i}.bin`);
      writeFileSync(file, randomBytes(PIECE));
      commands.push("-c", `write -q -s ${file} ${slot * PIECE} ${PIECE}`);
    }
  } else {
    const file = join(scratch, "run.bin");
    writeFileSync(file, randomBytes(CHANGE_BYTES));
    // A third into the disk: across written chunks and never-written gaps.
    const offset = Math.floor(sizeBytes / 3 / PIECE) * PIECE;
    commands.push("-c", `write -q -s ${file} ${offset} ${CHANGE_BYTES}`);
  }
  for (let i = 0; i < commands.length; i += 2 * PIECE_BATCH) {
    execFileSync("qemu-io", ["-f", "qcow2", ...commands.slice(i, i + 2 * PIECE_BATCH), disk]);
  }
  clearScratch(scratch);
}

function clearScratch(scratch: string): void {
  for (const name of readdirSafe(scratch)) {
    rmSync(join(scratch, name));
  }
}

/** The snapshot's data in the image (every cluster a convert reads): its allocated size. */
async function allocatedIn(runner: LocalRunner, disk: string, snapshot: Snapshot): Promise<number> {
  const image = snapshot.disks.find((d) => d.target === "vda");
  if (image === undefined) {
    throw new Error(`snapshot ${snapshot.name} has no vda`);
  }
  const found = await changedBlocks(runner, disk, null, { id: image.imageSnapshotId, name: snapshot.tag });
  const bytes = changedBytes(found.extents);
  return bytes.data + bytes.compressed;
}

// ---- the runs ----------------------------------------------------------------------------------

type StepName = "first" | "scattered" | "contiguous";
const STEPS: readonly StepName[] = ["first", "scattered", "contiguous"];
const STEP_LABEL: Record<StepName, string> = {
  first: "s1 first export",
  scattered: "s2 after 1% scattered",
  contiguous: "s3 after 1% contiguous",
};

type Engine = "stream" | "convert";
const ENGINES: readonly Engine[] = ["stream", "convert"];
const ENGINE_LABEL: Record<Engine, string> = {
  stream: "streamed (default)",
  convert: "convert+rsync (--compressed)",
};

interface ExportRun {
  readonly result: ExportResult;
  readonly ms: number;
  /** Peak bytes added under the staging folder during the export. */
  readonly tempPeak: number;
  /** The snapshot's allocated data (what a convert reads). */
  readonly allocated: number;
  /** The commands it ran. */
  readonly commands: readonly Command[];
  /** When it started (performance.now()). */
  readonly startedAt: number;
  /** CPU time this process used meanwhile (all its threads), ms. */
  readonly cpuMs: number;
  /** CPU time the whole machine used meanwhile (/proc/stat, all processes), ms. */
  readonly machineCpuMs: number;
}

interface PlainRun {
  readonly ms: number;
  readonly convertMs: number;
  readonly rsyncMs: number;
  readonly wire: number;
  readonly temp: number;
  readonly allocated: number;
  /** CPU time the whole machine used meanwhile (/proc/stat, all processes), ms. */
  readonly machineCpuMs: number;
}

interface SizeResult {
  readonly sizeMiB: number;
  readonly filled: number;
  readonly runs: Record<Engine, Record<StepName, ExportRun>>;
  readonly plain: PlainRun;
  readonly merge: MergeRun;
}

/** Retention removing the first (full) streamed export: merged into the next, on the target. */
interface MergeRun {
  readonly ms: number;
  readonly written: number;
  /** The same chain flattened by hand on the target with qemu-img convert. */
  readonly plainMs: number;
}

interface Bench {
  readonly app: VmModules;
  readonly exports: Exports;
  readonly runner: LocalRunner;
  readonly sshd: TestSshd;
  /** The account the exports log in as on the target (see targetAccount). */
  readonly targetUser: string;
  readonly work: string;
  readonly staging: string;
  readonly scratch: string;
  readonly targetDir: Record<Engine, string>;
  readonly targetName: Record<Engine, string>;
  readonly oddities: string[];
}

function sshOptions(sshd: TestSshd): string[] {
  return [
    "-i",
    sshd.userKeyPath,
    "-p",
    String(sshd.port),
    "-o",
    `UserKnownHostsFile=${join(sshd.tmpDir, "known_hosts")}`,
    "-o",
    "StrictHostKeyChecking=accept-new",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
  ];
}

/** The plain tools' first full copy: qemu-img convert into a local file, rsync -e ssh to the sshd. */
async function plainCopy(b: Bench, disk: string, snapshot: Snapshot, allocated: number): Promise<PlainRun> {
  const stage = join(b.work, "plain-stage");
  const landed = join(b.work, "plain-target");
  for (const dir of [stage, landed]) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  }
  ownBy(b.targetUser, landed);
  const file = join(stage, "vda.qcow2");
  settle();
  const start = performance.now();
  const machineCpu = machineBusyMs();
  await sh(["qemu-img", "convert", "-l", `snapshot.name=${snapshot.tag}`, "-O", "qcow2", disk, file]);
  const converted = performance.now();
  const out = await sh([
    "rsync",
    "--stats",
    // rsync splits -e on spaces: the paths in it (mkdtemp folders) have none.
    "-e",
    ["ssh", ...sshOptions(b.sshd)].join(" "),
    file,
    `${b.targetUser}@${b.sshd.host}:${landed}/`,
  ]);
  const end = performance.now();
  const machineCpuMs = machineBusyMs() - machineCpu;
  const stats = parseStats(out);
  if (stats === undefined) {
    throw new Error(`no statistics from rsync:\n${out}`);
  }
  const temp = statSync(file).size;
  rmSync(stage, { recursive: true, force: true });
  rmSync(landed, { recursive: true, force: true });
  return {
    ms: end - start,
    convertMs: converted - start,
    rsyncMs: end - converted,
    wire: stats.bytesSent,
    temp,
    allocated,
    machineCpuMs,
  };
}

async function snapkeepExport(
  b: Bench,
  vm: LabVm,
  snapshot: Snapshot,
  engine: Engine,
  allocated: number,
): Promise<ExportRun> {
  const reset = (): void => clearPartials(b.targetDir[engine], b.staging);
  return withLibvirt(
    `the ${engine} export of ${snapshot.name}`,
    async () => {
      settle();
      const poll = await pollPeak(b.staging);
      const first = commands.length;
      const start = performance.now();
      const cpu = process.cpuUsage();
      const machineCpu = machineBusyMs();
      let tempPeak = 0;
      let ms = 0;
      let result: ExportResult;
      try {
        result = await b.exports.export({
          host: "local",
          vm: vm.name,
          snapshot: snapshot.name,
          target: b.targetName[engine],
          engine,
          signal: stop.signal,
        });
        ms = performance.now() - start;
      } finally {
        // Stopped in any case, so a failed export leaves no poller running.
        tempPeak = await poll.stop();
      }
      const used = process.cpuUsage(cpu);
      return {
        result,
        ms,
        tempPeak,
        allocated,
        commands: commands.slice(first),
        startedAt: start,
        cpuMs: (used.user + used.system) / 1000,
        machineCpuMs: machineBusyMs() - machineCpu,
      };
    },
    reset,
  );
}

async function benchSize(b: Bench, sizeMiB: number, owner: string): Promise<SizeResult> {
  const sizeBytes = sizeMiB * MiB;
  const label = sizeLabel(sizeMiB);
  const vm = await withLibvirt(
    "making the VM",
    () =>
      createLabVm(b.runner, URI, {
        name: `snapkeep-bench-incr-${randomBytes(3).toString("hex")}`,
        running: false,
        disks: [{ target: "vda", sizeMiB }],
        dir: IMAGE_DIR,
        owner,
      }),
    () => undefined,
  );
  const disk = vm.diskPaths[0] as string;
  const fillStart = performance.now();
  const filled = fill(disk, sizeBytes, b.scratch);
  console.log(
    `\n${label}: VM ${vm.name}, ${mib(filled)} MiB of random data (${pct(filled, sizeBytes)}) in ${FILL_CHUNK / MiB} MiB chunks (${seconds(performance.now() - fillStart)} s to write)`,
  );

  const runs = { stream: {}, convert: {} } as Record<Engine, Record<StepName, ExportRun>>;
  let plain: PlainRun | undefined;
  for (const step of STEPS) {
    stop.signal.throwIfAborted();
    if (step !== "first") {
      change(disk, sizeBytes, b.scratch, step);
    }
    const name = `s${STEPS.indexOf(step) + 1}`;
    const snapshot = await withLibvirt(
      `snapshot ${name}`,
      () => b.app.snapshots.create("local", vm.name, { name }),
      () => undefined,
    );
    // Untimed: the snapshot's allocated data, for the convert engines' "read on the source".
    const allocated = await allocatedIn(b.runner, disk, snapshot);
    if (step === "first") {
      plain = await plainCopy(b, disk, snapshot, allocated);
      console.log(
        `  ${STEP_LABEL[step]}: qemu-img convert + rsync -e ssh ${seconds(plain.ms)} s (convert ${seconds(plain.convertMs)} s, rsync ${seconds(plain.rsyncMs)} s), sent ${mib(plain.wire)} MiB, ${seconds(plain.machineCpuMs)} s of CPU on the whole machine`,
      );
    }
    for (const engine of ENGINES) {
      const run = await snapkeepExport(b, vm, snapshot, engine, allocated);
      runs[engine][step] = run;
      const r = run.result;
      console.log(
        `  ${STEP_LABEL[step]}: ${ENGINE_LABEL[engine]} ${seconds(run.ms)} s, read ${r.bytesRead === null ? "whole snapshot" : `${mib(r.bytesRead)} MiB`}, sent ${mib(r.bytesSent)} MiB, staged ${mib(run.tempPeak)} MiB, basis ${r.basis ?? "none"}${r.notes.length === 0 ? "" : ` | ${r.notes.join("; ")}`}`,
      );
      console.log(`    ${describeCommands(run.commands)}`);
      console.log(
        `    CPU: ${seconds(run.cpuMs)} s in this process (hashing, SSH), ${seconds(run.machineCpuMs)} s on the whole machine`,
      );
      if (process.env["BENCH_TIMELINE"] === "1") {
        console.log(timeline(run.commands, run.startedAt, run.ms));
      }
      checkRun(b, label, step, engine, run);
    }
  }
  const merge = await benchMerge(b, vm.uuid, runs.stream.scattered.result.id);
  console.log(
    `  merge on retention (keep 2: the first export merged into the next, on the target): ${seconds(merge.ms)} s, ${mib(merge.written)} MiB written; qemu-img convert of that chain by hand ${seconds(merge.plainMs)} s`,
  );
  // The exports of this size are not needed any more: room for the next one.
  for (const engine of ENGINES) {
    for (const name of readdirSafe(b.targetDir[engine])) {
      rmSync(join(b.targetDir[engine], name), { recursive: true, force: true });
    }
  }
  return { sizeMiB, filled, runs, plain: plain as PlainRun, merge };
}

/**
 * Retention on the streamed target: keep 2 of first, scattered, contiguous removes the full
 * first export, which Snapkeep merges into the scattered one (checking the layers' hashes, writing
 * the merged image, hashing it). Beside it, what a person would run on the target by hand to
 * flatten the same chain: qemu-img convert of the scattered export into one image.
 */
async function benchMerge(b: Bench, vmUuid: string, intoId: string): Promise<MergeRun> {
  const vmFolder = readdirSafe(b.targetDir.stream).find((name) =>
    readdirSafe(join(b.targetDir.stream, name)).includes(intoId),
  );
  const into = join(b.targetDir.stream, vmFolder ?? "?", intoId, "vda.qcow2");
  const flat = join(b.scratch, "flattened.qcow2");
  settle();
  let start = performance.now();
  await sh(["qemu-img", "convert", "-f", "qcow2", "-O", "qcow2", into, flat]);
  const plainMs = performance.now() - start;
  rmSync(flat, { force: true });
  settle();
  start = performance.now();
  const pruned = await b.exports.prune(b.targetName.stream, { vmUuid, keep: 2, dryRun: false });
  const ms = performance.now() - start;
  if (pruned.merged.length !== 1 || pruned.removed.length !== 1) {
    b.oddities.push(
      `retention with keep 2 merged ${pruned.merged.length} and removed ${pruned.removed.length}`,
    );
  }
  return { ms, written: pruned.merged.reduce((sum, m) => sum + (m.bytesWritten ?? 0), 0), plainMs };
}

/** Notes what the engine did that the benchmark did not expect (reported, not fixed). */
function checkRun(b: Bench, label: string, step: StepName, engine: Engine, run: ExportRun): void {
  const r = run.result;
  const where = `${label} ${STEP_LABEL[step]}, ${ENGINE_LABEL[engine]}`;
  if (r.engine !== engine) {
    b.oddities.push(`${where}: ran as engine "${r.engine}" (${r.notes.join("; ")})`);
  }
  if (step !== "first" && r.basis === null) {
    b.oddities.push(`${where}: no basis, a full export (${r.notes.join("; ")})`);
  }
  if (step === "first" && r.basis !== null) {
    b.oddities.push(`${where}: basis ${r.basis} on a fresh target`);
  }
  if (engine === "stream" && run.tempPeak > 0) {
    b.oddities.push(`${where}: ${run.tempPeak} bytes appeared in the staging folder`);
  }
  if (engine === "stream" && r.bytesRead === null) {
    b.oddities.push(`${where}: no bytesRead reported`);
  }
}

/** "5" or "5 to 6": how many commands each Snapkeep export ran on the target. */
function targetCommands(results: readonly SizeResult[]): string {
  const counts = results.flatMap((s) =>
    ENGINES.flatMap((e) =>
      STEPS.map((step) => s.runs[e][step].commands.filter((c) => c.side === "target").length),
    ),
  );
  const low = Math.min(...counts);
  const high = Math.max(...counts);
  return low === high ? String(low) : `${low} to ${high}`;
}

/** "256 MiB scattered 5 sessions ≈ 2.6 of 3.1 s, ...": how much of each streamed re-export they are. */
function reExportSessions(results: readonly SizeResult[], session: SessionCost): string {
  return results
    .flatMap((s) =>
      (["scattered", "contiguous"] as const).map((step) => {
        const run = s.runs.stream[step];
        const n = run.commands.filter((c) => c.side === "target").length;
        return `${sizeLabel(s.sizeMiB)} ${step} ${n} sessions ≈ ${seconds(n * session.execMs)} of ${seconds(run.ms)} s`;
      }),
    )
    .join(", ");
}

// ---- the report --------------------------------------------------------------------------------

/** What one SSH session costs on the target here, measured before the exports. */
interface SessionCost {
  /** Median ms of a warm ssh2 exec of `true` through Snapkeep's target runner. */
  readonly execMs: number;
  /** Median ms of `bash -c true` started as sshd starts it (no SHLVL, SSH_CLIENT set: reads ~/.bashrc). */
  readonly bashMs: number;
  /** The same as root, whose ~/.bashrc on this machine starts pyenv. */
  readonly rootBashMs: number;
  /** MiB/s of CHANNEL_TEST_BYTES piped into `cat >/dev/null` on the target: ssh2, then OpenSSH's ssh. */
  readonly ssh2MiBs: number;
  readonly opensshMiBs: number;
}

const CHANNEL_TEST_BYTES = 128 * MiB;

async function sessionCost(b: Bench, targets: Targets): Promise<SessionCost> {
  const median = (values: readonly number[]): number =>
    [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)] ?? NaN;
  const runner = targets.fsOf(targets.get(b.targetName.stream)).runner;
  await runner.run(["true"]); // opens the connection
  const exec: number[] = [];
  for (let i = 0; i < 5; i++) {
    const start = performance.now();
    await runner.run(["true"]);
    exec.push(performance.now() - start);
  }
  // bash started as sshd starts it (SSH_CLIENT set, no SHLVL: it reads ~/.bashrc), as each account.
  const bashOf = (user: string): number => {
    const home = execFileSync("getent", ["passwd", user], { encoding: "utf8" }).split(":")[5] ?? "/";
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const start = performance.now();
      execFileSync("runuser", [
        "-u",
        user,
        "--",
        "env",
        "-i",
        `HOME=${home}`,
        "SSH_CLIENT=127.0.0.1 1 22",
        "bash",
        "-c",
        "true",
      ]);
      times.push(performance.now() - start);
    }
    return median(times);
  };
  // The bare channel, no disk: what either SSH stack carries per second here.
  const data = randomBytes(CHANNEL_TEST_BYTES);
  const sink = ["sh", "-c", "cat >/dev/null"];
  let start = performance.now();
  const viaSsh2 = await runner.run(sink, { stdin: Readable.from([data]) });
  const ssh2Ms = performance.now() - start;
  if (viaSsh2.code !== 0) {
    throw new Error(`cat on the target failed: ${viaSsh2.stderr}`);
  }
  start = performance.now();
  execFileSync("ssh", [...sshOptions(b.sshd), `${b.targetUser}@${b.sshd.host}`, sink.slice(2).join(" ")], {
    input: data,
  });
  const opensshMs = performance.now() - start;
  const rate = (ms: number): number => CHANNEL_TEST_BYTES / MiB / (ms / 1000);
  return {
    execMs: median(exec),
    bashMs: bashOf(b.targetUser),
    rootBashMs: bashOf("root"),
    ssh2MiBs: rate(ssh2Ms),
    opensshMiBs: rate(opensshMs),
  };
}

function report(b: Bench, results: readonly SizeResult[], session: SessionCost): void {
  const oddities = b.oddities;
  console.log(
    `\nExports to an SSH target on loopback (OpenSSH sshd); change = ${mib(CHANGE_BYTES)} MiB (1% of ${sizeLabel(Math.max(...SIZES_MIB))}) for every disk; one run each:\n`,
  );
  const rows: string[][] = [];
  for (const s of results) {
    const size = sizeLabel(s.sizeMiB);
    const sizeBytes = s.sizeMiB * MiB;
    const p = s.plain;
    rows.push([
      size,
      "qemu-img convert + rsync -e ssh",
      STEP_LABEL.first,
      "full",
      seconds(p.ms),
      "-",
      `${mib(p.allocated)} (whole snapshot)`,
      mib(p.wire),
      pct(p.wire, sizeBytes),
      mib(p.temp),
    ]);
    for (const engine of ENGINES) {
      const first = s.runs[engine].first;
      for (const step of STEPS) {
        const run = s.runs[engine][step];
        const r = run.result;
        rows.push([
          size,
          ENGINE_LABEL[engine],
          STEP_LABEL[step],
          r.basis === null ? "full" : engine === "stream" ? "incremental" : "full, rsync basis",
          seconds(run.ms),
          step === "first" ? "-" : pct(run.ms, first.ms),
          r.bytesRead === null ? `${mib(run.allocated)} (whole snapshot)` : mib(r.bytesRead),
          mib(r.bytesSent),
          pct(r.bytesSent, sizeBytes),
          mib(run.tempPeak),
        ]);
      }
    }
  }
  printTable(
    [
      "disk",
      "engine",
      "export",
      "mode",
      "time s",
      "of 1st",
      "read on source MiB",
      "wire MiB",
      "wire/disk",
      "temp peak MiB",
    ],
    rows,
  );

  // ---- the goals ----
  const goals: string[][] = [];
  const both = (
    goal: string,
    what: string,
    value: (engine: Engine) => { text: string; ok: boolean | null },
  ): void => {
    const stream = value("stream");
    const convert = value("convert");
    goals.push([
      goal,
      what,
      stream.text,
      stream.ok === null ? "" : mark(stream.ok),
      convert.text,
      convert.ok === null ? "" : mark(convert.ok),
    ]);
  };
  for (const s of results) {
    const size = sizeLabel(s.sizeMiB);
    for (const step of ["scattered", "contiguous"] as const) {
      both(`re-export time <= ${GOAL.reExportTime * 100}% of the first`, `${size}, ${step}`, (e) => {
        const ratio = s.runs[e][step].ms / s.runs[e].first.ms;
        return { text: `${(100 * ratio).toFixed(1)}%`, ok: ratio <= GOAL.reExportTime };
      });
    }
  }
  for (const s of results) {
    const size = sizeLabel(s.sizeMiB);
    for (const step of ["scattered", "contiguous"] as const) {
      // The goal is for a 1% change: 2% of the disk is twice the change. A smaller disk gets the
      // same change, more than 1% of it, so it is held to twice the change.
      const limit = Math.max(GOAL.wireOfDisk * s.sizeMiB * MiB, (GOAL.wireOfDisk / 0.01) * CHANGE_BYTES);
      both(
        `bytes on the wire <= ${GOAL.wireOfDisk * 100}% of the disk (for a 1% change: ${GOAL.wireOfDisk / 0.01}x it)`,
        `${size}, ${step}`,
        (e) => {
          const sent = s.runs[e][step].result.bytesSent;
          return {
            text: `${pct(sent, s.sizeMiB * MiB)} = ${times(sent / CHANGE_BYTES)} change`,
            ok: sent <= limit,
          };
        },
      );
    }
  }
  for (const s of results) {
    const size = sizeLabel(s.sizeMiB);
    for (const step of ["scattered", "contiguous"] as const) {
      both(`temporary space <= the changed data (${mib(CHANGE_BYTES)} MiB)`, `${size}, ${step}`, (e) => {
        const temp = s.runs[e][step].tempPeak;
        return { text: `${mib(temp)} MiB`, ok: temp <= CHANGE_BYTES };
      });
    }
  }
  const largest = results.reduce<SizeResult | undefined>(
    (a, s) => (a === undefined || s.sizeMiB > a.sizeMiB ? s : a),
    undefined,
  );
  const smallest = results.reduce<SizeResult | undefined>(
    (a, s) => (a === undefined || s.sizeMiB < a.sizeMiB ? s : a),
    undefined,
  );
  if (largest !== undefined && smallest !== undefined && largest !== smallest) {
    for (const step of ["scattered", "contiguous"] as const) {
      both(
        `${sizeLabel(smallest.sizeMiB)} vs ${sizeLabel(largest.sizeMiB)} re-export within ${GOAL.sizeRatio}x`,
        `${step}: ${sizeLabel(largest.sizeMiB)} / ${sizeLabel(smallest.sizeMiB)}`,
        (e) => {
          const big = largest.runs[e][step].ms;
          const small = smallest.runs[e][step].ms;
          return {
            text: times(big / small),
            ok: Math.max(big, small) / Math.min(big, small) <= GOAL.sizeRatio,
          };
        },
      );
    }
  }
  for (const s of results) {
    both(
      `first export >= ${GOAL.firstSpeed}x the speed of qemu-img convert + rsync -e ssh`,
      sizeLabel(s.sizeMiB),
      (e) => {
        const speed = s.plain.ms / s.runs[e].first.ms;
        return { text: times(speed), ok: speed >= GOAL.firstSpeed };
      },
    );
  }
  console.log("\nIssue 16's goals (for the streamed engine; today's engine beside it for comparison):\n");
  printTable(["goal", "case", "streamed", "", "convert+rsync", ""], goals);

  console.log(
    "\nRetention removing the first (full) streamed export, which Snapkeep merges into the next one on the target (layers hashed, merged image written and hashed), beside flattening that chain by hand on the target with qemu-img convert:\n",
  );
  printTable(
    ["disk", "merge s", "written MiB", "qemu-img convert s", "ratio"],
    results.map((s) => [
      sizeLabel(s.sizeMiB),
      seconds(s.merge.ms),
      mib(s.merge.written),
      seconds(s.merge.plainMs),
      times(s.merge.ms / s.merge.plainMs),
    ]),
  );

  console.log("\nNotes:");
  const versions = [
    execFileSync("qemu-img", ["--version"], { encoding: "utf8" }).split("\n")[0] ?? "",
    execFileSync("rsync", ["--version"], { encoding: "utf8" }).split("\n")[0] ?? "",
    spawnSync("ssh", ["-V"], { encoding: "utf8" }).stderr.trim(),
  ];
  for (const note of [
    `${cpus().length} CPUs, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")} at the end; ${versions.join("; ")}.`,
    "Source image, staging and targets share one disk and page cache; SSH is loopback to one throwaway sshd. Other work on this machine shows up in the times: one run each, not a median.",
    "Streamed: read = the engine's bytesRead (tables + clusters); wire = its bytesSent (the qcow2 it wrote). Convert+rsync: read = the snapshot's allocated data (qemu-img convert reads all of it); wire = rsync's total bytes sent. The plain tools: wire = rsync's \"Total bytes sent\".",
    `Temp peak: \`du -sb\` of Snapkeep's staging folder every ${POLL_MS} ms during the export, minus what was there before it; for the plain tools the size of the converted file.`,
    "Snapkeep's times include what a real export does besides copying: looking the VM up, hashing the image on the way and again where it landed, the manifest and the verification record. The plain tools' time is qemu-img convert (uncompressed qcow2) and rsync alone, no hashing.",
    "Speed ratio = (qemu-img convert + rsync time) / (first export time), for the same snapshot s1.",
    `The exports and the plain tools log in to the target as ${b.targetUser}. Every command Snapkeep runs on the SSH target is a new SSH session: a warm ssh2 exec of \`true\` takes ${session.execMs.toFixed(0)} ms here (median of 5, before the exports), of which bash starting as sshd starts it (reading ${b.targetUser}'s ~/.bashrc) is ${session.bashMs.toFixed(0)} ms; as root on this machine (its ~/.bashrc starts pyenv) bash alone takes ${session.rootBashMs.toFixed(0)} ms. An export runs ${targetCommands(results)} commands on the target, each paying it; the plain tools pay it once per rsync. Streamed re-exports: ${reExportSessions(results, session)}.`,
    `The bare SSH channel (${CHANNEL_TEST_BYTES / MiB} MiB into \`cat >/dev/null\` on the target, session start included): ${session.ssh2MiBs.toFixed(0)} MiB/s through Snapkeep's ssh2 runner, ${session.opensshMiBs.toFixed(0)} MiB/s through OpenSSH's ssh.`,
  ]) {
    console.log(`  - ${note}`);
  }
  if (oddities.length > 0) {
    console.log("\nUnexpected:");
    for (const o of oddities) {
      console.log(`  - ${o}`);
    }
  }
}

// ---- the target account --------------------------------------------------------------------------

/**
 * The account the exports log in as on the target: by default a plain one made for the bench
 * (Debian's default shell files), as a NAS's backup account is. Every command on an SSH target is
 * a session, and each session starts the account's shell: root's on this machine reads a ~/.bashrc
 * that starts pyenv (about half a second), which would be measured as Snapkeep's cost.
 * BENCH_TARGET_USER=root measures with root all the same; another name uses that account as it is.
 */
interface TargetAccount {
  readonly user: string;
  remove(): void;
}

const BENCH_ACCOUNT = "snapkeep-bench";

function targetAccount(): TargetAccount {
  const user = process.env["BENCH_TARGET_USER"] ?? BENCH_ACCOUNT;
  const exists = spawnSync("id", ["-u", user], { stdio: "ignore" }).status === 0;
  if (user !== BENCH_ACCOUNT) {
    return { user, remove: () => undefined };
  }
  // The bench's own account, left by a run that was killed: used, and removed at the end.
  const remove = (): void => {
    execFileSync("userdel", ["--remove", user], { stdio: "ignore" });
  };
  if (exists) {
    return { user, remove };
  }
  // "*": no password, and not locked ("!"), which sshd refuses when it does not use PAM.
  execFileSync("useradd", ["--create-home", "--shell", "/bin/bash", "--password", "*", user]);
  return { user, remove };
}

function ownBy(user: string, path: string): void {
  execFileSync("chown", [`${user}:`, path]);
}

// ---- main ----------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (CHANGE_BYTES > (Math.min(...SIZES_MIB) * MiB) / 2) {
    throw new Error(
      `the change (${mib(CHANGE_BYTES)} MiB, 1% of the largest disk) is more than half of the smallest disk: choose sizes closer together`,
    );
  }
  execFileSync("bash", [join(repo, "scripts/test-host.sh"), "up"], { stdio: "inherit" });
  const runner = new LocalRunner();
  const ownerBase = `bench-incr-${process.pid}-${randomBytes(2).toString("hex")}`;
  const owners: string[] = [];
  const work = mkdtempSync("/var/tmp/snapkeep-bench-incr-");
  const scratch = join(work, "scratch");
  mkdirSync(scratch);
  let madeImageDir = false;
  let sshd: TestSshd | undefined;
  let account: TargetAccount | undefined;
  let targets: Targets | undefined;
  const ctx = makeApp({}, { wrapRunner: (r) => new TimingRunner(r, "source") });
  try {
    try {
      readdirSync(IMAGE_DIR);
    } catch {
      madeImageDir = true;
    }
    account = targetAccount();
    sshd = await startSshd();
    // sshd reads authorized_keys as the account logging in.
    chmodSync(sshd.tmpDir, 0o711);
    chmodSync(join(sshd.tmpDir, "authorized_keys"), 0o644);
    const app = ctx.app;
    app.hosts.addLocal("local");
    targets = new Targets({
      store: ctx.store,
      ssh: ctx.ssh,
      // The runners Snapkeep makes for its targets, timed.
      runnerFor: (target) =>
        new TimingRunner(
          target.kind === "dir"
            ? new LocalRunner()
            : createSshRunner(
                {
                  name: target.name,
                  kind: "ssh",
                  uri: "",
                  host: target.host,
                  user: target.user,
                  port: target.port,
                  identityFile: target.identityFile,
                },
                ctx.ssh,
                target.hostKey,
                "target",
              ),
          "target",
        ),
    });
    const staging = join(work, "snapkeep-staging");
    const exports = new Exports({
      ...app,
      targets,
      sealKey: () => openSealKey(ctx.home),
      now: () => new Date(),
      stagingRoot: staging,
    });
    const targetDir: Record<Engine, string> = {
      stream: join(work, "target-stream"),
      convert: join(work, "target-convert"),
    };
    const targetName: Record<Engine, string> = { stream: "nas-stream", convert: "nas-convert" };
    // The target account must pass through the work folder (mkdtemp makes it owner-only).
    chmodSync(work, 0o711);
    for (const engine of ENGINES) {
      mkdirSync(targetDir[engine]);
      ownBy(account.user, targetDir[engine]);
      await targets.add({
        name: targetName[engine],
        ssh: `${account.user}@${sshd.host}:${sshd.port}:${targetDir[engine]}`,
        identityFile: sshd.userKeyPath,
        trust: sshd.hostFingerprint,
      });
    }
    const b: Bench = {
      app,
      exports,
      runner,
      sshd,
      targetUser: account.user,
      work,
      staging,
      scratch,
      targetDir,
      targetName,
      oddities: [],
    };
    console.log(
      `Disks ${SIZES_MIB.map(sizeLabel).join(", ")}; change ${mib(CHANGE_BYTES)} MiB; ${cpus().length} CPUs, load average ${loadavg()[0]?.toFixed(2)} at the start`,
    );
    const session = await sessionCost(b, targets);
    const results: SizeResult[] = [];
    for (const [i, sizeMiB] of SIZES_MIB.entries()) {
      const owner = `${ownerBase}-${i}`;
      owners.push(owner);
      results.push(await benchSize(b, sizeMiB, owner));
      // This size's VM and image are not needed any more.
      ensureLibvirt();
      await removeLabVms(runner, URI, owner, { dryRun: false });
    }
    report(b, results, session);
  } finally {
    const attempt = async (what: string, fn: () => Promise<unknown> | unknown): Promise<void> => {
      try {
        await fn();
      } catch (error) {
        console.error(`cleanup: ${what} failed: ${String(error)}`);
      }
    };
    await attempt("closing the targets' connections", () => targets?.dispose());
    await attempt("closing the hosts' connections", () => ctx.dispose());
    await attempt("removing the VMs", async () => {
      // libvirtd may have been stopped meanwhile (another run's `scripts/test-host.sh down`): the VMs
      // and their images are removed all the same.
      ensureLibvirt();
      for (const owner of owners) {
        await removeLabVms(runner, URI, owner, { dryRun: false });
      }
    });
    await attempt("closing the runner", () => runner.dispose());
    await attempt("stopping sshd", () => sshd?.stop());
    await attempt("removing the target account", () => account?.remove());
    await attempt("removing the work folder", () => rmSync(work, { recursive: true, force: true }));
    if (madeImageDir) {
      await attempt("removing the image folder", () => rmdirSync(IMAGE_DIR));
    }
  }
}

await main();

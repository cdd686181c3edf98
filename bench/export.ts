/**
 * Export speed next to the plain tools, in the same run on the same machine.
 *
 * Every Snapkeep export here uses the convert+rsync engine (`engine: "convert"`, the CLI's
 * --compressed); the default streamed engine is measured by bench/incremental.ts.
 *
 * One shut-off lab VM with a 1 GiB qcow2 disk (512 MiB of random data in 8 MiB chunks, every other
 * 8 MiB left unwritten, so zero), one internal snapshot of it, and three measurements:
 *
 *   push    Snapkeep exporting from this computer to an SSH target (OpenSSH's sshd on loopback),
 *           beside `qemu-img convert` with Snapkeep's own options into a local file, then
 *           `rsync -I --no-whole-file --inplace -e ssh` (OpenSSH) to the same sshd
 *   pull    Snapkeep exporting from an SSH host (the same libvirtd, reached through that sshd) to a
 *           folder here, beside `ssh host qemu-img convert` and `rsync -e ssh host:file dir/`
 *   re-export after 1% change
 *           10 MiB of the disk rewritten with qemu-io, a new snapshot, exported again to the SSH
 *           target, which holds the previous export as rsync's basis: the bytes rsync sent
 *
 * Snapkeep hashes the staged image and the landed one; the OpenSSH pipeline is timed with
 * `sha256sum` on both ends (same work) and without (its convert and rsync steps alone). Each round
 * starts from nothing on the target; rounds alternate which side runs first; medians are printed.
 * Every command Snapkeep runs goes through a counting pass-through runner, to show where its time
 * goes and how many SSH round trips an export takes.
 *
 * Usage: npm run bench:export   (as root; prepares the test host like the integration tests do)
 *        BENCH_EXPORT_ROUNDS=5 to change the number of timed rounds (default 3).
 */
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import type { Snapshot } from "../core/domain/types.js";
import { isSnapkeepError } from "../core/errors.js";
import { convertSnapshotArgs } from "../core/drivers/qemu-img/args.js";
import { parseStats } from "../core/drivers/rsync/parse.js";
import { Targets } from "../core/app/targets.js";
import { Exports, type ExportResult } from "../core/app/exports/exports.js";
import { openSealKey } from "../core/infra/seal-key.js";
import { createSshRunner } from "../core/infra/runner/factory.js";
import { createLabVm, removeLabVms, type LabVm } from "../core/app/lab/lab.js";
import { LocalRunner } from "../core/infra/runner/local.js";
import type { CommandRunner, RunOptions, RunResult } from "../core/infra/runner/types.js";
import type { VmModules } from "../core/app/vm-modules.js";
import { quoteShellArg } from "../core/domain/shell-quote.js";
import { makeApp } from "../test/support/app.js";
import { startSshd, trustedHost, type TestSshd } from "../test/support/sshd.js";
import { URI } from "../test/support/libvirt.js";

const MiB = 1024 * 1024;
const DISK_MIB = 1024;
const DISK_BYTES = DISK_MIB * MiB;
const CHUNK = 8 * MiB;
const ROUNDS = Number(process.env["BENCH_EXPORT_ROUNDS"] ?? 3);
const IMAGE_DIR = "/var/lib/libvirt/images/snapkeep-bench";
/** 1% of the disk, rewritten before a re-export. */
const CHANGE_BYTES = 10 * MiB;
const SCATTER_PIECE = 64 * 1024;
const repo = fileURLToPath(new URL("..", import.meta.url));
const execFileAsync = promisify(execFile);

// ---- small helpers ---------------------------------------------------------------------------

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

const seconds = (ms: number): string => (ms / 1000).toFixed(2);
const mibPerSecond = (ms: number): string => (DISK_MIB / (ms / 1000)).toFixed(0);
const mib = (bytes: number): string => (bytes / MiB).toFixed(2);
const percent = (part: number, whole: number): string => `${((100 * part) / whole).toFixed(2)}%`;

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

/** Before each timed run: no dirty pages left from the previous one to be written back during it. */
function settle(): void {
  execFileSync("sync");
}

async function sha256(path: string): Promise<string> {
  return (await sh(["sha256sum", "--", path])).split(" ")[0] ?? "";
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

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

// ---- counting what Snapkeep runs -----------------------------------------------------------------

interface Command {
  /** "host local", "host loop", "target nas", "target folder". */
  readonly side: string;
  readonly ssh: boolean;
  readonly argv: readonly string[];
  readonly ms: number;
}

const commands: Command[] = [];

/** Passes every call through unchanged and records what ran, where, and for how long. */
class CountingRunner implements CommandRunner {
  constructor(
    private readonly inner: CommandRunner,
    private readonly side: string,
    private readonly ssh: boolean,
  ) {}

  get label(): string {
    return this.inner.label;
  }

  async run(argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    const start = performance.now();
    try {
      return await this.inner.run(argv, options);
    } finally {
      commands.push({ side: this.side, ssh: this.ssh, argv: [...argv], ms: performance.now() - start });
    }
  }

  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}

type Step = "convert" | "hashStaged" | "transfer" | "hashLanded";
type Steps = Record<Step, number> & { total: number };
const STEPS: readonly Step[] = ["convert", "hashStaged", "transfer", "hashLanded"];

/** The big steps of one Snapkeep export, found in its commands; the rest is "other". */
function classify(c: Command): Step | "server" | null {
  const [program, second, , name] = c.argv;
  if (program === "qemu-img" && second === "convert") {
    return "convert";
  }
  if (program === "sha256sum" && c.argv.some((a) => /\.qcow2(\.tmp)?$/.test(a))) {
    return c.side.startsWith("host") ? "hashStaged" : "hashLanded";
  }
  // Snapkeep's staging script (hash, rename, record the hash); older versions ran sha256sum alone.
  if (program === "sh" && name === "snapkeep-stage") {
    return "hashStaged";
  }
  if (program === "sh" && name === "snapkeep-relay") {
    return "transfer";
  }
  // rsync --server runs at the same time as the relayed client: not added again.
  return program === "rsync" && second === "--server" ? "server" : null;
}

function stepsOf(run: readonly Command[], total: number): Steps {
  const steps: Steps = { convert: 0, hashStaged: 0, transfer: 0, hashLanded: 0, total };
  for (const c of run) {
    const step = classify(c);
    if (step !== null && step !== "server") {
      steps[step] += c.ms;
    }
  }
  return steps;
}

/** "mkdir 212, sh:snapkeep-scan 230, ..." for the small commands of one export, in order. */
function describeSmall(run: readonly Command[]): string {
  return run
    .filter((c) => classify(c) === null)
    .map((c) => {
      const [program, first, , name, sub] = c.argv;
      const what =
        program === "sh" && name !== undefined
          ? `sh:${name}`
          : program === "virsh" && first === "-q" && sub !== undefined
            ? // virsh runs several commands given as one argument, "a --x ; echo MARK ; b --y".
              `virsh ${sub
                .split(" ; ")
                .map((part) => part.split(" ")[0])
                .filter((word) => word !== "echo")
                .join("+")}`
            : (program ?? "?");
      return `${what} ${c.ms.toFixed(0)}`;
    })
    .join(", ");
}

// ---- the benchmark -------------------------------------------------------------------------------

interface Fixture {
  readonly vm: LabVm;
  readonly disk: string;
  readonly work: string;
  /** Snapkeep's staging root (on this computer, which is also the SSH host "loop"). */
  readonly staging: string;
  readonly app: VmModules;
  readonly exports: Exports;
  readonly loopRunner: CommandRunner;
}

interface Openssh {
  readonly target: string;
  readonly rsh: string;
  exec(argv: readonly string[]): Promise<string>;
}

function openssh(sshd: TestSshd): Openssh {
  const options = [
    "-p",
    String(sshd.port),
    "-i",
    sshd.userKeyPath,
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
  ];
  const target = `${sshd.user}@${sshd.host}`;
  return {
    target,
    // rsync splits -e on spaces: the paths in it (a mkdtemp folder) have none.
    rsh: ["ssh", ...options].join(" "),
    exec: (argv) => sh(["ssh", ...options, target, argv.map(quoteShellArg).join(" ")]),
  };
}

function convertArgv(disk: string, snapshot: Snapshot, output: string): string[] {
  const image = snapshot.disks.find((d) => d.target === "vda");
  if (image === undefined) {
    throw new Error(`snapshot ${snapshot.name} has no vda`);
  }
  return convertSnapshotArgs({
    source: disk,
    snapshotId: image.imageSnapshotId,
    snapshotTag: snapshot.tag,
    output,
    shared: false,
    compression: "zstd",
  });
}

/** One Snapkeep export, timed, with its commands. */
async function snapkeepExport(
  f: Fixture,
  host: string,
  target: string,
  snapshot: Snapshot,
): Promise<{ result: ExportResult; ms: number; run: Command[] }> {
  const mark = commands.length;
  const start = performance.now();
  const result = await f.exports.export({
    host,
    vm: f.vm.name,
    snapshot: snapshot.name,
    target,
    engine: "convert",
    signal: stop.signal,
  });
  const ms = performance.now() - start;
  return { result, ms, run: commands.slice(mark) };
}

interface Direction {
  readonly label: string;
  readonly snapkeep: Steps[];
  readonly openssh: Steps[];
  /** The last Snapkeep round's commands, for the round-trip count. */
  lastRun: Command[];
}

async function timeDirection(
  f: Fixture,
  o: Openssh,
  snapshot: Snapshot,
  kind: "push" | "pull",
): Promise<Direction> {
  const dir: Direction = {
    label: kind === "push" ? "push (this computer → SSH target)" : "pull (SSH host → folder here)",
    snapkeep: [],
    openssh: [],
    lastRun: [],
  };
  const targetDir = join(f.work, kind === "push" ? "ssh-target" : "folder-target");
  const stage = join(f.work, `openssh-${kind}-stage`);
  const landed = join(f.work, `openssh-${kind}-landed`);
  console.log(`\n${dir.label}:`);

  const runSnapkeep = async (): Promise<Steps> => {
    const fresh = (): void => {
      rmSync(targetDir, { recursive: true, force: true });
      rmSync(f.staging, { recursive: true, force: true });
      settle();
    };
    fresh();
    const { ms, run } = await withLibvirt(
      `a ${kind} export`,
      () =>
        snapkeepExport(f, kind === "push" ? "local" : "loop", kind === "push" ? "nas" : "folder", snapshot),
      fresh,
    );
    dir.lastRun = run;
    rmSync(targetDir, { recursive: true, force: true });
    return stepsOf(run, ms);
  };

  const runOpenssh = async (): Promise<Steps> => {
    for (const d of [stage, landed]) {
      rmSync(d, { recursive: true, force: true });
      mkdirSync(d, { recursive: true });
    }
    settle();
    const staged = join(stage, "vda.qcow2");
    const copy = join(landed, "vda.qcow2");
    // Same order as Snapkeep: convert, hash the staged image, send it, hash where it landed.
    const at = [performance.now()];
    let sums: string[];
    if (kind === "push") {
      await sh(convertArgv(f.disk, snapshot, staged));
      at.push(performance.now());
      const sent = await sha256(staged);
      at.push(performance.now());
      await sh([
        "rsync",
        "-I",
        "--no-whole-file",
        "--inplace",
        "-e",
        o.rsh,
        staged,
        `${o.target}:${landed}/`,
      ]);
      at.push(performance.now());
      sums = [sent, (await o.exec(["sha256sum", "--", copy])).split(" ")[0] ?? ""];
    } else {
      await o.exec(convertArgv(f.disk, snapshot, staged));
      at.push(performance.now());
      const sent = (await o.exec(["sha256sum", "--", staged])).split(" ")[0] ?? "";
      at.push(performance.now());
      await sh([
        "rsync",
        "-I",
        "--no-whole-file",
        "--inplace",
        "-e",
        o.rsh,
        `${o.target}:${staged}`,
        `${landed}/`,
      ]);
      at.push(performance.now());
      sums = [sent, await sha256(copy)];
    }
    at.push(performance.now());
    if (sums[0] !== sums[1] || sums[0] === "") {
      throw new Error(`the OpenSSH ${kind} copy does not match: ${sums.join(" ")}`);
    }
    rmSync(stage, { recursive: true, force: true });
    rmSync(landed, { recursive: true, force: true });
    const d = (i: number): number => (at[i + 1] ?? NaN) - (at[i] ?? NaN);
    return {
      convert: d(0),
      hashStaged: d(1),
      transfer: d(2),
      hashLanded: d(3),
      total: (at[4] ?? NaN) - (at[0] ?? NaN),
    };
  };

  for (let round = 1; round <= ROUNDS; round++) {
    stop.signal.throwIfAborted();
    // Alternate who goes first, so neither always gets the warmer cache.
    if (round % 2 === 1) {
      dir.snapkeep.push(await runSnapkeep());
      dir.openssh.push(await runOpenssh());
    } else {
      dir.openssh.push(await runOpenssh());
      dir.snapkeep.push(await runSnapkeep());
    }
    const s = dir.snapkeep.at(-1) as Steps;
    const b = dir.openssh.at(-1) as Steps;
    console.log(
      `  round ${round}: snapkeep ${seconds(s.total)} s | openssh with hashing ${seconds(b.total)} s, without ${seconds(b.convert + b.transfer)} s`,
    );
  }
  return dir;
}

interface Change {
  readonly label: string;
  readonly snapkeep: ExportResult;
  readonly snapkeepMs: number;
  readonly imageSize: number;
  readonly openssh: { literalBytes: number; bytesSent: number; ms: number };
}

/** Fills the disk: random data in every other 8 MiB chunk, the chunks between left as zeros. */
function fill(disk: string, scratch: string): void {
  const chunk = join(scratch, "chunk.bin");
  for (let offset = 0; offset < DISK_BYTES; offset += 2 * CHUNK) {
    writeFileSync(chunk, randomBytes(CHUNK));
    execFileSync("qemu-io", ["-f", "qcow2", "-c", `write -q -s ${chunk} ${offset} ${CHUNK}`, disk]);
  }
  rmSync(chunk);
}

/** Rewrites 1% of the disk with new random data: 160 pieces of 64 KiB spread evenly, or one run. */
function change(disk: string, scratch: string, how: "scattered" | "contiguous"): void {
  const writes: string[] = [];
  if (how === "scattered") {
    const pieces = CHANGE_BYTES / SCATTER_PIECE;
    const stride = Math.floor(DISK_BYTES / pieces / SCATTER_PIECE) * SCATTER_PIECE;
    for (let i = 0; i < pieces; i++) {
      const file = join(scratch, `piece-${i}.bin`);
      writeFileSync(file, randomBytes(SCATTER_PIECE));
      writes.push("-c", `write -q -s ${file} ${i * stride} ${SCATTER_PIECE}`);
    }
  } else {
    const file = join(scratch, "run.bin");
    writeFileSync(file, randomBytes(CHANGE_BYTES));
    // 300 MiB: across the end of a zero region and into a random one.
    writes.push("-c", `write -q -s ${file} ${300 * MiB} ${CHANGE_BYTES}`);
  }
  execFileSync("qemu-io", ["-f", "qcow2", ...writes, disk]);
  for (const name of readdirSync(scratch)) {
    rmSync(join(scratch, name));
  }
}

async function reExports(f: Fixture, o: Openssh, base: Snapshot, scratch: string): Promise<Change[]> {
  console.log("\nre-export after 1% change (push to the SSH target, the previous export as basis):");
  const targetDir = join(f.work, "ssh-target");
  const fresh = (): void => {
    rmSync(targetDir, { recursive: true, force: true });
    rmSync(f.staging, { recursive: true, force: true });
  };
  fresh();
  const first = await withLibvirt("the first export", () => snapkeepExport(f, "local", "nas", base), fresh);
  console.log(
    `  first export ${first.result.id}: ${seconds(first.ms)} s, image ${mib(first.result.manifest.disks[0]?.size ?? 0)} MiB, sent ${mib(first.result.bytesSent)} MiB`,
  );
  // The OpenSSH side keeps its own chain of copies on the same sshd, --copy-dest like Snapkeep.
  const local = join(f.work, "openssh-chain-stage");
  const remote = join(f.work, "openssh-chain");
  mkdirSync(local, { recursive: true });
  const send = async (snapshot: Snapshot, to: string, basis: string | null) => {
    const file = join(local, "vda.qcow2");
    rmSync(file, { force: true });
    await sh(convertArgv(f.disk, snapshot, file));
    mkdirSync(join(remote, to), { recursive: true });
    const start = performance.now();
    const out = await sh([
      "rsync",
      "-I",
      "--no-whole-file",
      "--inplace",
      "--stats",
      ...(basis === null ? [] : [`--copy-dest=${join(remote, basis)}`]),
      "-e",
      o.rsh,
      file,
      `${o.target}:${join(remote, to)}/`,
    ]);
    const ms = performance.now() - start;
    const stats = parseStats(out);
    if (stats === undefined) {
      throw new Error(`no statistics from rsync:\n${out}`);
    }
    return { literalBytes: stats.literalBytes, bytesSent: stats.bytesSent, ms };
  };
  await send(base, "0", null);

  const changes: Change[] = [];
  let previous = "0";
  for (const how of ["scattered", "contiguous"] as const) {
    stop.signal.throwIfAborted();
    change(f.disk, scratch, how);
    const snapshot = await withLibvirt(
      "a snapshot",
      () => f.app.snapshots.create("local", f.vm.name, { name: `change-${how}` }),
      () => undefined,
    );
    const again = await withLibvirt(
      "a re-export",
      () => snapkeepExport(f, "local", "nas", snapshot),
      () => clearPartials(targetDir, f.staging),
    );
    if (again.result.basis === null) {
      throw new Error("the re-export found no basis on the target");
    }
    const ours = await send(snapshot, how, previous);
    previous = how;
    const label =
      how === "scattered"
        ? `scattered: ${CHANGE_BYTES / SCATTER_PIECE} x 64 KiB, evenly spread`
        : "contiguous: 10 MiB at 300 MiB";
    changes.push({
      label,
      snapkeep: again.result,
      snapkeepMs: again.ms,
      imageSize: again.result.manifest.disks[0]?.size ?? 0,
      openssh: ours,
    });
    console.log(
      `  ${label}: snapkeep sent ${mib(again.result.bytesSent)} MiB (literal ${mib(again.result.literalBytes)} MiB) in ${seconds(again.ms)} s; rsync -e ssh sent ${mib(ours.bytesSent)} MiB (literal ${mib(ours.literalBytes)} MiB)`,
    );
  }
  return changes;
}

async function main(): Promise<void> {
  execFileSync("bash", [join(repo, "scripts/test-host.sh"), "up"], { stdio: "inherit" });
  const runner = new LocalRunner();
  const owner = `bench-export-${process.pid}-${randomBytes(2).toString("hex")}`;
  const work = mkdtempSync("/var/tmp/snapkeep-bench-export-");
  const scratch = join(work, "scratch");
  const staging = join(work, "snapkeep-staging");
  mkdirSync(scratch);
  let madeImageDir = false;
  let sshd: TestSshd | undefined;
  let exports: Exports | undefined;
  let targets: Targets | undefined;
  const ctx = makeApp(
    {},
    {
      wrapRunner: (r) =>
        new CountingRunner(
          r,
          r.label === "this computer" ? "host local" : "host loop",
          r.label !== "this computer",
        ),
    },
  );
  try {
    try {
      readdirSync(IMAGE_DIR);
    } catch {
      madeImageDir = true;
    }
    sshd = await startSshd();
    const sshdNow = sshd;
    const app = ctx.app;
    app.hosts.addLocal("local");
    await app.hosts.addSsh(trustedHost("loop", sshd));
    targets = new Targets({
      store: ctx.store,
      ssh: ctx.ssh,
      // The same runners Snapkeep makes for its targets, counted.
      runnerFor: (target) =>
        target.kind === "dir"
          ? new CountingRunner(new LocalRunner(), `target ${target.name}`, false)
          : new CountingRunner(
              createSshRunner(
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
              `target ${target.name}`,
              true,
            ),
    });
    exports = new Exports({
      ...app,
      targets,
      sealKey: () => openSealKey(ctx.home),
      now: () => new Date(),
      stagingRoot: staging,
    });
    await targets.add({
      name: "nas",
      ssh: `${sshd.user}@${sshd.host}:${sshd.port}:${join(work, "ssh-target")}`,
      identityFile: sshd.userKeyPath,
      trust: sshd.hostFingerprint,
    });
    await targets.add({ name: "folder", dir: join(work, "folder-target") });

    const vm = await createLabVm(runner, URI, {
      name: `snapkeep-bench-export-${randomBytes(3).toString("hex")}`,
      running: false,
      disks: [{ target: "vda", sizeMiB: DISK_MIB }],
      dir: IMAGE_DIR,
      owner,
    });
    const disk = vm.diskPaths[0] as string;
    const fillStart = performance.now();
    fill(disk, scratch);
    const base = await withLibvirt(
      "the first snapshot",
      () => app.snapshots.create("local", vm.name, { name: "base" }),
      () => undefined,
    );
    console.log(
      `\nVM ${vm.name}: 1 GiB qcow2, ${DISK_MIB / 16} x 8 MiB random chunks alternating with 8 MiB of zeros, snapshot "base" (${seconds(performance.now() - fillStart)} s to make)`,
    );
    const f: Fixture = {
      vm,
      disk,
      work,
      staging,
      app,
      exports,
      loopRunner: app.hosts.libvirt("loop").runner,
    };
    const o = openssh(sshdNow);

    // Per-command costs that everything below is made of.
    await app.vms.list("loop"); // opens the pooled connection
    const warm: number[] = [];
    for (let i = 0; i < 10; i++) {
      const start = performance.now();
      await f.loopRunner.run(["true"]);
      warm.push(performance.now() - start);
    }
    const fresh: number[] = [];
    for (let i = 0; i < 5; i++) {
      const start = performance.now();
      await o.exec(["true"]);
      fresh.push(performance.now() - start);
    }
    const bash: number[] = [];
    const { SHLVL: _shlvl, ...env } = process.env;
    for (let i = 0; i < 5; i++) {
      const start = performance.now();
      // How sshd's bash starts: no SHLVL, SSH_CLIENT set, so it reads ~/.bashrc (pyenv init).
      execFileSync("bash", ["-c", "true"], { env: { ...env, SSH_CLIENT: "127.0.0.1 1 22" } });
      bash.push(performance.now() - start);
    }

    const push = await timeDirection(f, o, base, "push");
    const pull = await timeDirection(f, o, base, "pull");
    const changes = await reExports(f, o, base, scratch);

    // ---- report ----------------------------------------------------------------------------
    const versions = {
      qemuImg: execFileSync("qemu-img", ["--version"], { encoding: "utf8" }).split("\n")[0] ?? "",
      rsync: execFileSync("rsync", ["--version"], { encoding: "utf8" }).split("\n")[0] ?? "",
      ssh: spawnSync("ssh", ["-V"], { encoding: "utf8" }).stderr.trim(),
    };
    console.log(
      `\nSummary (${ROUNDS} rounds each, median wall time; MiB/s over the ${DISK_MIB} MiB virtual size; speed = snapkeep speed / OpenSSH speed):`,
    );
    const med = (list: readonly Steps[], pick: (s: Steps) => number): number => median(list.map(pick));
    const rows = [];
    const verdicts: string[] = [];
    for (const [dir, goal, name] of [
      [push, 0.95, "push"],
      [pull, 0.8, "pull"],
    ] as const) {
      const sk = med(dir.snapkeep, (s) => s.total);
      const hashed = med(dir.openssh, (s) => s.total);
      const bare = med(dir.openssh, (s) => s.convert + s.transfer);
      for (const [what, base] of [
        ["OpenSSH convert + rsync + sha256sum both ends", hashed],
        ["OpenSSH convert + rsync, no hashing", bare],
      ] as const) {
        rows.push({
          what: `${name}: snapkeep vs ${what}`,
          "snapkeep s": seconds(sk),
          "snapkeep MiB/s": mibPerSecond(sk),
          "openssh s": seconds(base),
          "openssh MiB/s": mibPerSecond(base),
          speed: `${(base / sk).toFixed(2)}x`,
          goal: `>= ${goal}x`,
        });
      }
      const met = (b: number): string => (b / sk >= goal ? "met" : "NOT met");
      verdicts.push(
        `${name} >= ${goal}x of the OpenSSH pipeline: ${met(hashed)} against it with hashing (${(hashed / sk).toFixed(2)}x), ${met(bare)} against it without (${(bare / sk).toFixed(2)}x)`,
      );
    }
    console.table(rows);

    console.log(
      "\nWhere the time goes (median seconds of each step on its own, so a column need not add up to the total;\nSnapkeep's steps are read from its own commands, the rest of its wall time is 'everything else'):",
    );
    const stepNames: Record<Step, string> = {
      convert: "qemu-img convert",
      hashStaged: "sha256sum of the staged image",
      transfer: "rsync (Snapkeep: relayed over ssh2)",
      hashLanded: "sha256sum where it landed",
    };
    const stepRows = STEPS.map((step) => ({
      step: stepNames[step],
      "push snapkeep": seconds(med(push.snapkeep, (s) => s[step])),
      "push openssh": seconds(med(push.openssh, (s) => s[step])),
      "pull snapkeep": seconds(med(pull.snapkeep, (s) => s[step])),
      "pull openssh": seconds(med(pull.openssh, (s) => s[step])),
    }));
    const other = (s: Steps): number => s.total - STEPS.reduce((sum, step) => sum + s[step], 0);
    stepRows.push({
      step: "everything else (lookups, checks, small files)",
      "push snapkeep": seconds(med(push.snapkeep, other)),
      "push openssh": "-",
      "pull snapkeep": seconds(med(pull.snapkeep, other)),
      "pull openssh": "-",
    });
    console.table(stepRows);

    console.log("\nCommands one Snapkeep export runs (last round; small ones with their milliseconds):");
    for (const dir of [push, pull]) {
      console.log(`  ${dir.label}:`);
      for (const side of [...new Set(dir.lastRun.map((c) => c.side))]) {
        const run = dir.lastRun.filter((c) => c.side === side);
        const small = run.filter((c) => classify(c) === null);
        const ssh = run[0]?.ssh === true ? "over SSH (ssh2 exec channels)" : "spawned here";
        console.log(
          `    ${side}: ${run.length} commands ${ssh}, ${small.length} of them small, taking ${seconds(small.reduce((sum, c) => sum + c.ms, 0))} s one after another`,
        );
        console.log(`      ${describeSmall(run)}`);
      }
    }

    console.log(
      `\nRe-export after 1% change (${mib(CHANGE_BYTES)} MiB of random data written with qemu-io, new snapshot, export to the SSH target; goal: sent <= 3% of the disk):`,
    );
    console.table(
      changes.map((c) => ({
        change: c.label,
        "image MiB": mib(c.imageSize),
        "literal MiB": mib(c.snapkeep.literalBytes),
        "sent MiB": mib(c.snapkeep.bytesSent),
        "sent % disk": percent(c.snapkeep.bytesSent, DISK_BYTES),
        "sent % image": percent(c.snapkeep.bytesSent, c.imageSize),
        "export s": seconds(c.snapkeepMs),
        "rsync -e ssh sent MiB": mib(c.openssh.bytesSent),
        "rsync -e ssh literal MiB": mib(c.openssh.literalBytes),
      })),
    );
    for (const c of changes) {
      verdicts.push(
        `re-export sends <= 3% of the disk (${c.label}): ${c.snapkeep.bytesSent <= 0.03 * DISK_BYTES ? "met" : "NOT met"} (${percent(c.snapkeep.bytesSent, DISK_BYTES)})`,
      );
    }

    console.log("\nVerdicts:");
    for (const v of verdicts) {
      console.log(`  ${v}`);
    }

    console.log("\nNotes:");
    for (const note of [
      `${cpus().length} CPUs; ${versions.qemuImg}; ${versions.rsync}; ${versions.ssh}. Source, staging and targets share one disk and page cache; SSH is loopback (127.0.0.1) to one throwaway sshd.`,
      `Each SSH command costs a session start on the server side. ~/.bashrc of root runs pyenv init, which sshd's bash reads for every command: bash started as sshd starts it takes ${median(bash).toFixed(0)} ms here (median). A warm Snapkeep ssh2 exec of \`true\` takes ${median(warm).toFixed(0)} ms; a fresh \`ssh host true\` (OpenSSH, new connection) ${median(fresh).toFixed(0)} ms. Both sides pay it per session: Snapkeep per command over SSH (counted above), the OpenSSH pipeline per ssh or rsync call (2 per push run, 3 per pull run, each also a new connection).`,
      `The OpenSSH pipeline's "no hashing" figure is its convert and rsync steps from the same runs as the hashed one (the steps run one after another). Its mkdir of the destination is not timed. rsync there uses exactly -I --no-whole-file --inplace -e ssh; Snapkeep's rsync adds -s --info=progress2 --stats --timeout=120.`,
      "qemu-img convert uses Snapkeep's own argv on both sides (convertSnapshotArgs: -l snapshot.id=..,snapshot.name=.., -O qcow2 -c -o compression_type=zstd, -p).",
      "Ciphers: OpenSSH picks chacha20-poly1305@openssh.com by default; ssh2 (Snapkeep) offers aes128-gcm@openssh.com first on CPUs with AES.",
      "Snapkeep's commands go through a pass-through counting runner (negligible cost).",
      "Before every timed run its target and staging folders are emptied and `sync` flushes dirty pages (untimed); the source image stays in the page cache for both sides.",
    ]) {
      console.log(`  - ${note}`);
    }
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
    await attempt("removing the VM", async () => {
      // libvirtd may have been stopped meanwhile (another run's `scripts/test-host.sh down`): the VM
      // and its image are removed all the same.
      try {
        execFileSync("virsh", ["-q", "-c", URI, "version"], { stdio: "ignore" });
      } catch {
        execFileSync("bash", [join(repo, "scripts/test-host.sh"), "up"], { stdio: "inherit" });
      }
      await removeLabVms(runner, URI, owner, { dryRun: false });
    });
    await attempt("closing the runner", () => runner.dispose());
    await attempt("stopping sshd", () => sshd?.stop());
    await attempt("removing the work folder", () => rmSync(work, { recursive: true, force: true }));
    if (madeImageDir) {
      await attempt("removing the image folder", () => rmdirSync(IMAGE_DIR));
    }
  }
}

await main();

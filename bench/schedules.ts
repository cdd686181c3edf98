/**
 * Schedules at scale, figures printed:
 * 1. retention over 100,000 snapshots (goal < 100 ms), next to a plain sort of the same list;
 * 2. `snapkeep daemon` with 1,000 schedules over 100 VMs, idle for a minute (goal ~0% CPU and
 *    < 150 MB RSS), next to a bare Node process that only keeps a timer;
 * 3. `snapkeep daemon` with 100 schedules that copy off the host to 2 targets, idle (goal ~0% CPU):
 *    owed copies and their backoff are timers too, never a poll.
 *
 * Usage: npx tsx bench/schedules.ts   (part of npm run bench; no VMs needed)
 */
import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import type { Snapshot } from "../core/domain/types.js";
import { applyRetention } from "../core/domain/retention/gfs.js";
import { openSettingsStore } from "../core/infra/store/store.js";

const repo = fileURLToPath(new URL("..", import.meta.url));
const IDLE_SECONDS = Number(process.env["BENCH_IDLE_SECONDS"] ?? 60);

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
}

function retentionBench(): void {
  const now = new Date("2026-11-26T12:00:00Z");
  const snapshots: Snapshot[] = Array.from({ length: 100_000 }, (_, i) => {
    const createdAt = new Date(now.getTime() - i * 15 * 60_000).toISOString(); // every 15 min, ~3 years
    const ours = i % 10 !== 0;
    return {
      tag: `snapkeep:${ours ? "scheduled@s1" : "manual"}:n${i}`,
      name: `n${i}`,
      kind: ours ? "scheduled" : "manual",
      origin: ours ? "s1" : null,
      createdAt,
      disks: [],
      note: null,
      pinned: i % 997 === 0,
      consistency: null,
      incomplete: false,
      hasVmState: false,
    };
  });
  const policy = { keepLast: 24, daily: 7, weekly: 4, monthly: 12 };
  // The same list in a shuffled order (a fixed shuffle, so runs compare): the order hosts list
  // snapshots in is not promised.
  const shuffled = [...snapshots];
  let seed = 42;
  for (let i = shuffled.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [shuffled[i], shuffled[j]] = [shuffled[j] as Snapshot, shuffled[i] as Snapshot];
  }
  const times: number[] = [];
  const shuffledTimes: number[] = [];
  let kept = 0;
  for (let round = 0; round < 7; round++) {
    let start = performance.now();
    kept = applyRetention(snapshots, policy, "s1", now).keep.length;
    times.push(performance.now() - start);
    start = performance.now();
    applyRetention(shuffled, policy, "s1", now);
    shuffledTimes.push(performance.now() - start);
  }
  const sortTimes: number[] = [];
  for (let round = 0; round < 7; round++) {
    const start = performance.now();
    [...snapshots].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
    sortTimes.push(performance.now() - start);
  }
  console.log(
    `retention over 100,000 snapshots (${JSON.stringify(policy)}): median ${median(times).toFixed(1)} ms newest first, ` +
      `${median(shuffledTimes).toFixed(1)} ms shuffled, kept ${kept} (goal < 100 ms in any order); ` +
      `a plain sort of the same list: ${median(sortTimes).toFixed(1)} ms`,
  );
}

/** CPU seconds (user+system) and RSS of a process, from /proc. */
function sample(pid: number): { cpuSeconds: number; rssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
  const rssPages = Number(fields[21]);
  return { cpuSeconds: ticks / 100, rssMb: (rssPages * 4096) / 1024 / 1024 };
}

async function measureIdle(
  label: string,
  command: string[],
  env: NodeJS.ProcessEnv,
  ready: (out: string) => boolean,
): Promise<void> {
  const child = spawn(command[0] as string, command.slice(1), { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 30_000;
  while (!ready(output)) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill("SIGKILL");
      throw new Error(`${label} did not start: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 2000)); // start-up settles
  const pid = child.pid as number;
  const before = sample(pid);
  await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
  const after = sample(pid);
  const cpu = ((after.cpuSeconds - before.cpuSeconds) / IDLE_SECONDS) * 100;
  console.log(`${label}: idle ${IDLE_SECONDS} s: CPU ${cpu.toFixed(2)}%, RSS ${after.rssMb.toFixed(0)} MB`);
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
}

/** A state folder with `count` daily schedules, at least two hours from now (the minute is idle). */
function homeWithSchedules(count: number, copies: boolean): string {
  const home = mkdtempSync(join(tmpdir(), "snapkeep-bench-daemon-"));
  const store = openSettingsStore(home, new Date());
  const now = new Date();
  const hour = (now.getHours() + 3) % 24;
  const targets = ["nas1", "nas2"];
  store.update((s) => ({
    ...s,
    hosts: [{ name: "local", kind: "local", uri: "qemu:///system" }],
    targets: copies ? targets.map((name) => ({ name, kind: "dir" as const, path: join(home, name) })) : [],
    schedules: Array.from({ length: count }, (_, i) => ({
      id: randomBytes(4).toString("hex"),
      host: "local",
      vmUuid: randomUUID(),
      vmName: `vm-${i % 100}`,
      when: {
        every: "daily" as const,
        at: `${String(hour).padStart(2, "0")}:${String(i % 60).padStart(2, "0")}`,
      },
      retention: { keepLast: 7 },
      enabled: true,
      createdAt: now.toISOString(),
      ...(copies
        ? {
            copy: {
              target: targets[i % 2] as string,
              cadence: { every: "runs" as const, n: 1 },
              retention: { keepLast: 7, daily: 7, weekly: 4, monthly: 6 },
              holdLocalUntilCopied: true,
            },
          }
        : {}),
    })),
  }));
  return home;
}

async function daemonBench(): Promise<void> {
  const home = homeWithSchedules(1000, false);
  const copying = homeWithSchedules(100, true);
  try {
    await measureIdle(
      "snapkeep daemon, 1,000 schedules over 100 VMs (goal ~0% CPU, < 150 MB)",
      ["node", join(repo, "bin/snapkeep.js"), "daemon"],
      { ...process.env, SNAPKEEP_HOME: home },
      (out) => out.includes("daemon started"),
    );
    await measureIdle(
      "snapkeep daemon, 100 schedules copying to 2 targets (goal ~0% CPU)",
      ["node", join(repo, "bin/snapkeep.js"), "daemon"],
      { ...process.env, SNAPKEEP_HOME: copying },
      (out) => out.includes("daemon started"),
    );
    await measureIdle(
      "bare node process with one timer (baseline)",
      ["node", "-e", "setInterval(() => {}, 30000); console.log('ready')"],
      process.env,
      (out) => out.includes("ready"),
    );
  } finally {
    rmSync(home, { recursive: true, force: true });
    rmSync(copying, { recursive: true, force: true });
  }
}

retentionBench();
await daemonBench();

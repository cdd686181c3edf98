import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { acquireSchedulerLock, schedulerOwner } from "../../core/infra/scheduler-lock.js";

const homes: string[] = [];
afterEach(() => homes.splice(0).forEach((h) => rmSync(h, { recursive: true, force: true })));
const home = (): string => {
  const h = mkdtempSync(join(tmpdir(), "snapkeep-lock-"));
  homes.push(h);
  return h;
};

describe("one scheduler per state directory", () => {
  it("refuses a second scheduler with a sentence naming the running one", () => {
    const h = home();
    const first = acquireSchedulerLock(h, "snapkeep daemon", new Date("2026-11-26T10:00:00Z"));
    expect(() => acquireSchedulerLock(h, "Snapkeep desktop", new Date())).toThrow(
      `Another Snapkeep scheduler already runs on ${h}: snapkeep daemon, pid ${process.pid} on ${hostname()}, started 2026-11-26T10:00:00.000Z.`,
    );
    expect(schedulerOwner(h)?.pid).toBe(process.pid);
    first.release();
    expect(schedulerOwner(h)).toBeNull();
    acquireSchedulerLock(h, "Snapkeep desktop", new Date()).release();
  });

  it("takes over a lock left by a process that is gone", async () => {
    const h = home();
    const child = spawn("true");
    const deadPid = await new Promise<number>((resolve) =>
      child.on("exit", () => resolve(child.pid as number)),
    );
    writeFileSync(
      join(h, "scheduler.lock"),
      JSON.stringify({ pid: deadPid, hostname: hostname(), app: "snapkeep daemon", startedAt: "x" }),
    );
    expect(schedulerOwner(h)).toBeNull();
    const lock = acquireSchedulerLock(h, "snapkeep daemon", new Date());
    expect(lock.owner.pid).toBe(process.pid);
    lock.release();
  });

  it("does not mistake a reused pid for the scheduler that wrote the lock", () => {
    const h = home();
    // Our own pid, but written by a "process" that started at another time: a pid reused later.
    writeFileSync(
      join(h, "scheduler.lock"),
      JSON.stringify({
        pid: process.pid,
        hostname: hostname(),
        app: "snapkeep daemon",
        startedAt: "x",
        startTicks: "1",
      }),
    );
    expect(schedulerOwner(h)).toBeNull();
    acquireSchedulerLock(h, "snapkeep daemon", new Date()).release();
  });
});

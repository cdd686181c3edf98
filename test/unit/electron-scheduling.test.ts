/**
 * One scheduler per state directory, with the real lock: while `snapkeep daemon` holds it the app
 * says so and schedules nothing; once the daemon is gone, the app takes over by itself.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { acquireSchedulerLock, schedulerOwner } from "../../core/infra/scheduler-lock.js";
import { openScheduler } from "../../core/app/schedules/owned.js";
import type { ScheduleWork } from "../../core/app/schedules/scheduler.js";
import { SchedulingHost } from "../../core/app/schedules/hosting.js";
import type { Scheduling } from "../../electron/lib/tray-menu.js";

const homes: string[] = [];
afterEach(() => homes.splice(0).forEach((h) => rmSync(h, { recursive: true, force: true })));

const noSchedules: ScheduleWork = {
  list: () => [],
  states: () => ({}),
  globalPause: () => null,
  recordState: () => undefined,
  run: () => Promise.reject(new Error("no schedules, no runs")),
  cleanUpInterrupted: async () => "nothing",
  owedCopies: () => new Map(),
  copy: () => Promise.reject(new Error("no schedules, no copies")),
};

/** An interval the test fires by hand. */
function manualEvery() {
  const fns: (() => void)[] = [];
  let cancelled = 0;
  return {
    timers: {
      every: (_ms: number, fn: () => void) => {
        fns.push(fn);
        return { cancel: () => void cancelled++ };
      },
    },
    fire: () => fns.forEach((fn) => fn()),
    cancelled: () => cancelled,
  };
}

describe("SchedulingHost", () => {
  it("names the daemon that holds the lock, then takes over when it is gone", async () => {
    const home = mkdtempSync(join(tmpdir(), "snapkeep-scheduling-"));
    homes.push(home);
    const now = () => new Date("2026-11-26T10:00:00Z");
    const daemon = acquireSchedulerLock(home, "snapkeep daemon", now());
    const changes: Scheduling[] = [];
    const clock = manualEvery();
    const host = new SchedulingHost({
      open: () =>
        openScheduler({
          home,
          app: "Snapkeep desktop",
          work: noSchedules,
          now,
          timers: { at: () => ({ cancel: () => undefined }), every: () => ({ cancel: () => undefined }) },
        }),
      holder: () => schedulerOwner(home),
      timers: clock.timers,
      onChange: (state) => changes.push(state),
    });
    await host.start();
    expect(host.state).toMatchObject({
      kind: "elsewhere",
      owner: { app: "snapkeep daemon", pid: process.pid },
    });
    expect(host.scheduler).toBeNull();

    clock.fire(); // still held: nothing changes, nothing is reported twice
    await Promise.resolve();
    expect(changes).toHaveLength(1);

    daemon.release();
    clock.fire();
    await new Promise((r) => setImmediate(r));
    expect(host.state).toEqual({ kind: "here" });
    expect(host.scheduler).not.toBeNull();
    expect(schedulerOwner(home)?.app).toBe("Snapkeep desktop");

    await host.stop();
    expect(clock.cancelled()).toBe(1);
    expect(schedulerOwner(home)).toBeNull(); // the lock is given back
    expect(changes.map((c) => c.kind)).toEqual(["elsewhere", "here"]);
  });

  it("reports a scheduler that cannot start for another reason", async () => {
    const host = new SchedulingHost({
      open: () => {
        throw new Error("EACCES: permission denied, open '/state/scheduler.lock'");
      },
      holder: () => null,
      timers: manualEvery().timers,
      onChange: () => undefined,
    });
    await host.start();
    expect(host.state).toEqual({
      kind: "failed",
      message: "EACCES: permission denied, open '/state/scheduler.lock'",
    });
    await host.stop();
  });
});

/**
 * Sleep and wake: the power events reach the scheduler, and a wake after a long sleep runs each
 * missed schedule once. The real Scheduler on virtual time, with powerMonitor played by an
 * EventEmitter; the work is a fake (no hypervisor: this is the wiring).
 */
import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Snapshot } from "../../core/domain/types.js";
import { Journal } from "../../core/infra/journal.js";
import { Scheduler, type ScheduleWork } from "../../core/app/schedules/scheduler.js";
import type { TimerPort } from "../../core/infra/timers.js";
import type { Schedule, ScheduleState } from "../../core/domain/settings.js";
import { wirePower, type PowerTarget } from "../../electron/lib/power.js";

const homes: string[] = [];
afterEach(() => homes.splice(0).forEach((h) => rmSync(h, { recursive: true, force: true })));

/** Timers that never fire by themselves: as around a sleep, only resume() looks at the clock. */
const frozenTimers: TimerPort = {
  at: () => ({ cancel: () => undefined }),
  every: () => ({ cancel: () => undefined }),
};

const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setImmediate(r));
  }
};

function dailyWork(): ScheduleWork & { runs: string[] } {
  const schedule: Schedule = {
    id: "aaaaaaa1",
    host: "local",
    vmUuid: "uuid-1",
    vmName: "db",
    when: { every: "daily", at: "02:00" },
    retention: { keepLast: 3 },
    enabled: true,
    createdAt: "2026-01-01T00:00:00.000Z",
  };
  let states: Record<string, ScheduleState> = {
    aaaaaaa1: { lastSlot: "2026-11-26T01:00:00.000Z", failures: 0 }, // 02:00 Berlin on the 26th served
  };
  const runs: string[] = [];
  return {
    runs,
    list: () => [schedule],
    states: () => states,
    globalPause: () => null,
    recordState: (id, state) => {
      states = { ...states, [id]: state };
    },
    run: async (_schedule, tag) => {
      runs.push(tag);
      return {
        snapshot: { name: tag } as Snapshot,
        pruned: [],
        held: [],
        pruneError: null,
        copy: null,
        warnings: [],
        log: [],
      };
    },
    cleanUpInterrupted: async () => "nothing to clean",
    owedCopies: () => new Map(),
    copy: () => Promise.reject(new Error("this schedule does not copy")),
  };
}

describe("wirePower", () => {
  it("on resume after three days asleep, the missed daily run runs once", async () => {
    const home = mkdtempSync(join(tmpdir(), "snapkeep-power-"));
    homes.push(home);
    let now = new Date("2026-11-26T10:00:00Z");
    const work = dailyWork();
    const scheduler = new Scheduler({
      work,
      journal: new Journal(home),
      now: () => now,
      timers: frozenTimers,
    });
    const power = new EventEmitter();
    const reports: string[] = [];
    const dispose = wirePower(
      power,
      () => scheduler,
      (m) => reports.push(m),
    );
    await scheduler.start();
    expect(work.runs).toEqual([]);

    power.emit("suspend");
    now = new Date("2026-11-29T08:00:00Z");
    power.emit("resume");
    await settle();
    expect(work.runs).toEqual(["snapkeep:scheduled@aaaaaaa1:scheduled-2026-11-29-0100Z"]);

    power.emit("resume"); // a second wake-up signal serves nothing twice
    await settle();
    expect(work.runs).toHaveLength(1);
    expect(reports).toEqual([]);

    dispose();
    expect(power.listenerCount("suspend") + power.listenerCount("resume")).toBe(0);
    await scheduler.stop();
  });

  it("does nothing while another process schedules, and reports a failed catch-up", async () => {
    const power = new EventEmitter();
    const reports: string[] = [];
    let target: PowerTarget | null = null;
    const dispose = wirePower(
      power,
      () => target,
      (m) => reports.push(m),
    );
    power.emit("suspend");
    power.emit("resume");
    const calls: string[] = [];
    target = {
      suspend: () => calls.push("suspend"),
      resume: async () => {
        calls.push("resume");
        throw new Error("settings unreadable");
      },
    };
    power.emit("suspend");
    power.emit("resume");
    await settle();
    expect(calls).toEqual(["suspend", "resume"]);
    expect(reports).toEqual(["Catching up after sleep failed: settings unreadable"]);
    dispose();
  });
});

/**
 * The Scheduler's own logic on virtual time: a fake clock and timers, a fake ScheduleWork (no
 * hypervisor: this is queueing, journaling and alerting), and the real journal in a temp dir.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Snapshot } from "../../core/domain/types.js";
import { SnapkeepError } from "../../core/errors.js";
import { Journal, type JobSummary } from "../../core/infra/journal.js";
import { Scheduler, type SchedulerEvent, type ScheduleWork } from "../../core/app/schedules/scheduler.js";
import type { TimerPort } from "../../core/infra/timers.js";
import type { ScheduledRunResult } from "../../core/app/schedules/schedules.js";
import type { Schedule, SchedulePause, ScheduleState } from "../../core/domain/settings.js";

class VirtualClock implements TimerPort {
  now: Date;
  readonly #timers: { at: number; fn: () => void; every?: number; cancelled: boolean }[] = [];
  constructor(start: Date) {
    this.now = start;
  }
  at(when: Date, fn: () => void): { cancel(): void } {
    const t = { at: when.getTime(), fn, cancelled: false };
    this.#timers.push(t);
    return { cancel: () => void (t.cancelled = true) };
  }
  every(ms: number, fn: () => void): { cancel(): void } {
    const t = { at: this.now.getTime() + ms, fn, every: ms, cancelled: false };
    this.#timers.push(t);
    return { cancel: () => void (t.cancelled = true) };
  }
  /** Moves time forward, firing due timers in order, letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.now.getTime() + ms;
    for (;;) {
      const next = this.#timers.filter((t) => !t.cancelled && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (next === undefined) {
        break;
      }
      this.now = new Date(next.at);
      if (next.every === undefined) {
        next.cancelled = true;
      } else {
        next.at += next.every;
      }
      next.fn();
      await settle();
    }
    this.now = new Date(end);
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) {
    await Promise.resolve();
    await new Promise((r) => setImmediate(r));
  }
}

function makeSchedule(id: string, extra: Partial<Schedule> = {}): Schedule {
  return {
    id,
    host: "h1",
    vmUuid: `vm-${id}`,
    vmName: `vm ${id}`,
    when: { every: "cron", cron: "*/10 * * * *" },
    retention: { keepLast: 2 },
    enabled: true,
    createdAt: "2026-01-01T00:00:00.000Z",
    ...extra,
  };
}

class FakeWork implements ScheduleWork {
  schedules: Schedule[] = [];
  state: Record<string, ScheduleState> = {};
  pause: SchedulePause | null = null;
  /** Whether a run fails (host offline) and how long it takes, per call. */
  fail = false;
  runningNow = 0;
  maxRunning = 0;
  readonly runs: { id: string; tag: string }[] = [];
  readonly #release: (() => void)[] = [];
  hold = false;
  readonly cleanups: JobSummary[] = [];

  list(): Schedule[] {
    return this.schedules;
  }
  states(): Record<string, ScheduleState> {
    return this.state;
  }
  globalPause(): SchedulePause | null {
    return this.pause;
  }
  recordState(id: string, state: ScheduleState): void {
    this.state = { ...this.state, [id]: state };
  }
  async run(
    schedule: Schedule,
    tag: string,
    onStep: (step: string) => void,
    signal: AbortSignal,
  ): Promise<ScheduledRunResult> {
    this.runs.push({ id: schedule.id, tag });
    this.runningNow++;
    this.maxRunning = Math.max(this.maxRunning, this.runningNow);
    try {
      onStep("snapshot");
      if (this.hold) {
        await new Promise<void>((resolve) => this.#release.push(resolve));
      }
      if (signal.aborted) {
        throw new SnapkeepError("CANCELLED", "The run was cancelled before its snapshot; nothing was made.");
      }
      if (this.fail) {
        throw new Error("Cannot connect to h1: the connection was refused");
      }
      onStep("snapshot-made");
      return {
        snapshot: { name: tag } as Snapshot,
        pruned: ["old"],
        pruneError: null,
        held: [],
        copy: null,
        warnings: [],
        log: [],
      };
    } finally {
      this.runningNow--;
    }
  }
  releaseAll(): void {
    this.#release.splice(0).forEach((r) => r());
  }
  async cleanUpInterrupted(job: JobSummary): Promise<string> {
    this.cleanups.push(job);
    return "the half-made snapshot was removed";
  }
}

const homes: string[] = [];
afterEach(() => homes.splice(0).forEach((h) => rmSync(h, { recursive: true, force: true })));
function journal(): Journal {
  const home = mkdtempSync(join(tmpdir(), "snapkeep-sched-"));
  homes.push(home);
  return new Journal(home);
}

function setup(work: FakeWork, j = journal(), options: { perHostConcurrency?: number } = {}) {
  const clock = new VirtualClock(new Date("2026-11-26T10:05:00Z"));
  const events: SchedulerEvent[] = [];
  const scheduler = new Scheduler({
    work,
    journal: j,
    now: () => clock.now,
    timers: clock,
    onEvent: (e) => events.push(e),
    ...options,
  });
  return { clock, events, scheduler, journal: j };
}

describe("Scheduler", () => {
  it("runs a due schedule once per slot and journals start, steps and end", async () => {
    const work = new FakeWork();
    work.schedules = [makeSchedule("aaaaaaa1")];
    const { clock, scheduler, journal: j } = setup(work);
    await scheduler.start(); // 10:05: the 10:00 slot is due (the schedule is older)
    await clock.advance(4 * 60_000); // 10:09: nothing new
    await clock.advance(2 * 60_000); // 10:11: the 10:10 slot
    await scheduler.stop();
    expect(work.runs.map((r) => r.tag)).toEqual([
      "snapkeep:scheduled@aaaaaaa1:scheduled-2026-11-26-1000Z",
      "snapkeep:scheduled@aaaaaaa1:scheduled-2026-11-26-1010Z",
    ]);
    const jobs = j.jobs();
    expect(jobs.map((x) => [x.status, x.step, x.pruned])).toEqual([
      ["succeeded", "snapshot-made", ["old"]],
      ["succeeded", "snapshot-made", ["old"]],
    ]);
    expect(work.state["aaaaaaa1"]).toMatchObject({
      lastSlot: "2026-11-26T10:10:00.000Z",
      lastResult: "ok",
      failures: 0,
    });
  });

  it("runs one job per schedule, at most N per host, never two on the same VM", async () => {
    const work = new FakeWork();
    work.hold = true;
    work.schedules = [
      makeSchedule("aaaaaaa1"),
      makeSchedule("aaaaaaa2"),
      makeSchedule("aaaaaaa3"),
      makeSchedule("aaaaaaa4", { vmUuid: "vm-aaaaaaa1", disks: ["vdb"] }), // same VM as 1, all disks there
      makeSchedule("aaaaaaa5", { host: "h2" }),
    ];
    const { clock, scheduler } = setup(work, journal(), { perHostConcurrency: 2 });
    await scheduler.start();
    // h1: 1 and 2 run (limit 2); 3 waits; 4 waits for 1 (same VM, 1 takes every disk); h2: 5 runs.
    expect(work.runs.map((r) => r.id).sort()).toEqual(["aaaaaaa1", "aaaaaaa2", "aaaaaaa5"]);
    await clock.advance(60_000); // ticks while they run start nothing twice
    expect(work.runs).toHaveLength(3);
    work.hold = false;
    work.releaseAll();
    await settle();
    await clock.advance(60_000);
    expect(work.runs.map((r) => r.id).sort()).toEqual([
      "aaaaaaa1",
      "aaaaaaa2",
      "aaaaaaa3",
      "aaaaaaa4",
      "aaaaaaa5",
    ]);
    expect(work.maxRunning).toBeLessThanOrEqual(3);
    await scheduler.stop();
  });

  it("alerts once when a host stays offline, backs off, and says when it recovers", async () => {
    const work = new FakeWork();
    work.fail = true;
    work.schedules = [makeSchedule("aaaaaaa1")];
    const { clock, events, scheduler } = setup(work);
    await scheduler.start();
    await clock.advance(3 * 60 * 60_000); // three hours offline
    const attempts = work.runs.length;
    expect(attempts).toBeGreaterThan(5); // 1, 2, 4, 8, 16, 30, 30 ... minutes
    expect(attempts).toBeLessThan(15);
    expect(events.filter((e) => e.type === "job-failed")).toHaveLength(1);
    expect(events.filter((e) => e.type === "overdue")).toHaveLength(1);
    work.fail = false;
    await clock.advance(31 * 60_000);
    expect(events.filter((e) => e.type === "recovered")).toHaveLength(1);
    expect(work.state["aaaaaaa1"]).toMatchObject({ lastResult: "ok", failures: 0 });
    await scheduler.stop();
  });

  it("reports a job cut off by a crash as interrupted, never done, and cleans up after it", async () => {
    const j = journal();
    j.start({
      job: "job-crashed",
      at: "2026-11-26T09:00:00.000Z",
      kind: "scheduled-snapshot",
      scheduleId: "aaaaaaa1",
      host: "h1",
      vmUuid: "vm-aaaaaaa1",
      vmName: "vm",
      tag: "snapkeep:scheduled@aaaaaaa1:x",
      slot: "2026-11-26T09:00:00.000Z",
    });
    j.progress("job-crashed", "snapshot", new Date("2026-11-26T09:00:01Z"));
    const work = new FakeWork();
    const { events, scheduler } = setup(work, j);
    await scheduler.start();
    await scheduler.stop();
    expect(j.jobs()[0]).toMatchObject({ id: "job-crashed", status: "interrupted", step: "snapshot" });
    expect(work.cleanups.map((c) => c.id)).toEqual(["job-crashed"]);
    expect(events).toContainEqual(
      expect.objectContaining({ type: "interrupted", cleanup: "the half-made snapshot was removed" }),
    );
  });

  it("runs nothing for a paused schedule and catches up once on resume after a long sleep", async () => {
    const work = new FakeWork();
    work.schedules = [
      makeSchedule("aaaaaaa1", { enabled: false }),
      makeSchedule("aaaaaaa2", { when: { every: "daily", at: "02:00" } }),
    ];
    work.state = { aaaaaaa2: { lastSlot: "2026-11-26T01:00:00.000Z", failures: 0 } }; // 02:00 Berlin served
    const { clock, scheduler } = setup(work);
    await scheduler.start();
    expect(work.runs).toEqual([]);
    clock.now = new Date("2026-11-29T08:00:00Z"); // asleep three days: no timer fired
    await scheduler.resume();
    await settle();
    expect(work.runs.map((r) => r.id)).toEqual(["aaaaaaa2"]);
    expect(work.state["aaaaaaa2"]?.lastSlot).toBe("2026-11-29T01:00:00.000Z");
    await scheduler.stop();
  });

  it("cancels a running job: journaled as cancelled, its slot served, no immediate rerun", async () => {
    const work = new FakeWork();
    work.hold = true;
    work.schedules = [makeSchedule("aaaaaaa1")];
    const { clock, events, scheduler, journal: j } = setup(work);
    await scheduler.start();
    const [running] = scheduler.runningJobs();
    expect(scheduler.cancel(running?.id ?? "")).toBe(true);
    expect(scheduler.cancel("job-unknown")).toBe(false);
    work.releaseAll();
    await settle();
    expect(j.jobs().map((x) => x.status)).toEqual(["cancelled"]);
    expect(events.some((e) => e.type === "job-cancelled")).toBe(true);
    work.hold = false;
    await clock.advance(60_000); // 10:06: the 10:00 slot stays served
    expect(work.runs).toHaveLength(1);
    await scheduler.stop();
  });

  it("starts nothing while all schedules are paused for an hour, then serves each missed slot once", async () => {
    const work = new FakeWork();
    work.schedules = [makeSchedule("aaaaaaa1"), makeSchedule("aaaaaaa2", { host: "h2" })];
    // 10:05, the 10:00 slot already served; paused for an hour from now.
    work.state = {
      aaaaaaa1: { lastSlot: "2026-11-26T10:00:00.000Z", failures: 0 },
      aaaaaaa2: { lastSlot: "2026-11-26T10:00:00.000Z", failures: 0 },
    };
    work.pause = { since: "2026-11-26T10:05:00.000Z", until: "2026-11-26T11:05:00.000Z" };
    const { clock, events, scheduler } = setup(work);
    await scheduler.start();
    await clock.advance(59 * 60_000); // 11:04: six slots passed, none run, none "overdue"
    expect(work.runs).toEqual([]);
    expect(events.filter((e) => e.type === "overdue")).toEqual([]);
    await clock.advance(60_000); // 11:05: the pause ends by its own timer
    expect(work.runs.map((r) => r.tag).sort()).toEqual([
      "snapkeep:scheduled@aaaaaaa1:scheduled-2026-11-26-1100Z",
      "snapkeep:scheduled@aaaaaaa2:scheduled-2026-11-26-1100Z",
    ]);
    await clock.advance(4 * 60_000); // 11:09: caught up, nothing more until 11:10
    expect(work.runs).toHaveLength(2);
    await scheduler.stop();
  });

  it("stays paused until resumed when the pause has no end, then catches up once", async () => {
    const work = new FakeWork();
    work.schedules = [makeSchedule("aaaaaaa1", { when: { every: "daily", at: "02:00" } })];
    work.state = { aaaaaaa1: { lastSlot: "2026-11-26T01:00:00.000Z", failures: 0 } };
    work.pause = { since: "2026-11-26T10:05:00.000Z", until: null };
    const { clock, scheduler } = setup(work);
    await scheduler.start();
    await clock.advance(3 * 86_400_000); // three daily slots pass
    expect(work.runs).toEqual([]);
    work.pause = null; // `schedule resume --all`, from another process
    await clock.advance(30_000); // the coarse re-check sees it
    expect(work.runs.map((r) => r.tag)).toEqual(["snapkeep:scheduled@aaaaaaa1:scheduled-2026-11-29-0100Z"]);
    await scheduler.stop();
  });

  it("starts no job between suspend and resume; on resume the missed slot runs once", async () => {
    const work = new FakeWork();
    work.schedules = [makeSchedule("aaaaaaa1")];
    work.state = { aaaaaaa1: { lastSlot: "2026-11-26T10:00:00.000Z", failures: 0 } };
    const { clock, scheduler } = setup(work);
    await scheduler.start();
    await clock.advance(4 * 60_000); // 10:09
    scheduler.suspend();
    await clock.advance(90_000); // the 10:10 slot passes while the machine falls asleep: nothing starts
    expect(work.runs).toEqual([]);
    clock.now = new Date("2026-11-26T12:34:00Z"); // asleep two hours: no timer fired
    await scheduler.resume();
    await settle();
    expect(work.runs.map((r) => r.tag)).toEqual(["snapkeep:scheduled@aaaaaaa1:scheduled-2026-11-26-1230Z"]);
    await scheduler.stop();
  });

  it("holds new jobs back for two minutes only when a suspend is never followed by a resume", async () => {
    const work = new FakeWork();
    work.schedules = [makeSchedule("aaaaaaa1")];
    work.state = { aaaaaaa1: { lastSlot: "2026-11-26T10:00:00.000Z", failures: 0 } };
    const { clock, scheduler } = setup(work);
    await scheduler.start();
    await clock.advance(4 * 60_000 + 30_000); // 10:09:30
    scheduler.suspend(); // the sleep is cancelled; no resume comes
    await clock.advance(60_000); // 10:10:30: held
    expect(work.runs).toEqual([]);
    await clock.advance(90_000); // 10:12:00: the hold is over, the 10:10 slot runs
    expect(work.runs.map((r) => r.tag)).toEqual(["snapkeep:scheduled@aaaaaaa1:scheduled-2026-11-26-1010Z"]);
    await scheduler.stop();
  });
});

/**
 * The Scheduler's own logic on virtual time: a fake clock and timers, a fake ScheduleWork (no
 * hypervisor: this is queueing, journaling and alerting), and the real journal in a temp dir.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Snapshot } from "../../core/domain/types.js";
import { SnapkeepError } from "../../core/errors.js";
import { isScheduledJob, Journal, type JobSummary } from "../../core/infra/journal.js";
import { Scheduler, type SchedulerEvent, type ScheduleWork } from "../../core/app/schedules/scheduler.js";
import { settle, VirtualClock } from "../support/virtual-clock.js";
import type { ScheduledCopyResult, ScheduledRunResult } from "../../core/app/schedules/schedules.js";
import type { Schedule, SchedulePause, ScheduleState } from "../../core/domain/settings.js";

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
  /** Copies: what each schedule owes, whether the target answers, each copy sent, and a gate. */
  readonly owed = new Map<string, string>();
  targetDown = false;
  /** How the copies' restore drills go (null: none drilled). */
  drillPasses: boolean | null = null;
  copyHold = false;
  readonly copies: { id: string; tag: string; at: number }[] = [];
  readonly copyingNow: Schedule[] = [];
  readonly #copyRelease: (() => void)[] = [];
  clock: { now: Date } | undefined;

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
      if (schedule.copy !== undefined) {
        this.owed.set(schedule.id, tag); // every run is copied; the newest owed goes
      }
      return {
        snapshot: { name: tag } as Snapshot,
        pruned: ["old"],
        pruneError: null,
        held: [],
        copy:
          schedule.copy === undefined
            ? null
            : { due: true, reason: "every run", target: schedule.copy.target },
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
  owedCopies(): Map<string, { tag: string }> {
    return new Map([...this.owed].map(([id, tag]) => [id, { tag }]));
  }
  async copy(schedule: Schedule, onStep: (step: string) => void): Promise<ScheduledCopyResult> {
    const tag = this.owed.get(schedule.id) ?? "?";
    const target = schedule.copy?.target ?? "?";
    this.copies.push({ id: schedule.id, tag, at: this.clock?.now.getTime() ?? 0 });
    this.copyingNow.push(schedule);
    try {
      onStep("copy");
      if (this.copyHold) {
        await new Promise<void>((resolve) => this.#copyRelease.push(resolve));
      }
      const base = {
        attempted: true,
        reason: "owed",
        snapshotTag: tag,
        target,
        prunedCopies: [],
        reverified: null,
        drilled: null,
      };
      if (this.targetDown) {
        const failure = { kind: "target-offline" as const, detail: `${target} cannot be reached` };
        const copy = { ...base, exportId: null, bytesSent: 0, resumed: false, failure };
        return { copy, pruned: [], held: [], pruneError: null };
      }
      if (this.owed.get(schedule.id) === tag) {
        this.owed.delete(schedule.id);
      }
      const exportId = `export-${tag}`;
      const drilled =
        this.drillPasses === null
          ? null
          : { id: null, exportId, passed: this.drillPasses, reason: this.drillPasses ? null : "no agent" };
      const copy = { ...base, exportId, bytesSent: 100, resumed: false, failure: null, drilled };
      return { copy, pruned: [], held: [], pruneError: null };
    } finally {
      this.copyingNow.splice(this.copyingNow.indexOf(schedule), 1);
    }
  }
  releaseCopies(): void {
    this.#copyRelease.splice(0).forEach((r) => r());
  }
  async cleanUpInterrupted(job: JobSummary): Promise<string> {
    this.cleanups.push(job);
    return "the half-made snapshot was removed";
  }
}

/** A process that cannot exist here (above Linux's largest pid): a daemon killed with -9. */
const DEAD_PROCESS = { pid: 2 ** 22 + 12_345, hostname: hostname() };

const homes: string[] = [];
afterEach(() => homes.splice(0).forEach((h) => rmSync(h, { recursive: true, force: true })));
function journal(): Journal {
  const home = mkdtempSync(join(tmpdir(), "snapkeep-sched-"));
  homes.push(home);
  return new Journal(home);
}

function setup(
  work: FakeWork,
  j = journal(),
  options: { perHostConcurrency?: number } = {},
  start = new Date("2026-11-26T10:05:00Z"),
) {
  const clock = new VirtualClock(start);
  work.clock = clock;
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
    // Every attempt is logged; only the first of the streak is news.
    const failures = events.flatMap((e) => (e.type === "job-failed" ? [e.repeated] : []));
    expect(failures).toHaveLength(attempts);
    expect(failures.filter((repeated) => !repeated)).toHaveLength(1);
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
      owner: DEAD_PROCESS,
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

  describe("off-host copies", () => {
    const copyTo = (target: string) => ({
      copy: {
        target,
        cadence: { every: "runs" as const, n: 1 },
        retention: { keepLast: 2 },
        holdLocalUntilCopied: true,
      },
    });

    it("queues a copy as a job of its own: the host's snapshot slot is free while it runs", async () => {
      const work = new FakeWork();
      work.copyHold = true;
      work.schedules = [makeSchedule("aaaaaaa1", copyTo("nas")), makeSchedule("aaaaaaa2")];
      const { scheduler, journal: j } = setup(work, journal(), { perHostConcurrency: 1 });
      await scheduler.start();
      await settle();
      // The first run ended, its copy runs (held), and the other VM's snapshot ran beside it.
      expect(work.runs.map((r) => r.id)).toEqual(["aaaaaaa1", "aaaaaaa2"]);
      expect(work.copyingNow.map((s) => s.id)).toEqual(["aaaaaaa1"]);
      expect(scheduler.runningJobs().map((r) => r.kind)).toEqual(["copy"]);
      work.releaseCopies();
      await settle();
      await scheduler.stop();
      const jobs = j.jobs().filter(isScheduledJob);
      // The tick after the first run starts its copy, then the snapshot that waited for the slot.
      expect(jobs.map((x) => [x.kind, x.scheduleId, x.status])).toEqual([
        ["scheduled-snapshot", "aaaaaaa1", "succeeded"],
        ["copy", "aaaaaaa1", "succeeded"],
        ["scheduled-snapshot", "aaaaaaa2", "succeeded"],
      ]);
      const copyJob = jobs[1];
      expect(copyJob?.target).toBe("nas");
      expect(copyJob?.tag).toBe(work.runs[0]?.tag);
      expect(copyJob?.copy).toMatchObject({
        target: "nas",
        exportId: `export-${work.runs[0]?.tag}`,
        bytesSent: 100,
      });
      expect(jobs[0]?.message).toMatch(/A copy to nas is queued \(every run\)/);
    });

    it("sends one copy per target and per host at a time", async () => {
      const work = new FakeWork();
      work.copyHold = true;
      work.schedules = [
        makeSchedule("aaaaaaa1", copyTo("nas")),
        makeSchedule("aaaaaaa2", { host: "h2", ...copyTo("nas") }), // same target as 1
        makeSchedule("aaaaaaa3", { host: "h2", ...copyTo("usb") }), // another target, on h2
        makeSchedule("aaaaaaa4", { host: "h3", ...copyTo("usb") }),
      ];
      const { clock, scheduler } = setup(work);
      await scheduler.start();
      await settle();
      // 1 takes nas and h1; 2 waits for nas; 3 takes usb and h2; 4 waits for usb.
      expect(work.copyingNow.map((s) => s.id).sort()).toEqual(["aaaaaaa1", "aaaaaaa3"]);
      await clock.advance(60_000);
      expect(work.copies).toHaveLength(2);
      work.releaseCopies();
      await settle();
      expect(work.copyingNow.map((s) => s.id).sort()).toEqual(["aaaaaaa2", "aaaaaaa4"]);
      work.copyHold = false;
      work.releaseCopies();
      await settle();
      expect(work.copies.map((c) => c.id).sort()).toEqual(["aaaaaaa1", "aaaaaaa2", "aaaaaaa3", "aaaaaaa4"]);
      await scheduler.stop();
    });

    it("never snapshots a VM while its copy reads it; the snapshot runs as soon as the copy ends", async () => {
      const work = new FakeWork();
      work.copyHold = true;
      work.schedules = [makeSchedule("aaaaaaa1", copyTo("nas"))];
      const { clock, scheduler } = setup(work);
      await scheduler.start(); // 10:05: the 10:00 run, then its copy (held)
      await clock.advance(6 * 60_000); // 10:11: the 10:10 slot is due, but the copy reads the VM
      expect(work.runs).toHaveLength(1);
      work.copyHold = false;
      work.releaseCopies();
      await settle();
      expect(work.runs).toHaveLength(2);
      await clock.advance(60_000);
      expect(work.copies.map((c) => c.tag)).toEqual([work.runs[0]?.tag, work.runs[1]?.tag]);
      await scheduler.stop();
    });

    it("tries a failed copy again after 1, 2, 4 ... minutes up to an hour, alerts once, and says when it lands", async () => {
      const work = new FakeWork();
      work.targetDown = true;
      work.schedules = [
        makeSchedule("aaaaaaa1", { when: { every: "daily", at: "02:00" }, ...copyTo("nas") }),
      ];
      const start = new Date("2026-11-26T01:05:00Z"); // 02:05 in Berlin: the 02:00 run is due
      const { clock, events, scheduler, journal: j } = setup(work, journal(), {}, start);
      await scheduler.start();
      await clock.advance(4 * 60 * 60_000); // four hours with the target away
      const minutesAfter = work.copies.map((c) => (c.at - start.getTime()) / 60_000);
      expect(minutesAfter).toEqual([0, 1, 3, 7, 15, 31, 63, 123, 183]);
      expect(events.filter((e) => e.type === "copy-failed")).toHaveLength(1);
      const failed = j.jobs().filter((x) => x.kind === "copy");
      expect(failed.every((x) => x.status === "failed")).toBe(true);
      expect(failed[0]?.message).toMatch(/nas cannot be reached\. Tried again at 2026-11-26T01:06:00\.000Z/);
      // Back: the next try sends the one owed copy, says so once, and nothing more is tried.
      work.targetDown = false;
      await clock.advance(60 * 60_000);
      expect(work.copies).toHaveLength(10);
      expect(events.filter((e) => e.type === "copy-recovered")).toHaveLength(1);
      await clock.advance(10 * 60 * 60_000);
      expect(work.copies).toHaveLength(10);
      expect(work.runs).toHaveLength(1); // no run was due meanwhile: the copy did not wait for one
      await scheduler.stop();
    });

    it("raises a failing restore drill of the copies once, and says when a drill passes again", async () => {
      const work = new FakeWork();
      work.drillPasses = false;
      work.schedules = [makeSchedule("aaaaaaa1", copyTo("nas"))];
      const { clock, events, scheduler } = setup(work);
      await scheduler.start();
      await clock.advance(30 * 60_000); // three more runs and copies, each drilled and failing
      expect(work.copies.length).toBeGreaterThan(1);
      const failed = events.filter((e) => e.type === "drill-failed");
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({
        target: "nas",
        message: "no agent",
        exportId: `export-${work.copies[0]?.tag ?? ""}`,
      });
      expect(events.filter((e) => e.type === "drill-passed")).toHaveLength(0);
      work.drillPasses = true;
      await clock.advance(30 * 60_000);
      expect(events.filter((e) => e.type === "drill-passed")).toHaveLength(1);
      expect(events.filter((e) => e.type === "drill-failed")).toHaveLength(1);
      await scheduler.stop();
    });

    it("at start, sends a copy still owed before the VM's next snapshot: a cut-off copy resumes its own snapshot", async () => {
      const j = journal();
      j.start({
        job: "job-cut",
        at: "2026-11-26T09:58:00.000Z",
        kind: "copy",
        scheduleId: "aaaaaaa1",
        host: "h1",
        vmUuid: "vm-aaaaaaa1",
        vmName: "vm aaaaaaa1",
        tag: "snapkeep:scheduled@aaaaaaa1:scheduled-2026-11-26-0950Z",
        target: "nas",
        owner: DEAD_PROCESS,
      });
      j.progress("job-cut", "copy", new Date("2026-11-26T09:58:01.000Z"));
      const work = new FakeWork();
      work.schedules = [makeSchedule("aaaaaaa1", copyTo("nas"))];
      // The 10:00 slot is due at the 10:05 start too: it waits for the copy.
      work.state = { aaaaaaa1: { lastSlot: "2026-11-26T09:50:00.000Z", failures: 0 } };
      work.owed.set("aaaaaaa1", "snapkeep:scheduled@aaaaaaa1:scheduled-2026-11-26-0950Z");
      const { events, scheduler } = setup(work, j);
      await scheduler.start();
      await settle();
      await scheduler.stop();
      expect(work.runs.map((r) => r.tag)).toEqual(["snapkeep:scheduled@aaaaaaa1:scheduled-2026-11-26-1000Z"]);
      const interrupted = events.find((e) => e.type === "interrupted");
      expect(interrupted?.type === "interrupted" && interrupted.job.kind).toBe("copy");
      expect(work.cleanups.map((c) => c.id)).toEqual(["job-cut"]);
      // The cut-off copy's own snapshot went first, then the run, then the run's copy.
      expect(work.copies.map((c) => c.tag)).toEqual([
        "snapkeep:scheduled@aaaaaaa1:scheduled-2026-11-26-0950Z",
        "snapkeep:scheduled@aaaaaaa1:scheduled-2026-11-26-1000Z",
      ]);
      expect(j.jobs().map((x) => [x.id === "job-cut" ? "cut" : "new", x.kind, x.status])).toEqual([
        ["cut", "copy", "interrupted"],
        ["new", "copy", "succeeded"],
        ["new", "scheduled-snapshot", "succeeded"],
        ["new", "copy", "succeeded"],
      ]);
    });
  });
});

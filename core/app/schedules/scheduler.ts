import type { TimerPort } from "../../infra/timers.js";
import { randomBytes } from "node:crypto";
import { SnapkeepError, describeError, isSnapkeepError } from "../../errors.js";
import { hintOf } from "../../domain/explain.js";
import type { Schedule, SchedulePause, ScheduleState } from "../../domain/settings.js";
import {
  dueSlot,
  firstMissedSlot,
  overdueAfterMs,
  stateAfterFailure,
  stateAfterSuccess,
} from "../../domain/schedule/due.js";
import { isScheduledJob, type Journal, type ScheduledJobSummary } from "../../infra/journal.js";
import { activePause } from "../../domain/schedule/pause.js";
import type { ScheduledCopyResult, ScheduledRunResult } from "./schedules.js";
import type { CopyRunResult } from "./copies.js";
import { scheduledTag, snapshotWasMade } from "./schedules.js";
import { nextSlots } from "../../domain/schedule/spec.js";
import { copyRetryDelayMs } from "../../domain/copy/due.js";
import { copyRecord, snapshotRecord } from "./job-records.js";
import { withJobLog } from "../../infra/runner/job-log.js";

/** What the scheduler needs from the rest of Snapkeep; the Schedules class provides it in production. */
export interface ScheduleWork {
  list(): Schedule[];
  states(): Record<string, ScheduleState>;
  /** "Pause all schedules", as persisted: another process (the CLI) may set or lift it. */
  globalPause(): SchedulePause | null;
  recordState(id: string, state: ScheduleState): void;
  /** One run; `onStep` names each step as it starts, for the journal ("snapshot-made" matters). */
  run(
    schedule: Schedule,
    tag: string,
    onStep: (step: string) => void,
    signal: AbortSignal,
  ): Promise<ScheduledRunResult>;
  /** After a crash: remove what an interrupted job half-made, or mark it so it never counts. */
  cleanUpInterrupted(job: ScheduledJobSummary): Promise<string>;
  /**
   * The snapshot each schedule's copy job would send now, by schedule id: only schedules that copy
   * and owe one. One read of the settings for all (the scheduler asks at start for every schedule).
   */
  owedCopies(): ReadonlyMap<string, { readonly tag: string }>;
  /** A copy job: sends what is owed, then lets the prune go on (Schedules.copy). */
  copy(schedule: Schedule, onStep: (step: string) => void, signal: AbortSignal): Promise<ScheduledCopyResult>;
}

export type SchedulerEvent =
  | { readonly type: "job-started"; readonly job: string; readonly schedule: Schedule; readonly slot: string }
  | {
      readonly type: "job-succeeded";
      readonly job: string;
      readonly schedule: Schedule;
      readonly snapshot: string;
      readonly pruned: readonly string[];
    }
  | {
      readonly type: "job-failed";
      readonly job: string;
      readonly schedule: Schedule;
      readonly message: string;
      /** The schedule's previous run failed too: the same streak. */
      readonly repeated: boolean;
    }
  | {
      readonly type: "prune-failed";
      readonly job: string;
      readonly schedule: Schedule;
      readonly message: string;
    }
  | {
      readonly type: "copy-started";
      readonly job: string;
      readonly schedule: Schedule;
      readonly snapshot: string;
      readonly target: string;
    }
  | {
      /** Every copy job's end, for the log; the alerts are copy-failed and copy-recovered. */
      readonly type: "copy-ended";
      readonly job: string;
      readonly schedule: Schedule;
      readonly result: CopyRunResult;
      /** When a failed copy is tried again (unless a run comes first). */
      readonly retryAt: string | null;
    }
  | {
      /** Once per outage: a target that stays offline is one alert, until a copy lands again. */
      readonly type: "copy-failed";
      readonly job: string;
      readonly schedule: Schedule;
      readonly target: string;
      readonly message: string;
    }
  | {
      readonly type: "copy-recovered";
      readonly job: string;
      readonly schedule: Schedule;
      readonly target: string;
    }
  | {
      /** A copy checked again on the target no longer matches its checksums: it is marked damaged. */
      readonly type: "copy-damaged";
      readonly job: string;
      readonly schedule: Schedule;
      readonly target: string;
      readonly exportId: string;
      readonly message: string;
    }
  | {
      /** A restore drill of a landed copy failed: once per streak, until one passes. */
      readonly type: "drill-failed";
      readonly job: string;
      readonly schedule: Schedule;
      readonly target: string;
      readonly exportId: string;
      readonly message: string;
    }
  | {
      readonly type: "drill-passed";
      readonly job: string;
      readonly schedule: Schedule;
      readonly target: string;
    }
  | { readonly type: "job-cancelled"; readonly job: string; readonly schedule: Schedule }
  | { readonly type: "overdue"; readonly schedule: Schedule; readonly since: string }
  | { readonly type: "recovered"; readonly schedule: Schedule }
  | { readonly type: "interrupted"; readonly job: ScheduledJobSummary; readonly cleanup: string }
  | { readonly type: "scheduler-error"; readonly message: string };

export interface SchedulerOptions {
  readonly work: ScheduleWork;
  readonly journal: Journal;
  readonly now: () => Date;
  readonly timers: TimerPort;
  readonly onEvent?: (event: SchedulerEvent) => void;
  /** Jobs at once per host: snapshots of different VMs overlap, without swamping one host. */
  readonly perHostConcurrency?: number;
  /** The coarse re-check: catches wake-ups, clock changes and schedules added by another process. */
  readonly checkEveryMs?: number;
}

/** How long a suspend() without a resume() holds new jobs back: the time a machine takes to sleep. */
const SUSPEND_HOLD_MS = 2 * 60_000;

interface RunningJob {
  readonly id: string;
  readonly schedule: Schedule;
  readonly done: Promise<void>;
  readonly abort: AbortController;
}

/** A schedule's copy waiting to be sent: from `notBefore` on (ms), after `failures` in a row. */
interface WantedCopy {
  readonly notBefore: number;
  readonly failures: number;
}

/**
 * Runs schedules. Due-ness comes from persisted state and `now` (see dueSlot), never from timer
 * bookkeeping, so a sleep, a restart or a clock change cannot make a run happen twice or be lost:
 * timers only say "look again now". Jobs run one per schedule at a time, at most
 * `perHostConcurrency` per host, and never two on the same disk. Every job is journaled.
 *
 * A schedule's off-host copy is a job of its own, queued by the run that chose its snapshot (and,
 * at start, for every copy still owed, which resumes one a crash cut off). Copies wait for their
 * target and host, one copy per target and per host at a time, without taking a host's snapshot
 * slot, so a slow NAS never delays the next snapshot of another VM; a copy and a snapshot of the
 * same VM never overlap (qemu-img's locks would fail one of them). A failed copy is tried again
 * after 1, 2, 4 ... 60 minutes, or by the next run, whichever comes first.
 */
export class Scheduler {
  readonly #o: Required<Omit<SchedulerOptions, "onEvent">> & Pick<SchedulerOptions, "onEvent">;
  readonly #running = new Map<string, RunningJob>();
  /** Copy jobs running, by schedule id. */
  readonly #copying = new Map<string, RunningJob>();
  /** Copies owed and not running, by schedule id. */
  readonly #wantedCopies = new Map<string, WantedCopy>();
  /** Alerts already raised, so a host that stays offline is one alert, not one per minute. */
  readonly #raised = new Set<string>();
  #wake: { cancel(): void } | undefined;
  #poll: { cancel(): void } | undefined;
  #ticking: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  /** When the machine said it goes to sleep; cleared by resume(), or by the clock (see suspend). */
  #suspendedAt: number | undefined;

  constructor(options: SchedulerOptions) {
    this.#o = { perHostConcurrency: 2, checkEveryMs: 30_000, ...options };
  }

  /** Recovers interrupted jobs from the journal, then starts watching the clock. */
  async start(): Promise<void> {
    // A UI's job cut off with its process is marked interrupted too; only the schedules' own
    // need cleaning up here.
    for (const job of this.#o.journal.recoverInterrupted(this.#o.now()).filter(isScheduledJob)) {
      const cleanup = await this.#o.work
        .cleanUpInterrupted(job)
        .catch((error: unknown) => `cleanup failed: ${describeError(error)}`);
      const slot = job.slot;
      if (slot !== null && snapshotWasMade(job)) {
        // Its snapshot is complete: the slot is served, only the prune is missing.
        this.#guard("recording the interrupted job's slot", () =>
          this.#o.work.recordState(
            job.scheduleId,
            stateAfterSuccess(this.#o.work.states()[job.scheduleId], new Date(slot), this.#o.now()),
          ),
        );
      }
      this.#emit({ type: "interrupted", job, cleanup });
    }
    // Every copy still owed goes now: one cut off by the stop resumes on the target.
    this.#guard("checking the copies owed", () => {
      for (const id of this.#o.work.owedCopies().keys()) {
        this.#wantedCopies.set(id, { notBefore: 0, failures: 0 });
      }
    });
    this.#poll = this.#o.timers.every(this.#o.checkEveryMs, () => void this.tick());
    await this.tick();
  }

  /**
   * The machine is about to sleep (the desktop calls this on suspend): no new job starts, so none is
   * cut off seconds after it began. Running jobs go on; their journal records each step as it
   * happens, so a sleep that never wakes leaves them reported as interrupted, never as done.
   * The hold ends by itself after SUSPEND_HOLD_MS of waking time, in case no resume ever comes (a
   * sleep that was cancelled, a platform that does not send it).
   */
  suspend(): void {
    this.#suspendedAt = this.#o.now().getTime();
  }

  /** After sleep or a long pause (the desktop calls this on resume): missed runs run, once. */
  resume(): Promise<void> {
    this.#suspendedAt = undefined;
    return this.tick();
  }

  /** Starts every due job that may start now, then arms a timer for the next slot. */
  tick(): Promise<void> {
    if (this.#stopped) {
      return Promise.resolve();
    }
    if (this.#ticking !== undefined) {
      this.#again = true; // a tick during a tick runs once more afterwards, never in parallel
      return this.#ticking;
    }
    this.#ticking = this.#tickOnce().finally(() => {
      this.#ticking = undefined;
      if (this.#again) {
        this.#again = false;
        void this.tick();
      }
    });
    return this.#ticking;
  }

  runningJobs(): { id: string; scheduleId: string; kind: "scheduled-snapshot" | "copy" }[] {
    return [
      ...[...this.#running.values()].map((j) => ({
        id: j.id,
        scheduleId: j.schedule.id,
        kind: "scheduled-snapshot" as const,
      })),
      ...[...this.#copying.values()].map((j) => ({
        id: j.id,
        scheduleId: j.schedule.id,
        kind: "copy" as const,
      })),
    ];
  }

  /**
   * Cancels a running job between its steps: before the snapshot nothing is made; after it, the
   * snapshot is kept (it is complete) and the prune is skipped. The slot counts as served, so a
   * cancelled run does not restart at once. Returns false for an unknown or finished job.
   */
  cancel(jobId: string): boolean {
    const job = [...this.#running.values(), ...this.#copying.values()].find((j) => j.id === jobId);
    job?.abort.abort();
    return job !== undefined;
  }

  /** Stops timers and waits for running jobs to finish (each finishes or fails on its own). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.cancel();
    this.#poll?.cancel();
    await this.#ticking;
    await Promise.all([...this.#running.values(), ...this.#copying.values()].map((j) => j.done));
  }

  async #tickOnce(): Promise<void> {
    const now = this.#o.now();
    const schedules = this.#o.work.list();
    const states = this.#o.work.states();
    // Paused by the admin: nothing starts and nothing is "overdue"; when the pause ends, each
    // schedule's latest missed slot is due, so missed runs run once, as after a sleep.
    const pause = activePause(this.#o.work.globalPause(), now);
    if (this.#suspendedAt !== undefined && now.getTime() - this.#suspendedAt >= SUSPEND_HOLD_MS) {
      this.#suspendedAt = undefined;
    }
    if (pause !== null || this.#suspendedAt !== undefined) {
      this.#guard("arming the end of the pause", () => {
        this.#wake?.cancel();
        this.#wake =
          pause?.until === null || pause === null
            ? undefined
            : this.#o.timers.at(new Date(pause.until), () => void this.tick());
      });
      return;
    }
    // Copies first: a copy waiting for its VM (queued before the VM's next slot, or owed since a
    // stop) goes before that VM's next snapshot, so a copy cut off by a crash resumes its own
    // snapshot on the target rather than being overtaken by a newer one.
    this.#guard("starting copies", () => this.#startWantedCopies(schedules, now));
    for (const schedule of schedules) {
      // One broken schedule (a bad time edited into the file) must not stop the others.
      this.#guard(`checking schedule ${schedule.id}`, () => {
        const slot = dueSlot(schedule, states[schedule.id], now);
        this.#watchOverdue(schedule, states[schedule.id], now);
        if (slot !== null && !this.#running.has(schedule.id) && this.#mayStart(schedule)) {
          this.#startJob(schedule, slot);
        }
      });
    }
    this.#guard("arming the next wake-up", () => this.#armNextWake(schedules, states, now));
  }

  #startWantedCopies(schedules: readonly Schedule[], now: Date): void {
    for (const [id, wanted] of this.#wantedCopies) {
      const schedule = schedules.find((s) => s.id === id);
      if (schedule?.copy === undefined) {
        this.#wantedCopies.delete(id); // removed, or no longer copies
        continue;
      }
      if (
        schedule.enabled &&
        wanted.notBefore <= now.getTime() &&
        !this.#copying.has(id) &&
        this.#mayStartCopy(schedule)
      ) {
        this.#startCopy(schedule, wanted);
      }
    }
  }

  /** One copy per target and per host at a time, and never beside a snapshot job of the same VM. */
  #mayStartCopy(schedule: Schedule): boolean {
    const sameVm = (j: RunningJob): boolean =>
      j.schedule.host === schedule.host && j.schedule.vmUuid === schedule.vmUuid;
    return (
      ![...this.#running.values()].some(sameVm) &&
      ![...this.#copying.values()].some(
        (j) => j.schedule.host === schedule.host || j.schedule.copy?.target === schedule.copy?.target,
      )
    );
  }

  #mayStart(schedule: Schedule): boolean {
    const sameHost = [...this.#running.values()].filter((j) => j.schedule.host === schedule.host);
    if (sameHost.length >= this.#o.perHostConcurrency) {
      return false;
    }
    // One job per VM, not only per disk: freezing and hooks act on the whole guest, and two jobs
    // freezing and thawing one guest would thaw it in the middle of the other's snapshot. A copy
    // reading the VM's image holds it too (a shut-off VM's snapshot needs qemu-img's write lock).
    return (
      !sameHost.some((j) => j.schedule.vmUuid === schedule.vmUuid) &&
      ![...this.#copying.values()].some(
        (j) => j.schedule.host === schedule.host && j.schedule.vmUuid === schedule.vmUuid,
      )
    );
  }

  #startJob(schedule: Schedule, slot: Date): void {
    const id = `job-${randomBytes(6).toString("hex")}`;
    const tag = scheduledTag(schedule, slot);
    const startedAt = this.#o.now();
    this.#o.journal.start({
      job: id,
      at: startedAt.toISOString(),
      kind: "scheduled-snapshot",
      scheduleId: schedule.id,
      host: schedule.host,
      vmUuid: schedule.vmUuid,
      vmName: schedule.vmName,
      tag,
      slot: slot.toISOString(),
    });
    this.#emit({ type: "job-started", job: id, schedule, slot: slot.toISOString() });
    const abort = new AbortController();
    const done = this.#execute(id, schedule, slot, tag, abort.signal).finally(() => {
      this.#running.delete(schedule.id);
      void this.tick(); // a finished job may unblock another on the same host or disk
    });
    this.#running.set(schedule.id, { id, schedule, done, abort });
  }

  async #execute(
    id: string,
    schedule: Schedule,
    slot: Date,
    tag: string,
    signal: AbortSignal,
  ): Promise<void> {
    const previous = this.#o.work.states()[schedule.id];
    try {
      const log = (step: string): void => this.#o.journal.progress(id, step, this.#o.now());
      // The commands it runs go into its log too (infra/runner/job-log.ts).
      const result = await withJobLog(log, () => this.#o.work.run(schedule, tag, log, signal));
      const now = this.#o.now();
      this.#o.work.recordState(schedule.id, stateAfterSuccess(this.#o.work.states()[schedule.id], slot, now));
      this.#o.journal.end(snapshotRecord(id, now, result));
      this.#emit({
        type: "job-succeeded",
        job: id,
        schedule,
        snapshot: result.snapshot.name,
        pruned: result.pruned,
      });
      if (result.pruneError !== null) {
        this.#emit({ type: "prune-failed", job: id, schedule, message: result.pruneError });
      }
      if (result.copy?.due === true && !this.#wantedCopies.has(schedule.id)) {
        // A copy already waiting out a failure keeps its wait: a per-minute schedule must not try
        // an offline target every minute.
        this.#wantedCopies.set(schedule.id, { notBefore: 0, failures: 0 });
      }
      if (this.#raised.delete(`failed:${schedule.id}`) || previous?.lastResult === "failed") {
        this.#emit({ type: "recovered", schedule });
      }
      this.#raised.delete(`overdue:${schedule.id}`);
    } catch (error) {
      const now = this.#o.now();
      // The journal is read in the UI and by `snapkeep jobs list` alike: the UI's words fit both.
      const hinted = error instanceof SnapkeepError ? hintOf(error, "ui") : null;
      const hint = hinted === null ? "" : ` ${hinted}`;
      const message = `${describeError(error)}${hint}`;
      if (signal.aborted && isSnapkeepError(error, "CANCELLED")) {
        this.#o.work.recordState(schedule.id, {
          ...stateAfterSuccess(this.#o.work.states()[schedule.id], slot, now),
          lastResult: "cancelled",
        });
        this.#o.journal.end({ job: id, at: now.toISOString(), status: "cancelled", message });
        this.#emit({ type: "job-cancelled", job: id, schedule });
        return;
      }
      this.#o.work.recordState(
        schedule.id,
        stateAfterFailure(this.#o.work.states()[schedule.id], message, now),
      );
      this.#o.journal.end({ job: id, at: now.toISOString(), status: "failed", message });
      // Every failure is an event (one log line per job, a monitor's /fail per run); `repeated`
      // says the schedule was failing already, so notifications can stay at one per streak.
      const repeated = this.#raised.has(`failed:${schedule.id}`) || previous?.lastResult === "failed";
      this.#raised.add(`failed:${schedule.id}`);
      this.#emit({ type: "job-failed", job: id, schedule, message, repeated });
    }
  }

  #startCopy(schedule: Schedule, wanted: WantedCopy): void {
    const owed = this.#o.work.owedCopies().get(schedule.id);
    const target = schedule.copy?.target;
    if (owed === undefined || target === undefined) {
      this.#wantedCopies.delete(schedule.id); // landed meanwhile (another process, or a listing)
      return;
    }
    const id = `job-${randomBytes(6).toString("hex")}`;
    this.#o.journal.start({
      job: id,
      at: this.#o.now().toISOString(),
      kind: "copy",
      scheduleId: schedule.id,
      host: schedule.host,
      vmUuid: schedule.vmUuid,
      vmName: schedule.vmName,
      tag: owed.tag,
      target,
    });
    this.#wantedCopies.delete(schedule.id);
    this.#emit({ type: "copy-started", job: id, schedule, snapshot: owed.tag, target });
    const abort = new AbortController();
    const done = this.#executeCopy(id, schedule, wanted, abort.signal).finally(() => {
      this.#copying.delete(schedule.id);
      void this.tick(); // the VM, the target and the host are free for the next job
    });
    this.#copying.set(schedule.id, { id, schedule, done, abort });
  }

  async #executeCopy(id: string, schedule: Schedule, wanted: WantedCopy, signal: AbortSignal): Promise<void> {
    try {
      const log = (step: string): void => this.#o.journal.progress(id, step, this.#o.now());
      const result = await withJobLog(log, () => this.#o.work.copy(schedule, log, signal));
      const now = this.#o.now();
      const failed = result.copy.attempted && result.copy.exportId === null;
      const retryAt = failed ? this.#retryCopy(schedule, wanted, now) : null;
      if (!failed && this.#o.work.owedCopies().has(schedule.id)) {
        // A run chose a newer snapshot while this copy ran: it goes next.
        this.#wantedCopies.set(schedule.id, { notBefore: 0, failures: 0 });
      }
      this.#o.journal.end(copyRecord(id, now, result, retryAt));
      this.#emit({
        type: "copy-ended",
        job: id,
        schedule,
        result: result.copy,
        retryAt: retryAt?.toISOString() ?? null,
      });
      if (result.pruneError !== null) {
        this.#emit({ type: "prune-failed", job: id, schedule, message: result.pruneError });
      }
      this.#reportCopy(id, schedule, result.copy);
    } catch (error) {
      const now = this.#o.now();
      const message = describeError(error);
      if (signal.aborted && isSnapkeepError(error, "CANCELLED")) {
        // Still owed: the next run queues it again, and the partial export is resumed then.
        this.#o.journal.end({ job: id, at: now.toISOString(), status: "cancelled", message });
        this.#emit({ type: "job-cancelled", job: id, schedule });
        return;
      }
      const retryAt = this.#retryCopy(schedule, wanted, now);
      const result = failedCopy(schedule, message);
      this.#o.journal.end({ job: id, at: now.toISOString(), status: "failed", message });
      this.#emit({ type: "copy-ended", job: id, schedule, result, retryAt: retryAt.toISOString() });
      this.#reportCopy(id, schedule, result);
    }
  }

  /** Queues a failed copy again after its backoff; returns when it is tried. */
  #retryCopy(schedule: Schedule, wanted: WantedCopy, now: Date): Date {
    const failures = wanted.failures + 1;
    const notBefore = now.getTime() + copyRetryDelayMs(failures);
    this.#wantedCopies.set(schedule.id, { notBefore, failures });
    return new Date(notBefore);
  }

  /** One alert when copies to a target start failing, one when a copy lands again. */
  #reportCopy(job: string, schedule: Schedule, copy: CopyRunResult): void {
    if (!copy.attempted) {
      return;
    }
    const checked = copy.reverified;
    if (checked !== null && checked.ok === false && checked.exportId !== null) {
      this.#emit({
        type: "copy-damaged",
        job,
        schedule,
        target: copy.target,
        exportId: checked.exportId,
        message: checked.detail ?? "it no longer matches its checksums",
      });
    }
    this.#reportDrill(job, schedule, copy);
    const key = `copy:${schedule.id}`;
    if (copy.failure !== null) {
      if (!this.#raised.has(key)) {
        this.#raised.add(key);
        const message = copy.failure.detail ?? copy.failure.kind;
        this.#emit({ type: "copy-failed", job, schedule, target: copy.target, message });
      }
    } else if (this.#raised.delete(key)) {
      this.#emit({ type: "copy-recovered", job, schedule, target: copy.target });
    }
  }

  /** A failed restore drill raises its alarm once; the next drill that passes ends it. */
  #reportDrill(job: string, schedule: Schedule, copy: CopyRunResult): void {
    const drilled = copy.drilled;
    if (drilled === null) {
      return;
    }
    const key = `drill:${schedule.id}`;
    if (!drilled.passed) {
      if (!this.#raised.has(key)) {
        this.#raised.add(key);
        this.#emit({
          type: "drill-failed",
          job,
          schedule,
          target: copy.target,
          exportId: drilled.exportId,
          message: drilled.reason ?? "it did not boot",
        });
      }
    } else if (this.#raised.delete(key)) {
      this.#emit({ type: "drill-passed", job, schedule, target: copy.target });
    }
  }

  /** One "overdue" alert per missed slot that stays unserved past the grace time. */
  #watchOverdue(schedule: Schedule, state: ScheduleState | undefined, now: Date): void {
    if (!schedule.enabled) {
      return;
    }
    const missed = firstMissedSlot(schedule, state, now);
    const key = `overdue:${schedule.id}`;
    if (
      missed !== null &&
      now.getTime() - missed.getTime() > overdueAfterMs(schedule.when, now) &&
      !this.#raised.has(key)
    ) {
      this.#raised.add(key);
      this.#emit({ type: "overdue", schedule, since: missed.toISOString() });
    }
  }

  #armNextWake(schedules: readonly Schedule[], states: Record<string, ScheduleState>, now: Date): void {
    const candidates = schedules
      .filter((s) => s.enabled)
      .flatMap((s) => {
        const retry = states[s.id]?.nextRetryAt;
        return [...nextSlots(s.when, now, 1), ...(retry === undefined ? [] : [new Date(retry)])];
      });
    for (const wanted of this.#wantedCopies.values()) {
      candidates.push(new Date(wanted.notBefore));
    }
    const next = candidates
      .filter((d) => d.getTime() > now.getTime())
      .sort((a, b) => a.getTime() - b.getTime())[0];
    this.#wake?.cancel();
    this.#wake = next === undefined ? undefined : this.#o.timers.at(next, () => void this.tick());
  }

  /** Runs a step whose failure must be reported, never allowed to stop the scheduler. */
  #guard(doing: string, step: () => void): void {
    try {
      step();
    } catch (error) {
      this.#emit({ type: "scheduler-error", message: `Error while ${doing}: ${describeError(error)}` });
    }
  }

  #emit(event: SchedulerEvent): void {
    this.#o.onEvent?.(event);
  }
}

/** A copy job that threw instead of returning its failure (a bug, or the store failing). */
function failedCopy(schedule: Schedule, message: string): CopyRunResult {
  return {
    attempted: true,
    reason: "a copy was owed",
    snapshotTag: null,
    target: schedule.copy?.target ?? "?",
    exportId: null,
    bytesSent: 0,
    resumed: false,
    prunedCopies: [],
    failure: { kind: "copy-failed", detail: message },
    drilled: null,
    reverified: null,
  };
}

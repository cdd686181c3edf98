import { randomBytes } from "node:crypto";
import { httpUrl } from "../../domain/alerts.js";
import { SnapkeepError, describeError, isSnapkeepError } from "../../errors.js";
import { MAX_SNAPSHOTS_KEPT } from "../../domain/limits.js";
import type { Snapshot, VmWithSnapshots } from "../../domain/types.js";
import type { VmModules } from "../vm-modules.js";
import { chooseSnapshotDisks } from "../../domain/selection.js";
import type { Schedule, ScheduleCopyState, SchedulePause, ScheduleState } from "../../domain/settings.js";
import type { JobSummary, ScheduledJobSummary } from "../../infra/journal.js";
import type { SettingsStore } from "../../infra/store/store.js";
import { rpoStatus, type RpoStatus } from "../../domain/schedule/due.js";
import { activePause, isPaused } from "../../domain/schedule/pause.js";
import {
  applyRetention,
  isEmptyPolicy,
  type RetentionPolicy,
  type RetentionResult,
} from "../../domain/retention/gfs.js";
import { describeWhen, nextSlots, validateWhen, type When } from "../../domain/schedule/spec.js";
import { forecastRetention, type RetentionForecast } from "../../domain/retention/forecast.js";
import { copyIntervalMs, type CopyPolicy, type CopyPolicyDraft } from "../../domain/copy/policy.js";
import { offHostRpo, type OffHostCopies, type OffHostRpo } from "../../domain/copy/rpo.js";
import { forecastSchedule, type CopyForecast } from "../../domain/copy/forecast.js";
import { NO_COPIES_YET, owedCopy } from "../../domain/copy/due.js";
import type { CopyDecisionResult, CopyRunResult, ScheduleCopies } from "./copies.js";

export interface AddScheduleRequest {
  readonly host: string;
  readonly vm: string;
  readonly when: When;
  readonly retention: RetentionPolicy;
  readonly disks?: readonly string[];
  readonly note?: string;
  /** Copy each run's snapshot (or every Nth, or a day's or week's first) off the host. */
  readonly copy?: CopyPolicyDraft | undefined;
}

/** The schedule editor's live preview: nothing is saved. */
export interface DraftPreview {
  readonly description: string;
  readonly nextRuns: readonly string[];
  /** With the id of a schedule being edited: what its new retention would remove today. */
  readonly retention: RetentionResult | null;
  readonly forecast: RetentionForecast;
  /** With a copy: what stays on the target after a year, and whether the host holds owed copies. */
  readonly copyForecast: CopyForecast | null;
}

export interface SchedulePreview {
  readonly schedule: Schedule;
  readonly description: string;
  readonly nextRuns: readonly string[];
  /** The real prune's decision on the snapshots that exist now, nothing deleted. */
  readonly retention: RetentionResult;
  /** For a schedule that copies: what the prune would hold for its copy now, and the target's year. */
  readonly copy: { readonly held: readonly string[]; readonly forecast: CopyForecast | null } | null;
}

export interface ScheduledRunResult {
  readonly snapshot: Snapshot;
  readonly pruned: readonly string[];
  /** What the retention would have removed, kept until its copy lands (copy before prune). */
  readonly held: readonly string[];
  readonly pruneError: string | null;
  /** Whether a copy is owed after this run (a copy job sends it); null: the schedule does not copy. */
  readonly copy: CopyDecisionResult | null;
  readonly warnings: readonly string[];
  /** What the hooks printed (see withConsistency). */
  readonly log: readonly string[];
}

/** What a copy job did: the copy, and the local prune it let go on once the copy landed. */
export interface ScheduledCopyResult {
  readonly copy: CopyRunResult;
  readonly pruned: readonly string[];
  readonly held: readonly string[];
  readonly pruneError: string | null;
}

/**
 * Schedules and what they do: add, list, pause, preview, run once, prune, and the RPO of each VM.
 * The Scheduler decides *when*; this decides *what*, through the same service every front end uses.
 */
export class Schedules {
  readonly #deps: VmModules;
  readonly #store: SettingsStore;
  readonly #now: () => Date;
  readonly #copies: ScheduleCopies | undefined;

  /** Without `copies` (tests of the snapshot side alone), a schedule that copies cannot run. */
  constructor(modules: VmModules, now: () => Date, copies?: ScheduleCopies) {
    this.#deps = modules;
    this.#store = modules.store;
    this.#now = now;
    this.#copies = copies;
  }

  list(): Schedule[] {
    return this.#store.read().schedules;
  }

  states(): Record<string, ScheduleState> {
    return this.#store.read().scheduleState;
  }

  /** What each schedule that copies remembers about its copies (the off-host RPO's input). */
  copyStates(): Record<string, ScheduleCopyState> {
    return this.#store.read().copyState;
  }

  get(id: string): Schedule {
    const schedule = this.list().find((s) => s.id === id);
    if (schedule === undefined) {
      throw new SnapkeepError("NOT_FOUND", `There is no schedule ${id}.`, {
        action: { do: "list-schedules" },
      });
    }
    return schedule;
  }

  /** Adds a schedule after checking the VM, its disks, the time and the retention. */
  async add(request: AddScheduleRequest): Promise<Schedule> {
    const when = validateWhen(request.when);
    validateRetention(request.retention);
    const copy = this.#validateCopy(request);
    const vm = await this.#deps.vms.get(request.host, request.vm);
    if (request.disks !== undefined) {
      chooseSnapshotDisks(vm, request.disks);
    }
    const schedule: Schedule = {
      id: randomBytes(4).toString("hex"),
      host: request.host,
      vmUuid: vm.uuid,
      vmName: vm.name,
      when,
      ...(request.disks === undefined ? {} : { disks: [...new Set(request.disks)] }),
      retention: request.retention,
      enabled: true,
      ...(request.note === undefined ? {} : { note: request.note }),
      createdAt: this.#now().toISOString(),
      ...(copy === null ? {} : { copy }),
    };
    this.#store.update((s) => ({ ...s, schedules: [...s.schedules, schedule] }));
    return schedule;
  }

  /**
   * Sets (or with null removes) the monitor a schedule pings at each run's start, success and
   * failure (healthchecks.io, Uptime Kuma): `URL/start`, `URL`, `URL/fail`.
   */
  setPing(id: string, url: string | null): Schedule {
    const current = this.get(id);
    const { ping: _old, ...rest } = current;
    if (url !== null && !httpUrl.safeParse(url).success) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        "A monitor's ping address must be an http:// or https:// address.",
      );
    }
    const updated: Schedule = url === null ? rest : { ...rest, ping: url };
    this.#store.update((s) => ({ ...s, schedules: s.schedules.map((x) => (x.id === id ? updated : x)) }));
    return updated;
  }

  /** Changes a schedule's time, disks, retention or note; its id, VM and history stay. */
  async update(id: string, request: AddScheduleRequest): Promise<Schedule> {
    const current = this.get(id);
    const when = validateWhen(request.when);
    validateRetention(request.retention);
    const copy = this.#validateCopy(request);
    const vm = await this.#deps.vms.get(current.host, current.vmUuid);
    if (request.disks !== undefined) {
      chooseSnapshotDisks(vm, request.disks);
    }
    const updated: Schedule = {
      id: current.id,
      host: current.host,
      vmUuid: current.vmUuid,
      vmName: vm.name,
      enabled: current.enabled,
      createdAt: current.createdAt,
      when,
      retention: request.retention,
      ...(request.disks === undefined ? {} : { disks: [...new Set(request.disks)] }),
      ...(request.note === undefined || request.note === "" ? {} : { note: request.note }),
      ...(copy === null ? {} : { copy }),
      ...(current.ping === undefined ? {} : { ping: current.ping }),
    };
    this.#store.update((s) => ({ ...s, schedules: s.schedules.map((x) => (x.id === id ? updated : x)) }));
    if (current.copy?.target !== copy?.target) {
      // What is owed and what landed was about the old target: the new one starts from nothing.
      this.#copies?.forget(id);
    }
    return updated;
  }

  /**
   * The editor's preview of a schedule not saved yet: the next runs, the retention over a year,
   * and, when it edits an existing schedule, what the new retention would remove today.
   */
  async previewDraft(request: AddScheduleRequest, editing?: string, count = 5): Promise<DraftPreview> {
    const when = validateWhen(request.when);
    validateRetention(request.retention);
    const copy = this.#validateCopy(request);
    const now = this.#now();
    let retention: RetentionResult | null = null;
    if (editing !== undefined) {
      const schedule = this.get(editing);
      const vm = await this.#deps.vms.get(schedule.host, schedule.vmUuid);
      retention = applyRetention(vm.snapshots, request.retention, schedule.id, now);
    }
    // One simulated year for both: the host's retention, and with a copy the target's.
    const forecasts =
      copy === null
        ? { host: forecastRetention(when, request.retention, now), target: null }
        : forecastSchedule(when, request.retention, copy, now);
    return {
      description: describeWhen(when),
      nextRuns: nextSlots(when, now, count).map((d) => d.toISOString()),
      retention,
      forecast: forecasts.host,
      copyForecast: forecasts.target,
    };
  }

  /** Forgets a schedule. Its snapshots stay on the host (they are tagged; prune them by hand if wanted). */
  remove(id: string): Schedule {
    const schedule = this.get(id);
    this.#copies?.forget(id);
    this.#store.update((s) => ({
      ...s,
      schedules: s.schedules.filter((x) => x.id !== id),
      scheduleState: Object.fromEntries(Object.entries(s.scheduleState).filter(([key]) => key !== id)),
    }));
    return schedule;
  }

  setEnabled(id: string, enabled: boolean): Schedule {
    this.get(id);
    let updated: Schedule | undefined;
    this.#store.update((s) => ({
      ...s,
      schedules: s.schedules.map((x) => (x.id === id ? (updated = { ...x, enabled }) : x)),
    }));
    return updated as Schedule;
  }

  /** The persisted "pause all", even one whose time has run out (the scheduler judges it at `now`). */
  globalPause(): SchedulePause | null {
    return this.#store.read().schedulePause;
  }

  /** The "pause all" in effect now, or null. */
  activePause(): SchedulePause | null {
    return activePause(this.globalPause(), this.#now());
  }

  /** Pauses every schedule for `durationMs`, or until resumed when null; running jobs finish. */
  pauseAll(durationMs: number | null): SchedulePause {
    const now = this.#now();
    if (durationMs !== null && !(durationMs > 0)) {
      throw new SnapkeepError("INVALID_INPUT", "A pause must end in the future.");
    }
    const until = durationMs === null ? null : new Date(now.getTime() + durationMs).toISOString();
    const pause: SchedulePause = { since: now.toISOString(), until };
    this.#store.update((s) => ({ ...s, schedulePause: pause }));
    return pause;
  }

  /** Lifts "pause all"; each schedule's latest missed slot then runs once. */
  resumeAll(): void {
    this.#store.update((s) => ({ ...s, schedulePause: null }));
  }

  recordState(id: string, state: ScheduleState): void {
    this.#store.update((s) =>
      s.schedules.some((x) => x.id === id) ? { ...s, scheduleState: { ...s.scheduleState, [id]: state } } : s,
    );
  }

  /** The next runs and exactly what the prune would remove now (a dry run of the real prune). */
  async preview(id: string, count = 5): Promise<SchedulePreview> {
    const schedule = this.get(id);
    const now = this.#now();
    const vm = await this.#deps.vms.get(schedule.host, schedule.vmUuid);
    const retention = applyRetention(vm.snapshots, schedule.retention, schedule.id, now);
    return {
      schedule,
      description: describeWhen(schedule.when),
      nextRuns: nextSlots(schedule.when, now, count).map((d) => d.toISOString()),
      retention,
      copy: hasCopy(schedule)
        ? {
            held: this.#copiesFor(schedule)
              .hold(schedule, retention.remove)
              .held.map((h) => h.snapshot.name),
            forecast: forecastSchedule(schedule.when, schedule.retention, schedule.copy, now).target,
          }
        : null,
    };
  }

  /** One scheduled run: snapshot (named after its slot), then prune; a failed prune is reported. */
  async run(
    schedule: Schedule,
    tag: string,
    onStep: (step: string) => void = () => undefined,
    signal: AbortSignal = new AbortController().signal,
  ): Promise<ScheduledRunResult> {
    throwIfCancelled(signal, "before its snapshot; nothing was made");
    onStep("snapshot");
    const { snapshot, warnings, log } = await this.#deps.snapshots
      .take(schedule.host, schedule.vmUuid, {
        kind: "scheduled",
        origin: schedule.id,
        name: scheduledName(tag),
        ...(schedule.disks === undefined ? {} : { disks: schedule.disks }),
      })
      .catch(async (error: unknown) => {
        // The same slot again after a crash that came after its snapshot: that snapshot is the run.
        if (isSnapkeepError(error, "ALREADY_EXISTS")) {
          const existing = (await this.#deps.vms.get(schedule.host, schedule.vmUuid)).snapshots.find(
            (s) => s.tag === tag,
          );
          if (existing !== undefined && !existing.incomplete) {
            return {
              snapshot: existing,
              warnings: ["The snapshot for this slot already existed (made before a restart)."],
              log: [],
            };
          }
        }
        if (isSnapkeepError(error, "NOT_FOUND") && /no VM named/.test(error.message)) {
          throw new SnapkeepError(
            "NOT_FOUND",
            `The VM of schedule ${schedule.id} (${schedule.vmName}, ${schedule.vmUuid}) is no longer on host ${schedule.host}.`,
            {
              action: { do: "remove-schedule", id: schedule.id },
            },
          );
        }
        throw error;
      });
    onStep(SNAPSHOT_MADE);
    throwIfCancelled(signal, `after its snapshot ${snapshot.name}, which is kept; the prune was skipped`);
    // The copy decision goes before the prune: a snapshot chosen for a copy is held until it lands.
    const copy = hasCopy(schedule) ? this.#copiesFor(schedule).decide(schedule, snapshot) : null;
    const { pruned, held, pruneError } = await this.#pruneReporting(schedule);
    return { snapshot, pruned, held, pruneError, copy, warnings, log };
  }

  /** The snapshot each schedule's copy job would send now, for the schedules that owe one. */
  owedCopies(): ReadonlyMap<string, { readonly tag: string }> {
    const { schedules, copyState } = this.#store.read();
    const owed = new Map<string, { readonly tag: string }>();
    for (const schedule of schedules.filter(hasCopy)) {
      const send = owedCopy(copyState[schedule.id] ?? NO_COPIES_YET);
      if (send !== null) {
        owed.set(schedule.id, send);
      }
    }
    return owed;
  }

  /**
   * A copy job: sends the snapshot owed a copy to the schedule's target; once it has landed, the
   * prune runs again, so what copy before prune held goes now rather than after the next run.
   * The scheduler never runs it beside a snapshot job of the same VM.
   */
  async copy(
    schedule: Schedule,
    onStep: (step: string) => void = () => undefined,
    signal: AbortSignal = new AbortController().signal,
  ): Promise<ScheduledCopyResult> {
    if (!hasCopy(schedule)) {
      throw new SnapkeepError("INVALID_INPUT", `Schedule ${schedule.id} does not copy off the host.`);
    }
    const copy = await this.#copiesFor(schedule).sendOwed(schedule, signal, onStep);
    if (copy.exportId === null) {
      return { copy, pruned: [], held: [], pruneError: null };
    }
    throwIfCancelled(signal, `after its copy ${copy.exportId} landed; the prune was skipped`);
    return { copy, ...(await this.#pruneReporting(schedule)) };
  }

  async #pruneReporting(schedule: Schedule): Promise<{
    pruned: readonly string[];
    held: readonly string[];
    pruneError: string | null;
  }> {
    try {
      const outcome = await this.prune(schedule);
      return { pruned: outcome.removed, held: outcome.held, pruneError: null };
    } catch (error) {
      return { pruned: [], held: [], pruneError: describeError(error) };
    }
  }

  /**
   * Removes what the schedule's retention says to remove, except, for a schedule that copies, the
   * snapshots still owed a copy (copy before prune); returns the names removed and held.
   */
  async prune(schedule: Schedule): Promise<PruneOutcome> {
    const vm = await this.#deps.vms.get(schedule.host, schedule.vmUuid);
    const { remove: wouldRemove } = applyRetention(
      vm.snapshots,
      schedule.retention,
      schedule.id,
      this.#now(),
    );
    const { remove, held } = hasCopy(schedule)
      ? this.#copiesFor(schedule).hold(schedule, wouldRemove)
      : { remove: wouldRemove, held: [] };
    await this.#deps.snapshots.removeScheduled(
      schedule.host,
      schedule.vmUuid,
      remove.map((s) => s.tag),
      schedule.id,
    );
    return { removed: remove.map((s) => s.name), held: held.map((h) => h.snapshot.name) };
  }

  #validateCopy(request: AddScheduleRequest): CopyPolicy | null {
    if (request.copy === undefined) {
      return null;
    }
    if (this.#copies === undefined) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        "This Snapkeep was started without exports: a schedule cannot copy.",
      );
    }
    return this.#copies.validate(request.copy);
  }

  #copiesFor(schedule: Schedule): ScheduleCopies {
    if (this.#copies === undefined) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `Schedule ${schedule.id} copies to ${schedule.copy?.target ?? "?"}, and this Snapkeep was started without exports.`,
      );
    }
    return this.#copies;
  }

  /**
   * After a crash, deals with what an interrupted job left: a snapshot it had finished stays (only
   * its prune is missing, and the next run prunes); a half-made one is removed from the host, or,
   * if the host cannot be reached now, marked incomplete so it is never counted as good and the
   * next prune removes it.
   */
  async cleanUpInterrupted(job: ScheduledJobSummary): Promise<string> {
    if (job.kind === "copy") {
      return `its snapshot ${job.tag} is kept and still owed a copy; the next copy job resumes what reached ${job.target ?? "the target"}`;
    }
    if (snapshotWasMade(job)) {
      return "its snapshot was complete and is kept; the prune runs after the next snapshot";
    }
    // It may have died between freeze and thaw.
    const thawed = await this.#deps.snapshots.thawAfterCrash(job.host, job.vmUuid).catch(() => false);
    const note = thawed ? " (the guest's filesystems were thawed)" : "";
    try {
      const before = (await this.#deps.vms.get(job.host, job.vmUuid)).snapshots.some(
        (s) => s.tag === job.tag,
      );
      await this.#deps.snapshots.removeScheduled(job.host, job.vmUuid, [job.tag], job.scheduleId);
      return `${before ? "the half-made snapshot was removed" : "it had not made a snapshot yet"}${note}`;
    } catch (error) {
      this.#deps.annotations.markIncomplete(job.host, job.vmUuid, job.tag);
      return `the half-made snapshot could not be removed now (${describeError(error)}); it is marked incomplete and the next prune removes it${note}`;
    }
  }

  /**
   * The off-host recovery point of each VM, beside rpoOf: the newest copy known verified off the
   * host (a schedule's landed copy, or a snapshot still here that was exported) against the most
   * frequent copy its schedules promise. A VM that has snapshots and nothing off the host is "on
   * this host only"; one with no schedule that copies and an export made by hand is not judged
   * (null): nothing promised when the next copy comes.
   */
  offHostOf(vms: readonly VmWithSnapshots[], schedulerRunning: boolean): (OffHostRpo | null)[] {
    const { schedules, copyState } = this.#store.read();
    const now = this.#now();
    return vms.map((vm) => {
      const copying = schedules.filter(
        (s): s is Schedule & { copy: CopyPolicy } => s.host === vm.host && s.vmUuid === vm.uuid && hasCopy(s),
      );
      const newestAt = copiesOffHost(vm, schedules, copyState).newestAt;
      const newest = newestAt === null ? null : Date.parse(newestAt);
      if (copying.length === 0) {
        return newest === null && vm.snapshots.length > 0
          ? {
              level: "on-host-only",
              ageMs: null,
              reason: "no schedule copies it off this host and it has no export",
            }
          : null;
      }
      // A schedule whose last copy failed is the cause worth naming, even when another schedule
      // of the VM (to another target) copied later.
      const lastAttempt = copying
        .flatMap((s) => copyState[s.id]?.lastAttempt ?? [])
        .filter((a) => a.failure !== null)
        .sort((a, b) => Date.parse(a.at) - Date.parse(b.at))
        .at(-1);
      return offHostRpo({
        newestVerifiedCopyAt: newest === null ? null : new Date(newest),
        copyIntervalMs: Math.min(...copying.map((s) => copyIntervalMs(s.when, s.copy.cadence, now))),
        lastCopyFailure: lastAttempt?.failure ?? null,
        schedulerRunning,
        now,
      });
    });
  }

  /**
   * Where each VM's verified copies off the host are and how recent the newest is: snapshots still
   * here that were exported (exportedTo), and the copies its schedules landed (their snapshot may be
   * pruned here already). For the overview's 3-2-1 view, judged or not by a schedule.
   */
  offHostCopiesOf(vms: readonly VmWithSnapshots[]): OffHostCopies[] {
    const { schedules, copyState } = this.#store.read();
    return vms.map((vm) => copiesOffHost(vm, schedules, copyState));
  }

  /** RPO of each VM from the snapshots it has now, with one read of the settings for all. */
  rpoOf(vms: readonly VmWithSnapshots[], hostOnline: boolean): RpoStatus[] {
    const { schedules, scheduleState, schedulePause } = this.#store.read();
    // Good recovery points: complete, not dated in the future by a clock that ran ahead.
    const now = this.#now();
    const allPaused = isPaused(schedulePause, now);
    const nowIso = now.toISOString();
    return vms.map((vm) => {
      const newest = vm.snapshots.filter((s) => !s.incomplete && s.createdAt <= nowIso).at(-1);
      return rpoStatus({
        schedules: schedules
          .filter((s) => s.host === vm.host && s.vmUuid === vm.uuid)
          .map((s) => (allPaused ? { ...s, enabled: false } : s)),
        states: scheduleState,
        newestGoodSnapshotAt: newest === undefined ? null : new Date(newest.createdAt),
        hostOnline,
        now,
      });
    });
  }
}

/** The journal step after which a scheduled snapshot is complete and good. */
const SNAPSHOT_MADE = "snapshot-made";

/** Steps that come after the snapshot: a job cut off in one of them has a complete snapshot. */
const AFTER_SNAPSHOT: ReadonlySet<string> = new Set([SNAPSHOT_MADE, "copy", "copy-landed"]);

/** Whether an interrupted job had made its snapshot: then its slot is served and the snapshot kept. */
export function snapshotWasMade(job: Pick<JobSummary, "step">): boolean {
  return job.step !== null && AFTER_SNAPSHOT.has(job.step);
}

/**
 * A VM's verified copies off its host: snapshots still here that were exported (exportedTo), and
 * what its copying schedules landed (their snapshot may be pruned here already).
 */
function copiesOffHost(
  vm: VmWithSnapshots,
  schedules: readonly Schedule[],
  copyState: Readonly<Record<string, ScheduleCopyState | undefined>>,
): OffHostCopies {
  const targets = new Set<string>();
  let newest: string | null = null;
  const seen = (at: string, target: string): void => {
    targets.add(target);
    newest = newest === null || Date.parse(at) > Date.parse(newest) ? at : newest;
  };
  for (const snapshot of vm.snapshots) {
    for (const where of snapshot.incomplete ? [] : (snapshot.exportedTo ?? [])) {
      // "TARGET/EXPORT-ID": target names cannot hold a slash.
      seen(snapshot.createdAt, where.slice(0, where.indexOf("/")));
    }
  }
  for (const schedule of schedules) {
    const landed = copyState[schedule.id]?.newestLanded;
    if (schedule.host === vm.host && schedule.vmUuid === vm.uuid && hasCopy(schedule) && landed) {
      seen(landed.createdAt, schedule.copy.target);
    }
  }
  return { newestAt: newest, targets: [...targets].sort() };
}

export interface PruneOutcome {
  readonly removed: readonly string[];
  readonly held: readonly string[];
}

/** A schedule that copies off the host, with its copy policy typed as the copy rules take it. */
export function hasCopy(schedule: Schedule): schedule is Schedule & { readonly copy: CopyPolicy } {
  return schedule.copy !== undefined;
}

/** The tag a scheduled run will use, decided before it starts so the journal can name it. */
export function scheduledTag(schedule: Schedule, slot: Date): string {
  const iso = slot.toISOString(); // 2026-11-26T02:00:00.000Z
  return `snapkeep:scheduled@${schedule.id}:scheduled-${iso.slice(0, 10)}-${iso.slice(11, 16).replace(":", "")}Z`;
}

function scheduledName(tag: string): string {
  return tag.slice(tag.indexOf(":", "snapkeep:".length) + 1);
}

function throwIfCancelled(signal: AbortSignal, when: string): void {
  if (signal.aborted) {
    throw new SnapkeepError("CANCELLED", `The run was cancelled ${when}.`);
  }
}

function validateRetention(policy: RetentionPolicy): void {
  for (const [key, value] of Object.entries(policy)) {
    if (value !== undefined && (!Number.isInteger(value) || value < 1 || value > MAX_SNAPSHOTS_KEPT)) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `--${key === "keepLast" ? "keep" : key} must be a whole number from 1 to ${MAX_SNAPSHOTS_KEPT}.`,
      );
    }
  }
  if (isEmptyPolicy(policy)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "Say how many snapshots to keep: --keep N (and optionally --daily/--weekly/--monthly N).",
    );
  }
}

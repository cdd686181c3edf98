/**
 * A schedule's off-host copies: a run decides whether its snapshot goes off the host; a copy job
 * (queued by the scheduler, apart from the run) sends what is owed to the schedule's target with
 * the export engine, then keeps the target to the schedule's own retention; the local prune holds
 * back the snapshots still owed a copy. The decisions are the pure ones of domain/copy/; this
 * module only reads and writes what they need.
 *
 * What a schedule remembers about its copies (settings `copyState`) is written by the run, before
 * any copy starts: a crash in the middle of a copy leaves the snapshot owed, and the next copy job
 * sends it again (the export engine resumes the partial export it left on the target).
 */
import { describeError, isSnapkeepError, type SnapkeepError } from "../../errors.js";
import {
  copyDue,
  historyAfterLanded,
  historyAfterRun,
  NO_COPIES_YET,
  owedCopy,
  type CopyHistory,
  type SnapshotRef,
} from "../../domain/copy/due.js";
import { holdUntilCopied, type HoldResult } from "../../domain/copy/hold.js";
import { copyToReverify } from "../../domain/copy/reverify.js";
import { validateCopyPolicy, type CopyPolicy, type CopyPolicyDraft } from "../../domain/copy/policy.js";
import type { CopyFailure } from "../../domain/copy/rpo.js";
import type { Schedule, ScheduleCopyState } from "../../domain/settings.js";
import type { Snapshot } from "../../domain/types.js";
import type { SettingsStore } from "../../infra/store/store.js";
import type { Exports } from "../exports/exports.js";
import type { Targets } from "../targets.js";
import type { Drills } from "../drill.js";
import { drillDue, drillsOf } from "../../domain/drill.js";

/** What a run decided about its snapshot's copy (the copy itself is a job of its own). */
export interface CopyDecisionResult {
  /** Whether a copy is owed after this run: the scheduler queues a copy job. */
  readonly due: boolean;
  /** Why, in words. */
  readonly reason: string;
  readonly target: string;
}

/** What a copy job did, for its journal entry and the scheduler's alerts. */
export interface CopyRunResult {
  /** Whether a copy was sent (or tried); false when nothing was owed. */
  readonly attempted: boolean;
  /** Why it was sent or not, in words. */
  readonly reason: string;
  /** The snapshot sent (or tried). */
  readonly snapshotTag: string | null;
  readonly target: string;
  /** The export's id on the target, when the copy landed. */
  readonly exportId: string | null;
  readonly bytesSent: number;
  /** It went on from a partial export an interrupted copy left on the target. */
  readonly resumed: boolean;
  /** This schedule's older copies removed from the target after the copy landed. */
  readonly prunedCopies: readonly string[];
  /** Null when the copy landed or none was due; else how it failed. */
  readonly failure: CopyFailure | null;
  /** One of its older copies hashed again on the target after this one landed (reverify.ts). */
  readonly reverified: Reverified | null;
  /** The copy that landed booted in a restore drill (the policy's `drill`), when one was due. */
  readonly drilled: DrillRun | null;
}

export interface DrillRun {
  /** The drill's record id; null when the drill could not start (no room, say). */
  readonly id: string | null;
  readonly exportId: string;
  readonly passed: boolean;
  readonly reason: string | null;
}

export interface Reverified {
  /** Null when the check could not be made (the listing or the hashing failed). */
  readonly exportId: string | null;
  /** True: it still matches; false: damaged; null: the check could not be made. */
  readonly ok: boolean | null;
  /** The files that no longer match, or why the check could not be made. */
  readonly detail: string | null;
}

export class ScheduleCopies {
  readonly #store: SettingsStore;
  readonly #exports: Exports;
  readonly #targets: Targets;
  readonly #now: () => Date;
  /** The last copy queued per target: the next one starts when it has settled. */
  readonly #queues = new Map<string, Promise<void>>();

  readonly #drills: Drills | undefined;

  constructor(deps: {
    store: SettingsStore;
    exports: Exports;
    targets: Targets;
    now: () => Date;
    /** Without it, a policy's drills are not run (tests of the copies alone). */
    drills?: Drills;
  }) {
    this.#drills = deps.drills;
    this.#store = deps.store;
    this.#exports = deps.exports;
    this.#targets = deps.targets;
    this.#now = deps.now;
  }

  /** A copy policy as typed, checked, with its defaults, for a target that exists. */
  validate(draft: CopyPolicyDraft): CopyPolicy {
    const policy = validateCopyPolicy(draft);
    this.#targets.get(policy.target); // NOT_FOUND, with the hint to list the targets
    return policy;
  }

  history(scheduleId: string): CopyHistory {
    return this.#store.read().copyState[scheduleId] ?? NO_COPIES_YET;
  }

  /** The copy-state record of every schedule, for the RPO and the listings. */
  states(): Record<string, ScheduleCopyState> {
    return this.#store.read().copyState;
  }

  /**
   * A run that made `snapshot` decides with copyDue whether it goes off the host, and records the
   * decision before anything is sent: from then on the snapshot is owed a copy (held by the prune)
   * until a copy as new lands, whatever happens to the process in between.
   */
  decide(schedule: Schedule & { readonly copy: CopyPolicy }, snapshot: Snapshot): CopyDecisionResult {
    const thisRun: SnapshotRef = { tag: snapshot.tag, createdAt: snapshot.createdAt };
    const decision = copyDue(schedule.copy, this.history(schedule.id), thisRun, this.#now());
    this.#record(schedule.id, (state) => ({ ...state, ...historyAfterRun(state, thisRun, decision) }));
    return { due: decision.copy, reason: decision.reason, target: schedule.copy.target };
  }

  /** The snapshot a copy job would send now, or null when nothing is owed. */
  owed(scheduleId: string): SnapshotRef | null {
    return owedCopy(this.history(scheduleId));
  }

  /**
   * A copy job: sends the snapshot owed a copy (the newest chosen, see due.ts) to the schedule's
   * target, then prunes the schedule's copies there and hashes one older copy again. The export
   * engine resumes a partial export of the same snapshot that an interrupted copy left behind.
   */
  async sendOwed(
    schedule: Schedule & { readonly copy: CopyPolicy },
    signal: AbortSignal,
    onStep: (step: string) => void,
  ): Promise<CopyRunResult> {
    const policy = schedule.copy;
    const none = {
      target: policy.target,
      exportId: null,
      bytesSent: 0,
      resumed: false,
      prunedCopies: [],
      failure: null,
      reverified: null,
      drilled: null,
    };
    const send = this.owed(schedule.id);
    if (send === null) {
      return {
        attempted: false,
        reason: "no copy is owed: the newest chosen snapshot has landed",
        snapshotTag: null,
        ...none,
      };
    }
    const reason = `the snapshot of ${send.createdAt} is owed a copy`;
    onStep("copy");
    try {
      const bwlimitKiB = this.#targets.get(policy.target).bwlimitKiB;
      const result = await this.#oneAtATime(policy.target, () =>
        this.#exports.export({
          host: schedule.host,
          vm: schedule.vmUuid,
          snapshot: send.tag,
          target: policy.target,
          scheduleId: schedule.id,
          ...(schedule.disks === undefined ? {} : { disks: schedule.disks }),
          ...(bwlimitKiB === undefined ? {} : { bwlimitKiB }),
          signal,
        }),
      );
      this.#record(schedule.id, (state) => ({
        ...state,
        ...historyAfterLanded(state, [send]),
        lastAttempt: { at: this.#now().toISOString(), exportId: result.id, failure: null },
      }));
      onStep("copy-landed");
      const after = await this.#afterLanded(schedule, signal);
      const drilled = await this.#drill(schedule, result.id, signal, onStep);
      return {
        attempted: true,
        reason,
        snapshotTag: send.tag,
        target: policy.target,
        exportId: result.id,
        bytesSent: result.bytesSent,
        resumed: result.resumed,
        ...after,
        drilled,
      };
    } catch (error) {
      if (isSnapkeepError(error, "CANCELLED")) {
        throw error;
      }
      const failure = failureOf(error);
      this.#record(schedule.id, (state) => ({
        ...state,
        lastAttempt: { at: this.#now().toISOString(), exportId: null, failure },
      }));
      return { attempted: true, reason, snapshotTag: send.tag, ...none, failure };
    }
  }

  /** After a copy landed: the target's retention for the schedule, and one older copy checked again. */
  async #afterLanded(
    schedule: Schedule & { readonly copy: CopyPolicy },
    signal: AbortSignal,
  ): Promise<Pick<CopyRunResult, "prunedCopies" | "failure" | "reverified">> {
    const policy = schedule.copy;
    const pruned = await this.#exports
      .pruneCopies(policy.target, { id: schedule.id, vmUuid: schedule.vmUuid }, policy.retention, {
        dryRun: false,
      })
      // An abandoned attempt the sweep removed is named with the copies it removed; one it could
      // not remove is a pruning failure: it keeps its space until someone looks.
      .then((r) => ({
        removed: [...r.removed, ...r.abandoned.map((a) => a.folder)],
        error:
          r.abandonedKept.length === 0
            ? null
            : `an abandoned unfinished copy stays: ${r.abandonedKept.map((a) => `${a.folder} (${a.reason})`).join("; ")}`,
      }))
      .catch((error: unknown) => ({ removed: [] as readonly string[], error: describeError(error) }));
    const reverified = await this.#reverifyOne(schedule, signal);
    return {
      prunedCopies: pruned.removed,
      failure:
        pruned.error === null
          ? null
          : {
              kind: "copy-failed",
              detail: `the copy landed, but pruning older copies failed: ${pruned.error}`,
            },
      reverified,
    };
  }

  /**
   * Hashes again the schedule's copy on the target whose last check is oldest, when that is older
   * than REVERIFY_AFTER_MS: one per run, so a long chain of copies costs one image's read per run.
   * A mismatch marks the copy damaged (Exports.verify seals "corrupt"): it is no basis for the next
   * copy's blocks, no recovery point, and never pruned by count; the scheduler raises the alarm.
   */
  async #reverifyOne(
    schedule: Schedule & { readonly copy: CopyPolicy },
    signal: AbortSignal,
  ): Promise<Reverified | null> {
    const target = schedule.copy.target;
    try {
      const copies = await this.#exports.copiesOn(target);
      const due = copyToReverify(copies, { id: schedule.id, vmUuid: schedule.vmUuid }, this.#now());
      if (due === null) {
        return null;
      }
      const result = await this.#exports.verify(target, due.id, signal);
      return {
        exportId: due.id,
        ok: result.ok,
        detail: result.ok ? null : `${result.badFiles.join(", ")} no longer match their checksums`,
      };
    } catch (error) {
      if (isSnapkeepError(error, "CANCELLED")) {
        throw error;
      }
      return { exportId: null, ok: null, detail: `the check could not be made: ${describeError(error)}` };
    }
  }

  /**
   * The policy's restore drill of the copy that just landed, when one is due: booted on the
   * schedule's host from the target. A drill that cannot start (no room) is a failed one.
   */
  async #drill(
    schedule: Schedule & { readonly copy: CopyPolicy },
    exportId: string,
    signal: AbortSignal,
    onStep: (step: string) => void,
  ): Promise<DrillRun | null> {
    const every = schedule.copy.drill?.everyDays;
    if (every === undefined || this.#drills === undefined) {
      return null;
    }
    const vm = { host: schedule.host, name: schedule.vmName, uuid: schedule.vmUuid };
    if (!drillDue(drillsOf(this.#drills.list(), vm), every, this.#now())) {
      return null;
    }
    onStep("drill");
    try {
      const { record } = await this.#drills.run({
        host: schedule.host,
        vm: schedule.vmUuid,
        export: { target: schedule.copy.target, id: exportId },
        signal,
      });
      return {
        id: record?.id ?? null,
        exportId,
        passed: record?.passed === true,
        reason: record?.reason ?? null,
      };
    } catch (error) {
      if (isSnapkeepError(error, "CANCELLED")) {
        return null; // the copy landed; a drill stopped half way is no verdict
      }
      return {
        id: null,
        exportId,
        passed: false,
        reason: `the drill could not start: ${describeError(error)}`,
      };
    }
  }

  /** Copy before prune: of what the local retention would remove, what is still owed a copy stays. */
  hold(schedule: Schedule & { readonly copy: CopyPolicy }, wouldRemove: readonly Snapshot[]): HoldResult {
    return holdUntilCopied(schedule.copy, wouldRemove, this.history(schedule.id));
  }

  /** Forgets a removed schedule's copy record (its copies stay on the target). */
  forget(scheduleId: string): void {
    this.#store.update((s) => ({
      ...s,
      copyState: Object.fromEntries(Object.entries(s.copyState).filter(([id]) => id !== scheduleId)),
    }));
  }

  /**
   * One copy per target at a time: two schedules copying to one NAS at once would halve each one's
   * speed and double the seeks there; the second waits for the first (in this process, which is
   * the one scheduler of this state folder).
   */
  async #oneAtATime<T>(target: string, work: () => Promise<T>): Promise<T> {
    const before = this.#queues.get(target) ?? Promise.resolve();
    const run = before.then(work, work);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.#queues.set(target, settled);
    try {
      return await run;
    } finally {
      if (this.#queues.get(target) === settled) {
        this.#queues.delete(target);
      }
    }
  }

  #record(scheduleId: string, change: (state: ScheduleCopyState) => ScheduleCopyState): void {
    this.#store.update((s) => {
      if (!s.schedules.some((x) => x.id === scheduleId)) {
        return s; // removed meanwhile: nothing to remember
      }
      const current = s.copyState[scheduleId] ?? { ...NO_COPIES_YET, lastAttempt: null };
      return { ...s, copyState: { ...s.copyState, [scheduleId]: change(current) } };
    });
  }
}

/**
 * How a copy failed, for the off-host RPO's reason: a target that cannot be reached is offline
 * (the copy is retried by the next run, no alert per run); a verification that found a bad file is
 * a verify failure; the rest (full, unwritable, a transfer that broke) is a failed copy.
 */
export function failureOf(error: unknown): CopyFailure {
  const detail = describeError(error);
  const code = (error as Partial<SnapkeepError>).code;
  switch (code) {
    case "TARGET_OFFLINE":
    case "HOST_UNREACHABLE":
    case "TIMEOUT":
    case "AUTH_FAILED":
    case "HOST_KEY_UNKNOWN":
    case "HOST_KEY_CHANGED":
      return { kind: "target-offline", detail };
    case "VERIFY_FAILED":
      return { kind: "verify-failed", detail };
    default:
      return { kind: "copy-failed", detail };
  }
}

/**
 * A schedule's off-host copy, as the user sets it: after its snapshot, a run may send that snapshot
 * to an export target, and the target keeps the schedule's copies by a retention of their own.
 */
import { SnapkeepError } from "../../errors.js";
import { MAX_COPIES_KEPT, MAX_RUNS_PER_COPY } from "../limits.js";
import { validateName } from "../names.js";
import { isEmptyPolicy, type RetentionPolicy } from "../retention/gfs.js";
import { nominalIntervalMs, type When } from "../schedule/spec.js";

/**
 * Which runs send their snapshot: every Nth run (n = 1: every run), or the first run of each local
 * day or ISO week. Days and weeks are local, as in GFS, so a DST night neither skips a day's copy
 * nor sends two.
 */
export type CopyCadence =
  { readonly every: "runs"; readonly n: number } | { readonly every: "day" } | { readonly every: "week" };

export interface CopyPolicy {
  /** The export target's name. */
  readonly target: string;
  readonly cadence: CopyCadence;
  /** Which of this schedule's copies the target keeps: keep last N and GFS, as on the host. */
  readonly retention: RetentionPolicy;
  /**
   * A local snapshot chosen for a copy stays, whatever the local retention says, until its copy
   * (or one of a newer snapshot) is verified on the target: an offline target must not cost the
   * only copy that should have left the host.
   */
  readonly holdLocalUntilCopied: boolean;
  /** Restore drills of landed copies, at most every this many days (and after each failed one). */
  readonly drill?: { readonly everyDays: number } | undefined;
}

/** A copy policy as typed or read back: the cadence defaults to every run, holding to on. */
export interface CopyPolicyDraft {
  readonly target: string;
  readonly cadence?: CopyCadence | undefined;
  readonly retention: RetentionPolicy;
  readonly holdLocalUntilCopied?: boolean | undefined;
  readonly drill?: { readonly everyDays: number } | undefined;
}

const EVERY_RUN: CopyCadence = { every: "runs", n: 1 };

/** Checks a copy policy as typed by a person or read from a file; returns it with its defaults. */
export function validateCopyPolicy(draft: CopyPolicyDraft): CopyPolicy {
  validateName("target name", draft.target);
  const cadence = validateCadence(draft.cadence ?? EVERY_RUN);
  validateCopyRetention(draft.target, draft.retention);
  return {
    target: draft.target,
    cadence,
    retention: draft.retention,
    holdLocalUntilCopied: draft.holdLocalUntilCopied ?? true,
    ...(draft.drill === undefined ? {} : { drill: validateDrillEvery(draft.drill.everyDays) }),
  };
}

function validateDrillEvery(everyDays: number): { everyDays: number } {
  if (!Number.isInteger(everyDays) || everyDays < 1 || everyDays > 366) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `A restore drill every ${String(everyDays)} days is not possible; use a whole number of days from 1 to 366.`,
    );
  }
  return { everyDays };
}

function validateCadence(cadence: CopyCadence): CopyCadence {
  switch (cadence.every) {
    case "runs":
      if (!Number.isInteger(cadence.n) || cadence.n < 1 || cadence.n > MAX_RUNS_PER_COPY) {
        throw new SnapkeepError(
          "INVALID_INPUT",
          `A copy every ${String(cadence.n)} runs is not possible; use a whole number from 1 (every run) to ${MAX_RUNS_PER_COPY}.`,
        );
      }
      return { every: "runs", n: cadence.n };
    case "day":
    case "week":
      return { every: cadence.every };
    default:
      throw new SnapkeepError(
        "INVALID_INPUT",
        `"${String((cadence as { every: unknown }).every)}" is not a copy cadence; copy every N runs, every day or every week.`,
      );
  }
}

const RULE_WORDS: Readonly<Record<keyof RetentionPolicy, string>> = {
  keepLast: "latest",
  daily: "daily",
  weekly: "weekly",
  monthly: "monthly",
};

/**
 * The same rules as a schedule's own retention, with the range of exports a target keeps. An empty
 * policy would keep every copy until the target is full, so one count at least is asked for.
 */
function validateCopyRetention(target: string, policy: RetentionPolicy): void {
  for (const key of Object.keys(RULE_WORDS) as (keyof RetentionPolicy)[]) {
    const value = policy[key];
    if (value !== undefined && (!Number.isInteger(value) || value < 1 || value > MAX_COPIES_KEPT)) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `The number of ${RULE_WORDS[key]} copies ${target} keeps is a whole number from 1 to ${MAX_COPIES_KEPT}, not ${String(value)}.`,
      );
    }
  }
  if (isEmptyPolicy(policy)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `Say how many copies ${target} keeps: the latest N, and N daily, weekly or monthly if you like.`,
    );
  }
}

const DAY_MS = 24 * 3600_000;

/**
 * How often a copy is expected, for the off-host RPO: the runs between copies, or a day or a week
 * (or the schedule's own interval, when it runs less often than that).
 */
export function copyIntervalMs(when: When, cadence: CopyCadence, now: Date): number {
  const run = nominalIntervalMs(when, now);
  switch (cadence.every) {
    case "runs":
      return run * cadence.n;
    case "day":
      return Math.max(run, DAY_MS);
    case "week":
      return Math.max(run, 7 * DAY_MS);
  }
}

/** For listings and previews: "every run", "every 4 runs", "the first run of each day". */
export function describeCadence(cadence: CopyCadence): string {
  switch (cadence.every) {
    case "runs":
      return cadence.n === 1 ? "every run" : `every ${cadence.n} runs`;
    case "day":
      return "the first run of each day";
    case "week":
      return "the first run of each week";
  }
}

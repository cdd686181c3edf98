/**
 * Whether a run's snapshot goes off-host, decided from what the schedule remembers about its
 * copies and `now` only, like schedule/due.ts decides runs: the same answer after a restart.
 *
 * A copy is owed from the moment a snapshot is chosen until a copy of it, or of a newer snapshot
 * of the schedule, is verified on the target. While one is owed, every run's snapshot is chosen
 * (it is newer, so landing it settles the debt), and whatever is owed is sent once when the target
 * is back: the newest chosen snapshot, not one copy per missed run, as missed runs run once.
 * A copy still running when the next run comes counts as owed too: the app sends only the newest
 * of the copies queued for a target.
 */
import { startOfDay, startOfIsoWeek } from "../retention/gfs.js";
import type { CopyPolicy } from "./policy.js";

/** A snapshot as the copy decisions see it: its tag on the host and when it was taken. */
export interface SnapshotRef {
  readonly tag: string;
  readonly createdAt: string;
}

/** What a schedule remembers about its copies between runs. */
export interface CopyHistory {
  /** The snapshot last chosen for a copy; its copy may not have landed. */
  readonly lastChosen: SnapshotRef | null;
  /** Runs that made a snapshot since lastChosen's run (or since the schedule began). */
  readonly runsSinceChosen: number;
  /** The schedule's newest snapshot whose copy is verified on the target, as last seen there. */
  readonly newestLanded: SnapshotRef | null;
  /**
   * The oldest snapshot chosen since the last copy that landed: every snapshot from it on, and
   * newer than newestLanded, is owed a copy (all of them were chosen, see above). Null: none owed.
   */
  readonly owedSince: SnapshotRef | null;
}

export const NO_COPIES_YET: CopyHistory = {
  lastChosen: null,
  runsSinceChosen: 0,
  newestLanded: null,
  owedSince: null,
};

export interface CopyDecision {
  readonly copy: boolean;
  /** Why, in words for the job log and the preview. */
  readonly reason: string;
}

/** The snapshot to send now, when a copy is owed (once the target is back), or null. */
export function owedCopy(history: CopyHistory): SnapshotRef | null {
  return history.owedSince === null ? null : history.lastChosen;
}

/** Whether a snapshot is owed a copy: chosen, and nothing as new has landed on the target. */
export function isOwedCopy(history: CopyHistory, snapshot: SnapshotRef): boolean {
  const { owedSince, newestLanded } = history;
  const at = Date.parse(snapshot.createdAt);
  return (
    owedSince !== null &&
    at >= Date.parse(owedSince.createdAt) &&
    (newestLanded === null || at > Date.parse(newestLanded.createdAt))
  );
}

/**
 * Whether this run's snapshot is copied, after it was made at `now`: because a copy is owed, it is
 * the schedule's first, or its cadence says so (every Nth run, the first run of a day or week).
 */
export function copyDue(
  policy: CopyPolicy,
  history: CopyHistory,
  thisRun: SnapshotRef,
  now: Date,
): CopyDecision {
  const owed = owedCopy(history);
  if (owed !== null) {
    return {
      copy: true,
      reason: `the copy of the snapshot of ${owed.createdAt} has not landed on ${policy.target}; this run's snapshot goes in its place`,
    };
  }
  const last = history.lastChosen;
  if (last === null) {
    return { copy: true, reason: "the schedule's first copy" };
  }
  const lastAt = Date.parse(last.createdAt);
  if (!(lastAt <= now.getTime())) {
    // Chosen while the clock ran ahead: day and week cannot be compared, and one copy too many is
    // better than none for as long as the clock was wrong.
    return {
      copy: true,
      reason: `the last copy is dated ${last.createdAt}, after this run (the clock was changed)`,
    };
  }
  switch (policy.cadence.every) {
    case "runs": {
      const run = history.runsSinceChosen + 1;
      const n = policy.cadence.n;
      return run >= n
        ? {
            copy: true,
            reason: n === 1 ? "every run is copied" : `every ${n} runs: run ${run} since the last copy`,
          }
        : { copy: false, reason: `every ${n} runs: run ${run} since the last copy` };
    }
    case "day":
      return firstOfPeriod(startOfDay, "day", lastAt, now, thisRun);
    case "week":
      return firstOfPeriod(startOfIsoWeek, "week", lastAt, now, thisRun);
  }
}

function firstOfPeriod(
  periodStart: (ms: number) => number,
  period: "day" | "week",
  lastChosenAt: number,
  now: Date,
  thisRun: SnapshotRef,
): CopyDecision {
  return periodStart(now.getTime()) > periodStart(lastChosenAt)
    ? { copy: true, reason: `the first run of the ${period} (${thisRun.createdAt})` }
    : {
        copy: false,
        reason: `this ${period}'s copy is the snapshot of ${new Date(lastChosenAt).toISOString()}`,
      };
}

/** The history after a run that made `thisRun` and decided `decision` about it. */
export function historyAfterRun(
  history: CopyHistory,
  thisRun: SnapshotRef,
  decision: CopyDecision,
): CopyHistory {
  if (!decision.copy) {
    return { ...history, runsSinceChosen: history.runsSinceChosen + 1 };
  }
  return { ...history, lastChosen: thisRun, runsSinceChosen: 0, owedSince: history.owedSince ?? thisRun };
}

/**
 * The history after copies of these snapshots were seen verified on the target: after a copy job,
 * or from a listing of the target (which also catches a copy that landed just before a crash).
 * The newest landed copy settles every copy owed up to it.
 */
export function historyAfterLanded(history: CopyHistory, landed: readonly SnapshotRef[]): CopyHistory {
  let newest = history.newestLanded;
  for (const copy of landed) {
    if (newest === null || Date.parse(copy.createdAt) > Date.parse(newest.createdAt)) {
      newest = copy;
    }
  }
  const chosen = history.lastChosen;
  const settled =
    newest !== null && chosen !== null && Date.parse(newest.createdAt) >= Date.parse(chosen.createdAt);
  return { ...history, newestLanded: newest, owedSince: settled ? null : history.owedSince };
}

/** A failed copy is tried again after 1, 2, 4 ... minutes, at most an hour apart. */
const RETRY_CAP_MINUTES = 60;

/**
 * How long after its `failures`-th failure in a row a copy is tried again. Doubling keeps an
 * offline target from being knocked on every minute, and the cap means a target back from a day
 * away gets its copy within the hour, not at the next (perhaps weekly) run.
 */
export function copyRetryDelayMs(failures: number): number {
  return Math.min(RETRY_CAP_MINUTES, 2 ** Math.max(0, failures - 1)) * 60_000;
}

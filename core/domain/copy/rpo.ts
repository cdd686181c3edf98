/**
 * Off-host recovery point of one VM, beside the local one (schedule/due.ts, rpoStatus): is its
 * newest *verified* copy off the host as recent as its copy schedule promises?
 */

export type OffHostLevel = "on-host-only" | "ok" | "due" | "overdue";

export interface OffHostRpo {
  readonly level: OffHostLevel;
  /** Age of the newest verified copy's snapshot in ms, or null when there is none. */
  readonly ageMs: number | null;
  /** Why it is not ok (or will not stay ok), in words a person acts on; null when all is well. */
  readonly reason: string | null;
}

/** A VM's verified copies off its host: on which targets, and when the newest copy's snapshot was taken. */
export interface OffHostCopies {
  readonly newestAt: string | null;
  readonly targets: readonly string[];
}

/** How the last copy attempt failed, when it did. */
export interface CopyFailure {
  readonly kind: "target-offline" | "copy-failed" | "verify-failed";
  /** The error's sentence, when there is one. */
  readonly detail: string | null;
}

/**
 * How long after a missed copy "due" turns into "overdue". A copy sends and verifies a whole image,
 * so it gets longer than a snapshot's hour: half the interval, at most six hours (an hourly copy
 * is overdue after 90 minutes, a daily one after 30 hours, near sanoid's warning thresholds).
 */
export function copyOverdueAfterMs(copyIntervalMs: number): number {
  return Math.min(copyIntervalMs / 2, 6 * 3600_000);
}

/**
 * "on-host-only" until a copy is verified off the host; then "ok" while the newest verified copy
 * is younger than the copy interval, "due" in the grace time after, "overdue" past it, at once
 * when no scheduler runs or the target is offline (as rpoStatus does for a paused schedule or an
 * offline host: nothing will make it right by itself). The reason names the likely cause.
 */
export function offHostRpo(input: {
  /** When the snapshot of the newest verified copy was taken: the recovery point off the host. */
  readonly newestVerifiedCopyAt: Date | null;
  /** From the schedule and its copy cadence (policy.ts, copyIntervalMs). */
  readonly copyIntervalMs: number;
  /** How the last copy attempt failed; null when it landed, or there was none yet. */
  readonly lastCopyFailure: CopyFailure | null;
  readonly schedulerRunning: boolean;
  readonly now: Date;
}): OffHostRpo {
  const { newestVerifiedCopyAt, copyIntervalMs, lastCopyFailure, schedulerRunning, now } = input;
  const cause = !schedulerRunning
    ? "no scheduler is running, so no copies are made"
    : lastCopyFailure === null
      ? null
      : describeFailure(lastCopyFailure);
  if (newestVerifiedCopyAt === null) {
    return { level: "on-host-only", ageMs: null, reason: cause ?? "no copy has been made off this host yet" };
  }
  const ageMs = now.getTime() - newestVerifiedCopyAt.getTime();
  if (ageMs <= copyIntervalMs) {
    // The copy is recent, but say so when nothing will make the next one.
    return { level: "ok", ageMs, reason: schedulerRunning ? null : cause };
  }
  const stuck = !schedulerRunning || lastCopyFailure?.kind === "target-offline";
  if (ageMs <= copyIntervalMs + copyOverdueAfterMs(copyIntervalMs) && !stuck) {
    return { level: "due", ageMs, reason: cause ?? "a copy is pending" };
  }
  return {
    level: "overdue",
    ageMs,
    reason: cause ?? "the scheduled copy has not landed (is the schedule paused, or a copy still running?)",
  };
}

function describeFailure(failure: CopyFailure): string {
  const detail = failure.detail === null ? "" : `: ${failure.detail}`;
  switch (failure.kind) {
    case "target-offline":
      return `the target is offline${detail}`;
    case "copy-failed":
      return `the last copy failed${detail}`;
    case "verify-failed":
      return `the last copy did not verify on the target${detail}`;
  }
}

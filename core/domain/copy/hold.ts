/**
 * Copy before prune: of the local snapshots a schedule's retention would remove, those still owed
 * a copy stay until a copy of them, or of a newer snapshot, is verified on the target (PBS's
 * practice: a sync finishes before the local prune removes what should go off-site).
 *
 * While a copy is owed every run is chosen (copy/due.ts), so through an outage the host keeps
 * every run's snapshot since the first copy that did not land, until one lands: an hourly
 * schedule offline for five days holds some ninety more than its retention keeps. The
 * preview says that holding is on; turning it off keeps the host to its retention.
 */
import type { Snapshot } from "../types.js";
import { isOwedCopy, type CopyHistory } from "./due.js";
import type { CopyPolicy } from "./policy.js";

export interface HeldSnapshot {
  readonly snapshot: Snapshot;
  readonly reason: string;
}

export interface HoldResult {
  /** What may go now, in the order given. */
  readonly remove: readonly Snapshot[];
  readonly held: readonly HeldSnapshot[];
}

/**
 * Splits what the local retention would remove (applyRetention's `remove`) into what goes and what
 * is held for its copy. A snapshot left by an interrupted job was never chosen for a copy and is
 * not a recovery point: it goes.
 */
export function holdUntilCopied(
  policy: CopyPolicy,
  wouldRemove: readonly Snapshot[],
  history: CopyHistory,
): HoldResult {
  if (!policy.holdLocalUntilCopied) {
    return { remove: wouldRemove, held: [] };
  }
  const remove: Snapshot[] = [];
  const held: HeldSnapshot[] = [];
  for (const snapshot of wouldRemove) {
    if (!snapshot.incomplete && isOwedCopy(history, snapshot)) {
      held.push({
        snapshot,
        reason: `held for its copy to ${policy.target}, which has not landed yet (owed since ${history.owedSince?.createdAt ?? "?"})`,
      });
    } else {
      remove.push(snapshot);
    }
  }
  return { remove, held };
}

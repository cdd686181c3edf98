/**
 * The schedule preview's year, with its copies: what stays on the host (retention/forecast.ts)
 * and what stays on the target. The runs are simulated with the decision the scheduler makes
 * (copyDue) on a target that is always reachable (an outage only holds snapshots on the host
 * until the target is back), and the target's retention is applied after the last copy: keep N
 * and GFS keep at the end exactly what pruning after every copy would have kept (the simulated
 * year in copy-sim.test.ts checks it), at a fraction of the cost.
 */
import type { RetentionPolicy } from "../retention/gfs.js";
import {
  forecastRetentionOf,
  plannedRuns,
  summarizeForecast,
  type PlannedRuns,
  type RetentionForecast,
} from "../retention/forecast.js";
import type { When } from "../schedule/spec.js";
import { copyDue, historyAfterLanded, historyAfterRun, NO_COPIES_YET } from "./due.js";
import type { CopyPolicy } from "./policy.js";
import { applyTargetRetention, type CopyOwner, type TargetCopy } from "./target-retention.js";

export interface CopyForecast extends RetentionForecast {
  readonly target: string;
  /** Copies sent in the year (`runs` counts the schedule's runs). */
  readonly copies: number;
  /** Said in the preview: local snapshots owed a copy stay on the host until it lands. */
  readonly holdLocalUntilCopied: boolean;
}

export interface ScheduleForecast {
  readonly host: RetentionForecast;
  /** Null when the schedule makes no copies. */
  readonly target: CopyForecast | null;
}

const FORECAST_OWNER: CopyOwner = { id: "forecast", vmUuid: "forecast" };

export function forecastSchedule(
  when: When,
  retention: RetentionPolicy,
  copy: CopyPolicy | null,
  now: Date,
): ScheduleForecast {
  const runs = plannedRuns(when, now);
  return {
    host: forecastRetentionOf(runs, retention, now),
    target: copy === null ? null : forecastCopies(runs, copy, now),
  };
}

function forecastCopies(runs: PlannedRuns, policy: CopyPolicy, now: Date): CopyForecast {
  let history = NO_COPIES_YET;
  const copies: TargetCopy[] = [];
  runs.slots.forEach((slot, i) => {
    const snapshot = { tag: `forecast-${String(i).padStart(6, "0")}`, createdAt: slot.toISOString() };
    const decision = copyDue(policy, history, snapshot, slot);
    history = historyAfterRun(history, snapshot, decision);
    if (decision.copy) {
      history = historyAfterLanded(history, [snapshot]);
      copies.push({
        id: snapshot.tag,
        state: "verified",
        vmUuid: FORECAST_OWNER.vmUuid,
        scheduleId: FORECAST_OWNER.id,
        snapshotTag: snapshot.tag,
        snapshotCreatedAt: snapshot.createdAt,
      });
    }
  });
  const last = runs.slots.at(-1) ?? now;
  const { keep } = applyTargetRetention(copies, policy.retention, FORECAST_OWNER, last);
  const kept = keep.map((k) => ({ createdAt: k.copy.snapshotCreatedAt ?? "", reasons: k.reasons }));
  return {
    ...summarizeForecast(runs, kept),
    target: policy.target,
    copies: copies.length,
    holdLocalUntilCopied: policy.holdLocalUntilCopied,
  };
}

import type { Snapshot } from "../types.js";
import { applyRetention, type RetentionPolicy } from "./gfs.js";
import { nextSlots, type When } from "../schedule/spec.js";

/**
 * What a schedule's retention settles into: run the schedule forward for a year on paper, apply
 * the retention after the last run, and count what stays. This is what the schedule editor shows
 * as you type ("after a year: 24 snapshots, the oldest 12 months back"), so that GFS counts mean
 * something before the first snapshot exists. Pure: the same input gives the same forecast.
 */
export interface RetentionForecast {
  readonly horizonDays: number;
  /** Runs inside the horizon (capped: a cron every minute is not simulated run by run). */
  readonly runs: number;
  /** The last run simulated, after which the retention is applied. */
  readonly lastRunAt: string | null;
  /** True when the cap on runs ended the simulation before the horizon did (a very frequent cron). */
  readonly cutShort: boolean;
  readonly kept: number;
  readonly oldestKeptAt: string | null;
  /** How many stay for each rule (a snapshot kept for two rules counts in both). */
  readonly byRule: Readonly<Record<"latest" | "daily" | "weekly" | "monthly", number>>;
}

const HORIZON_DAYS = 365;
const MAX_RUNS = 20_000;
const FORECAST_ID = "forecast";

export function forecastRetention(when: When, policy: RetentionPolicy, now: Date): RetentionForecast {
  return forecastRetentionOf(plannedRuns(when, now), policy, now);
}

/** The forecast over runs already planned (the schedule preview plans them once for host and target). */
export function forecastRetentionOf(
  runs: PlannedRuns,
  policy: RetentionPolicy,
  now: Date,
): RetentionForecast {
  const snapshots: Snapshot[] = runs.slots.map((slot, i) => ({
    tag: `${FORECAST_ID}-${String(i).padStart(6, "0")}`,
    name: slot.toISOString(),
    kind: "scheduled",
    origin: FORECAST_ID,
    createdAt: slot.toISOString(),
    disks: [],
    note: null,
    pinned: false,
    consistency: null,
    incomplete: false,
    hasVmState: false,
  }));
  const { keep } = applyRetention(snapshots, policy, FORECAST_ID, runs.slots.at(-1) ?? now);
  return summarizeForecast(
    runs,
    keep.map((k) => ({ createdAt: k.snapshot.createdAt, reasons: k.reasons })),
  );
}

/** The runs a forecast simulates: a year of the schedule, capped (see RetentionForecast.cutShort). */
export interface PlannedRuns {
  readonly slots: readonly Date[];
  readonly cutShort: boolean;
}

export function plannedRuns(when: When, now: Date): PlannedRuns {
  const end = now.getTime() + HORIZON_DAYS * 86_400_000;
  const slots = nextSlots(when, now, MAX_RUNS).filter((slot) => slot.getTime() <= end);
  return { slots, cutShort: slots.length === MAX_RUNS };
}

/** The forecast of what a retention kept (oldest first) after the planned runs. */
export function summarizeForecast(
  runs: PlannedRuns,
  kept: readonly { readonly createdAt: string; readonly reasons: readonly string[] }[],
): RetentionForecast {
  const byRule = { latest: 0, daily: 0, weekly: 0, monthly: 0 };
  for (const { reasons } of kept) {
    for (const rule of Object.keys(byRule) as (keyof typeof byRule)[]) {
      if (reasons.some((r) => r.startsWith(`${rule}-`))) {
        byRule[rule]++;
      }
    }
  }
  return {
    horizonDays: HORIZON_DAYS,
    runs: runs.slots.length,
    lastRunAt: runs.slots.at(-1)?.toISOString() ?? null,
    cutShort: runs.cutShort,
    kept: kept.length,
    oldestKeptAt: kept[0]?.createdAt ?? null,
    byRule,
  };
}

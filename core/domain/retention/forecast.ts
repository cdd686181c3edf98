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
  const end = new Date(now.getTime() + HORIZON_DAYS * 86_400_000);
  const slots = nextSlots(when, now, MAX_RUNS).filter((slot) => slot.getTime() <= end.getTime());
  const snapshots: Snapshot[] = slots.map((slot, i) => ({
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
  const last = slots.at(-1) ?? now;
  const { keep } = applyRetention(snapshots, policy, FORECAST_ID, last);
  const byRule = { latest: 0, daily: 0, weekly: 0, monthly: 0 };
  for (const kept of keep) {
    for (const rule of Object.keys(byRule) as (keyof typeof byRule)[]) {
      if (kept.reasons.some((r) => r.startsWith(`${rule}-`))) {
        byRule[rule]++;
      }
    }
  }
  return {
    horizonDays: HORIZON_DAYS,
    runs: slots.length,
    lastRunAt: slots.at(-1)?.toISOString() ?? null,
    cutShort: slots.length === MAX_RUNS,
    kept: keep.length,
    oldestKeptAt: keep[0]?.snapshot.createdAt ?? null,
    byRule,
  };
}

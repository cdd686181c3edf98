/**
 * The ranges of the numbers people set, shared by the CLI's options, the API's schemas and the
 * checks behind them, so that every front end states and enforces the same range.
 */

/** Verified exports a target keeps per VM. */
export const MAX_EXPORTS_KEPT = 1000;

/** Copies of a schedule one retention rule of a target keeps (latest, daily, weekly, monthly). */
export const MAX_COPIES_KEPT = MAX_EXPORTS_KEPT;

/** Runs of a schedule from one off-host copy to the next ("every Nth run"). */
export const MAX_RUNS_PER_COPY = 1000;

/** Snapshots one retention rule of a schedule keeps (latest, daily, weekly, monthly). */
export const MAX_SNAPSHOTS_KEPT = 10_000;

/** Safety snapshots (taken before each revert) kept per VM. */
export const MAX_SAFETY_KEPT = 100;

/** A transfer's bandwidth limit, KiB/s: 100 GB/s, far above any link. */
export const MAX_BWLIMIT_KIB = 100_000_000;

/** How long a VM may take to shut down, or a consistency hook to run, in seconds. */
export const MAX_WAIT_SECONDS = 3600;

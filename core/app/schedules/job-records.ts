/**
 * What the scheduler writes at the end of a job, in the words `snapkeep jobs list` and the Jobs
 * panel show: a scheduled snapshot's record says what it pruned, held and whether a copy is queued;
 * a copy job's what it sent, resumed, pruned on the target and checked again.
 */
import type { JobEnd } from "../../infra/journal.js";
import { formatBytes } from "../../domain/bytes.js";
import type { CopyRunResult } from "./copies.js";
import type { ScheduledCopyResult, ScheduledRunResult } from "./schedules.js";

type EndRecord = Omit<JobEnd, "event">;

/** The end record of a run that made its snapshot: what it pruned and held, and its copy's fate. */
export function snapshotRecord(job: string, now: Date, result: ScheduledRunResult): EndRecord {
  const copy = result.copy;
  const copyWords =
    copy === null
      ? []
      : copy.due
        ? [`A copy to ${copy.target} is queued (${copy.reason}).`]
        : [`No copy this run (${copy.reason}).`];
  return {
    job,
    at: now.toISOString(),
    status: "succeeded",
    message: [
      `Snapshot ${result.snapshot.name} made.`,
      ...copyWords,
      ...heldWords(result.held),
      ...result.warnings,
      ...result.log,
    ].join(" "),
    pruned: [...result.pruned],
    ...(result.held.length === 0 ? {} : { held: [...result.held] }),
    ...(result.pruneError === null ? {} : { pruneError: result.pruneError }),
  };
}

/**
 * The end record of a copy job. It failed when it was tried and nothing landed; a copy that landed
 * and whose pruning on the target failed succeeded, with the pruning's failure in its words.
 */
export function copyRecord(
  job: string,
  now: Date,
  result: ScheduledCopyResult,
  retryAt: Date | null,
): EndRecord {
  const copy = result.copy;
  const failed = copy.attempted && copy.exportId === null;
  const retry = retryAt === null ? "" : ` Tried again at ${retryAt.toISOString()} or with the next run.`;
  return {
    job,
    at: now.toISOString(),
    status: failed ? "failed" : "succeeded",
    message: [...copyWords(copy), ...(failed ? [retry.trim()] : []), ...heldWords(result.held)]
      .filter((w) => w !== "")
      .join(" "),
    pruned: [...result.pruned],
    ...(result.held.length === 0 ? {} : { held: [...result.held] }),
    ...(result.pruneError === null ? {} : { pruneError: result.pruneError }),
    ...(copy.attempted
      ? {
          copy: {
            target: copy.target,
            exportId: copy.exportId,
            bytesSent: copy.bytesSent,
            prunedCopies: [...copy.prunedCopies],
            error: copy.failure?.detail ?? null,
            reverified: copy.reverified,
            resumed: copy.resumed,
          },
        }
      : {}),
  };
}

function heldWords(held: readonly string[]): string[] {
  return held.length === 0
    ? []
    : [`Kept ${held.length} snapshot${held.length === 1 ? "" : "s"} until their copy lands.`];
}

function copyWords(copy: CopyRunResult): string[] {
  if (!copy.attempted) {
    return [`Nothing to copy: ${copy.reason}.`];
  }
  if (copy.exportId === null) {
    const detail = (copy.failure?.detail ?? "unknown error").replace(/[^.!?]$/, "$&.");
    return [`The copy of ${copy.snapshotTag ?? "?"} to ${copy.target} failed: ${detail}`];
  }
  const sent = `${formatBytes(copy.bytesSent)} sent${copy.resumed ? ", resuming an interrupted copy" : ""}`;
  const pruned =
    copy.prunedCopies.length === 0 ? "" : ` Removed older copies: ${copy.prunedCopies.join(", ")}.`;
  const after = copy.failure === null ? "" : ` ${copy.failure.detail ?? ""}`;
  return [
    `Copied ${copy.snapshotTag ?? "?"} to ${copy.target} as ${copy.exportId} (${sent}).${pruned}${reverifyWords(copy)}${after}`,
  ];
}

function reverifyWords(copy: CopyRunResult): string {
  const checked = copy.reverified;
  if (checked === null) {
    return "";
  }
  const id = checked.exportId ?? "?";
  return checked.ok === true
    ? ` Checked copy ${id} again: it still matches.`
    : checked.ok === false
      ? ` Copy ${id} no longer matches (${checked.detail ?? "checksums differ"}): marked damaged.`
      : ` An older copy could not be checked again: ${checked.detail ?? "unknown error"}.`;
}

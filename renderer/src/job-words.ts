/**
 * Jobs in words: the scheduler's steps as a person reads them, and what a finished job did
 * (result, size, duration, what it pruned). Pure, for the Jobs panel and the History.
 */
import type { JobView } from "../../core/api/contract.js";
import { formatBytes, formatDuration } from "./format.js";

/** The scheduler's journal names its steps for machines ("snapshot-made"); these are the words. */
const STEP_WORDS: Readonly<Record<string, string>> = {
  snapshot: "Taking the snapshot",
  "snapshot-made": "Snapshot taken, pruning old ones",
  copy: "Copying off the host",
  "copy-landed": "Copy landed and verified",
  prune: "Pruning old snapshots",
};

export function stepWords(step: string): string {
  return STEP_WORDS[step] ?? (step.length > 0 ? step.charAt(0).toUpperCase() + step.slice(1) : step);
}

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}

/** "Took 2 min · sent 14 MiB · removed 2 older copies": what a finished job did, in one line. */
export function jobOutcome(job: JobView): string | null {
  if (job.endedAt === null) {
    return null;
  }
  const parts = [`Took ${formatDuration((Date.parse(job.endedAt) - Date.parse(job.startedAt)) / 1000)}`];
  if (job.state === "succeeded") {
    parts.push(...resultWords(job));
  }
  return parts.join(" · ");
}

function resultWords(job: JobView): string[] {
  switch (job.kind) {
    case "export": {
      const r = job.result;
      if (r === null) {
        return [];
      }
      const size = r.manifest.disks.reduce((n, d) => n + d.size, 0);
      return [
        `export ${r.id}`,
        `${formatBytes(size)} of disks, ${formatBytes(r.bytesSent)} sent${r.basis === null ? "" : " (changes only)"}`,
        ...(r.pruned.length > 0
          ? [`removed ${plural(r.pruned.length, "older export", "older exports")}`]
          : []),
      ];
    }
    case "scheduled-snapshot":
      return job.result !== null && job.result.pruned.length > 0
        ? [`pruned ${job.result.pruned.join(", ")}`]
        : ["nothing to prune"];
    case "scheduled-copy": {
      const r = job.result;
      if (r === null) {
        return ["nothing was owed"];
      }
      return [
        `${formatBytes(r.bytesSent)} sent to ${r.target}${r.exportId === null ? "" : ` as ${r.exportId}`}`,
        ...(r.pruned.length > 0 ? [`removed ${plural(r.pruned.length, "older copy", "older copies")}`] : []),
      ];
    }
    case "verify":
      return ["every file matches its checksum"];
    default:
      return [];
  }
}

import type { JobView } from "../../core/api/contract.js";

/** Running jobs first (oldest first: they finish first), then the rest, newest first. */
export function orderJobs(jobs: readonly JobView[]): JobView[] {
  const running = jobs
    .filter((j) => j.state === "running")
    .sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  const ended = jobs
    .filter((j) => j.state !== "running")
    .sort((a, b) => (b.endedAt ?? b.startedAt).localeCompare(a.endedAt ?? a.startedAt));
  return [...running, ...ended];
}

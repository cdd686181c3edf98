import { useMemo } from "react";

import type { JobView } from "../../core/api/contract.js";
import { formatBytes, formatDuration, formatRate, formatTime } from "./format.js";
import { orderJobs } from "./jobs-order.js";
import { jobOutcome, stepWords } from "./job-words.js";

const STATE_LABEL: Record<JobView["state"], string> = {
  running: "running",
  succeeded: "done",
  failed: "failed",
  cancelled: "cancelled",
  interrupted: "interrupted",
};

export function JobsPanel({
  jobs,
  onCancel,
  onClose,
}: {
  jobs: Readonly<Record<string, JobView>>;
  onCancel: (id: string) => void;
  onClose: () => void;
}) {
  const ordered = useMemo(() => orderJobs(Object.values(jobs)), [jobs]);
  return (
    <aside
      className="jobs-panel"
      aria-labelledby="jobs-title"
      onKeyDown={(e) => {
        if (e.key === "Escape") {
          onClose();
        }
      }}
    >
      <div className="section-head">
        <h2 id="jobs-title">Jobs</h2>
        <button type="button" onClick={onClose} aria-label="Close the jobs panel">
          Close
        </button>
      </div>
      {ordered.length === 0 ? (
        <p className="empty">
          No jobs yet. Exports, restores and copies run here; scheduled snapshots show up too.
        </p>
      ) : (
        <ul className="jobs">
          {ordered.map((job) => (
            <JobRow key={job.id} job={job} onCancel={onCancel} />
          ))}
        </ul>
      )}
    </aside>
  );
}

export function JobRow({ job, onCancel }: { job: JobView; onCancel?: (id: string) => void }) {
  const p = job.progress;
  const percent = p?.fraction === null || p?.fraction === undefined ? null : Math.round(p.fraction * 100);
  const scheduled = job.kind === "scheduled-snapshot" || job.kind === "scheduled-copy";
  const outcome = jobOutcome(job);
  const details = [
    p?.phase === undefined || p.phase === null ? null : scheduled ? stepWords(p.phase) : p.phase,
    p?.bytesTotal !== null && p?.bytesTotal !== undefined && p.bytesTotal > 0
      ? `${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)}`
      : null,
    job.state === "running" ? formatRate(p?.bytesPerSecond ?? null) : null,
    job.state === "running" && p?.etaSeconds !== null && p?.etaSeconds !== undefined
      ? `${formatDuration(p.etaSeconds)} left`
      : null,
  ].filter((d): d is string => d !== null && d !== undefined && d !== "");
  return (
    <li className={`job job-${job.state}`} data-job={job.id}>
      <div className="job-head">
        <span className="job-title">{job.title}</span>
        <span className={`badge job-state-${job.state}`}>{STATE_LABEL[job.state]}</span>
        {onCancel !== undefined && job.state === "running" && (
          <button
            type="button"
            onClick={() => onCancel(job.id)}
            disabled={!job.cancellable}
            aria-label={`Cancel: ${job.title}`}
          >
            {job.cancellable ? "Cancel" : "Cancelling…"}
          </button>
        )}
      </div>
      {(job.state === "running" || percent !== null) && (
        <progress
          max={100}
          value={percent ?? undefined}
          aria-label={`Progress of ${job.title}`}
          aria-valuetext={percent === null ? "working" : `${percent}%`}
        />
      )}
      <div className="job-details">
        {percent !== null && <span>{percent}%</span>}
        {details.map((d) => (
          <span key={d}>{d}</span>
        ))}
        <span className="job-time">
          {job.endedAt === null ? `started ${formatTime(job.startedAt)}` : `ended ${formatTime(job.endedAt)}`}
        </span>
      </div>
      {outcome !== null && <p className="job-outcome">{outcome}</p>}
      {job.error !== null && job.state !== "cancelled" && (
        <p className="job-error" role={job.state === "failed" ? "alert" : undefined}>
          {job.error.message}
          {job.error.hint !== null && <span className="hint"> {job.error.hint}</span>}
        </p>
      )}
    </li>
  );
}

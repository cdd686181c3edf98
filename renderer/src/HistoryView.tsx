import { useEffect, useId } from "react";
import { useStore } from "zustand";

import type { HistoryEntry, HistoryKind, JobState } from "../../core/api/contract.js";
import { stepWords } from "./job-words.js";
import type { HistoryFilter } from "./slices/history.js";
import type { AppStore } from "./store.js";
import { formatBytes, formatDuration, formatTime } from "./format.js";

const KIND_WORDS: Record<HistoryKind, string> = {
  "scheduled-snapshot": "Scheduled snapshot",
  copy: "Copy off the host",
  export: "Export",
  verify: "Verify",
  restore: "Restore",
  template: "Template",
  volume: "Volume",
  "vm-create": "New VM",
  lab: "Demo VMs",
  drill: "Restore drill",
};

/** Every kind, in the order the filter lists them (the record above makes sure none is missing). */
const HISTORY_KINDS = Object.keys(KIND_WORDS) as HistoryKind[];

const RESULT_WORDS: Record<JobState, string> = {
  running: "Running",
  succeeded: "Done",
  failed: "Failed",
  cancelled: "Cancelled",
  interrupted: "Interrupted",
};

/**
 * The job journal as a history: every snapshot, copy, export, verify and restore, newest first,
 * filtered by VM, kind and result; each entry opens to its steps, what it pruned and what it sent.
 */
export function HistoryView({ store }: { store: AppStore }) {
  const id = useId();
  const { history, historyFilter: filter, loadHistory } = useStore(store);
  useEffect(() => {
    void loadHistory(store.getState().historyFilter);
  }, [store, loadHistory]);
  const change = (next: HistoryFilter): void => void loadHistory(next);
  const vmKey = filter.host === undefined || filter.vm === undefined ? "" : `${filter.host}/${filter.vm}`;
  return (
    <section className="page history" aria-labelledby={`${id}-title`}>
      <header className="page-head">
        <h2 id={`${id}-title`}>History</h2>
        <button type="button" onClick={() => void loadHistory(filter)}>
          Refresh
        </button>
      </header>
      <form className="history-filters" aria-label="Filter the history" onSubmit={(e) => e.preventDefault()}>
        <label htmlFor={`${id}-vm`}>VM</label>
        <select
          id={`${id}-vm`}
          value={vmKey}
          onChange={(e) => {
            const chosen = history?.vms.find((v) => `${v.host}/${v.vm}` === e.target.value);
            const { host: _h, vm: _v, ...rest } = filter;
            change(chosen === undefined ? rest : { ...rest, host: chosen.host, vm: chosen.vm });
          }}
        >
          <option value="">All VMs</option>
          {history?.vms.map((v) => (
            <option key={`${v.host}/${v.vm}`} value={`${v.host}/${v.vm}`}>
              {v.host}/{v.vm}
            </option>
          ))}
        </select>
        <label htmlFor={`${id}-kind`}>Kind</label>
        <select
          id={`${id}-kind`}
          value={filter.kind ?? ""}
          onChange={(e) => {
            const { kind: _k, ...rest } = filter;
            const kind = HISTORY_KINDS.find((k) => k === e.target.value);
            change(kind === undefined ? rest : { ...rest, kind });
          }}
        >
          <option value="">All kinds</option>
          {HISTORY_KINDS.map((k) => (
            <option key={k} value={k}>
              {KIND_WORDS[k]}
            </option>
          ))}
        </select>
        <label htmlFor={`${id}-result`}>Result</label>
        <select
          id={`${id}-result`}
          value={filter.result ?? ""}
          onChange={(e) => {
            const { result: _r, ...rest } = filter;
            const result = (Object.keys(RESULT_WORDS) as JobState[]).find((r) => r === e.target.value);
            change(result === undefined ? rest : { ...rest, result });
          }}
        >
          <option value="">All results</option>
          {(Object.keys(RESULT_WORDS) as JobState[]).map((r) => (
            <option key={r} value={r}>
              {RESULT_WORDS[r]}
            </option>
          ))}
        </select>
        {history !== null && (
          <span className="muted" role="status">
            {history.entries.length < history.matching
              ? `The newest ${history.entries.length} of ${history.matching} jobs`
              : `${history.matching} job${history.matching === 1 ? "" : "s"}`}
          </span>
        )}
      </form>
      {history === null ? (
        <p className="empty">Loading the history…</p>
      ) : history.entries.length === 0 ? (
        <p className="empty">
          {history.matching === 0 && Object.keys(filter).length > 0
            ? "No job matches these filters."
            : "No jobs yet. Scheduled snapshots and copies, exports, verifies and restores are listed here."}
        </p>
      ) : (
        <ul className="history-list">
          {history.entries.map((entry) => (
            <HistoryItem key={entry.id} entry={entry} />
          ))}
        </ul>
      )}
    </section>
  );
}

function HistoryItem({ entry }: { entry: HistoryEntry }) {
  const took =
    entry.endedAt === null ? null : (Date.parse(entry.endedAt) - Date.parse(entry.startedAt)) / 1000;
  return (
    <li className={`history-entry job-${entry.state}`} data-job={entry.id}>
      <details>
        <summary>
          <span className="history-when">{formatTime(entry.startedAt)}</span>
          <span className="history-title">{entry.title}</span>
          {entry.vm !== null && (
            <span className="history-vm">
              {entry.host}/{entry.vm}
            </span>
          )}
          <span className={`badge job-state-${entry.state}`}>{RESULT_WORDS[entry.state]}</span>
          <span className="history-took">{took === null ? "" : formatDuration(took)}</span>
        </summary>
        <div className="history-details">
          <p className="muted">
            {KIND_WORDS[entry.kind]} · job {entry.id} · started {formatTime(entry.startedAt)}
            {entry.endedAt === null ? "" : ` · ended ${formatTime(entry.endedAt)}`}
          </p>
          {entry.message !== null && <p className="history-message">{entry.message}</p>}
          {entry.sent !== null && (
            <p>
              Sent {formatBytes(entry.sent.bytes)} to {entry.sent.target}
              {entry.sent.exportId === null ? "" : ` as export ${entry.sent.exportId}`}
              {entry.sent.prunedCopies.length > 0
                ? `; its retention removed ${entry.sent.prunedCopies.join(", ")}`
                : ""}
              .
            </p>
          )}
          {entry.pruned.length > 0 && <p>Pruned: {entry.pruned.join(", ")}.</p>}
          {entry.held.length > 0 && <p>Kept until their copy lands: {entry.held.join(", ")}.</p>}
          {entry.pruneError !== null && (
            <p className="history-message">The prune failed: {entry.pruneError}</p>
          )}
          {entry.steps.length > 0 ? (
            <ol className="history-steps" aria-label="Steps">
              {entry.steps.map((s, i) => (
                <li key={i}>
                  <time dateTime={s.at}>{new Date(s.at).toLocaleTimeString()}</time>{" "}
                  {/^(\[[^\]]*\] )?\$ /.test(s.step) ? (
                    <code className="history-command">{s.step}</code>
                  ) : (
                    stepWords(s.step)
                  )}
                </li>
              ))}
            </ol>
          ) : (
            <p className="muted">No steps were journaled for this job.</p>
          )}
        </div>
      </details>
    </li>
  );
}

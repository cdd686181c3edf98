/**
 * The API's side of the job journal: the jobs a UI starts are written to it (start and end, not
 * every progress tick), and the jobs panel shows what the journal has beside this process's own
 * live jobs: the scheduler's snapshots and copies, and the jobs of other Snapkeep processes (a
 * second window, the CLI, a process that died mid-job, shown as interrupted).
 */
import { Journal, stillRunning, type JobSummary } from "../infra/journal.js";
import { schedulerOwner } from "../infra/scheduler-lock.js";
import type { History, HistoryEntry, HistoryKind, JobView, Params } from "./contract.js";

/** Jobs the jobs panel shows from the journal, newest last. */
const JOURNAL_JOBS = 30;

export class JobJournal {
  readonly #home: string;
  readonly #journal: Journal;
  readonly #started = new Set<string>();
  /** The last phase journaled per running UI job: a phase change is a step of its log. */
  readonly #phases = new Map<string, string>();

  constructor(home: string) {
    this.#home = home;
    this.#journal = new Journal(home);
  }

  /** A UI job changed: journal its start the first time, its end once it has one. */
  record(job: JobView): void {
    if (job.kind === "scheduled-snapshot" || job.kind === "scheduled-copy") {
      return; // the scheduler journals its own
    }
    try {
      if (!this.#started.has(job.id)) {
        this.#started.add(job.id);
        this.#journal.start({
          job: job.id,
          at: job.startedAt,
          kind: job.kind,
          title: job.title,
          host: job.host,
          vmName: job.vm,
        });
      }
      const phase = job.progress?.phase;
      if (
        job.state === "running" &&
        phase !== undefined &&
        phase !== "" &&
        this.#phases.get(job.id) !== phase
      ) {
        this.#phases.set(job.id, phase);
        this.#journal.progress(job.id, phase, new Date());
      }
      if (job.state !== "running") {
        this.#started.delete(job.id);
        this.#phases.delete(job.id);
        const exported = job.kind === "export" ? job.result : null;
        // What the export decided per disk (full or incremental, and why) is the end of its log.
        for (const note of exported?.notes ?? []) {
          this.#journal.progress(job.id, note, new Date(job.endedAt ?? Date.now()));
        }
        this.#journal.end({
          job: job.id,
          at: job.endedAt ?? new Date().toISOString(),
          status: job.state,
          ...(job.error === null ? {} : { message: job.error.message }),
          ...(exported === null
            ? {}
            : {
                sent: { target: exported.target, exportId: exported.id, bytes: exported.bytesSent },
                pruned: [...exported.pruned],
              }),
        });
      }
    } catch {
      // A full disk must not fail an export that is going well: the job goes on, and this
      // process's panel still shows it; only its line in the history is missing.
    }
  }

  /** A line of a running UI job's log (a command it ran). */
  log(id: string, line: string): void {
    if (this.#started.has(id)) {
      try {
        this.#journal.progress(id, line, new Date());
      } catch {
        // As in record: the job goes on without its line.
      }
    }
  }

  /** The History view's page of the journal. */
  history(filter: Params<"jobs.history">): History {
    return historyOf(this.#journal.jobs(), filter, schedulerOwner(this.#home) !== null);
  }

  /** The journal's recent jobs that this process does not hold itself, as the jobs panel shows them. */
  others(here: ReadonlySet<string>): JobView[] {
    const live = schedulerOwner(this.#home) !== null;
    return this.#journal
      .jobs()
      .filter((job) => !here.has(job.id))
      .slice(-JOURNAL_JOBS)
      .map((job) => viewOf(job, live));
  }
}

/** Every kind the journal writes is one the History lists, and the other way round. */
type SameKinds = [JobSummary["kind"]] extends [HistoryKind]
  ? [HistoryKind] extends [JobSummary["kind"]]
    ? true
    : never
  : never;
export const HISTORY_KINDS_MATCH: SameKinds = true;

/** The History view's page of the journal: newest first, filtered, with each job's whole record. */
export function historyOf(
  jobs: readonly JobSummary[],
  filter: Params<"jobs.history">,
  schedulerAlive: boolean,
): History {
  const vms = new Map<string, { host: string; vm: string }>();
  for (const job of jobs) {
    if (job.host !== null && job.vmName !== null) {
      vms.set(`${job.host}/${job.vmName}`, { host: job.host, vm: job.vmName });
    }
  }
  const matching = jobs
    .map((job) => entryOf(job, schedulerAlive))
    .filter(
      (e) =>
        (filter.host === undefined || e.host === filter.host) &&
        (filter.vm === undefined || e.vm === filter.vm) &&
        (filter.kind === undefined || e.kind === filter.kind) &&
        (filter.result === undefined || e.state === filter.result),
    )
    .reverse();
  return {
    entries: matching.slice(0, filter.limit),
    matching: matching.length,
    vms: [...vms.values()].sort((a, b) => `${a.host}/${a.vm}`.localeCompare(`${b.host}/${b.vm}`)),
  };
}

function entryOf(job: JobSummary, schedulerAlive: boolean): HistoryEntry {
  const view = viewOf(job, schedulerAlive);
  const copy = job.copy ?? null;
  return {
    id: job.id,
    kind: job.kind,
    title: view.title,
    host: job.host,
    vm: job.vmName,
    state: view.state,
    startedAt: job.startedAt,
    endedAt: job.endedAt,
    message: view.error?.message ?? copy?.error ?? null,
    steps: job.steps,
    pruned: job.pruned,
    held: job.held,
    pruneError: job.pruneError,
    sent:
      copy !== null
        ? {
            target: copy.target,
            exportId: copy.exportId,
            bytes: copy.bytesSent,
            prunedCopies: copy.prunedCopies,
          }
        : job.sent === null || job.sent === undefined
          ? null
          : {
              target: job.sent.target,
              exportId: job.sent.exportId ?? null,
              bytes: job.sent.bytes,
              prunedCopies: [],
            },
  };
}

function viewOf(job: JobSummary, schedulerAlive: boolean): JobView {
  // Open in the journal while its process is gone: it was cut off, never done.
  const state = job.status === "running" && !stillRunning(job, schedulerAlive) ? "interrupted" : job.status;
  const common = {
    id: job.id,
    host: job.host,
    vm: job.vmName,
    state,
    startedAt: job.startedAt,
    endedAt: job.endedAt,
    progress: job.step === null ? null : { ...NO_BYTES, phase: job.step },
    error:
      job.message === null && state !== "interrupted"
        ? null
        : state === "succeeded"
          ? null
          : {
              code: state === "interrupted" ? ("INTERRUPTED" as const) : ("JOB_FAILED" as const),
              message: job.message ?? "Snapkeep stopped while this job ran; it did not complete.",
              hint: null,
              action: null,
            },
    cancellable: false,
  };
  switch (job.kind) {
    case "copy": {
      const copy = job.copy;
      return {
        ...common,
        kind: "scheduled-copy",
        title: `Copy of ${job.vmName} to ${job.target ?? "?"}${damagedWords(copy)}`,
        result:
          copy === null || copy === undefined
            ? null
            : {
                target: copy.target,
                exportId: copy.exportId,
                bytesSent: copy.bytesSent,
                resumed: copy.resumed ?? false,
                pruned: job.pruned,
              },
      };
    }
    case "scheduled-snapshot":
      return {
        ...common,
        kind: "scheduled-snapshot",
        // Journals from before copies were jobs of their own carry the copy on the snapshot job.
        title: `Scheduled snapshot of ${job.vmName}${inlineCopyWords(job.copy)}`,
        result: job.pruned.length > 0 ? { pruned: job.pruned } : null,
      };
    default:
      // Another process's export or restore: what it made is in its own window; here, that it ran.
      return { ...common, kind: job.kind, title: job.title, result: null };
  }
}

function damagedWords(copy: JobSummary["copy"]): string {
  return copy?.reverified?.ok === false ? "; an older copy there is damaged" : "";
}

/** What a scheduled snapshot's copy did, in journals written when runs copied inline. */
function inlineCopyWords(copy: JobSummary["copy"]): string {
  if (copy === null || copy === undefined) {
    return "";
  }
  if (copy.exportId !== null) {
    return `, copied to ${copy.target}${damagedWords(copy)}`;
  }
  return ` — its copy to ${copy.target} failed: ${copy.error ?? "unknown error"}`;
}

const NO_BYTES = {
  fraction: null,
  bytesDone: null,
  bytesTotal: null,
  bytesPerSecond: null,
  etaSeconds: null,
};

/**
 * Long work the UI starts (exports, restores, templates, volumes, VMs, the demo lab): each runs as a
 * job that the UI can watch and cancel, so no request waits minutes for its answer. Progress is
 * pushed as events, at most a few per second per job: a transfer reports far more often than a
 * screen needs.
 *
 * These jobs live as long as the process that runs them. Work a job half-did is safe to leave by
 * design (an export stays `.partial` on its target until it is finished; restores and copies move
 * into place only when complete), so a process that dies mid-job loses the job's entry, never
 * reports it as done.
 */
import { randomBytes } from "node:crypto";

import { SnapkeepError, isSnapkeepError } from "../errors.js";
import { toErrorView } from "../domain/explain.js";
import type {
  ApiError,
  JobProgress,
  JobResults,
  JobState,
  JobView,
  JobViewOf,
  UiJobKind,
} from "./contract.js";
import { withJobLog } from "../infra/runner/job-log.js";

export type { JobProgress, JobState, JobView, UiJobKind } from "./contract.js";

export interface JobSpec<K extends UiJobKind> {
  readonly kind: K;
  readonly title: string;
  readonly host?: string | undefined;
  readonly vm?: string | undefined;
  /** The export a job is about (a verify): the Exports view marks that row by it, not by the title. */
  readonly export?: { readonly target: string; readonly id: string } | undefined;
  /** False for work that cannot stop half way (a copy qemu-img makes in one go): no Cancel is offered. */
  readonly cancellable?: boolean;
}

/** The work of a job of kind K: it ends with what the contract says that kind makes. */
export type JobWork<K extends UiJobKind> = (
  signal: AbortSignal,
  report: (progress: JobProgress) => void,
) => Promise<JobResults[K]>;

interface Entry {
  view: JobView;
  readonly abort: AbortController;
  readonly done: Promise<void>;
  lastPushMs: number;
}

/** Finished jobs kept for the jobs panel; older ones drop off. */
const KEEP_FINISHED = 50;
/** A quarter second between progress events of one job: smooth bars, few messages. */
const PUSH_EVERY_MS = 250;

export interface JobsOptions {
  readonly now: () => Date;
  /** Monotonic milliseconds, for spacing progress events. */
  readonly clock: () => number;
  readonly onChange: (job: JobView) => void;
  /** Each command a job runs, as a line of its log (the journal keeps it). */
  readonly log?: (id: string, line: string) => void;
}

export class Jobs {
  readonly #options: JobsOptions;
  readonly #entries = new Map<string, Entry>();

  constructor(options: JobsOptions) {
    this.#options = options;
  }

  /** Starts `work` and returns at once with the running job. */
  start<K extends UiJobKind>(spec: JobSpec<K>, work: JobWork<K>): JobViewOf<K> {
    const id = randomBytes(6).toString("hex");
    const abort = new AbortController();
    const view: JobViewOf<K> = {
      id,
      kind: spec.kind,
      title: spec.title,
      host: spec.host ?? null,
      vm: spec.vm ?? null,
      ...(spec.export === undefined ? {} : { export: spec.export }),
      state: "running",
      startedAt: this.#options.now().toISOString(),
      endedAt: null,
      progress: null,
      error: null,
      result: null,
      cancellable: spec.cancellable ?? true,
    };
    const report = (progress: JobProgress): void => {
      const entry = this.#entries.get(id);
      if (entry === undefined || entry.view.state !== "running") {
        return;
      }
      entry.view = { ...entry.view, progress };
      const at = this.#options.clock();
      if (at - entry.lastPushMs >= PUSH_EVERY_MS) {
        entry.lastPushMs = at;
        this.#options.onChange(entry.view);
      }
    };
    const done = Promise.resolve()
      .then(() =>
        withJobLog(
          (line) => this.#options.log?.(id, line),
          () => work(abort.signal, report),
        ),
      )
      .then(
        (result) => this.#finish(id, { state: "succeeded", result }),
        (error: unknown) =>
          this.#finish(id, {
            state: abort.signal.aborted || isSnapkeepError(error, "CANCELLED") ? "cancelled" : "failed",
            error: toErrorView(error),
          }),
      );
    // A job of one kind is one member of the JobView union; TypeScript cannot see that for a K.
    this.#entries.set(id, { view: view as JobView, abort, done, lastPushMs: this.#options.clock() });
    this.#trim();
    this.#options.onChange(view as JobView);
    return view;
  }

  list(): JobView[] {
    return [...this.#entries.values()].map((e) => e.view);
  }

  get(id: string): JobView {
    const entry = this.#entries.get(id);
    if (entry === undefined) {
      throw new SnapkeepError("NOT_FOUND", `There is no job ${id}; it may have finished long ago.`);
    }
    return entry.view;
  }

  /** Asks a running job to stop; it ends as cancelled once its work has stopped. */
  cancel(id: string): JobView {
    const entry = this.#entries.get(id);
    if (entry === undefined) {
      throw new SnapkeepError("NOT_FOUND", `There is no job ${id}.`);
    }
    if (entry.view.state !== "running" || entry.abort.signal.aborted) {
      return entry.view;
    }
    if (!entry.view.cancellable) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `“${entry.view.title}” cannot be stopped half way; it ends by itself.`,
      );
    }
    entry.abort.abort();
    entry.view = { ...entry.view, cancellable: false };
    this.#options.onChange(entry.view);
    return entry.view;
  }

  /** Resolves when the job has ended (for tests and for shutting down cleanly). */
  async settled(id: string): Promise<JobView> {
    await this.#entries.get(id)?.done;
    return this.get(id);
  }

  /** Cancels every running job and waits for each to stop. */
  async dispose(): Promise<void> {
    const running = [...this.#entries.values()].filter((e) => e.view.state === "running");
    for (const entry of running) {
      entry.abort.abort();
    }
    await Promise.all(running.map((e) => e.done));
  }

  #finish(id: string, end: { state: JobState; result?: unknown; error?: ApiError }): void {
    const entry = this.#entries.get(id);
    if (entry === undefined) {
      return;
    }
    // The result is the work's, typed by start() for this job's kind.
    entry.view = {
      ...entry.view,
      state: end.state,
      endedAt: this.#options.now().toISOString(),
      result: end.result ?? null,
      error: end.error ?? null,
      cancellable: false,
      // A finished job's bar is full; a failed one keeps where it stopped.
      progress:
        end.state === "succeeded" && entry.view.progress !== null
          ? { ...entry.view.progress, fraction: 1, etaSeconds: 0 }
          : entry.view.progress,
    } as JobView;
    this.#options.onChange(entry.view);
  }

  #trim(): void {
    const finished = [...this.#entries.values()].filter((e) => e.view.state !== "running");
    for (const entry of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) {
      this.#entries.delete(entry.view.id);
    }
  }
}

import type { AnyParamsIn, JobMethod, JobView } from "../../../core/api/contract.js";
import type { Slice } from "./types.js";

export interface JobsSlice {
  /** Jobs by id: the UI's own and the scheduler's recent ones. */
  readonly jobs: Readonly<Record<string, JobView>>;
  loadJobs(): Promise<void>;
  /** A job event from the API: a new job, progress, or its end. */
  jobChanged(job: JobView): void;
  /** Calls a method that starts a job and returns the job (null when it could not start). */
  startJob<M extends JobMethod>(busy: string, method: M, params: AnyParamsIn<M>): Promise<JobView | null>;
  cancelJob(id: string): Promise<void>;
}

/** Jobs whose end changes what the Exports view lists (a new export, a verdict on one). */
const CHANGES_EXPORTS: ReadonlySet<JobView["kind"]> = new Set(["export", "verify"]);

export const jobsSlice: Slice<JobsSlice> = (api, run) => (set, get) => ({
  jobs: {},
  loadJobs: async () => {
    const list = await api.call("jobs.list", {});
    set({ jobs: Object.fromEntries(list.map((j) => [j.id, j])) });
  },
  jobChanged: (job) => {
    const before = get().jobs[job.id];
    set((s) => ({ jobs: { ...s.jobs, [job.id]: job } }));
    if (
      job.state !== "running" &&
      (before === undefined || before.state === "running") &&
      CHANGES_EXPORTS.has(job.kind) &&
      get().view === "exports"
    ) {
      void get().loadExports();
    }
  },
  startJob: async (busy, method, params) => {
    let job: JobView | null = null;
    await run(busy, async () => {
      const started: JobView = await api.call(method, params);
      job = started;
      set((s) => ({ jobs: { ...s.jobs, [started.id]: s.jobs[started.id] ?? started } }));
    });
    return job;
  },
  cancelJob: async (id) => {
    await run("Cancelling", async () => {
      const job = await api.call("jobs.cancel", { id });
      set((s) => ({ jobs: { ...s.jobs, [id]: job } }));
    });
  },
});

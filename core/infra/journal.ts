import {
  appendFileSync,
  fstatSync,
  readSync,
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { z } from "zod";

import { isProcessAlive, processOwnerSchema, thisProcess, type ProcessOwner } from "./process-identity.js";

/**
 * The job journal: one JSON line per event (start, progress, end), appended and fsynced, so it
 * survives a crash. Every job Snapkeep runs for a person or a schedule is in it: scheduled
 * snapshots and copies, and the exports, verifies and restores a UI or the CLI starts. A job names
 * the process that runs it; one with a start, no end and an owner that is gone was interrupted:
 * it is reported as interrupted, never as done, and what it may have half-made is known from its
 * start record.
 */
/** Jobs a UI or the CLI starts (the API's job kinds), journaled beside the scheduler's. */
export const APP_JOB_KINDS = [
  "export",
  "verify",
  "restore",
  "template",
  "volume",
  "vm-create",
  "lab",
  "drill",
] as const;
export type AppJobKind = (typeof APP_JOB_KINDS)[number];
export type ScheduledJobKind = "scheduled-snapshot" | "copy";
export type JobKind = ScheduledJobKind | AppJobKind;
export type JobStatus = "running" | "succeeded" | "failed" | "cancelled" | "interrupted";

/** What every start record has. */
const startBase = z.object({
  event: z.literal("start"),
  job: z.string(),
  at: z.string(),
  /** Absent in journals written before jobs named their process: those were the scheduler's. */
  owner: processOwnerSchema.optional(),
});
/** What a schedule's jobs (its snapshot, its copy) have beside. */
const scheduledStartBase = startBase.extend({
  scheduleId: z.string(),
  host: z.string(),
  vmUuid: z.string(),
  vmName: z.string(),
  /**
   * The snapshot: the one a scheduled snapshot is about to create (what to clean up if it never
   * ends), or the one a copy sends (an interrupted copy of it is resumed on the target).
   */
  tag: z.string(),
});
const snapshotStartSchema = scheduledStartBase.extend({
  kind: z.literal("scheduled-snapshot"),
  slot: z.string(),
});
/** A schedule's off-host copy, a job of its own: it waits for its target, never for a host slot. */
const copyStartSchema = scheduledStartBase.extend({
  kind: z.literal("copy"),
  target: z.string(),
});
/** A job a UI or the CLI started: what the jobs panel shows for it. */
const appStartSchema = startBase.extend({
  kind: z.enum(APP_JOB_KINDS),
  title: z.string().max(1000),
  host: z.string().nullable(),
  vmName: z.string().nullable(),
});
const startSchema = z.union([snapshotStartSchema, copyStartSchema, appStartSchema]);
const progressSchema = z.object({
  event: z.literal("progress"),
  job: z.string(),
  at: z.string(),
  step: z.string(),
});
const endSchema = z.object({
  event: z.literal("end"),
  job: z.string(),
  at: z.string(),
  status: z.enum(["succeeded", "failed", "cancelled", "interrupted"]),
  message: z.string().optional(),
  /** Snapshots the prune removed, by name. */
  pruned: z.array(z.string()).optional(),
  pruneError: z.string().optional(),
  /** A copy job's copy (older journals: a scheduled snapshot's, when runs copied inline). */
  copy: z
    .object({
      target: z.string(),
      exportId: z.string().nullable(),
      bytesSent: z.number().min(0),
      prunedCopies: z.array(z.string()),
      error: z.string().nullable(),
      /** It went on from the partial export an interrupted copy left on the target. */
      resumed: z.boolean().optional(),
      /** An older copy hashed again after this one landed: its id, and whether it still matched. */
      reverified: z
        .object({
          exportId: z.string().nullable(),
          ok: z.boolean().nullable(),
          detail: z.string().nullable(),
        })
        .nullable()
        .optional(),
    })
    .optional(),
  /** Snapshots the retention would have removed, kept because their copy has not landed. */
  held: z.array(z.string()).optional(),
  /** What an export a UI or the CLI started sent, and where (a schedule's copy says it in `copy`). */
  sent: z
    .object({
      target: z.string().max(200),
      exportId: z.string().max(128).optional(),
      bytes: z.number().min(0),
    })
    .optional(),
});
const recordSchema = z.union([startSchema, progressSchema, endSchema]);

export type JobStart = z.infer<typeof startSchema>;
/** A start record as written: one of the kinds, without the `event` field. */
export type JobStartRecord =
  | Omit<z.infer<typeof snapshotStartSchema>, "event">
  | Omit<z.infer<typeof copyStartSchema>, "event">
  | Omit<z.infer<typeof appStartSchema>, "event">;
export type JobEnd = z.infer<typeof endSchema>;
type JobRecord = z.infer<typeof recordSchema>;

interface JobSummaryBase {
  readonly id: string;
  readonly startedAt: string;
  readonly endedAt: string | null;
  readonly status: JobStatus;
  readonly step: string | null;
  readonly message: string | null;
  readonly pruned: readonly string[];
  readonly pruneError: string | null;
  readonly copy: JobEnd["copy"] | null;
  readonly held: readonly string[];
  readonly sent: JobEnd["sent"] | null;
  /** The process that runs (or ran) it; null in journals from before jobs named it. */
  readonly owner: ProcessOwner | null;
  /** What it did, step by step, as journaled (at most STEPS_KEPT, the last ones). */
  readonly steps: readonly { readonly at: string; readonly step: string }[];
}

/** Steps kept per job in a summary: a job's log, not a per-block trace. */
const STEPS_KEPT = 100;

/** A schedule's job: its snapshot, or its copy off the host. */
export interface ScheduledJobSummary extends JobSummaryBase {
  readonly kind: ScheduledJobKind;
  readonly scheduleId: string;
  readonly host: string;
  readonly vmUuid: string;
  readonly vmName: string;
  readonly tag: string;
  /** The slot a scheduled snapshot serves; null for a copy. */
  readonly slot: string | null;
  /** Where a copy goes; null for a scheduled snapshot. */
  readonly target: string | null;
}

/** A job a UI or the CLI started. */
export interface AppJobSummary extends JobSummaryBase {
  readonly kind: AppJobKind;
  readonly title: string;
  readonly host: string | null;
  readonly vmName: string | null;
}

export type JobSummary = ScheduledJobSummary | AppJobSummary;

export function isScheduledJob(job: JobSummary): job is ScheduledJobSummary {
  return job.kind === "scheduled-snapshot" || job.kind === "copy";
}

/**
 * Whether a job still open in the journal really runs: its process is alive. A job from before
 * jobs named their process was the scheduler's: it runs while a scheduler does.
 */
export function stillRunning(job: JobSummary, schedulerAlive: boolean): boolean {
  return job.status === "running" && (job.owner === null ? schedulerAlive : isProcessAlive(job.owner));
}

const FILE = "jobs.jsonl";
/** Jobs kept when the journal is compacted at start-up: months of history for a few schedules. */
const KEEP_JOBS = 2000;

/** Completed jobs between compactions of a running daemon's journal. */
const COMPACT_EVERY_ENDS = 500;

export class Journal {
  readonly path: string;
  #ends = 0;
  #owner: ProcessOwner | undefined;

  constructor(home: string) {
    this.path = join(home, FILE);
  }

  /** Journals a job's start, owned by this process unless the record names another. */
  start(record: JobStartRecord): void {
    this.#owner ??= thisProcess();
    this.#append({ event: "start", owner: this.#owner, ...record });
  }

  progress(job: string, step: string, at: Date): void {
    this.#append({ event: "progress", job, at: at.toISOString(), step });
  }

  end(record: Omit<JobEnd, "event">): void {
    this.#append({ event: "end", ...record });
  }

  /** Every job, oldest first. Lines that do not parse (a torn last write) are skipped. */
  jobs(): JobSummary[] {
    if (!existsSync(this.path)) {
      return [];
    }
    const jobs = new Map<string, JobSummary>();
    for (const line of readFileSync(this.path, "utf8").split("\n")) {
      const record = parseLine(line);
      if (record === null) {
        continue;
      }
      if (record.event === "start") {
        jobs.set(record.job, summaryOf(record));
        continue;
      }
      const job = jobs.get(record.job);
      if (job === undefined) {
        continue;
      }
      jobs.set(
        record.job,
        record.event === "progress"
          ? {
              ...job,
              step: record.step,
              steps: [...job.steps.slice(1 - STEPS_KEPT), { at: record.at, step: record.step }],
            }
          : {
              ...job,
              endedAt: record.at,
              status: record.status,
              message: record.message ?? null,
              pruned: record.pruned ?? [],
              pruneError: record.pruneError ?? null,
              copy: record.copy ?? null,
              held: record.held ?? [],
              sent: record.sent ?? null,
            },
      );
    }
    return [...jobs.values()];
  }

  /**
   * Marks every job that started, never ended and whose process is gone as interrupted, and
   * returns them. Call it while holding the scheduler lock: jobs from before jobs named their
   * process were the scheduler's, so none of those can be running then either.
   */
  recoverInterrupted(now: Date): JobSummary[] {
    const open = this.jobs().filter((j) => j.status === "running" && !stillRunning(j, false));
    for (const job of open) {
      this.end({
        job: job.id,
        at: now.toISOString(),
        status: "interrupted",
        message:
          job.kind === "copy"
            ? "Snapkeep stopped while this copy ran (crash, kill or power loss); it did not land, and the next copy resumes it."
            : "Snapkeep stopped while this job ran (crash, kill or power loss); it did not complete.",
      });
    }
    return open.map((j) => ({ ...j, status: "interrupted" as const, endedAt: now.toISOString() }));
  }

  /** Rewrites the journal with only the newest jobs; atomic (write aside, then rename). */
  compact(): void {
    const jobs = this.jobs();
    if (jobs.length <= KEEP_JOBS) {
      return;
    }
    const keep = new Set(jobs.slice(-KEEP_JOBS).map((j) => j.id));
    const lines = readFileSync(this.path, "utf8")
      .split("\n")
      .filter((line) => {
        const record = parseLine(line);
        return record !== null && keep.has(record.job);
      });
    const temporary = `${this.path}.tmp`;
    const fd = openSync(temporary, "w", 0o600);
    try {
      writeFileSync(fd, `${lines.join("\n")}\n`);
      fsyncSync(fd); // durable before it replaces the journal
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, this.path);
  }

  #append(record: JobRecord): void {
    const fd = openSync(this.path, "a+", 0o600);
    try {
      // A power loss can leave a torn last line; start on a fresh line so this record is whole.
      const size = fstatSync(fd).size;
      const last = Buffer.alloc(1);
      const torn = size > 0 && readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a;
      appendFileSync(fd, `${torn ? "\n" : ""}${JSON.stringify(record)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // Per-minute schedules add ~1,500 lines a day: compact now and then, not only at start-up.
    if (record.event === "end" && ++this.#ends % COMPACT_EVERY_ENDS === 0) {
      this.compact();
    }
  }
}

const EMPTY_END = {
  endedAt: null,
  status: "running" as const,
  step: null,
  message: null,
  pruned: [],
  pruneError: null,
  copy: null,
  held: [],
  sent: null,
  steps: [],
};

function summaryOf(record: JobStart): JobSummary {
  const common = { id: record.job, startedAt: record.at, owner: record.owner ?? null, ...EMPTY_END };
  switch (record.kind) {
    case "scheduled-snapshot":
    case "copy":
      return {
        ...common,
        kind: record.kind,
        scheduleId: record.scheduleId,
        host: record.host,
        vmUuid: record.vmUuid,
        vmName: record.vmName,
        tag: record.tag,
        slot: record.kind === "scheduled-snapshot" ? record.slot : null,
        target: record.kind === "copy" ? record.target : null,
      };
    default:
      return { ...common, kind: record.kind, title: record.title, host: record.host, vmName: record.vmName };
  }
}

function parseLine(line: string): JobRecord | null {
  if (line.trim() === "") {
    return null;
  }
  try {
    const parsed = recordSchema.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

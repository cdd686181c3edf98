import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import { registerPingCommand } from "./notify-commands.js";
import { MAX_SNAPSHOTS_KEPT } from "../domain/limits.js";
import { SnapkeepError, quoteInput } from "../errors.js";
import { isScheduledJob, type JobSummary } from "../infra/journal.js";
import type { CopyRunResult } from "../app/schedules/copies.js";
import { parseDuration } from "../domain/schedule/pause.js";
import type { RetentionPolicy } from "../domain/retention/gfs.js";
import type { SchedulerEvent } from "../app/schedules/scheduler.js";
import { describeWhen, nextSlots, parseWeekday, type When } from "../domain/schedule/spec.js";
import type { Schedule } from "../domain/settings.js";
import { displayName, formatTime, table } from "./format.js";
import type { CliContext, CliIo } from "./main.js";
import { diskList, numberOption, parseNumber } from "./options.js";
import { splitVmRef } from "./refs.js";
import {
  copyPreviewLines,
  describeCopy,
  parseCopy,
  withCopyOptions,
  type CopyOptions,
} from "./schedule-copy-options.js";

type Print = (value: unknown, json: boolean | undefined, human: () => string) => void;

interface AddOptions extends CopyOptions {
  every?: string;
  at?: string;
  weekday?: string;
  day?: string;
  cron?: string;
  keep?: string;
  daily?: string;
  weekly?: string;
  monthly?: string;
  disk?: string[];
  note?: string;
  json?: boolean;
}

const KEPT = { min: 1, max: MAX_SNAPSHOTS_KEPT };

/** `schedule ...`, `jobs list` and `daemon`: the CLI side of the scheduler. */
// eslint-disable-next-line max-lines-per-function -- a table: one short declaration per command.
export function registerScheduleCommands(
  program: Command,
  io: CliIo,
  context: () => CliContext,
  print: Print,
): void {
  const schedule = program.command("schedule").description("automatic snapshots with retention");
  registerPingCommand(schedule, io, context);
  withCopyOptions(schedule.command("add <host/vm>"), false)
    .description(
      "snapshot a VM on a schedule and keep the latest N (plus optional daily/weekly/monthly); --copy-to sends the snapshots off the host",
    )
    .option("--every <period>", "daily, weekly or monthly")
    .option("--at <HH:MM>", "local time of day")
    .option("--weekday <day>", "for weekly: monday ... sunday")
    .option("--day <n>", "for monthly: 1-31 (29-31 run on the last day of shorter months)")
    .option("--cron <expr>", 'instead of --every: a five-field cron expression, e.g. "0 */6 * * *"')
    .option("--keep <n>", "keep the latest N snapshots this schedule made")
    .option("--daily <n>", "also keep the newest of each of the last N days")
    .option("--weekly <n>", "also keep the newest of each of the last N ISO weeks")
    .option("--monthly <n>", "also keep the newest of each of the last N months")
    .option("--disk <targets>", "comma-separated disk targets (default: every disk)", diskList)
    .option("--note <text>", "a note shown in listings")
    .option("--json", "machine-readable output")
    .action(async (ref: string, opts: AddOptions) => {
      const [host, vm] = splitVmRef(ref);
      const added = await context().schedules.add({
        host,
        vm,
        when: parseWhen(opts),
        retention: parseRetention(opts),
        ...(opts.disk === undefined ? {} : { disks: opts.disk }),
        ...(opts.note === undefined ? {} : { note: opts.note }),
        copy: parseCopy(opts),
      });
      const next = nextSlots(added.when, new Date(), 1)[0];
      print(
        added,
        opts.json,
        () =>
          `Added schedule ${added.id}: ${displayName(added.vmName)} ${describeWhen(added.when)}, ${describeRetention(added.retention)}${added.copy === undefined ? "" : `; copies ${describeCopy(added.copy)}`}.\n` +
          `Next run: ${next === undefined ? "-" : formatTime(next.toISOString())}. It runs while a scheduler runs: snapkeep daemon (or the desktop app).\n`,
      );
    });
  withCopyOptions(schedule.command("edit <id>"), true)
    .description("change a schedule: only what is given changes (time, retention, disks, note, copy)")
    .option("--every <period>", "daily, weekly or monthly (with --at)")
    .option("--at <HH:MM>", "local time of day")
    .option("--weekday <day>", "for weekly: monday ... sunday")
    .option("--day <n>", "for monthly: 1-31")
    .option("--cron <expr>", "a five-field cron expression")
    .option("--keep <n>", "keep the latest N snapshots this schedule made (replaces the retention)")
    .option("--daily <n>", "with --keep: also keep the newest of each of the last N days")
    .option("--weekly <n>", "with --keep: also keep the newest of each of the last N ISO weeks")
    .option("--monthly <n>", "with --keep: also keep the newest of each of the last N months")
    .option("--disk <targets>", "comma-separated disk targets", diskList)
    .option("--note <text>", "a note shown in listings (empty to remove it)")
    .option("--json", "machine-readable output")
    .action(async (id: string, opts: AddOptions) => {
      const { schedules } = context();
      const current = schedules.get(id);
      const timeGiven = [opts.every, opts.at, opts.cron, opts.weekday, opts.day].some((o) => o !== undefined);
      const updated = await schedules.update(id, {
        host: current.host,
        vm: current.vmUuid,
        when: timeGiven ? parseWhen(opts) : current.when,
        retention: [opts.keep, opts.daily, opts.weekly, opts.monthly].some((o) => o !== undefined)
          ? parseRetention(opts)
          : current.retention,
        ...(opts.disk === undefined
          ? current.disks === undefined
            ? {}
            : { disks: current.disks }
          : { disks: opts.disk }),
        ...(opts.note === undefined
          ? current.note === undefined
            ? {}
            : { note: current.note }
          : { note: opts.note }),
        copy: parseCopy(opts, current.copy),
      });
      print(
        updated,
        opts.json,
        () =>
          `Schedule ${updated.id}: ${displayName(updated.vmName)} ${describeWhen(updated.when)}, ${describeRetention(updated.retention)}; ${updated.copy === undefined ? "no copies off the host" : `copies ${describeCopy(updated.copy)}`}.\n`,
      );
    });
  schedule
    .command("list")
    .description("list schedules with their last and next runs")
    .option("--json", "machine-readable output")
    .action((opts: { json?: boolean }) => {
      const { schedules } = context();
      const list = schedules.list();
      const states = schedules.states();
      const now = new Date();
      const pause = schedules.activePause();
      if (pause !== null && opts.json !== true) {
        io.out(
          `All schedules are paused ${pause.until === null ? "until resumed" : `until ${formatTime(pause.until)}`} (snapkeep schedule resume --all).\n`,
        );
      }
      print(
        list.map((s) => ({
          ...s,
          state: states[s.id] ?? null,
          nextRun: nextSlots(s.when, now, 1)[0]?.toISOString() ?? null,
        })),
        opts.json,
        () =>
          list.length === 0
            ? "No schedules. Add one with: snapkeep schedule add HOST/VM --every daily --at 02:00 --keep 7\n"
            : table(
                ["ID", "VM", "WHEN", "DISKS", "KEEP", "COPY", "STATUS", "LAST RUN", "NEXT RUN"],
                list.map((s) => {
                  const state = states[s.id];
                  const next = nextSlots(s.when, now, 1)[0];
                  return [
                    s.id,
                    `${s.host}/${displayName(s.vmName)}`,
                    describeWhen(s.when),
                    s.disks?.join(",") ?? "all",
                    describeRetention(s.retention),
                    describeCopy(s.copy),
                    !s.enabled
                      ? "paused"
                      : state?.lastResult === "failed"
                        ? `failing: ${state.lastError ?? ""}`
                        : "active",
                    state?.lastRunAt === undefined
                      ? "-"
                      : `${formatTime(state.lastRunAt)} ${state.lastResult ?? ""}`,
                    !s.enabled || next === undefined ? "-" : formatTime(next.toISOString()),
                  ];
                }),
              ),
      );
    });
  schedule
    .command("remove <id>")
    .description("delete a schedule (its snapshots stay)")
    .action((id: string) => {
      const removed = context().schedules.remove(id);
      io.out(
        `Removed schedule ${removed.id} of ${displayName(removed.vmName)}; the snapshots it made stay on the host.\n`,
      );
    });
  schedule
    .command("pause [id]")
    .description("stop running a schedule, or with --all every schedule, until resumed")
    .option("--all", "pause every schedule (running jobs finish)")
    .option("--for <duration>", "with --all: only for this long, e.g. 30m, 1h, 2h30m, 7d")
    .action((id: string | undefined, opts: { all?: boolean; for?: string }) => {
      const { schedules } = context();
      if (opts.all === true) {
        onlyOneOf(id, "pause");
        const { until } = schedules.pauseAll(opts.for === undefined ? null : parseDuration(opts.for));
        io.out(
          `All schedules are paused ${until === null ? "until you resume them" : `until ${formatTime(until)}`}; ` +
            "resume with: snapkeep schedule resume --all\n",
        );
        return;
      }
      if (opts.for !== undefined) {
        throw new SnapkeepError(
          "INVALID_INPUT",
          "--for goes with --all: one schedule stays paused until resumed.",
        );
      }
      const updated = schedules.setEnabled(needId(id, "pause"), false);
      io.out(`Schedule ${updated.id} is paused.\n`);
    });
  schedule
    .command("resume [id]")
    .description("run a paused schedule again, or with --all lift the pause of every schedule")
    .option("--all", "lift the pause of every schedule (runs missed meanwhile run once)")
    .action((id: string | undefined, opts: { all?: boolean }) => {
      const { schedules } = context();
      if (opts.all === true) {
        onlyOneOf(id, "resume");
        schedules.resumeAll();
        io.out("Schedules run again; each one that missed runs while paused runs once now.\n");
        return;
      }
      const updated = schedules.setEnabled(needId(id, "resume"), true);
      io.out(
        `Schedule ${updated.id} is active.${schedules.activePause() === null ? "" : " All schedules are still paused: snapkeep schedule resume --all"}\n`,
      );
    });
  schedule
    .command("preview <id>")
    .description("the next runs, and exactly which snapshots the retention would remove now")
    .option("--json", "machine-readable output")
    .action(async (id: string, opts: { json?: boolean }) => {
      const preview = await context().schedules.preview(id);
      // What copy before prune holds is not removed: it is listed with the copy.
      const held = new Set(preview.copy?.held ?? []);
      const remove = preview.retention.remove.filter((s) => !held.has(s.name));
      const keep = preview.retention.keep.filter(
        (k) => k.snapshot.kind === "scheduled" && k.snapshot.origin === id,
      );
      print(preview, opts.json, () =>
        [
          `Schedule ${id}: ${displayName(preview.schedule.vmName)} ${preview.description}, ${describeRetention(preview.schedule.retention)}.`,
          `Next runs: ${preview.nextRuns.map(formatTime).join(", ")}`,
          remove.length === 0
            ? "The retention would remove nothing now."
            : `The retention would remove ${remove.length} snapshot(s) now:\n${remove.map((s) => `  ${formatTime(s.createdAt)}  ${displayName(s.name)}`).join("\n")}`,
          keep.length === 0
            ? "It keeps none of its own snapshots yet."
            : `It keeps:\n${keep.map((k) => `  ${formatTime(k.snapshot.createdAt)}  ${displayName(k.snapshot.name)}  (${k.reasons.join(", ")})`).join("\n")}`,
          "Manual, safety, pinned and other tools' snapshots are never removed by a schedule.",
          ...copyPreviewLines(preview.schedule.copy, preview.copy),
          "",
        ].join("\n"),
      );
    });

  program
    .command("jobs")
    .description("jobs: scheduled snapshots and copies, exports, verifies and restores")
    .command("list")
    .description("recent jobs, newest last, from the job journal")
    .option("--limit <n>", "how many", numberOption("--limit", { min: 1, max: 1000 }), 20)
    .option("--json", "machine-readable output")
    .action(async (opts: { limit: number; json?: boolean }) => {
      const { home } = context();
      // Loaded here only, as the scheduler below: no other command reads the journal or the lock.
      const [{ Journal, stillRunning }, { schedulerOwner }] = await Promise.all([
        import("../infra/journal.js"),
        import("../infra/scheduler-lock.js"),
      ]);
      const live = schedulerOwner(home) !== null;
      const jobs = new Journal(home)
        .jobs()
        .slice(-opts.limit)
        // A job still open in the journal whose process is gone was cut off; it is not running.
        .map((j): JobSummary =>
          j.status === "running" && !stillRunning(j, live) ? { ...j, status: "interrupted" } : j,
        );
      print(jobs, opts.json, () =>
        jobs.length === 0
          ? "No jobs yet.\n"
          : table(
              ["STARTED", "JOB", "KIND", "VM", "STATUS", "DETAIL"],
              jobs.map((j) => [
                formatTime(j.startedAt),
                j.id,
                j.kind,
                j.host === null || j.vmName === null ? "-" : `${j.host}/${displayName(j.vmName)}`,
                j.status,
                [
                  isScheduledJob(j) ? "" : j.title,
                  j.message ?? j.step ?? "",
                  j.pruned.length > 0 ? `pruned ${j.pruned.length}` : "",
                  j.pruneError === null ? "" : `PRUNE FAILED: ${j.pruneError}`,
                ]
                  .filter((x) => x !== "")
                  .join("; "),
              ]),
            ),
      );
    });

  program
    .command("daemon")
    .description("run the schedules in the foreground (one scheduler per state directory)")
    .option("--json", "log one JSON object per line")
    .action(async (opts: { json?: boolean }) => {
      const json = opts.json === true;
      const log = (message: string): void => io.out(logMessage(message, json, new Date()));
      const { home, schedules } = context();
      const [{ openScheduler }, { wallClockTimers }, { Alerts }] = await Promise.all([
        import("../app/schedules/owned.js"),
        import("../infra/timers.js"),
        import("../app/alerts.js"),
      ]);
      const alerts = new Alerts({
        store: context().store,
        now: () => new Date(),
        timers: wallClockTimers,
        log,
      });
      const owned = openScheduler({
        home,
        app: "snapkeep daemon",
        work: schedules,
        now: () => new Date(),
        timers: wallClockTimers,
        onEvent: (event) => {
          io.out(logLine(event, json, new Date()));
          alerts.handle(event);
        },
      });
      const stopped = new Promise<void>((resolve) => {
        const stop = (): void => {
          log("stopping: waiting for running jobs to finish");
          resolve();
        };
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      try {
        log(
          `snapkeep daemon started (pid ${process.pid}, state ${home}); ${schedules.list().length} schedule(s)`,
        );
        await owned.start();
        alerts.start();
        await stopped;
      } finally {
        await owned.stop();
        await alerts.stop();
        // Give stdout a moment to drain before the process ends.
        await sleep(10);
      }
    });
}

function onlyOneOf(id: string | undefined, verb: string): void {
  if (id !== undefined) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `Give a schedule ID or --all, not both: snapkeep schedule ${verb} --all`,
    );
  }
}

function needId(id: string | undefined, verb: string): string {
  if (id === undefined) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `Say which schedule: snapkeep schedule ${verb} ID, or --all for every one.`,
      {
        hint: "See the IDs with: snapkeep schedule list",
      },
    );
  }
  return id;
}

/**
 * One line of the daemon's (and serve's) log: a timestamp and the event in words, or with `json`
 * one JSON object (time, event, job, host, vm, schedule, message) for a log shipper to index.
 */
export function logLine(event: SchedulerEvent, json: boolean, now: Date): string {
  if (!json) {
    return `${now.toISOString()} ${describeEvent(event)}\n`;
  }
  const about =
    "schedule" in event
      ? { host: event.schedule.host, vm: event.schedule.vmName, schedule: event.schedule.id }
      : {};
  const level = /FAILED|ERROR|DAMAGED|OVERDUE/.test(describeEvent(event)) ? "error" : "info";
  return `${JSON.stringify({
    time: now.toISOString(),
    level,
    event: event.type,
    ...("job" in event ? { job: event.job } : {}),
    ...about,
    message: describeEvent(event),
  })}\n`;
}

/** A plain message as a log line, in the same two forms. */
export function logMessage(message: string, json: boolean, now: Date): string {
  return json
    ? `${JSON.stringify({ time: now.toISOString(), level: "info", event: "message", message })}\n`
    : `${now.toISOString()} ${message}\n`;
}

/** A scheduler event as one line of `snapkeep daemon`'s (and `snapkeep serve`'s) log. */
export function describeEvent(event: SchedulerEvent): string {
  const vm =
    "schedule" in event
      ? `${event.schedule.host}/${event.schedule.vmName} (schedule ${event.schedule.id})`
      : "";
  switch (event.type) {
    case "job-started":
      return `job ${event.job} started: ${vm}, slot ${event.slot}`;
    case "job-succeeded":
      return `job ${event.job} succeeded: ${vm}: snapshot ${event.snapshot}${event.pruned.length > 0 ? `, pruned ${event.pruned.join(", ")}` : ""}`;
    case "job-failed":
      return `job ${event.job} FAILED${event.repeated ? " again" : ""}: ${vm}: ${event.message} (retrying with backoff)`;
    case "scheduler-error":
      return `SCHEDULER ERROR: ${event.message}`;
    case "job-cancelled":
      return `job ${event.job} cancelled: ${vm}`;
    case "prune-failed":
      return `job ${event.job}: PRUNE FAILED for ${vm}: ${event.message}`;
    case "copy-failed":
      return `job ${event.job}: COPY to ${event.target} FAILED for ${vm}: ${event.message} (the next runs try again; snapshots owed a copy are kept)`;
    case "drill-failed":
      return `job ${event.job}: RESTORE DRILL of copy ${event.exportId} on ${event.target} FAILED for ${vm}: ${event.message}`;
    case "drill-passed":
      return `job ${event.job}: restore drills of ${vm} pass again (copy on ${event.target} booted)`;
    case "copy-damaged":
      return `job ${event.job}: COPY ${event.exportId} on ${event.target} of ${vm} IS DAMAGED: ${event.message} (marked damaged; it is no recovery point any more)`;
    case "copy-recovered":
      return `job ${event.job}: copies of ${vm} land on ${event.target} again`;
    case "copy-started":
      return `job ${event.job} started: copy of ${vm}'s snapshot ${event.snapshot} to ${event.target}`;
    case "copy-ended":
      return copyEndedLine(event.job, vm, event.result, event.retryAt);
    case "overdue":
      return `OVERDUE: ${vm} has missed its run of ${event.since}`;
    case "recovered":
      return `recovered: ${vm} runs again`;
    case "interrupted":
      return `job ${event.job.id} (${event.job.kind === "copy" ? "copy" : "snapshot"}) of ${event.job.host}/${event.job.vmName} was INTERRUPTED (Snapkeep stopped while it ran): ${event.cleanup}`;
  }
}

function copyEndedLine(job: string, vm: string, result: CopyRunResult, retryAt: string | null): string {
  if (!result.attempted) {
    return `job ${job} succeeded: ${vm}: nothing to copy (${result.reason})`;
  }
  if (result.exportId === null) {
    return `job ${job} FAILED: copy of ${vm} to ${result.target}: ${result.failure?.detail ?? "unknown error"} (tried again at ${retryAt ?? "the next run"})`;
  }
  const pruned =
    result.prunedCopies.length > 0 ? `, removed older copies ${result.prunedCopies.join(", ")}` : "";
  const drilled =
    result.drilled === null
      ? ""
      : result.drilled.passed
        ? ", restore drill passed"
        : `, restore drill FAILED: ${result.drilled.reason ?? "?"}`;
  return `job ${job} succeeded: ${vm}: copied ${result.snapshotTag ?? "?"} to ${result.target} as ${result.exportId}, ${result.bytesSent} bytes sent${result.resumed ? " (resumed)" : ""}${pruned}${drilled}`;
}

function parseWhen(opts: AddOptions): When {
  if (opts.cron !== undefined) {
    if (opts.every !== undefined || opts.at !== undefined) {
      throw new SnapkeepError("INVALID_INPUT", "Give either --cron or --every/--at, not both.");
    }
    return { every: "cron", cron: opts.cron };
  }
  if (opts.at === undefined) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "Say when: --every daily|weekly|monthly --at HH:MM, or --cron EXPR.",
    );
  }
  switch (opts.every) {
    case "daily":
      return { every: "daily", at: opts.at };
    case "weekly":
      if (opts.weekday === undefined) {
        throw new SnapkeepError("INVALID_INPUT", "A weekly schedule needs --weekday (monday ... sunday).");
      }
      return { every: "weekly", at: opts.at, weekday: parseWeekday(opts.weekday) };
    case "monthly":
      if (opts.day === undefined) {
        throw new SnapkeepError("INVALID_INPUT", "A monthly schedule needs --day (1-31).");
      }
      return { every: "monthly", at: opts.at, day: parseNumber(opts.day, "--day", { min: 1, max: 31 }) };
    default:
      throw new SnapkeepError(
        "INVALID_INPUT",
        opts.every === undefined
          ? "Say how often: --every daily, weekly or monthly (or --cron EXPR instead)."
          : `Use daily, weekly or monthly for --every, not ${quoteInput(opts.every)}.`,
      );
  }
}

function parseRetention(opts: AddOptions): RetentionPolicy {
  if (opts.keep === undefined) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "Say how many to keep: --keep N (the latest N this schedule made).",
    );
  }
  return {
    keepLast: parseNumber(opts.keep, "--keep", KEPT),
    ...(opts.daily === undefined ? {} : { daily: parseNumber(opts.daily, "--daily", KEPT) }),
    ...(opts.weekly === undefined ? {} : { weekly: parseNumber(opts.weekly, "--weekly", KEPT) }),
    ...(opts.monthly === undefined ? {} : { monthly: parseNumber(opts.monthly, "--monthly", KEPT) }),
  };
}

export function describeRetention(policy: Schedule["retention"]): string {
  const parts = [
    policy.keepLast === undefined ? null : `keep ${policy.keepLast}`,
    policy.daily === undefined ? null : `${policy.daily} daily`,
    policy.weekly === undefined ? null : `${policy.weekly} weekly`,
    policy.monthly === undefined ? null : `${policy.monthly} monthly`,
  ].filter((p): p is string => p !== null);
  return parts.join(", ");
}

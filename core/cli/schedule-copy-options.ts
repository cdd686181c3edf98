import type { Command } from "commander";
import { SnapkeepError, quoteInput } from "../errors.js";
import { MAX_COPIES_KEPT, MAX_RUNS_PER_COPY } from "../domain/limits.js";
import { describeCadence, type CopyCadence, type CopyPolicyDraft } from "../domain/copy/policy.js";
import type { CopyForecast } from "../domain/copy/forecast.js";
import type { RetentionPolicy } from "../domain/retention/gfs.js";
import type { Schedule } from "../domain/settings.js";
import { parseNumber } from "./options.js";

/** The `--copy-*` options of `schedule add` and `schedule edit`, as commander hands them over. */
export interface CopyOptions {
  copyTo?: string;
  copyEvery?: string;
  copyKeep?: string;
  copyDaily?: string;
  copyWeekly?: string;
  copyMonthly?: string;
  /** False with --no-copy-hold. */
  copyHold?: boolean;
  /** False with --no-copy (edit only). */
  copy?: boolean;
  copyDrill?: string;
}

const COPIES = { min: 1, max: MAX_COPIES_KEPT };

export function withCopyOptions(command: Command, edit: boolean): Command {
  command
    .option("--copy-to <target>", "after the snapshot, copy it off the host to this export target")
    .option(
      "--copy-every <n|day|week>",
      "copy every Nth run, or the first run of each day or week (default: every run)",
    )
    .option("--copy-keep <n>", "the target keeps the latest N copies this schedule made")
    .option("--copy-daily <n>", "the target also keeps the newest copy of each of the last N days")
    .option("--copy-weekly <n>", "the target also keeps the newest copy of each of the last N ISO weeks")
    .option("--copy-monthly <n>", "the target also keeps the newest copy of each of the last N months")
    .option("--no-copy-hold", "prune local snapshots by the retention even when their copy has not landed")
    .option(
      "--copy-drill <day|week|month|N>",
      "after a copy lands, boot it in a throwaway VM (a restore drill) when the last drill is older than this (N days) or failed; 'off' stops",
    );
  if (edit) {
    command.option("--no-copy", "stop copying off the host (copies already made stay on the target)");
  }
  return command;
}

/** True when any --copy-* option was given, so an edit changes the copy. */
function mentionsCopy(opts: CopyOptions): boolean {
  return (
    opts.copyTo !== undefined ||
    opts.copyEvery !== undefined ||
    opts.copyKeep !== undefined ||
    opts.copyDaily !== undefined ||
    opts.copyWeekly !== undefined ||
    opts.copyMonthly !== undefined ||
    opts.copyHold === false ||
    opts.copyDrill !== undefined
  );
}

/**
 * The copy a command asks for: undefined for none (add) or unchanged (edit, from `current`), a
 * draft otherwise. An edit changes only what it names: `--copy-keep 5` keeps the target.
 */
export function parseCopy(opts: CopyOptions, current?: Schedule["copy"]): CopyPolicyDraft | undefined {
  if (opts.copy === false) {
    if (mentionsCopy(opts)) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        "--no-copy stops copying: give it without the --copy-* options.",
      );
    }
    return undefined;
  }
  if (!mentionsCopy(opts)) {
    return current;
  }
  const target = opts.copyTo ?? current?.target;
  if (target === undefined) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "Say where the copies go: --copy-to TARGET (see snapkeep target list).",
    );
  }
  const retention = parseCopyRetention(opts) ?? current?.retention;
  if (retention === undefined) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `Say how many copies ${target} keeps: --copy-keep N (and --copy-daily/--copy-weekly/--copy-monthly N if you like).`,
    );
  }
  const cadence = opts.copyEvery === undefined ? current?.cadence : parseCadence(opts.copyEvery);
  const drill = opts.copyDrill === undefined ? current?.drill : parseDrillEvery(opts.copyDrill);
  return {
    target,
    retention,
    ...(cadence === undefined ? {} : { cadence }),
    holdLocalUntilCopied: opts.copyHold === false ? false : (current?.holdLocalUntilCopied ?? true),
    ...(drill === undefined ? {} : { drill }),
  };
}

function parseCopyRetention(opts: CopyOptions): RetentionPolicy | undefined {
  const counts = {
    keepLast: opts.copyKeep === undefined ? undefined : parseNumber(opts.copyKeep, "--copy-keep", COPIES),
    daily: opts.copyDaily === undefined ? undefined : parseNumber(opts.copyDaily, "--copy-daily", COPIES),
    weekly: opts.copyWeekly === undefined ? undefined : parseNumber(opts.copyWeekly, "--copy-weekly", COPIES),
    monthly:
      opts.copyMonthly === undefined ? undefined : parseNumber(opts.copyMonthly, "--copy-monthly", COPIES),
  };
  const given = Object.entries(counts).filter(([, v]) => v !== undefined);
  return given.length === 0 ? undefined : (Object.fromEntries(given) as RetentionPolicy);
}

/** "week" → every 7 days; "off" → no drills (undefined). */
export function parseDrillEvery(typed: string): { everyDays: number } | undefined {
  const words: Record<string, number> = { day: 1, week: 7, month: 30 };
  if (typed === "off") {
    return undefined;
  }
  const days = words[typed] ?? (/^\d+$/.test(typed) ? Number(typed) : NaN);
  if (!(days >= 1 && days <= 366)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `--copy-drill takes day, week, month, a number of days (1 to 366) or off, not ${quoteInput(typed)}.`,
    );
  }
  return { everyDays: days };
}

function parseCadence(typed: string): CopyCadence {
  if (typed === "day" || typed === "week") {
    return { every: typed };
  }
  if (!/^\d+$/.test(typed)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `--copy-every takes a number of runs, day or week, not ${quoteInput(typed)}.`,
    );
  }
  return { every: "runs", n: parseNumber(typed, "--copy-every", { min: 1, max: MAX_RUNS_PER_COPY }) };
}

/** For listings: "to nas, every run, keep 7" or "-". */
export function describeCopy(copy: Schedule["copy"]): string {
  if (copy === undefined) {
    return "-";
  }
  const r = copy.retention;
  const counts = [
    r.keepLast === undefined ? null : `keep ${r.keepLast}`,
    r.daily === undefined ? null : `${r.daily} daily`,
    r.weekly === undefined ? null : `${r.weekly} weekly`,
    r.monthly === undefined ? null : `${r.monthly} monthly`,
  ].filter((p): p is string => p !== null);
  return `to ${copy.target}, ${describeCadence(copy.cadence)}, ${counts.join(", ")}`;
}

/** `schedule preview`'s lines about the copy: where, what the target keeps in a year, what is held. */
export function copyPreviewLines(
  copy: Schedule["copy"],
  preview: { readonly held: readonly string[]; readonly forecast: CopyForecast | null } | null,
): string[] {
  if (copy === undefined || preview === null) {
    return ["It makes no copies off the host (--copy-to TARGET with schedule edit adds them)."];
  }
  const f = preview.forecast;
  const year =
    f === null
      ? ""
      : ` After a year ${copy.target} keeps ${f.kept} of its ${f.copies} copies${f.oldestKeptAt === null ? "" : `, the oldest from ${f.oldestKeptAt.slice(0, 10)}`}.`;
  const holding = copy.holdLocalUntilCopied
    ? preview.held.length === 0
      ? " No snapshot is held for its copy now."
      : ` Held on this host until their copy lands: ${preview.held.join(", ")}.`
    : " Snapshots are pruned here by the retention, copied or not (--no-copy-hold).";
  return [`Copies ${describeCopy(copy)}.${year}${holding}`];
}

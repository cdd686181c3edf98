/**
 * Schedules in a person's words, and the editor's form turned into the API's draft. Pure, so the
 * Schedules view, the VM's schedules section and the editor say the same thing, and it is tested
 * without a browser.
 */
import { cronInWords } from "./cron-words.js";
import { ordinal } from "./format.js";
import type {
  CopyCadence,
  CopyForecast,
  DraftPreview,
  ListedSchedule,
  RetentionPolicy,
  Schedule,
  ScheduleDraft,
  Weekday,
  When,
} from "../../core/api/contract.js";

export const WEEKDAYS: readonly Weekday[] = [
  "monday",
  "tuesday",
  "wednesday",
  "thursday",
  "friday",
  "saturday",
  "sunday",
];

export function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function whenInWords(when: When): string {
  switch (when.every) {
    case "daily":
      return `Every day at ${when.at}`;
    case "weekly":
      return `Every ${capitalize(when.weekday)} at ${when.at}`;
    case "monthly":
      // The scheduler runs 29-31 on the last day of months that lack that day (README, Schedules).
      return when.day >= 29
        ? `Monthly on the ${ordinal(when.day)} at ${when.at} (the last day in shorter months)`
        : `Monthly on the ${ordinal(when.day)} at ${when.at}`;
    case "cron":
      return cronInWords(when.cron) ?? `Cron ${when.cron}`;
  }
}

export function retentionInWords(retention: RetentionPolicy): string {
  const parts = [
    retention.keepLast === undefined ? null : `the latest ${retention.keepLast}`,
    retention.daily === undefined ? null : `${retention.daily} daily`,
    retention.weekly === undefined ? null : `${retention.weekly} weekly`,
    retention.monthly === undefined ? null : `${retention.monthly} monthly`,
  ].filter((p): p is string => p !== null);
  return parts.length === 0 ? "keeps everything" : `keeps ${parts.join(", ")}`;
}

/** "copies to nas every run, keeps the latest 7" for a schedule's listing; null without a copy. */
export function copyInWords(copy: Schedule["copy"]): string | null {
  return copy === undefined
    ? null
    : `copies to ${copy.target} ${cadenceInWords(copy.cadence)}, ${retentionInWords(copy.retention)} there${copy.drill === undefined ? "" : `, ${drillInWords(copy.drill.everyDays)}`}`;
}

/** "drills a copy weekly", "drills a copy every 3 days". */
export function drillInWords(everyDays: number): string {
  const words: Record<number, string> = { 1: "daily", 7: "weekly", 30: "monthly" };
  return `drills a copy ${words[everyDays] ?? `every ${everyDays} days`}`;
}

export function disksInWords(disks: readonly string[] | undefined): string {
  return disks === undefined ? "all disks" : disks.join(", ");
}

export type ScheduleStatus =
  | { readonly level: "active" }
  | { readonly level: "paused" }
  /** Enabled, but no scheduler runs on this state folder: it will not fire. */
  | { readonly level: "stopped" }
  | { readonly level: "failing"; readonly error: string; readonly failures: number };

/**
 * Paused wins over failing: a paused schedule does not retry, so its last error is history. An
 * enabled schedule is never "active" while nothing runs it.
 */
export function scheduleStatus(listed: ListedSchedule): ScheduleStatus {
  if (!listed.schedule.enabled) {
    return { level: "paused" };
  }
  if (!listed.schedulerRunning) {
    return { level: "stopped" };
  }
  const state = listed.state;
  if (state?.lastResult === "failed") {
    return { level: "failing", error: state.lastError ?? "The last run failed.", failures: state.failures };
  }
  return { level: "active" };
}

/** A span in the unit a person would use for it: days, weeks, months or years. */
export function spanInWords(ms: number): string {
  const days = Math.round(ms / 86_400_000);
  const [count, unit] =
    days < 14
      ? [days, "day"]
      : days < 61
        ? [Math.round(days / 7), "week"]
        : days < 730
          ? [Math.round(days / 30.44), "month"]
          : [Math.round(days / 365.25), "year"];
  return `${count} ${unit}${count === 1 ? "" : "s"}`;
}

/**
 * One line for the editor: "After a year: 23 snapshots — 7 latest, 12 monthly — the oldest from
 * <date>, 11 months before the last run". The forecast looks ahead, so the oldest's date is in the
 * future; how far back it reaches is what the person weighs. A schedule too frequent to simulate
 * for a whole year is forecast over the runs that were, and says so.
 */
export function forecastInWords(forecast: DraftPreview["forecast"], date: (iso: string) => string): string {
  if (forecast.lastRunAt === null) {
    return "It does not run at all within a year.";
  }
  const rules = (["latest", "daily", "weekly", "monthly"] as const)
    .filter((rule) => forecast.byRule[rule] > 0)
    .map((rule) => `${forecast.byRule[rule]} ${rule}`);
  const reach = Date.parse(forecast.lastRunAt) - Date.parse(forecast.oldestKeptAt ?? forecast.lastRunAt);
  // Keeping only the last run reaches back nowhere: its date alone says it.
  const oldest =
    forecast.oldestKeptAt === null
      ? ""
      : reach < 86_400_000
        ? ` — the oldest from ${date(forecast.oldestKeptAt)}`
        : ` — the oldest from ${date(forecast.oldestKeptAt)}, ${spanInWords(reach)} before the last run`;
  const count = `${forecast.kept} snapshot${forecast.kept === 1 ? "" : "s"}`;
  const after = forecast.cutShort
    ? `After ${forecast.runs.toLocaleString("en")} runs (until ${date(forecast.lastRunAt)})`
    : "After a year";
  // The rules' counts add up to more than are kept when one snapshot serves two rules.
  const ruleTotal = Object.values(forecast.byRule).reduce((sum, n) => sum + n, 0);
  const overlap = ruleTotal > forecast.kept ? " (some count for more than one rule)" : "";
  return `${after}: ${count}${rules.length > 0 ? ` — ${rules.join(", ")}${overlap}` : ""}${oldest}.`;
}

export type Every = When["every"];

/** The editor's fields as typed; counts are text so an emptied field means "no such rule". */
export interface ScheduleForm {
  readonly every: Every;
  readonly at: string;
  readonly weekday: Weekday;
  readonly day: string;
  readonly cron: string;
  /** The disks chosen; the VM's every disk means "all disks", which also covers disks added later. */
  readonly disks: readonly string[];
  readonly keepLast: string;
  readonly daily: string;
  readonly weekly: string;
  readonly monthly: string;
  readonly note: string;
  readonly copy: CopyForm;
}

/** The editor's copy-off-the-host fields, as typed. */
export interface CopyForm {
  readonly on: boolean;
  readonly target: string;
  /** "runs" with `n`, or the first run of each day or week. */
  readonly every: "runs" | "day" | "week";
  readonly n: string;
  readonly keepLast: string;
  readonly daily: string;
  readonly weekly: string;
  readonly monthly: string;
  readonly hold: boolean;
  /** Days between restore drills of the landed copies, "" for none. */
  readonly drill: string;
}

export const NO_COPY: CopyForm = {
  on: false,
  target: "",
  every: "runs",
  n: "1",
  keepLast: "7",
  daily: "",
  weekly: "",
  monthly: "",
  hold: true,
  drill: "",
};

export function newScheduleForm(disks: readonly string[]): ScheduleForm {
  return {
    every: "daily",
    at: "02:00",
    weekday: "sunday",
    day: "1",
    cron: "0 3 * * *",
    disks,
    keepLast: "7",
    daily: "",
    weekly: "",
    monthly: "",
    note: "",
    copy: NO_COPY,
  };
}

export function scheduleForm(schedule: Schedule, vmDisks: readonly string[]): ScheduleForm {
  const when = schedule.when;
  const count = (n: number | undefined): string => (n === undefined ? "" : String(n));
  return {
    ...newScheduleForm(schedule.disks ?? vmDisks),
    every: when.every,
    ...(when.every === "cron" ? { cron: when.cron } : { at: when.at }),
    ...(when.every === "weekly" ? { weekday: when.weekday } : {}),
    ...(when.every === "monthly" ? { day: String(when.day) } : {}),
    keepLast: count(schedule.retention.keepLast),
    daily: count(schedule.retention.daily),
    weekly: count(schedule.retention.weekly),
    monthly: count(schedule.retention.monthly),
    note: schedule.note ?? "",
    copy:
      schedule.copy === undefined
        ? NO_COPY
        : {
            on: true,
            target: schedule.copy.target,
            every: schedule.copy.cadence.every,
            n: schedule.copy.cadence.every === "runs" ? String(schedule.copy.cadence.n) : "1",
            keepLast: count(schedule.copy.retention.keepLast),
            daily: count(schedule.copy.retention.daily),
            weekly: count(schedule.copy.retention.weekly),
            monthly: count(schedule.copy.retention.monthly),
            hold: schedule.copy.holdLocalUntilCopied,
            drill: schedule.copy.drill === undefined ? "" : String(schedule.copy.drill.everyDays),
          },
  };
}

/**
 * The draft the API checks. Nothing is validated here on purpose: the API's sentences are the
 * ones the CLI prints too, and the editor shows them as they come.
 */
export function draftOf(
  form: ScheduleForm,
  host: string,
  vm: string,
  vmDisks: readonly string[],
): ScheduleDraft {
  const note = form.note.trim();
  const disks = chosenDisks(form.disks, vmDisks);
  const copy = form.copy;
  return {
    host,
    vm,
    when: whenOf(form),
    retention: retentionOf(form),
    ...(disks === undefined ? {} : { disks }),
    ...(note === "" ? {} : { note }),
    ...(copy.on
      ? {
          copy: {
            target: copy.target,
            cadence: copy.every === "runs" ? { every: "runs", n: Number(copy.n) } : { every: copy.every },
            retention: retentionOf(copy),
            holdLocalUntilCopied: copy.hold,
            ...(copy.drill === "" ? {} : { drill: { everyDays: Number(copy.drill) } }),
          },
        }
      : {}),
  };
}

function retentionOf(
  counts: Readonly<Record<"keepLast" | "daily" | "weekly" | "monthly", string>>,
): RetentionPolicy {
  const retention: { -readonly [K in keyof RetentionPolicy]: RetentionPolicy[K] } = {};
  for (const key of ["keepLast", "daily", "weekly", "monthly"] as const) {
    const text = counts[key].trim();
    if (text !== "") {
      retention[key] = Number(text);
    }
  }
  return retention;
}

/** "every run", "every 4 runs", "the first run of each day": as the CLI's listing says it. */
export function cadenceInWords(cadence: CopyCadence): string {
  switch (cadence.every) {
    case "runs":
      return cadence.n === 1 ? "every run" : `every ${cadence.n} runs`;
    case "day":
      return "the first run of each day";
    case "week":
      return "the first run of each week";
  }
}

/** The preview's year on the target: how many copies it keeps, and what the host holds meanwhile. */
export function copyForecastInWords(forecast: CopyForecast, date: (iso: string) => string): string {
  const kept = `${forecast.target} keeps ${forecast.kept} cop${forecast.kept === 1 ? "y" : "ies"} of ${forecast.copies.toLocaleString("en")} sent`;
  const oldest = forecast.oldestKeptAt === null ? "" : `, the oldest from ${date(forecast.oldestKeptAt)}`;
  const hold = forecast.holdLocalUntilCopied
    ? " While a copy has not landed (the target is offline), the snapshots owed one stay on this host."
    : " Snapshots are pruned on this host by its own retention, copied or not.";
  return `After a year: ${kept}${oldest}.${hold} Only this schedule’s copies are ever removed there.`;
}

/**
 * Undefined means every disk. Without the VM's disks (its host is offline) the chosen ones are
 * sent as they are, so editing the time does not quietly widen a schedule to all disks.
 */
function chosenDisks(chosen: readonly string[], vmDisks: readonly string[]): string[] | undefined {
  if (vmDisks.length === 0) {
    return chosen.length === 0 ? undefined : [...chosen];
  }
  return vmDisks.every((d) => chosen.includes(d)) ? undefined : vmDisks.filter((d) => chosen.includes(d));
}

function whenOf(form: ScheduleForm): When {
  switch (form.every) {
    case "daily":
      return { every: "daily", at: form.at };
    case "weekly":
      return { every: "weekly", at: form.at, weekday: form.weekday };
    case "monthly":
      return { every: "monthly", at: form.at, day: Number(form.day) };
    case "cron":
      return { every: "cron", cron: form.cron };
  }
}

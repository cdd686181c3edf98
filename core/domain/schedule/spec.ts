import cronParser from "cron-parser";
import { z } from "zod";

import { SnapkeepError } from "../../errors.js";
import { MAX_SNAPSHOTS_KEPT } from "../limits.js";

/**
 * When a schedule runs, in the user's words: daily / weekly / monthly at a local time, or a
 * five-field cron expression. All times are in this computer's local time zone.
 */
export type When =
  | { readonly every: "daily"; readonly at: string }
  | { readonly every: "weekly"; readonly at: string; readonly weekday: Weekday }
  | { readonly every: "monthly"; readonly at: string; readonly day: number }
  | { readonly every: "cron"; readonly cron: string };

export const WEEKDAYS = [
  "sunday",
  "monday",
  "tuesday",
  "wednesday",
  "thursday",
  "friday",
  "saturday",
] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** Parses "HH:MM" (24-hour) into hours and minutes, or says what is wrong with it. */
export function parseTimeOfDay(text: string): { hour: number; minute: number } {
  const match = /^(\d{1,2}):(\d{2})$/.exec(text.trim());
  const hour = Number(match?.[1]);
  const minute = Number(match?.[2]);
  if (match === null || hour > 23 || minute > 59) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `"${text}" is not a time of day; write it as HH:MM, 00:00 to 23:59.`,
    );
  }
  return { hour, minute };
}

export function parseWeekday(text: string): Weekday {
  const lower = text.trim().toLowerCase();
  const found = WEEKDAYS.find((d) => d === lower || d.slice(0, 3) === lower);
  if (found === undefined) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `"${text}" is not a weekday; use monday ... sunday (or mon ... sun).`,
    );
  }
  return found;
}

export function validateDayOfMonth(day: number): number {
  if (!Number.isInteger(day) || day < 1 || day > 31) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `Day ${day} is not a day of the month; use 1 to 31 (29-31 run on the last day of shorter months).`,
    );
  }
  return day;
}

/** Checks a cron expression: exactly five fields, as in crontab(5); node-schedule's seconds field is refused. */
export function validateCron(expression: string): string {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `A cron expression has five fields (minute hour day-of-month month weekday); "${expression}" has ${fields.length}.`,
      { hint: 'For example "0 3 * * *" runs every day at 03:00.' },
    );
  }
  try {
    cronParser.parseExpression(fields.join(" "));
  } catch (error) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `"${expression}" is not a valid cron expression: ${(error as Error).message}`,
    );
  }
  return fields.join(" ");
}

/** Validates a When as typed by a person or read from a file; returns it normalised. */
export function validateWhen(when: When): When {
  switch (when.every) {
    case "daily":
      parseTimeOfDay(when.at);
      return when;
    case "weekly":
      parseTimeOfDay(when.at);
      return { ...when, weekday: parseWeekday(when.weekday) };
    case "monthly":
      parseTimeOfDay(when.at);
      validateDayOfMonth(when.day);
      return when;
    case "cron":
      return { every: "cron", cron: validateCron(when.cron) };
  }
}

/**
 * The scheduled instant on one local calendar day, or null when the schedule does not run that day.
 * `new Date(y, m, d, h, min)` resolves local time the way people expect around DST: a time that does
 * not exist (02:30 on the spring-forward night) becomes the first instant after the gap, and a time
 * that happens twice (fall-back night) is its first occurrence, so each day has at most one run.
 */
function slotOnDay(
  when: Exclude<When, { every: "cron" }>,
  year: number,
  month: number,
  date: number,
): Date | null {
  const { hour, minute } = parseTimeOfDay(when.at);
  if (when.every === "weekly" && new Date(year, month, date).getDay() !== WEEKDAYS.indexOf(when.weekday)) {
    return null;
  }
  if (when.every === "monthly") {
    const lastDay = new Date(year, month + 1, 0).getDate();
    if (date !== Math.min(when.day, lastDay)) {
      return null;
    }
  }
  return new Date(year, month, date, hour, minute, 0, 0);
}

/**
 * The latest scheduled instant at or before `now`, or null if there is none. Presets are computed
 * directly (this runs on every scheduler tick, for every schedule); cron goes through cron-parser.
 */
export function latestSlotAtOrBefore(when: When, now: Date): Date | null {
  if (when.every === "cron") {
    return latestCronSlot(compileCron(when.cron), now);
  }
  const { hour, minute } = parseTimeOfDay(when.at);
  const y = now.getFullYear();
  const m = now.getMonth();
  const d = now.getDate();
  if (when.every === "daily") {
    const today = new Date(y, m, d, hour, minute);
    return today <= now ? today : new Date(y, m, d - 1, hour, minute);
  }
  if (when.every === "weekly") {
    const back = (now.getDay() - WEEKDAYS.indexOf(when.weekday) + 7) % 7;
    const candidate = new Date(y, m, d - back, hour, minute);
    return candidate <= now ? candidate : new Date(y, m, d - back - 7, hour, minute);
  }
  const inMonth = (year: number, month: number): Date =>
    new Date(year, month, Math.min(when.day, new Date(year, month + 1, 0).getDate()), hour, minute);
  const thisMonth = inMonth(y, m);
  return thisMonth <= now ? thisMonth : inMonth(y, m - 1);
}

/** The next `count` scheduled instants strictly after `after`. */
export function nextSlots(when: When, after: Date, count: number): Date[] {
  const slots: Date[] = [];
  if (when.every === "cron") {
    return nextCronSlots(compileCron(when.cron), after, count);
  }
  for (let ahead = 0; slots.length < count && ahead <= 366 * 10; ahead++) {
    const day = new Date(after.getFullYear(), after.getMonth(), after.getDate() + ahead);
    const slot = slotOnDay(when, day.getFullYear(), day.getMonth(), day.getDate());
    if (slot !== null && slot.getTime() > after.getTime()) {
      slots.push(slot);
    }
  }
  return slots;
}

/** The nominal time between runs, for RPO: how old the newest snapshot may be before it is late. */
export function nominalIntervalMs(when: When, now: Date): number {
  switch (when.every) {
    case "daily":
      return 24 * 3600_000;
    case "weekly":
      return 7 * 24 * 3600_000;
    case "monthly":
      return 31 * 24 * 3600_000;
    case "cron": {
      const [a, b] = nextSlots(when, now, 2);
      return a !== undefined && b !== undefined ? b.getTime() - a.getTime() : 24 * 3600_000;
    }
  }
}

/** A human sentence for listings: "daily at 02:30", "weekly on monday at 03:00", "cron 0 * * * *". */
export function describeWhen(when: When): string {
  switch (when.every) {
    case "daily":
      return `daily at ${when.at}`;
    case "weekly":
      return `weekly on ${when.weekday} at ${when.at}`;
    case "monthly":
      return `monthly on day ${when.day} at ${when.at}`;
    case "cron":
      return `cron ${when.cron}`;
  }
}

// ---- the one encoding every door checks: the settings file, the API, the schedule editor --------

/**
 * A schedule's time as the settings file and the API take it, checked by {@link validateWhen} so
 * that every door says the same sentence about "25:00" or a six-field cron. The length caps only
 * keep a hostile request small; they are far above anything validateWhen accepts.
 */
export const whenSchema = z
  .discriminatedUnion("every", [
    z.object({ every: z.literal("daily"), at: z.string().max(32).describe("time of day") }),
    z.object({
      every: z.literal("weekly"),
      at: z.string().max(32).describe("time of day"),
      weekday: z.enum(WEEKDAYS).describe("weekday"),
    }),
    z.object({
      every: z.literal("monthly"),
      at: z.string().max(32).describe("time of day"),
      day: z.number().int().describe("day of the month"),
    }),
    z.object({ every: z.literal("cron"), cron: z.string().max(1000).describe("cron expression") }),
  ])
  .superRefine((when, context) => {
    try {
      validateWhen(when);
    } catch (error) {
      context.addIssue({ code: "custom", message: (error as Error).message, input: when });
    }
  })
  .describe("repeat period");

/**
 * The one sentence for every retention count: the editor lays the four out together. The limit is
 * grouped by hand ("10,000", as toLocaleString("en-US") writes it): this runs when the module loads,
 * on every command, and a process's first toLocaleString loads ICU's number formats (~20 ms).
 */
const RETENTION_COUNT_RULE = `Keep counts are whole numbers from 1 to ${String(MAX_SNAPSHOTS_KEPT).replace(/\B(?=(\d{3})+$)/g, ",")}; leave one empty for no such rule`;

const retentionCount = z
  .number(RETENTION_COUNT_RULE)
  .int(RETENTION_COUNT_RULE)
  .min(1, RETENTION_COUNT_RULE)
  .max(MAX_SNAPSHOTS_KEPT, RETENTION_COUNT_RULE)
  .optional();

/** A schedule's retention counts as the settings file and the API take them (see retention/gfs.ts). */
export const retentionSchema = z
  .object({
    keepLast: retentionCount,
    daily: retentionCount,
    weekly: retentionCount,
    monthly: retentionCount,
  })
  .describe("retention");

/** Same local date and time: on the fall-back night 02:30 happens twice and must count once. */
export function sameWallTime(a: Date, b: Date): boolean {
  return (
    a.getFullYear() === b.getFullYear() &&
    a.getMonth() === b.getMonth() &&
    a.getDate() === b.getDate() &&
    a.getHours() === b.getHours() &&
    a.getMinutes() === b.getMinutes()
  );
}

/**
 * A cron expression compiled once into the values each field allows (cron-parser parses and
 * validates it). Slots are then found by walking local calendar days, like the presets, which
 * gives the same DST behaviour (a time in the spring-forward gap runs just after it, a time that
 * happens twice runs once) and costs microseconds, where cron-parser's prev() took milliseconds.
 */
interface CompiledCron {
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  readonly daysOfMonth: ReadonlySet<number>;
  readonly lastDayOfMonth: boolean;
  readonly months: ReadonlySet<number>;
  readonly weekdays: ReadonlySet<number>;
  readonly anyDayOfMonth: boolean;
  readonly anyWeekday: boolean;
}

const compiled = new Map<string, CompiledCron>();

function compileCron(expression: string): CompiledCron {
  const cached = compiled.get(expression);
  if (cached !== undefined) {
    return cached;
  }
  const fields = cronParser.parseExpression(expression).fields;
  const [, , dom, , dow] = expression.trim().split(/\s+/);
  const result: CompiledCron = {
    minutes: [...fields.minute].sort((a, b) => a - b),
    hours: [...fields.hour].sort((a, b) => a - b),
    daysOfMonth: new Set<number>(fields.dayOfMonth.flatMap((d) => (typeof d === "number" ? [d] : []))),
    lastDayOfMonth: fields.dayOfMonth.some((d) => d === "L"),
    months: new Set<number>(fields.month.map(Number)),
    weekdays: new Set(fields.dayOfWeek.map((d) => (d === 7 ? 0 : d))),
    // crontab(5): when both day fields are restricted, a day matches either of them.
    anyDayOfMonth: dom === "*" || dom === "?",
    anyWeekday: dow === "*" || dow === "?",
  };
  compiled.set(expression, result);
  return result;
}

function cronDayMatches(cron: CompiledCron, year: number, month: number, date: number): boolean {
  if (!cron.months.has(month + 1)) {
    return false;
  }
  const domOk =
    cron.daysOfMonth.has(date) || (cron.lastDayOfMonth && date === new Date(year, month + 1, 0).getDate());
  const dowOk = cron.weekdays.has(new Date(year, month, date).getDay());
  if (cron.anyDayOfMonth && cron.anyWeekday) {
    return true;
  }
  if (cron.anyDayOfMonth) {
    return dowOk;
  }
  return cron.anyWeekday ? domOk : domOk || dowOk;
}

/** Five years covers any five-field expression, the rarest being 29 February. */
const CRON_SEARCH_DAYS = 5 * 366;

function latestCronSlot(cron: CompiledCron, now: Date): Date | null {
  for (let back = 0; back <= CRON_SEARCH_DAYS; back++) {
    const day = new Date(now.getFullYear(), now.getMonth(), now.getDate() - back);
    const [y, m, d] = [day.getFullYear(), day.getMonth(), day.getDate()];
    if (!cronDayMatches(cron, y, m, d)) {
      continue;
    }
    let best: Date | null = null;
    for (const hour of cron.hours) {
      for (const minute of cron.minutes) {
        const slot = new Date(y, m, d, hour, minute);
        if (slot.getTime() <= now.getTime() && (best === null || slot > best)) {
          best = slot;
        }
      }
    }
    if (best !== null) {
      return best;
    }
  }
  return null;
}

function nextCronSlots(cron: CompiledCron, after: Date, count: number): Date[] {
  const slots: Date[] = [];
  for (let ahead = 0; slots.length < count && ahead <= CRON_SEARCH_DAYS; ahead++) {
    const day = new Date(after.getFullYear(), after.getMonth(), after.getDate() + ahead);
    const [y, m, d] = [day.getFullYear(), day.getMonth(), day.getDate()];
    if (!cronDayMatches(cron, y, m, d)) {
      continue;
    }
    const seen = new Set<number>();
    for (const hour of cron.hours) {
      for (const minute of cron.minutes) {
        const slot = new Date(y, m, d, hour, minute);
        // Two wall times can land on one instant around the spring gap; count it once.
        if (slot.getTime() > after.getTime() && !seen.has(slot.getTime())) {
          seen.add(slot.getTime());
          slots.push(slot);
        }
      }
    }
  }
  return slots.sort((a, b) => a.getTime() - b.getTime()).slice(0, count);
}

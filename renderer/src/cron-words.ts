/**
 * A cron expression in words where it has a common shape ("Every 15 minutes", "Weekdays at
 * 02:30"); null when it does not, and the UI shows the expression itself. Only shapes read with
 * certainty: a wrong sentence about when backups run is worse than the expression.
 */

import { ordinal } from "./format.js";

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const DAY_NAMES: Readonly<Record<string, number>> = {
  sun: 0,
  mon: 1,
  tue: 2,
  wed: 3,
  thu: 4,
  fri: 5,
  sat: 6,
};

function number(field: string, min: number, max: number): number | null {
  if (!/^\d{1,2}$/.test(field)) {
    return null;
  }
  const n = Number(field);
  return n >= min && n <= max ? n : null;
}

function weekday(field: string): number | null {
  const named = DAY_NAMES[field.toLowerCase()];
  if (named !== undefined) {
    return named;
  }
  const n = number(field, 0, 7);
  return n === null ? null : n % 7;
}

const pad = (n: number): string => String(n).padStart(2, "0");

/** "02:30", or "02:30 and 14:30" for a list of hours. */
function times(minuteField: string, hourField: string): string | null {
  const minute = number(minuteField, 0, 59);
  const hours = hourField.split(",").map((h) => number(h, 0, 23));
  if (minute === null || hours.length > 4 || hours.some((h) => h === null)) {
    return null;
  }
  const list = hours.map((h) => `${pad(h ?? 0)}:${pad(minute)}`);
  return list.length === 1 ? (list[0] ?? null) : `${list.slice(0, -1).join(", ")} and ${list.at(-1) ?? ""}`;
}

function daysOfWeek(field: string): string | null {
  if (field === "1-5" || field.toLowerCase() === "mon-fri") {
    return "Weekdays";
  }
  if (field === "0,6" || field === "6,0" || field.toLowerCase() === "sat,sun") {
    return "Weekends";
  }
  const days = field.split(",").map(weekday);
  if (days.length > 3 || days.some((d) => d === null)) {
    return null;
  }
  const names = days.map((d) => DAYS[d ?? 0] ?? "");
  return `Every ${names.length === 1 ? names[0] : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`}`;
}

export function cronInWords(expression: string): string | null {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5) {
    return null;
  }
  const [minute = "", hour = "", dom = "", month = "", dow = ""] = fields;
  if (month !== "*") {
    return null;
  }
  const everyMinutes = /^\*\/(\d{1,2})$/.exec(minute);
  if (everyMinutes !== null && hour === "*" && dom === "*" && dow === "*") {
    const n = Number(everyMinutes[1]);
    return n === 1 ? "Every minute" : n > 0 && n < 60 ? `Every ${n} minutes` : null;
  }
  const m = number(minute, 0, 59);
  if (m === null) {
    return null;
  }
  const everyHours = /^\*\/(\d{1,2})$/.exec(hour);
  if ((hour === "*" || everyHours !== null) && dom === "*" && dow === "*") {
    const n = everyHours === null ? 1 : Number(everyHours[1]);
    if (n < 1 || n > 23) {
      return null;
    }
    return n === 1 ? `Every hour at :${pad(m)}` : `Every ${n} hours at :${pad(m)}, from midnight`;
  }
  const at = times(minute, hour);
  if (at === null) {
    return null;
  }
  if (dom === "*" && dow === "*") {
    return `Every day at ${at}`;
  }
  if (dom === "*") {
    const days = daysOfWeek(dow);
    return days === null ? null : `${days} at ${at}`;
  }
  const day = number(dom, 1, 31);
  if (dow === "*" && day !== null) {
    // Unlike Snapkeep's own monthly, cron skips months without that day.
    return `Monthly on the ${ordinal(day)} at ${at}${day >= 29 ? " (not in months without one)" : ""}`;
  }
  return null;
}

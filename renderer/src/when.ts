/** Instants from the API (ISO, UTC) as a person reads them: this computer's local time. */

/**
 * Formatters made once: `toLocaleString(undefined, options)` builds a new Intl formatter on every
 * call, about a millisecond each, which cost the 200-VM overview over a second.
 */
const formatters = new Map<string, Intl.DateTimeFormat>();
export function formatter(options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = JSON.stringify(options);
  let made = formatters.get(key);
  if (made === undefined) {
    made = new Intl.DateTimeFormat(undefined, options);
    formatters.set(key, made);
  }
  return made;
}

const DATE_TIME: Intl.DateTimeFormatOptions = {
  weekday: "short",
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
};

/**
 * "Sun, 29 Nov 2026, 02:30" in the browser's locale, with the weekday so a week reads at a glance:
 * the one format for an instant everywhere in the UI.
 */
export function dateTime(iso: string): string {
  return formatter(DATE_TIME).format(new Date(iso));
}

/**
 * Makes the first formatter now: the first one loads the locale's data (about 40 ms here), which
 * the page pays while its listing is on the way rather than before its first paint.
 */
export function prepareDates(): void {
  dateTime(new Date(0).toISOString());
}

export function shortDate(iso: string): string {
  return formatter({ year: "numeric", month: "short", day: "numeric" }).format(new Date(iso));
}

/** "just now", "12 min ago", "5 h ago", "3 days ago": how old a restore point is, at a glance. */
export function ago(iso: string, now: number): string {
  const minutes = Math.floor((now - Date.parse(iso)) / 60_000);
  if (minutes < 1) {
    return "just now";
  }
  if (minutes < 60) {
    return `${minutes} min ago`;
  }
  const hours = Math.floor(minutes / 60);
  if (hours < 48) {
    return `${hours} h ago`;
  }
  return `${Math.floor(hours / 24)} days ago`;
}

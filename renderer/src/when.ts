/** Instants from the API (ISO, UTC) as a person reads them: this computer's local time. */

/** "Sun, 29 Nov 2026, 02:30" in the browser's locale, with the weekday so a week reads at a glance. */
export function dateTime(iso: string): string {
  return new Date(iso).toLocaleString(undefined, {
    weekday: "short",
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
}

export function shortDate(iso: string): string {
  return new Date(iso).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

/** How numbers and times read in the UI: binary units, short durations, local times. */
import { formatBytes } from "../../core/domain/bytes.js";
import { dateTime } from "./when.js";

// One formatBytes for the CLI, the core's sentences and the UI: a pure file of the domain.
export { formatBytes };

export function formatRate(bytesPerSecond: number | null): string | null {
  return bytesPerSecond === null ? null : `${formatBytes(bytesPerSecond)}/s`;
}

/** "2 h 5 min", "4 min", "35 s". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) {
    return `${s} s`;
  }
  if (s < 3600) {
    return `${Math.round(s / 60)} min`;
  }
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/** An instant in the UI's one date format, "-" for none. */
export function formatTime(iso: string | null): string {
  return iso === null ? "-" : dateTime(iso);
}

/** A disk as every dialog names it: "vda (root disk)", "vdb (data disk)". */
export function diskLabel(target: string, role: "root" | "additional" | undefined): string {
  return role === undefined ? target : `${target} (${diskRole(role)})`;
}

export function diskRole(role: "root" | "additional"): string {
  return role === "root" ? "root disk" : "data disk";
}

/** "1st", "2nd", "11th", "23rd". */
export function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : (["th", "st", "nd", "rd"][n % 10] ?? "th");
  return `${n}${suffix}`;
}

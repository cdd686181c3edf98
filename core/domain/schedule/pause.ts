import { SnapkeepError } from "../../errors.js";
import type { SchedulePause } from "../settings.js";

/** Whether "pause all schedules" holds at `now`; a pause whose time has run out no longer counts. */
export function isPaused(pause: SchedulePause | null | undefined, now: Date): boolean {
  if (pause === null || pause === undefined) {
    return false;
  }
  return pause.until === null || now.getTime() < Date.parse(pause.until);
}

/** The pause that holds at `now`, or null: what the CLI, the tray and the API show. */
export function activePause(pause: SchedulePause | null | undefined, now: Date): SchedulePause | null {
  return pause !== null && pause !== undefined && isPaused(pause, now) ? pause : null;
}

const MINUTE_MS = 60_000;
const UNIT_MS: Record<string, number> = { m: MINUTE_MS, h: 60 * MINUTE_MS, d: 1440 * MINUTE_MS };
const LONGEST_MS = 366 * 1440 * MINUTE_MS;

/**
 * "90m", "1h", "2h30m", "7d": how long `schedule pause --all --for` lasts. Minutes are the finest
 * unit (schedules run at minutes); a year at most, beyond which "until resumed" says it better.
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim().toLowerCase();
  const parts = [...trimmed.matchAll(/(\d+)\s*([mhd])/g)];
  const total = parts.reduce((sum, [, n, unit]) => sum + Number(n) * (UNIT_MS[unit ?? ""] ?? 0), 0);
  const whole = parts.map((p) => p[0]).join("") === trimmed.replaceAll(/\s+/g, "");
  if (parts.length === 0 || !whole || total < MINUTE_MS || total > LONGEST_MS) {
    throw new SnapkeepError("INVALID_INPUT", `"${text}" is not a duration from 1 minute to 366 days.`, {
      hint: "Write it like 30m, 1h, 2h30m or 7d.",
    });
  }
  return total;
}

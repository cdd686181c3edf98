/**
 * The tray's state and its menu, as plain data. Linux trays ignore clicks on the icon, so every
 * action is in the menu; electron/main.ts only turns these items into an Electron Menu.
 */
import type { Scheduling } from "../../core/app/schedules/hosting.js";
import type { SchedulePause } from "../../core/domain/settings.js";

/** A job the tray lists; scheduler jobs today, the UI's jobs (exports ...) through the same shape. */
export interface TrayJob {
  readonly id: string;
  readonly title: string;
  readonly cancellable: boolean;
}

/** Where jobs come from: the scheduler, and later the API's job list. */
export interface JobSource {
  list(): readonly TrayJob[];
  /** True when the job was found and asked to stop. */
  cancel(id: string): boolean;
}

export type { Scheduling };

export interface TrayState {
  readonly now: Date;
  readonly scheduling: Scheduling;
  readonly pause: SchedulePause | null;
  readonly nextRun: { readonly at: Date; readonly vm: string } | null;
  readonly jobs: readonly TrayJob[];
  /** VMs a snapshot can be taken of now, by host. */
  readonly vms: readonly { readonly host: string; readonly vm: string }[];
  /** What needs the admin, one line each (a failing schedule, an overdue VM). */
  readonly attention: readonly string[];
}

export type TrayAction =
  | { readonly type: "open" }
  | { readonly type: "cancel-job"; readonly jobId: string }
  | { readonly type: "snapshot"; readonly host: string; readonly vm: string }
  | { readonly type: "pause-all"; readonly minutes: number | null }
  | { readonly type: "resume-all" }
  | { readonly type: "quit" };

export type TrayItem =
  | { readonly kind: "action"; readonly label: string; readonly action: TrayAction }
  | { readonly kind: "info"; readonly label: string }
  | { readonly kind: "separator" }
  | { readonly kind: "submenu"; readonly label: string; readonly items: readonly TrayItem[] };

export type TrayIcon = "ok" | "running" | "attention";

/** Long menus are unusable; beyond this many VMs the window is the place to pick one. */
const MAX_VMS = 25;

export function trayIcon(state: TrayState): TrayIcon {
  if (state.attention.length > 0 || state.scheduling.kind === "failed") {
    return "attention";
  }
  return state.jobs.length > 0 ? "running" : "ok";
}

export function trayTooltip(state: TrayState): string {
  const { attention, jobs, pause } = state;
  const details = [
    ...(attention.length === 0
      ? []
      : [`${attention.length} need${attention.length === 1 ? "s" : ""} attention`]),
    ...(jobs.length === 0 ? [] : [`${jobs.length} job${jobs.length === 1 ? "" : "s"} running`]),
    ...(pause === null ? [] : ["schedules paused"]),
  ];
  return details.length === 0 ? "Snapkeep" : `Snapkeep: ${details.join(", ")}`;
}

export function trayMenu(state: TrayState): TrayItem[] {
  const items: TrayItem[] = [{ kind: "action", label: "Open Snapkeep", action: { type: "open" } }];
  items.push({ kind: "separator" });
  items.push(...schedulingItems(state));
  for (const line of state.attention) {
    items.push({ kind: "info", label: `⚠ ${line}` });
  }

  items.push({ kind: "separator" });
  if (state.jobs.length === 0) {
    items.push({ kind: "info", label: "No jobs running" });
  } else {
    items.push({
      kind: "submenu",
      label: `Running jobs (${state.jobs.length})`,
      items: state.jobs.map((job): TrayItem =>
        job.cancellable
          ? { kind: "action", label: `Cancel: ${job.title}`, action: { type: "cancel-job", jobId: job.id } }
          : { kind: "info", label: job.title },
      ),
    });
  }
  items.push(snapshotMenu(state));

  items.push({ kind: "separator" });
  if (state.pause === null) {
    items.push({
      kind: "submenu",
      label: "Pause all schedules",
      items: [
        { kind: "action", label: "For 1 hour", action: { type: "pause-all", minutes: 60 } },
        { kind: "action", label: "Until resumed", action: { type: "pause-all", minutes: null } },
      ],
    });
  } else {
    items.push({ kind: "action", label: "Resume all schedules", action: { type: "resume-all" } });
  }
  items.push({ kind: "separator" });
  items.push({ kind: "action", label: "Quit Snapkeep", action: { type: "quit" } });
  return items;
}

function schedulingItems(state: TrayState): TrayItem[] {
  const { scheduling, pause, nextRun, now } = state;
  if (scheduling.kind === "failed") {
    return [{ kind: "info", label: `Schedules are not running: ${scheduling.message}` }];
  }
  const lines: TrayItem[] = [];
  if (scheduling.kind === "elsewhere") {
    lines.push({
      kind: "info",
      label: `Schedules run in ${scheduling.owner.app} (pid ${scheduling.owner.pid})`,
    });
  }
  if (pause !== null) {
    lines.push({
      kind: "info",
      label:
        pause.until === null
          ? "All schedules paused until resumed"
          : `All schedules paused until ${clockTime(new Date(pause.until), now)}`,
    });
  } else {
    lines.push({
      kind: "info",
      label:
        nextRun === null ? "No scheduled runs" : `Next run: ${nextRun.vm} at ${clockTime(nextRun.at, now)}`,
    });
  }
  return lines;
}

function snapshotMenu(state: TrayState): TrayItem {
  if (state.vms.length === 0) {
    return { kind: "info", label: "Snapshot now: no VMs found" };
  }
  const hosts = new Set(state.vms.map((v) => v.host));
  const shown = state.vms.slice(0, MAX_VMS);
  const items: TrayItem[] = shown.map((v) => ({
    kind: "action",
    // The host is named only when there is more than one: "db" reads better than "local/db".
    label: hosts.size > 1 ? `${v.host}/${v.vm}` : v.vm,
    action: { type: "snapshot", host: v.host, vm: v.vm },
  }));
  if (state.vms.length > shown.length) {
    items.push({
      kind: "action",
      label: `${state.vms.length - shown.length} more in the window…`,
      action: { type: "open" },
    });
  }
  return { kind: "submenu", label: "Snapshot now", items };
}

/** "14:30" today, "Tue 02:00" within a week, else the date: short enough for a menu line. */
export function clockTime(at: Date, now: Date): string {
  const hhmm = `${String(at.getHours()).padStart(2, "0")}:${String(at.getMinutes()).padStart(2, "0")}`;
  const startOfToday = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
  const dayMs = 86_400_000;
  if (at.getTime() >= startOfToday && at.getTime() < startOfToday + dayMs) {
    return hhmm;
  }
  if (at.getTime() >= startOfToday && at.getTime() < startOfToday + 7 * dayMs) {
    return `${["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][at.getDay()] ?? ""} ${hhmm}`;
  }
  const date = `${at.getFullYear()}-${String(at.getMonth() + 1).padStart(2, "0")}-${String(at.getDate()).padStart(2, "0")}`;
  return `${date} ${hhmm}`;
}

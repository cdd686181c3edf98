/** The tray's menu model and what it says about the schedules: plain data from state. */
import { describe, expect, it } from "vitest";
import type { Schedule } from "../../core/domain/settings.js";
import {
  clockTime,
  trayIcon,
  trayMenu,
  trayTooltip,
  type TrayItem,
  type TrayState,
} from "../../electron/lib/tray-menu.js";
import { attentionLines, nextScheduledRun } from "../../electron/lib/tray-state.js";

const now = new Date(2026, 10, 26, 10, 5); // Thursday, local time
const base: TrayState = {
  now,
  scheduling: { kind: "here" },
  pause: null,
  nextRun: { at: new Date(2026, 10, 26, 14, 30), vm: "db" },
  jobs: [],
  vms: [
    { host: "local", vm: "db" },
    { host: "local", vm: "web" },
  ],
  attention: [],
};

/** Every action in the menu, however deep, as "label → action type". */
function actions(items: readonly TrayItem[]): string[] {
  return items.flatMap((item) =>
    item.kind === "action"
      ? [`${item.label} → ${item.action.type}`]
      : item.kind === "submenu"
        ? actions(item.items)
        : [],
  );
}
const labels = (items: readonly TrayItem[]): string[] =>
  items.flatMap((item) => (item.kind === "separator" ? [] : [item.label]));

describe("trayMenu", () => {
  it("offers every action in the menu: open, snapshot now, pause, quit", () => {
    const menu = trayMenu(base);
    expect(actions(menu)).toEqual([
      "Open Snapkeep → open",
      "db → snapshot",
      "web → snapshot",
      "For 1 hour → pause-all",
      "Until resumed → pause-all",
      "Quit Snapkeep → quit",
    ]);
    expect(labels(menu)).toContain("Next run: db at 14:30");
    expect(labels(menu)).toContain("No jobs running");
    const pause = menu.find((i) => i.kind === "submenu" && i.label === "Pause all schedules");
    expect(pause).toMatchObject({
      items: [
        { action: { type: "pause-all", minutes: 60 } },
        { action: { type: "pause-all", minutes: null } },
      ],
    });
  });

  it("lists running jobs with cancel, and names hosts when there are several", () => {
    const menu = trayMenu({
      ...base,
      jobs: [
        { id: "job-1", title: "Scheduled snapshot of db", cancellable: true },
        { id: "job-2", title: "Export web to nas", cancellable: false },
      ],
      vms: [
        { host: "local", vm: "db" },
        { host: "web01", vm: "db" },
      ],
    });
    const jobs = menu.find((i) => i.kind === "submenu" && i.label === "Running jobs (2)");
    expect(jobs).toEqual({
      kind: "submenu",
      label: "Running jobs (2)",
      items: [
        {
          kind: "action",
          label: "Cancel: Scheduled snapshot of db",
          action: { type: "cancel-job", jobId: "job-1" },
        },
        { kind: "info", label: "Export web to nas" },
      ],
    });
    expect(actions(menu)).toContain("web01/db → snapshot");
  });

  it("while paused, shows until when and offers resume instead of pause", () => {
    const timed = trayMenu({
      ...base,
      pause: { since: now.toISOString(), until: new Date(2026, 10, 26, 11, 5).toISOString() },
    });
    expect(labels(timed)).toContain("All schedules paused until 11:05");
    expect(actions(timed)).toContain("Resume all schedules → resume-all");
    expect(actions(timed).some((a) => a.endsWith("pause-all"))).toBe(false);
    const open = trayMenu({ ...base, pause: { since: now.toISOString(), until: null } });
    expect(labels(open)).toContain("All schedules paused until resumed");
  });

  it("says when a daemon schedules, and why schedules do not run", () => {
    const elsewhere = trayMenu({
      ...base,
      scheduling: {
        kind: "elsewhere",
        owner: { pid: 4242, hostname: "h", app: "snapkeep daemon", startedAt: now.toISOString() },
      },
    });
    expect(labels(elsewhere)).toContain("Schedules run in snapkeep daemon (pid 4242)");
    const failed = trayMenu({ ...base, scheduling: { kind: "failed", message: "disk full" } });
    expect(labels(failed)).toContain("Schedules are not running: disk full");
  });

  it("keeps the snapshot menu short and sends the rest to the window", () => {
    const vms = Array.from({ length: 30 }, (_, i) => ({ host: "local", vm: `vm${i}` }));
    const menu = trayMenu({ ...base, vms });
    const snapshot = menu.find((i) => i.kind === "submenu" && i.label === "Snapshot now");
    expect(snapshot?.kind === "submenu" ? snapshot.items.length : 0).toBe(26);
    expect(actions(menu)).toContain("5 more in the window… → open");
    expect(labels(trayMenu({ ...base, vms: [] }))).toContain("Snapshot now: no VMs found");
  });
});

describe("trayIcon and trayTooltip", () => {
  it("shows attention over running over ok", () => {
    const job = { id: "j", title: "t", cancellable: true };
    expect(trayIcon(base)).toBe("ok");
    expect(trayIcon({ ...base, jobs: [job] })).toBe("running");
    expect(trayIcon({ ...base, jobs: [job], attention: ["db: last run failed"] })).toBe("attention");
    expect(trayIcon({ ...base, scheduling: { kind: "failed", message: "x" } })).toBe("attention");
    expect(trayTooltip(base)).toBe("Snapkeep");
    expect(
      trayTooltip({ ...base, jobs: [job], attention: ["a", "b"], pause: { since: "x", until: null } }),
    ).toBe("Snapkeep: 2 need attention, 1 job running, schedules paused");
  });
});

describe("tray state from the schedules", () => {
  const schedule = (id: string, extra: Partial<Schedule> = {}): Schedule => ({
    id,
    host: "local",
    vmUuid: `uuid-${id}`,
    vmName: `vm-${id}`,
    when: { every: "daily", at: "02:00" },
    retention: { keepLast: 3 },
    enabled: true,
    createdAt: "2026-01-01T00:00:00.000Z",
    ...extra,
  });

  it("names the soonest run of an active schedule, after a timed pause, none during an open one", () => {
    const list = [
      schedule("aaaaaaa1"),
      schedule("aaaaaaa2", { when: { every: "cron", cron: "30 14 * * *" } }),
      schedule("aaaaaaa3", { when: { every: "cron", cron: "0 11 * * *" }, enabled: false }),
    ];
    expect(nextScheduledRun(list, null, now)).toEqual({
      at: new Date(2026, 10, 26, 14, 30),
      vm: "vm-aaaaaaa2",
    });
    const untilEvening = { since: now.toISOString(), until: new Date(2026, 10, 26, 18, 0).toISOString() };
    expect(nextScheduledRun(list, untilEvening, now)).toEqual({
      at: new Date(2026, 10, 27, 2, 0),
      vm: "vm-aaaaaaa1",
    });
    expect(nextScheduledRun(list, { since: now.toISOString(), until: null }, now)).toBeNull();
    expect(nextScheduledRun([], null, now)).toBeNull();
  });

  it("needs attention for a failing schedule and an overdue one, not while paused", () => {
    const list = [schedule("aaaaaaa1"), schedule("aaaaaaa2")];
    const states = {
      aaaaaaa1: { failures: 2, lastResult: "failed" as const, lastError: "Cannot connect to web01\nmore" },
      aaaaaaa2: { failures: 0, lastSlot: new Date(2026, 10, 24, 2, 0).toISOString() }, // missed the 25th and 26th
    };
    const lines = attentionLines(list, states, null, now);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe("vm-aaaaaaa1: last run failed: Cannot connect to web01");
    expect(lines[1]).toMatch(/^vm-aaaaaaa2: scheduled run overdue since /);
    expect(attentionLines(list, states, { since: now.toISOString(), until: null }, now)).toEqual([lines[0]]);
    const served = {
      failures: 0,
      lastResult: "ok" as const,
      lastSlot: new Date(2026, 10, 26, 2, 0).toISOString(),
    };
    expect(attentionLines(list, { aaaaaaa1: served, aaaaaaa2: served }, null, now)).toEqual([]);
  });

  it("says when a schedule's off-host copy is overdue, and why", () => {
    const copying = {
      id: "ccccccc1",
      host: "local",
      vmUuid: "vm-c",
      vmName: "db",
      when: { every: "daily" as const, at: "02:00" },
      retention: { keepLast: 7 },
      enabled: true,
      createdAt: new Date(2026, 9, 1).toISOString(),
      copy: {
        target: "nas",
        cadence: { every: "runs" as const, n: 1 },
        retention: { keepLast: 7 },
        holdLocalUntilCopied: true,
      },
    };
    const served = {
      failures: 0,
      lastResult: "ok" as const,
      lastSlot: new Date(2026, 10, 26, 2, 0).toISOString(),
    };
    const landed = (daysAgo: number, failure: "target-offline" | null) => ({
      lastChosen: null,
      runsSinceChosen: 0,
      newestLanded: { tag: "t", createdAt: new Date(now.getTime() - daysAgo * 86_400_000).toISOString() },
      owedSince: null,
      lastAttempt: {
        at: now.toISOString(),
        exportId: null,
        failure: failure === null ? null : { kind: failure, detail: "nas cannot be reached" },
      },
    });
    const states = { ccccccc1: served };
    // Landed this morning: nothing to say.
    expect(attentionLines([copying], states, null, now, { ccccccc1: landed(0.3, null) })).toEqual([]);
    // Three days old and the target is offline: overdue, with the reason.
    expect(attentionLines([copying], states, null, now, { ccccccc1: landed(3, "target-offline") })).toEqual([
      "db: off-host copy overdue: the target is offline: nas cannot be reached",
    ]);
    // Never landed, and the first copy failed.
    const never = { ...landed(0, "target-offline"), newestLanded: null };
    expect(attentionLines([copying], states, null, now, { ccccccc1: never })).toEqual([
      "db: no off-host copy yet: the target is offline: nas cannot be reached",
    ]);
    // While all schedules are paused, a late copy is the admin's own doing.
    const pause = { since: now.toISOString(), until: null };
    expect(attentionLines([copying], states, pause, now, { ccccccc1: landed(3, "target-offline") })).toEqual(
      [],
    );
  });

  it("writes times short: today, this week, later", () => {
    expect(clockTime(new Date(2026, 10, 26, 9, 7), now)).toBe("09:07");
    expect(clockTime(new Date(2026, 10, 28, 2, 0), now)).toBe("Sat 02:00");
    expect(clockTime(new Date(2026, 11, 24, 2, 0), now)).toBe("2026-12-24 02:00");
  });
});

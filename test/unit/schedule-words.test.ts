import { describe, expect, it } from "vitest";

import type { ListedSchedule, Schedule } from "../../core/api/contract.js";
import {
  copyForecastInWords,
  copyInWords,
  draftOf,
  forecastInWords,
  newScheduleForm,
  retentionInWords,
  scheduleForm,
  scheduleStatus,
  spanInWords,
  whenInWords,
} from "../../renderer/src/schedule-words.js";
import { ordinal } from "../../renderer/src/format.js";

const schedule: Schedule = {
  id: "0a1b2c3d",
  host: "web01",
  vmUuid: "6f1c0c1e-0000-4000-8000-000000000001",
  vmName: "db",
  when: { every: "monthly", at: "01:00", day: 31 },
  disks: ["vdb"],
  retention: { keepLast: 7, monthly: 12 },
  enabled: true,
  note: "nightly",
  createdAt: "2026-01-01T00:00:00.000Z",
};

describe("schedules in words", () => {
  it("says when a schedule runs, with the short-month rule for days 29 to 31", () => {
    expect(whenInWords({ every: "daily", at: "02:30" })).toBe("Every day at 02:30");
    expect(whenInWords({ every: "weekly", at: "03:00", weekday: "sunday" })).toBe("Every Sunday at 03:00");
    expect(whenInWords({ every: "monthly", at: "01:00", day: 2 })).toBe("Monthly on the 2nd at 01:00");
    expect(whenInWords(schedule.when)).toBe("Monthly on the 31st at 01:00 (the last day in shorter months)");
    expect(whenInWords({ every: "cron", cron: "0 */6 * * *" })).toBe("Every 6 hours at :00, from midnight");
    expect(whenInWords({ every: "cron", cron: "0 4 1 1 *" })).toBe("Cron 0 4 1 1 *");
    expect([1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 31].map(ordinal).join(" ")).toBe(
      "1st 2nd 3rd 4th 11th 12th 13th 21st 22nd 23rd 31st",
    );
  });

  it("says what a retention keeps", () => {
    expect(retentionInWords({ keepLast: 7, weekly: 4, monthly: 12 })).toBe(
      "keeps the latest 7, 4 weekly, 12 monthly",
    );
    expect(retentionInWords({ daily: 14 })).toBe("keeps 14 daily");
  });

  it("tells paused, not running, failing and active apart; paused wins, as a paused schedule does not retry", () => {
    const listed = (
      enabled: boolean,
      lastResult?: "ok" | "failed",
      schedulerRunning = true,
    ): ListedSchedule => ({
      schedule: { ...schedule, enabled },
      state: lastResult === undefined ? null : { lastResult, lastError: "web01 is unreachable", failures: 3 },
      nextRun: null,
      schedulerRunning,
    });
    // Nothing runs the schedules: never "active", whatever its last run did.
    expect(scheduleStatus(listed(true, "ok", false))).toEqual({ level: "stopped" });
    expect(scheduleStatus(listed(false, "ok", false))).toEqual({ level: "paused" });
    expect(scheduleStatus(listed(true))).toEqual({ level: "active" });
    expect(scheduleStatus(listed(true, "ok"))).toEqual({ level: "active" });
    expect(scheduleStatus(listed(true, "failed"))).toEqual({
      level: "failing",
      error: "web01 is unreachable",
      failures: 3,
    });
    expect(scheduleStatus(listed(false, "failed"))).toEqual({ level: "paused" });
  });

  it("puts the one-year forecast in a sentence, with how far back the oldest reaches", () => {
    const forecast = {
      horizonDays: 365,
      runs: 365,
      lastRunAt: "2027-11-25T01:00:00.000Z",
      cutShort: false,
      kept: 22,
      oldestKeptAt: "2026-12-31T01:00:00.000Z",
      byRule: { latest: 7, daily: 0, weekly: 4, monthly: 12 },
    };
    const day = (iso: string): string => iso.slice(0, 10);
    expect(forecastInWords(forecast, day)).toBe(
      "After a year: 22 snapshots — 7 latest, 4 weekly, 12 monthly (some count for more than one rule) — the oldest from 2026-12-31, 11 months before the last run.",
    );
    expect(
      forecastInWords(
        { ...forecast, runs: 20_000, cutShort: true, lastRunAt: "2026-12-10T16:00:00.000Z", kept: 1 },
        day,
      ),
    ).toMatch(/^After 20,000 runs \(until 2026-12-10\): 1 snapshot — /);
    expect(forecastInWords({ ...forecast, runs: 0, kept: 0, lastRunAt: null, oldestKeptAt: null }, day)).toBe(
      "It does not run at all within a year.",
    );
    expect([3, 20, 90, 800].map((d) => spanInWords(d * 86_400_000))).toEqual([
      "3 days",
      "3 weeks",
      "3 months",
      "2 years",
    ]);
  });
});

describe("the editor's form and the API's draft", () => {
  const vmDisks = ["vda", "vdb"];

  it("sends every disk as no disk list, so disks added later are covered too", () => {
    const draft = draftOf(newScheduleForm(vmDisks), "web01", "db", vmDisks);
    expect(draft).toEqual({
      host: "web01",
      vm: "db",
      when: { every: "daily", at: "02:00" },
      retention: { keepLast: 7 },
    });
  });

  it("round-trips a schedule; emptied counts are no rule; numbers go as typed for the API to judge", () => {
    const form = scheduleForm(schedule, vmDisks);
    expect(draftOf(form, "web01", "db", vmDisks)).toEqual({
      host: "web01",
      vm: "db",
      when: schedule.when,
      retention: schedule.retention,
      disks: ["vdb"],
      note: "nightly",
    });
    const edited = { ...form, every: "weekly" as const, keepLast: "", weekly: "0", note: "  " };
    expect(draftOf(edited, "web01", "db", vmDisks)).toMatchObject({
      when: { every: "weekly", at: "01:00", weekday: "sunday" },
      retention: { weekly: 0, monthly: 12 },
    });
    expect(draftOf(edited, "web01", "db", vmDisks)).not.toHaveProperty("note");
  });

  it("round-trips a copy off the host, and a copy turned off is none", () => {
    const copying: Schedule = {
      ...schedule,
      copy: {
        target: "nas",
        cadence: { every: "runs", n: 4 },
        retention: { keepLast: 2, monthly: 6 },
        holdLocalUntilCopied: false,
      },
    };
    const form = scheduleForm(copying, vmDisks);
    expect(draftOf(form, "web01", "db", vmDisks).copy).toEqual(copying.copy);
    expect(draftOf({ ...form, copy: { ...form.copy, every: "week" } }, "web01", "db", vmDisks).copy).toEqual({
      ...copying.copy,
      cadence: { every: "week" },
    });
    expect(
      draftOf({ ...form, copy: { ...form.copy, on: false } }, "web01", "db", vmDisks),
    ).not.toHaveProperty("copy");
    expect(copyInWords(copying.copy)).toBe("copies to nas every 4 runs, keeps the latest 2, 6 monthly there");
    expect(copyInWords(undefined)).toBeNull();
  });

  it("says what the target keeps after a year, and whether the host holds snapshots meanwhile", () => {
    const words = copyForecastInWords(
      {
        horizonDays: 365,
        runs: 365,
        lastRunAt: "2027-12-03T02:00:00.000Z",
        cutShort: false,
        kept: 2,
        oldestKeptAt: "2027-12-02T02:00:00.000Z",
        byRule: { latest: 2, daily: 0, weekly: 0, monthly: 0 },
        target: "nas",
        copies: 365,
        holdLocalUntilCopied: true,
      },
      (iso) => iso.slice(0, 10),
    );
    expect(words).toBe(
      "After a year: nas keeps 2 copies of 365 sent, the oldest from 2027-12-02. While a copy has not landed (the target is offline), the snapshots owed one stay on this host. Only this schedule’s copies are ever removed there.",
    );
  });

  it("keeps the schedule's own disks when the VM's disks cannot be read (host offline)", () => {
    const { disks: _disks, ...allDisks } = schedule;
    expect(draftOf(scheduleForm(schedule, []), "web01", "db", []).disks).toEqual(["vdb"]);
    expect(draftOf(scheduleForm(allDisks, []), "web01", "db", [])).not.toHaveProperty("disks");
  });
});

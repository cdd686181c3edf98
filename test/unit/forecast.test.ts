/**
 * The schedule editor's one-year forecast of what retention keeps, and the API's checks on what a
 * transport brings before anything runs.
 */
import { describe, expect, it } from "vitest";

import { Api, type ApiContext } from "../../core/api/api.js";
import { forecastRetention } from "../../core/domain/retention/forecast.js";

const now = new Date(2026, 10, 26, 12, 0, 0);

describe("retention forecast", () => {
  it("keeps exactly N of a daily schedule with keep N, the oldest N-1 days back from the last run", () => {
    const f = forecastRetention({ every: "daily", at: "02:00" }, { keepLast: 7 }, now);
    expect(f.runs).toBe(365);
    expect(f.kept).toBe(7);
    expect(f.byRule).toEqual({ latest: 7, daily: 0, weekly: 0, monthly: 0 });
    const oldest = new Date(f.oldestKeptAt ?? "");
    const last = new Date(2027, 10, 26, 2, 0, 0);
    expect(Math.round((last.getTime() - oldest.getTime()) / 86_400_000)).toBe(6);
  });

  it("adds weekly and monthly snapshots on top of the latest ones, each counted once", () => {
    const f = forecastRetention(
      { every: "daily", at: "02:00" },
      { keepLast: 7, weekly: 4, monthly: 12 },
      now,
    );
    expect(f.byRule).toEqual({ latest: 7, daily: 0, weekly: 4, monthly: 12 });
    // The newest weekly and monthly are among the latest 7; the rest are extra.
    expect(f.kept).toBeGreaterThan(12);
    expect(f.kept).toBeLessThanOrEqual(7 + 4 + 12);
    // Twelve months back from the last run, give or take the day of the month.
    const ageDays = (Date.parse("2027-11-26") - Date.parse(f.oldestKeptAt ?? "")) / 86_400_000;
    expect(ageDays).toBeGreaterThan(300);
  });

  it("an empty policy keeps every run; a frequent cron is capped, not simulated forever", () => {
    expect(forecastRetention({ every: "weekly", at: "03:30", weekday: "sunday" }, {}, now)).toMatchObject({
      runs: 52,
      kept: 52,
      cutShort: false,
    });
    const cron = forecastRetention({ every: "cron", cron: "*/5 * * * *" }, { keepLast: 3 }, now);
    expect(cron.runs).toBe(20_000);
    expect(cron.kept).toBe(3);
    // The editor says "after 20,000 runs (until <the last one>)" rather than "after a year".
    expect(cron.cutShort).toBe(true);
    expect(Date.parse(cron.lastRunAt ?? "") - now.getTime()).toBeLessThan(70 * 86_400_000);
  });
});

describe("API input checks", () => {
  // Nothing is reached: every call below is refused before a handler runs.
  const api = new Api({} as ApiContext);

  it("refuses what is not a call, an unknown method, and bad parameters with where they are wrong", async () => {
    expect(await api.handle("hello")).toMatchObject({ id: -1, error: { code: "INVALID_INPUT" } });
    expect(await api.handle({ id: 1, method: "toString" })).toMatchObject({
      id: 1,
      error: { code: "INVALID_INPUT", message: 'There is no API method "toString".' },
    });
    const bad = await api.handle({
      id: 2,
      method: "schedules.add",
      params: { host: "local", vm: "web", when: { every: "daily" }, retention: { keepLast: 3 } },
    });
    expect(bad).toMatchObject({ id: 2, error: { code: "INVALID_INPUT" } });
    expect("error" in bad && bad.error.hint).toBe("In schedules.add (when.at).");
    const zero = await api.handle({
      id: 5,
      method: "schedules.preview",
      params: {
        draft: {
          host: "local",
          vm: "web",
          when: { every: "daily", at: "02:00" },
          retention: { keepLast: 0 },
        },
      },
    });
    expect("error" in zero && zero.error.message).toBe(
      "Keep counts are whole numbers from 1 to 10,000; leave one empty for no such rule.",
    );
    const both = await api.handle({
      id: 3,
      method: "exports.planRestore",
      params: { target: "t", export: "e", host: "h", name: "a", into: "b" },
    });
    expect("error" in both && both.error.message).toMatch(/Choose a new VM name or a VM/);
    const job = await api.handle({ id: 4, method: "jobs.cancel", params: { id: "../../etc" } });
    expect(job).toMatchObject({ id: 4, error: { code: "INVALID_INPUT" } });
  });
});

describe("libvirt URIs of hosts", () => {
  it("takes the local system or session daemon, nothing that could run a program or go elsewhere", async () => {
    const { validateLibvirtUri } = await import("../../core/domain/selection.js");
    for (const good of ["qemu:///system", "qemu:///session", "qemu+unix:///system"]) {
      expect(() => validateLibvirtUri(good)).not.toThrow();
    }
    for (const bad of [
      "qemu+ext:///system?command=/bin/sh",
      "qemu+unix:///system?socket=/tmp/evil",
      "qemu+ssh://root@elsewhere/system",
      "qemu:///system\n",
      "",
    ]) {
      expect(() => validateLibvirtUri(bad)).toThrow(/not a libvirt URI Snapkeep uses/);
    }
  });
});

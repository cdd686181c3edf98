// Runs in Europe/Berlin (vitest.config.ts): DST starts 2026-03-29 02:00 and ends 2026-10-25 03:00.
import { describe, expect, it } from "vitest";
import {
  latestSlotAtOrBefore,
  nextSlots,
  parseTimeOfDay,
  validateWhen,
  type When,
} from "../../core/domain/schedule/spec.js";

const local = (y: number, m: number, d: number, h = 0, min = 0): Date => new Date(y, m - 1, d, h, min);
const iso = (dates: Date[]): string[] => dates.map((d) => d.toISOString());

describe("schedule validation", () => {
  it.each([
    [{ every: "daily", at: "25:00" }, /"25:00" is not a time of day/],
    [{ every: "daily", at: "7pm" }, /not a time of day/],
    [{ every: "monthly", at: "02:00", day: 0 }, /Day 0 is not a day of the month/],
    [{ every: "monthly", at: "02:00", day: 32 }, /Day 32/],
    [{ every: "weekly", at: "02:00", weekday: "funday" }, /"funday" is not a weekday/],
    [{ every: "cron", cron: "0 0 * * * *" }, /five fields .* has 6/],
    [{ every: "cron", cron: "0 0 *" }, /has 3/],
    [{ every: "cron", cron: "61 * * * *" }, /not a valid cron expression/],
  ] as [When, RegExp][])("refuses %j", (when, message) => {
    expect(() => validateWhen(when)).toThrow(message);
  });

  it("accepts and normalises good input", () => {
    expect(parseTimeOfDay("7:05")).toEqual({ hour: 7, minute: 5 });
    expect(validateWhen({ every: "weekly", at: "03:00", weekday: "Mon" as never })).toEqual({
      every: "weekly",
      at: "03:00",
      weekday: "monday",
    });
    expect(validateWhen({ every: "cron", cron: " 0  3 * * * " })).toEqual({
      every: "cron",
      cron: "0 3 * * *",
    });
  });
});

describe("slots in local time", () => {
  it("runs 02:30 once on the spring-forward night (at 03:30, the first instant after the gap)", () => {
    const when: When = { every: "daily", at: "02:30" };
    expect(iso(nextSlots(when, local(2026, 3, 28, 12), 3))).toEqual([
      "2026-03-29T01:30:00.000Z", // 03:30 CEST: 02:30 does not exist that night
      "2026-03-30T00:30:00.000Z",
      "2026-03-31T00:30:00.000Z",
    ]);
  });

  it("runs 02:30 once on the fall-back night, though 02:30 happens twice", () => {
    const when: When = { every: "daily", at: "02:30" };
    expect(iso(nextSlots(when, local(2026, 10, 24, 12), 3))).toEqual([
      "2026-10-25T00:30:00.000Z", // the first 02:30 (CEST)
      "2026-10-26T01:30:00.000Z",
      "2026-10-27T01:30:00.000Z",
    ]);
    // After the first 02:30, the repeated hour brings no second slot.
    expect(latestSlotAtOrBefore(when, new Date("2026-10-25T01:45:00Z"))?.toISOString()).toBe(
      "2026-10-25T00:30:00.000Z",
    );
  });

  it("runs day 31 on the last day of shorter months", () => {
    const when: When = { every: "monthly", at: "01:00", day: 31 };
    expect(nextSlots(when, local(2026, 1, 1), 5).map((d) => `${d.getMonth() + 1}-${d.getDate()}`)).toEqual([
      "1-31",
      "2-28",
      "3-31",
      "4-30",
      "5-31",
    ]);
    expect(nextSlots(when, local(2028, 2, 1), 1)[0]?.getDate()).toBe(29); // leap year
  });

  it("runs weekly on the weekday", () => {
    const when: When = { every: "weekly", at: "03:00", weekday: "sunday" };
    expect(nextSlots(when, local(2026, 11, 26), 2).map((d) => [d.getDay(), d.getDate()])).toEqual([
      [0, 29],
      [0, 6],
    ]);
  });

  it("finds the latest slot at or before now, for presets and cron", () => {
    expect(latestSlotAtOrBefore({ every: "daily", at: "02:00" }, local(2026, 11, 26, 1, 59))?.getDate()).toBe(
      25,
    );
    expect(latestSlotAtOrBefore({ every: "daily", at: "02:00" }, local(2026, 11, 26, 2, 0))?.getDate()).toBe(
      26,
    );
    expect(
      latestSlotAtOrBefore({ every: "cron", cron: "*/15 * * * *" }, local(2026, 11, 26, 10, 44)),
    ).toEqual(local(2026, 11, 26, 10, 30));
  });
});

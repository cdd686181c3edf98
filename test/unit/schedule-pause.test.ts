/**
 * "Pause all schedules": the duration syntax of `schedule pause --all --for`, and the pause as it is
 * persisted in a real settings file (validated on read and write, old files without it still load).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runCli } from "../../core/cli/main.js";
import { isPaused, parseDuration } from "../../core/domain/schedule/pause.js";
import { Schedules } from "../../core/app/schedules/schedules.js";
import type { VmModules } from "../../core/app/vm-modules.js";
import { openSettingsStore } from "../../core/infra/store/store.js";

const homes: string[] = [];
afterEach(() => homes.splice(0).forEach((h) => rmSync(h, { recursive: true, force: true })));
const freshHome = (): string => {
  const home = mkdtempSync(join(tmpdir(), "snapkeep-pause-"));
  homes.push(home);
  return home;
};

describe("parseDuration", () => {
  it("reads minutes, hours, days and combinations", () => {
    expect(parseDuration("30m")).toBe(30 * 60_000);
    expect(parseDuration("1h")).toBe(3_600_000);
    expect(parseDuration("2h30m")).toBe(9_000_000);
    expect(parseDuration(" 7d ")).toBe(7 * 86_400_000);
    expect(parseDuration("1H 15M")).toBe(75 * 60_000);
  });

  it("refuses what is not a duration, nothing, or more than a year, and says how to write one", () => {
    for (const bad of ["", "1", "h", "1x", "1h and 2m", "-1h", "0m", "367d", "1.5h"]) {
      expect(() => parseDuration(bad), bad).toThrow(/not a duration from 1 minute to 366 days/);
    }
    try {
      parseDuration("soon");
    } catch (error) {
      expect(error).toMatchObject({ code: "INVALID_INPUT", hint: "Write it like 30m, 1h, 2h30m or 7d." });
    }
  });
});

describe("pause all schedules", () => {
  // Pausing touches only the settings; nothing else is ever called.
  const noService = {} as VmModules;

  it("persists a timed pause that ends by itself, and an open one until resumed", () => {
    const home = freshHome();
    let now = new Date("2026-11-26T10:00:00Z");
    const schedules = new Schedules({ ...noService, store: openSettingsStore(home, now) }, () => now);
    const pause = schedules.pauseAll(3_600_000);
    expect(pause).toEqual({ since: "2026-11-26T10:00:00.000Z", until: "2026-11-26T11:00:00.000Z" });
    // Another process (the desktop app's scheduler) reads it back from the file.
    const other = new Schedules({ ...noService, store: openSettingsStore(home, now) }, () => now);
    expect(other.globalPause()).toEqual(pause);
    expect(other.activePause()).toEqual(pause);
    now = new Date("2026-11-26T11:00:00Z");
    expect(other.activePause()).toBeNull();
    expect(isPaused(other.globalPause(), now)).toBe(false);

    schedules.pauseAll(null);
    now = new Date("2027-11-26T11:00:00Z");
    expect(other.activePause()?.until).toBeNull();
    other.resumeAll();
    expect(schedules.globalPause()).toBeNull();
  });

  it("refuses a pause that would already be over", () => {
    const now = new Date("2026-11-26T10:00:00Z");
    const schedules = new Schedules({ ...noService, store: openSettingsStore(freshHome(), now) }, () => now);
    expect(() => schedules.pauseAll(0)).toThrow(/must end in the future/);
  });

  it("treats a hand-edited pause with a bad date as a bad settings file, not as paused", () => {
    const home = freshHome();
    writeFileSync(
      join(home, "settings.json"),
      JSON.stringify({ version: 1, hosts: [], annotations: {}, schedulePause: { since: "x", until: null } }),
    );
    const store = openSettingsStore(home, new Date("2026-11-26T10:00:00Z"));
    expect(store.recovered?.reason).toMatch(/schedulePause\.since: an ISO date and time/);
    expect(store.read().schedulePause).toBeNull();
  });
});

describe("snapkeep schedule pause|resume --all", () => {
  const cli = async (home: string, args: string[]) => {
    let out = "";
    let err = "";
    const code = await runCli(args, {
      out: (t) => void (out += t),
      err: (t) => void (err += t),
      env: { SNAPKEEP_HOME: home, PATH: "" },
    });
    return { code, out, err };
  };

  it("pauses every schedule for a while or until resumed, and lifts it", async () => {
    const home = freshHome();
    const timed = await cli(home, ["schedule", "pause", "--all", "--for", "90m"]);
    expect(timed).toMatchObject({ code: 0, err: "" });
    expect(timed.out).toMatch(
      /^All schedules are paused until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d; resume with: snapkeep schedule resume --all\n$/,
    );
    const pause = openSettingsStore(home, new Date()).read().schedulePause;
    expect(Date.parse(pause?.until ?? "") - Date.parse(pause?.since ?? "")).toBe(90 * 60_000);
    expect((await cli(home, ["schedule", "list"])).out).toMatch(/^All schedules are paused until /);

    expect((await cli(home, ["schedule", "pause", "--all"])).out).toBe(
      "All schedules are paused until you resume them; resume with: snapkeep schedule resume --all\n",
    );
    expect(openSettingsStore(home, new Date()).read().schedulePause?.until).toBeNull();
    expect(await cli(home, ["schedule", "resume", "--all"])).toMatchObject({ code: 0 });
    expect(openSettingsStore(home, new Date()).read().schedulePause).toBeNull();
  });

  it("says what to give when the schedule, --all or --for is wrong", async () => {
    const home = freshHome();
    expect(await cli(home, ["schedule", "pause"])).toMatchObject({
      code: 1,
      err: "snapkeep: Say which schedule: snapkeep schedule pause ID, or --all for every one.\n  See the IDs with: snapkeep schedule list\n",
    });
    expect((await cli(home, ["schedule", "resume", "abcd1234", "--all"])).err).toMatch(
      /Give a schedule ID or --all, not both/,
    );
    expect((await cli(home, ["schedule", "pause", "abcd1234", "--for", "1h"])).err).toMatch(
      /--for goes with --all/,
    );
    expect((await cli(home, ["schedule", "pause", "--all", "--for", "soon"])).err).toMatch(
      /"soon" is not a duration/,
    );
    expect(openSettingsStore(home, new Date()).read().schedulePause).toBeNull();
  });
});

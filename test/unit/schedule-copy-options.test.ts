import { describe, expect, it } from "vitest";
import { SnapkeepError } from "../../core/errors.js";
import { failureOf } from "../../core/app/schedules/copies.js";
import { snapshotWasMade } from "../../core/app/schedules/schedules.js";
import { describeCopy, parseCopy } from "../../core/cli/schedule-copy-options.js";
import type { Schedule } from "../../core/domain/settings.js";

const current: NonNullable<Schedule["copy"]> = {
  target: "nas",
  cadence: { every: "day" },
  retention: { keepLast: 7, weekly: 4 },
  holdLocalUntilCopied: true,
};

describe("schedule --copy-* options", () => {
  it("add: no --copy-* option is no copy; --copy-to with --copy-keep is a copy of every run", () => {
    expect(parseCopy({})).toBeUndefined();
    expect(parseCopy({ copyTo: "nas", copyKeep: "3" })).toEqual({
      target: "nas",
      retention: { keepLast: 3 },
      holdLocalUntilCopied: true,
    });
    expect(parseCopy({ copyTo: "nas", copyKeep: "3", copyEvery: "4", copyHold: false })).toEqual({
      target: "nas",
      retention: { keepLast: 3 },
      cadence: { every: "runs", n: 4 },
      holdLocalUntilCopied: false,
    });
    expect(parseCopy({ copyTo: "nas", copyDaily: "7", copyEvery: "week" })).toMatchObject({
      retention: { daily: 7 },
      cadence: { every: "week" },
    });
  });

  it("edit: changes only what it names, and --no-copy stops copying", () => {
    expect(parseCopy({}, current)).toEqual(current);
    expect(parseCopy({ copyKeep: "2" }, current)).toEqual({ ...current, retention: { keepLast: 2 } });
    expect(parseCopy({ copyTo: "usb" }, current)).toEqual({ ...current, target: "usb" });
    expect(parseCopy({ copy: false }, current)).toBeUndefined();
  });

  it("refuses what it cannot mean, with the option's name", () => {
    expect(() => parseCopy({ copyKeep: "3" })).toThrow(/--copy-to TARGET/);
    expect(() => parseCopy({ copyTo: "nas" })).toThrow(/--copy-keep N/);
    expect(() => parseCopy({ copyTo: "nas", copyKeep: "0" })).toThrow(/--copy-keep/);
    expect(() => parseCopy({ copyTo: "nas", copyKeep: "2", copyEvery: "hourly" })).toThrow(
      /--copy-every takes a number of runs, day or week/,
    );
    expect(() => parseCopy({ copy: false, copyKeep: "2" }, current)).toThrow(/--no-copy/);
  });

  it("describes a copy for the listing", () => {
    expect(describeCopy(current)).toBe("to nas, the first run of each day, keep 7, 4 weekly");
    expect(describeCopy(undefined)).toBe("-");
  });
});

describe("a run's copy, when it fails or is cut off", () => {
  it("names an unreachable target offline, a bad verification a verify failure, the rest a failed copy", () => {
    expect(failureOf(new SnapkeepError("HOST_UNREACHABLE", "nas did not answer.")).kind).toBe(
      "target-offline",
    );
    expect(failureOf(new SnapkeepError("VERIFY_FAILED", "vda.qcow2 differs.")).kind).toBe("verify-failed");
    expect(failureOf(new SnapkeepError("TARGET_FULL", "no room.")).kind).toBe("copy-failed");
    expect(failureOf(new Error("boom"))).toEqual({ kind: "copy-failed", detail: "boom" });
  });

  it("counts a job cut off during its copy as one whose snapshot was made", () => {
    expect(snapshotWasMade({ step: "copy" })).toBe(true);
    expect(snapshotWasMade({ step: "snapshot-made" })).toBe(true);
    expect(snapshotWasMade({ step: "snapshot" })).toBe(false);
    expect(snapshotWasMade({ step: null })).toBe(false);
  });
});

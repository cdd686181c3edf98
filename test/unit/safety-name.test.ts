import { afterEach, describe, expect, it } from "vitest";

import { localStamp, safetySnapshotName } from "../../core/app/revert.js";
import type { Snapshot } from "../../core/domain/types.js";

const zone = process.env["TZ"];
afterEach(() => {
  if (zone === undefined) {
    delete process.env["TZ"];
  } else {
    process.env["TZ"] = zone;
  }
});

describe("a safety snapshot's name", () => {
  const at = new Date("2026-12-06T22:51:05Z");

  it("says the time as the Taken column shows it here, with the zone's offset", () => {
    process.env["TZ"] = "Europe/Berlin";
    expect(localStamp(at)).toBe("2026-12-06 23:51:05 +01:00");
    process.env["TZ"] = "America/St_Johns";
    expect(localStamp(at)).toBe("2026-12-06 19:21:05 -03:30");
    process.env["TZ"] = "UTC";
    expect(localStamp(at)).toBe("2026-12-06 22:51:05 +00:00");
    // The Taken column formats the same instant in the same zone: same hour and minute.
    process.env["TZ"] = "Asia/Kolkata";
    const taken = new Date(at).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
    expect(localStamp(at)).toContain(taken);
  });

  it("keeps within the name limit with the stamp whole", () => {
    process.env["TZ"] = "UTC";
    const target = { name: "x".repeat(200), kind: "manual" } as Snapshot;
    const name = safetySnapshotName(target, at);
    expect(name.endsWith("(2026-12-06 22:51:05 +00:00)")).toBe(true);
    expect(safetySnapshotName({ name: "a", kind: "safety" } as Snapshot, at)).toBe(
      "before undo (2026-12-06 22:51:05 +00:00)",
    );
  });
});

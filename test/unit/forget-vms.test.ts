/** forgetVms (domain/forget-vms.ts): only the named VMs' notes, schedules, states and records go. */
import { describe, expect, it } from "vitest";

import { forgetVms } from "../../core/domain/forget-vms.js";
import { emptySettings, type Schedule } from "../../core/domain/settings.js";

describe("forgetVms", () => {
  it("drops the VMs' annotations, schedules with their state, and records; nothing of other VMs or hosts", () => {
    const schedule = (id: string, host: string, vmUuid: string) =>
      ({ id, host, vmUuid, vmName: vmUuid, enabled: true }) as unknown as Schedule;
    const settings = {
      ...emptySettings(),
      annotations: {
        "pve/u1/snapkeep:a": { pinned: true },
        "pve/u2/snapkeep:b": { pinned: true },
        "other/u1/snapkeep:c": { pinned: true },
      },
      schedules: [schedule("s1", "pve", "u1"), schedule("s2", "pve", "u2"), schedule("s3", "other", "u1")],
      scheduleState: { s1: { failures: 0 }, s2: { failures: 1 } },
      managedVms: [
        { host: "pve", uuid: "u1", name: "one" },
        { host: "pve", uuid: "u2", name: "two" },
      ],
    } as unknown as ReturnType<typeof emptySettings>;
    const after = forgetVms(settings, "pve", new Set(["u1"]));
    expect(Object.keys(after.annotations)).toEqual(["pve/u2/snapkeep:b", "other/u1/snapkeep:c"]);
    expect(after.schedules.map((s) => s.id)).toEqual(["s2", "s3"]);
    expect(Object.keys(after.scheduleState)).toEqual(["s2"]);
    expect(after.managedVms.map((m) => m.name)).toEqual(["two"]);
  });
});

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  decodeLvTag,
  encodeLvTag,
  lvsArgs,
  removeByUuidArgs,
  snapshotLvName,
  thickSnapshotArgs,
  thinSnapshotArgs,
} from "../../core/drivers/lvm/args.js";
import { isInvalidSnapshot, isMerging, lvRoleOf, parseLvs } from "../../core/drivers/lvm/parse.js";
import {
  cowBytes,
  findLv,
  lvDiskBlocker,
  lvImageState,
  lvSnapshotWarnings,
  mergeRefusal,
  planLvSnapshots,
} from "../../core/hypervisor/lvm.js";
import { groupSnapshots } from "../../core/domain/snapshots.js";
import { isSnapkeepError } from "../../core/errors.js";

// Captured in the LVM test guest (scripts/lvm-guest.sh, lvm2 2.03.16) with lvsArgs() after
// Snapkeep's own lvcreate argv: a thick snapshot with 2 MiB written to its origin, a 4 MiB thick
// snapshot overrun by 8 MiB (invalid), a thin snapshot (activation skipped), a foreign thin one.
const fixture = (name: string): string =>
  readFileSync(new URL(`../fixtures/lvm/${name}`, import.meta.url), "utf8");
const lvs = parseLvs(fixture("lvs-snapshots.json"));
const byName = (name: string) => {
  const lv = lvs.find((l) => l.name === name);
  if (lv === undefined) {
    throw new Error(name);
  }
  return lv;
};
const MiB = 1024 * 1024;

describe("lvs JSON (real lvm2 2.03.16 output)", () => {
  it("reads every LV with sizes in bytes, strings turned into numbers, unset values as null", () => {
    expect(lvs.map((l) => l.name)).toEqual([
      "foreign-snap",
      "mixed-data",
      "pool",
      "vm1-data",
      "vm1-data.sk.nightly.1a2b3c4d",
      "vm1-root",
      "vm1-root.sk.tiny.00000001",
      "vm2-root",
      "vm2-root.sk.before.5e6f7a8b",
    ]);
    const data = byName("vm1-data");
    expect(data).toMatchObject({ size: 32 * MiB, origin: null, path: "/dev/vgsk/vm1-data", active: true });
    expect(data.vgFree).toBe(1736441856);
    expect(data.vgExtentSize).toBe(4 * MiB);
    expect(byName("pool")).toMatchObject({ usedPercent: 0, metadataPercent: 10.94 });
  });

  it("tells thick and thin snapshots, their COW use, invalid ones and skipped activation apart", () => {
    const thick = byName("vm1-data.sk.nightly.1a2b3c4d");
    expect(lvRoleOf(thick.attr)).toBe("thick-snapshot");
    expect(thick.usedPercent).toBe(25.2);
    expect(isInvalidSnapshot(thick)).toBe(false);
    const tiny = byName("vm1-root.sk.tiny.00000001");
    expect(isInvalidSnapshot(tiny)).toBe(true);
    expect(tiny.usedPercent).toBe(100);
    const thin = byName("vm2-root.sk.before.5e6f7a8b");
    expect(lvRoleOf(thin.attr)).toBe("thin-volume");
    expect(thin).toMatchObject({
      active: false,
      skipActivation: true,
      usedPercent: null,
      origin: "vm2-root",
    });
  });

  it("decodes Snapkeep's tag and time from the LV tags; others are foreign", () => {
    const thick = byName("vm1-data.sk.nightly.1a2b3c4d");
    expect(thick.snapkeepTag).toBe("snapkeep:scheduled@s1:nightly 'quoted' $(x)");
    expect(thick.createdAt?.toISOString()).toBe("2026-11-26T10:00:00.123Z");
    expect(byName("vm2-root.sk.before.5e6f7a8b").snapkeepTag).toBe("snapkeep:manual:before upgrade ✓");
    const foreign = byName("foreign-snap");
    expect(foreign.snapkeepTag).toBeNull();
    expect(foreign.createdAt?.getTime()).toBe(1795708372 * 1000); // lv_time, epoch seconds
  });

  it("sees a merge LVM deferred: the origin turns 'O' and the snapshot hides", () => {
    const after = parseLvs(fixture("lvs-merge-deferred.json"));
    const root = after.find((l) => l.name === "vm1-root");
    expect(root !== undefined && isMerging(root)).toBe(true);
    expect(after.some((l) => l.name === "held")).toBe(false);
  });

  it("refuses output that is not an lvs report", () => {
    expect(() => parseLvs("  File descriptor 3 leaked")).toThrow(/did not print JSON/);
    expect(() => parseLvs('{"report":[{"lv":[{"lv_name":1}]}]}')).toThrow(/unexpected shape/);
  });
});

describe("LVM argv", () => {
  it("asks for JSON in bytes with epoch times, FD warnings off", () => {
    expect(lvsArgs(["vgsk"])).toEqual([
      "env",
      "LVM_SUPPRESS_FD_WARNINGS=1",
      "lvs",
      "--reportformat",
      "json",
      "--units",
      "b",
      "--nosuffix",
      "--config",
      'report{time_format="%s"}',
      "-o",
      expect.stringContaining("lv_uuid,lv_attr,lv_size,origin"),
      "vgsk",
    ]);
  });

  it("tags every snapshot with the owner mark, the encoded tag and the time; thin ones get no size", () => {
    const at = new Date("2026-11-26T10:00:00Z");
    const request = {
      vg: "vg0",
      origin: "db",
      name: "db.sk.x.12345678",
      tag: "snapkeep:manual:x",
      takenAt: at,
    };
    const thick = thickSnapshotArgs({ ...request, sizeBytes: 8 * MiB });
    expect(thick).toContain("--size");
    expect(thick.slice(-9)).toEqual([
      "--addtag",
      "snapkeep",
      "--addtag",
      encodeLvTag("snapkeep:manual:x"),
      "--addtag",
      `snapkeep.time.${at.getTime()}`,
      "--addtag",
      "snapkeep.of.db",
      "vg0/db",
    ]);
    expect(thinSnapshotArgs(request)).not.toContain("--size");
    expect(removeByUuidArgs("vg0", "abc-def")).toEqual([
      "env",
      "LVM_SUPPRESS_FD_WARNINGS=1",
      "lvremove",
      "--yes",
      "--quiet",
      "--select",
      "lv_uuid=abc-def",
      "vg0",
    ]);
  });

  it("encodes any name into LV-tag characters and back; a damaged tag is foreign", () => {
    for (const tag of [
      "snapkeep:manual:a b",
      "snapkeep:manual:$(rm -rf /);'\"",
      `snapkeep:manual:${"é".repeat(128)}`,
    ]) {
      const encoded = encodeLvTag(tag);
      expect(encoded).toMatch(/^[A-Za-z0-9_+.:/=!&#-]+$/);
      expect(encoded.length).toBeLessThan(1024);
      expect(decodeLvTag(["snapkeep", encoded])).toBe(tag);
    }
    expect(decodeLvTag([encodeLvTag("snapkeep:manual:x")])).toBeNull(); // no owner mark
    expect(decodeLvTag(["snapkeep", "snapkeep.tag.%%%"])).toBeNull();
  });

  it("names snapshot LVs readably, within LVM's characters, unique per origin and tag", () => {
    const name = snapshotLvName("vm1-data", "snapkeep:manual:before upgrade ✓");
    expect(name).toMatch(/^vm1-data\.sk\.before-upgrade\.[0-9a-f]{8}$/);
    expect(snapshotLvName("vm1-data", "snapkeep:manual:✓✓")).toMatch(/^vm1-data\.sk\.[0-9a-f]{8}$/);
    expect(snapshotLvName("vm1-data", "snapkeep:safety:before revert to x (2026-11-26 16:31:05)")).toMatch(
      /^vm1-data\.sk\.before-revert-to-x-2026\.[0-9a-f]{8}$/,
    );
    expect(snapshotLvName("vm1-data", "snapkeep:manual:a")).not.toBe(
      snapshotLvName("vm1-data", "snapkeep:manual:a "),
    );
    expect(snapshotLvName("x".repeat(100), `snapkeep:manual:${"y".repeat(100)}`).length).toBeLessThanOrEqual(
      70,
    );
  });
});

describe("LVM snapshot logic", () => {
  it("lists an origin's snapshot LVs as that disk's snapshots, foreign ones under their LV name", () => {
    const state = lvImageState(lvs, byName("vm2-root"));
    expect(state.virtualSize).toBe(128 * MiB);
    const grouped = groupSnapshots([{ target: "vda", snapshots: state.snapshots }]);
    expect(grouped.map((s) => [s.kind, s.name])).toEqual([
      ["manual", "before upgrade ✓"],
      ["foreign", "foreign-snap"],
    ]);
    expect(grouped[0]?.disks[0]?.lv).toMatchObject({
      thin: true,
      invalid: false,
      path: "/dev/vgsk/vm2-root.sk.before.5e6f7a8b",
    });
  });

  it("warns at 80% COW use and reports invalid snapshots", () => {
    const snapshots = groupSnapshots([
      { target: "vda", snapshots: lvImageState(lvs, byName("vm1-root")).snapshots },
      { target: "vdb", snapshots: lvImageState(lvs, byName("vm1-data")).snapshots },
    ]);
    const warnings = lvSnapshotWarnings(snapshots);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/"tiny" of vda is invalid/);
    const nearlyFull = snapshots.map((s) => ({
      ...s,
      disks: s.disks.map((d) =>
        d.lv === undefined ? d : { ...d, lv: { ...d.lv, invalid: false, usedPercent: 85 } },
      ),
    }));
    expect(lvSnapshotWarnings(nearlyFull).join("\n")).toMatch(/used 85% of its COW space/);
  });

  it("sizes thick snapshots at 20% of the origin in whole extents, at least 8 MiB", () => {
    expect(cowBytes(64 * MiB, 4 * MiB)).toBe(16 * MiB);
    expect(cowBytes(10 * MiB, 4 * MiB)).toBe(8 * MiB);
    expect(cowBytes(1000 * MiB, 4 * MiB)).toBe(200 * MiB);
    expect(cowBytes(64 * MiB, 4 * MiB, 30 * MiB)).toBe(32 * MiB);
  });

  it("refuses a snapshot that does not fit the volume group, with the numbers", () => {
    const data = byName("vm1-data");
    const tight = lvs.map((l) => ({ ...l, vgFree: 4 * MiB }));
    try {
      planLvSnapshots([{ target: "vdb", lv: data }], tight, "snapkeep:manual:x");
      expect.unreachable();
    } catch (error) {
      expect(isSnapkeepError(error, "NO_SPACE")).toBe(true);
      expect(String(error)).toMatch(/needs 8 MiB of COW space in volume group vgsk, which has 4 MiB free/);
    }
    const plans = planLvSnapshots([{ target: "vdb", lv: data }], lvs, "snapkeep:manual:x");
    expect(plans).toEqual([expect.objectContaining({ thin: false, sizeBytes: 8 * MiB, origin: "vm1-data" })]);
  });

  it("refuses a thin snapshot in a pool that is 90% full", () => {
    const full = lvs.map((l) => (l.name === "pool" ? { ...l, usedPercent: 93.5 } : l));
    expect(() =>
      planLvSnapshots([{ target: "vda", lv: byName("vm2-root") }], full, "snapkeep:manual:x"),
    ).toThrow(/Thin pool vgsk\/pool is 93\.5% full/);
  });

  it("says why a block disk cannot be snapshotted", () => {
    expect(findLv(lvs, "/dev/mapper/vgsk-vm1--data")?.name).toBe("vm1-data");
    expect(lvDiskBlocker("vdb", "/dev/sdb", undefined)).toMatch(/not an LVM logical volume/);
    expect(lvDiskBlocker("vdb", "/dev/vgsk/pool", byName("pool"))).toMatch(/thin-pool volume/);
    expect(lvDiskBlocker("vdb", "x", byName("vm1-data.sk.nightly.1a2b3c4d"))).toMatch(
      /itself an LVM snapshot/,
    );
    expect(lvDiskBlocker("vdb", "x", byName("vm1-data"))).toBeNull();
  });
});

describe("merge revert plan", () => {
  const vm1data = groupSnapshots([
    { target: "vdb", snapshots: lvImageState(lvs, byName("vm1-data")).snapshots },
  ]);
  const nightly = vm1data.find((x) => x.disks[0]?.lv?.name === "vm1-data.sk.nightly.1a2b3c4d");
  const vm2 = groupSnapshots([{ target: "vda", snapshots: lvImageState(lvs, byName("vm2-root")).snapshots }]);

  it("leaves a snapshot Snapkeep did not make to its owner: a merge would consume it", () => {
    const foreign = vm2.find((x) => x.kind === "foreign");
    expect(foreign).toBeDefined();
    const refusal = foreign === undefined ? null : mergeRefusal(foreign, ["vda"], lvs);
    expect(refusal?.code).toBe("INVALID_INPUT");
    expect(refusal?.message).toMatch(/did not make; reverting to it merges it into its volume/);
    expect(refusal?.hint).toBe(
      "If that is what you want, stop the VM and run: lvconvert --merge vgsk/foreign-snap",
    );
  });

  it("refuses when another thick snapshot of the volume could not absorb what the merge rewrites", () => {
    if (nightly === undefined) {
      throw new Error("fixture has no nightly snapshot");
    }
    // nightly: 8 MiB of COW, 25.2% used, so the merge rewrites about 2 MiB of vm1-data.
    const sibling = (usedPercent: number) => ({
      ...byName("vm1-data.sk.nightly.1a2b3c4d"),
      name: "vm1-data.sk.weekly.9",
      usedPercent,
    });
    const full = mergeRefusal(nightly, ["vdb"], [...lvs, sibling(95)]);
    expect(full?.code).toBe("NO_SPACE");
    expect(full?.message).toMatch(
      /vgsk\/vm1-data\.sk\.weekly\.9 has 410 KiB of COW space free, the merge rewrites 2 MiB of vm1-data/,
    );
    expect(mergeRefusal(nightly, ["vdb"], [...lvs, sibling(10)])).toBeNull();
    // An invalid sibling has nothing left to lose, and alone the snapshot merges freely.
    expect(mergeRefusal(nightly, ["vdb"], [...lvs, { ...sibling(100), attr: "swi-I-s---" }])).toBeNull();
    expect(mergeRefusal(nightly, ["vdb"], lvs)).toBeNull();
  });
});

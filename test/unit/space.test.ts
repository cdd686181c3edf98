/**
 * Space as the lists show it: a VM's total, its oldest restore point, and what each snapshot would
 * free, put together from what each disk's storage said: qcow2 numbers by image snapshot id, LVM
 * from real `lvs` output (thick: the COW LV; thin: unknown).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

import { parseLvs } from "../../core/drivers/lvm/parse.js";
import { groupSnapshots } from "../../core/domain/snapshots.js";
import {
  oldestRestorePoint,
  spaceUsed,
  THIN_UNKNOWN,
  vmSpace,
  withFreed,
  type DiskFreed,
} from "../../core/domain/space.js";
import type { Disk, Snapshot } from "../../core/domain/types.js";
import { lvImageState } from "../../core/hypervisor/lvm.js";

const MiB = 1024 * 1024;
const lvs = parseLvs(readFileSync(new URL("../fixtures/lvm/lvs-snapshots.json", import.meta.url), "utf8"));
const lv = (name: string) => {
  const found = lvs.find((l) => l.name === name);
  if (found === undefined) {
    throw new Error(name);
  }
  return found;
};

function disk(target: string, allocatedSize: number | null, device = "disk"): Disk {
  return {
    target,
    device,
    type: "file",
    source: `/img/${target}.qcow2`,
    format: "qcow2",
    role: target === "vda" ? "root" : "additional",
    readonly: false,
    virtualSize: 64 * MiB,
    allocatedSize,
    snapshotBlocker: null,
  };
}

const image = (id: string, name: string, at: string) => ({
  id,
  name,
  createdAt: new Date(at),
  vmStateSize: 0,
});

/** Two snapshots on vda and vdb, a third (incomplete) on vda only. */
const snapshots: Snapshot[] = groupSnapshots(
  [
    {
      target: "vda",
      snapshots: [
        image("1", "snapkeep:manual:a", "2026-12-01T10:00:00Z"),
        image("2", "snapkeep:manual:b", "2026-12-02T10:00:00Z"),
        image("3", "snapkeep:manual:c", "2026-11-30T10:00:00Z"),
      ],
    },
    {
      target: "vdb",
      snapshots: [
        image("7", "snapkeep:manual:a", "2026-12-01T10:00:01Z"),
        image("8", "snapkeep:manual:b", "2026-12-02T10:00:01Z"),
      ],
    },
  ],
  (tag) => ({ note: null, pinned: false, incomplete: tag.endsWith(":c") }),
);

describe("space", () => {
  it("sums the disks a VM takes, and says unknown rather than a partial sum", () => {
    expect(spaceUsed([disk("vda", 10 * MiB), disk("vdb", 5 * MiB), disk("sda", null, "cdrom")])).toBe(
      15 * MiB,
    );
    expect(spaceUsed([disk("vda", 10 * MiB), disk("vdb", null)])).toBeNull();
    expect(spaceUsed([])).toBe(0);
  });

  it("goes back to the oldest complete snapshot, never an incomplete or invalidated one", () => {
    expect(snapshots.map((s) => [s.name, s.incomplete])).toEqual([
      ["c", true],
      ["a", false],
      ["b", false],
    ]);
    expect(oldestRestorePoint(snapshots)).toBe("2026-12-01T10:00:00.000Z");
    const [, a, b] = snapshots as [Snapshot, Snapshot, Snapshot];
    const invalid: Snapshot = {
      ...a,
      disks: a.disks.map((d) => ({
        ...d,
        lv: {
          vg: "vg",
          name: "x",
          path: "/dev/vg/x",
          thin: false,
          usedPercent: 100,
          cowBytes: MiB,
          invalid: true,
        },
      })),
    };
    expect(oldestRestorePoint([invalid, b])).toBe(b.createdAt);
    expect(oldestRestorePoint([])).toBeNull();
  });

  it("adds up what each disk frees, and is null when one disk cannot say", () => {
    const freed = new Map<string, DiskFreed>([
      [
        "vda",
        {
          known: true,
          byImageSnapshotId: new Map([
            ["1", 3 * MiB],
            ["2", 1 * MiB],
            ["3", 0],
          ]),
        },
      ],
      ["vdb", { known: true, byImageSnapshotId: new Map([["7", 2 * MiB]]) }],
    ]);
    const measured = withFreed(snapshots, freed);
    expect(measured.map((s) => [s.name, s.freesBytes, s.disks.map((d) => d.freesBytes)])).toEqual([
      ["c", 0, [0]],
      ["a", 5 * MiB, [3 * MiB, 2 * MiB]],
      // vdb's id 8 was not in the image's table (gone meanwhile): unknown, so the sum is too.
      ["b", null, [1 * MiB, null]],
    ]);
    const refused = new Map<string, DiskFreed>([
      ...freed,
      ["vdb", { known: false, reason: "it is encrypted" }],
    ]);
    const space = vmSpace(
      { host: "h", name: "vm", uuid: "u", disks: [disk("vda", 9 * MiB), disk("vdb", 4 * MiB)] },
      snapshots,
      refused,
    );
    expect(space).toMatchObject({
      usedBytes: 13 * MiB,
      oldestRestorePoint: "2026-12-01T10:00:00.000Z",
      disks: [
        { target: "vda", virtualSize: 64 * MiB, allocatedSize: 9 * MiB, freesUnknownReason: null },
        { target: "vdb", freesUnknownReason: "it is encrypted" },
      ],
    });
    expect(space.snapshots.map((s) => [s.tag, s.freesBytes])).toEqual([
      ["snapkeep:manual:c", 0],
      ["snapkeep:manual:a", null],
      ["snapkeep:manual:b", null],
    ]);
  });

  it("frees a thick LVM snapshot's whole COW LV and counts it in the disk; thin ones are unknown", () => {
    const thick = lvImageState(lvs, lv("vm1-data"));
    // The 32 MiB origin and its 8 MiB COW snapshot, all reserved in the volume group.
    expect(thick.actualSize).toBe(40 * MiB);
    const thin = lvImageState(lvs, lv("vm2-root"));
    expect(thin.actualSize).toBe(0); // active, 0.00% mapped
    expect(lvImageState(lvs, { ...lv("vm2-root"), usedPercent: null }).actualSize).toBeNull();
    expect(lvImageState(lvs, { ...lv("vm2-root"), usedPercent: 25 }).actualSize).toBe(32 * MiB);
    const grouped = groupSnapshots([
      { target: "vda", snapshots: thin.snapshots },
      { target: "vdb", snapshots: thick.snapshots },
    ]);
    const measured = withFreed(grouped, new Map());
    expect(measured.map((s) => [s.name, s.disks.map((d) => [d.target, d.freesBytes])])).toEqual([
      ["before upgrade ✓", [["vda", null]]],
      ["nightly 'quoted' $(x)", [["vdb", 8 * MiB]]],
      ["foreign-snap", [["vda", null]]],
    ]);
    const space = vmSpace(
      { host: "h", name: "vm", uuid: "u", disks: [disk("vda", 0), disk("vdb", 40 * MiB)] },
      grouped,
      new Map(),
    );
    expect(space.disks.map((d) => d.freesUnknownReason)).toEqual([THIN_UNKNOWN, null]);
  });
});

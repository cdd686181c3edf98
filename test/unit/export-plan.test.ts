import { describe, expect, it } from "vitest";

import {
  bytesStillNeeded,
  chooseExportDisks,
  exportCompression,
  findResumable,
  newestVerified,
  planExportDisks,
  supersededPartials,
  writesIntoTarget,
} from "../../core/domain/plans/export-plan.js";
import type { Disk, LvSnapshot, Snapshot, VmWithSnapshots } from "../../core/domain/types.js";

const createdAt = "2026-11-26T12:00:00.000Z";

function disk(target: string, role: Disk["role"], source: string | null = `/img/${target}.qcow2`): Disk {
  return {
    target,
    device: "disk",
    type: "file",
    source,
    format: "qcow2",
    role,
    readonly: false,
    virtualSize: 1024,
    allocatedSize: 512,
    snapshotBlocker: null,
  };
}

function snapshot(disks: { target: string; lv?: LvSnapshot }[], extra: Partial<Snapshot> = {}): Snapshot {
  return {
    tag: "snapkeep:manual:nightly",
    name: "nightly",
    kind: "manual",
    origin: null,
    createdAt,
    disks: disks.map((d, i) => ({
      target: d.target,
      imageSnapshotId: String(i + 1),
      createdAt,
      vmStateSize: 0,
      lv: d.lv,
    })),
    note: null,
    pinned: false,
    consistency: null,
    incomplete: false,
    hasVmState: false,
    ...extra,
  };
}

const vm: VmWithSnapshots = {
  host: "local",
  name: "web01",
  uuid: "13f71cc3-b118-4340-a65b-6c39d1ff9a3e",
  state: "running",
  active: true,
  disks: [disk("vda", "root"), disk("vdb", "additional"), disk("vdc", "additional", null)],
  snapshots: [],
};

const lv = (invalid: boolean): LvSnapshot => ({
  vg: "vg",
  name: "snap",
  path: "/dev/vg/snap",
  thin: false,
  usedPercent: invalid ? 100 : 10,
  cowBytes: 8 << 20,
  invalid,
});

describe("the export plan", () => {
  it("exports the chosen disks in the snapshot's order, else all of them, and names a missing one", () => {
    const s = snapshot([{ target: "vda" }, { target: "vdb" }]);
    expect(chooseExportDisks(s, undefined)).toEqual(["vda", "vdb"]);
    expect(chooseExportDisks(s, [])).toEqual(["vda", "vdb"]);
    expect(chooseExportDisks(s, ["vdb", "vda"])).toEqual(["vda", "vdb"]);
    expect(() => chooseExportDisks(s, ["vdz"])).toThrow(/has no disk vdz/);
  });

  it("pairs each disk with its snapshot image, and refuses what is no good copy", () => {
    const plan = planExportDisks(vm, snapshot([{ target: "vda" }, { target: "vdb" }]), ["vdb"]);
    expect(plan).toEqual([
      expect.objectContaining({
        target: "vdb",
        source: "/img/vdb.qcow2",
        imageSnapshotId: "2",
        lv: undefined,
      }),
    ]);
    expect(() => planExportDisks(vm, snapshot([{ target: "vda" }], { incomplete: true }), undefined)).toThrow(
      /interrupted/,
    );
    expect(() => planExportDisks(vm, snapshot([{ target: "vdc" }]), undefined)).toThrow(
      /Disk vdc of web01 has no image/,
    );
    expect(() => planExportDisks(vm, snapshot([{ target: "vda", lv: lv(true) }]), undefined)).toThrow(
      /COW space ran out/,
    );
    expect(planExportDisks(vm, snapshot([{ target: "vda", lv: lv(false) }]), undefined)[0]?.lv).toEqual(
      lv(false),
    );
  });

  it("resumes only the unfinished export of the same snapshot, host, VM and disks", () => {
    const job = { snapshotTag: "t", host: "local", vmUuid: "u", disks: ["vda", "vdb"] };
    const wanted = { snapshotTag: "t", host: "local", vmUuid: "u", disks: ["vda", "vdb"] };
    const existing = [
      { id: "a", state: "verified", job: null },
      { id: "b", state: "partial", job: { ...job, disks: ["vda"] } },
      { id: "c", state: "partial", job: { ...job, host: "other" } },
      { id: "d", state: "corrupt", job },
      { id: "e", state: "partial", job },
      { id: "f", state: "verified", job: null },
      { id: "g", state: "partial", job: null },
    ];
    expect(findResumable(existing, wanted)?.id).toBe("e");
    expect(findResumable(existing, { ...wanted, snapshotTag: "other" })).toBeUndefined();
    expect(newestVerified(existing)?.id).toBe("f");
    expect(newestVerified([])).toBeUndefined();
  });

  it("finds the unfinished exports a later verified export of the same VM, snapshot and disks supersedes", () => {
    const at = (day: number): string => `2026-12-0${day}T02:00:00.000Z`;
    const entry = (
      id: string,
      state: string,
      day: number,
      more: {
        vmFolder?: string;
        vmUuid?: string;
        snapshotDay?: number;
        disks?: string[];
        ours?: boolean;
      } = {},
    ) => ({
      id,
      vmFolder: more.vmFolder ?? "web",
      vmUuid: more.vmUuid ?? "u-web",
      state,
      startedAt: at(day),
      snapshotAt: at(more.snapshotDay ?? day),
      disks: more.disks ?? ["vda", "vdb"],
      ours: more.ours ?? state === "partial",
    });
    const entries = [
      entry("v1", "verified", 1),
      entry("p2", "partial", 2),
      entry("v3", "verified", 3),
      entry("v4", "verified", 4),
      // Started after the newest verified one: it may be running, or resumed next.
      entry("p5", "partial", 5),
      // No job record: not Snapkeep's to judge.
      entry("p1", "partial", 1, { ours: false }),
      // Another VM's exports, in its folder and under another UUID in this one.
      entry("q2", "partial", 2, { vmFolder: "db", vmUuid: "u-db" }),
      entry("d5", "corrupt", 5, { vmFolder: "db", vmUuid: "u-db" }),
      entry("u5", "unverified", 5, { vmFolder: "db", vmUuid: "u-db" }),
      entry("x3", "partial", 3, { vmUuid: "u-other" }),
      entry("m5", "verified", 5, { vmFolder: "mail", vmUuid: "u-mail" }),
    ];
    expect(supersededPartials(entries).map((c) => [c.export.id, c.by.id])).toEqual([["p2", "v4"]]);
    // A later export of an older snapshot, or of fewer disks, supersedes nothing.
    const older = [
      entry("p2", "partial", 2, { snapshotDay: 2 }),
      entry("v3", "verified", 3, { snapshotDay: 1 }),
    ];
    expect(supersededPartials(older)).toEqual([]);
    const fewer = [entry("p2", "partial", 2), entry("v3", "verified", 3, { disks: ["vda"] })];
    expect(supersededPartials(fewer)).toEqual([]);
    expect(supersededPartials([])).toEqual([]);
  });

  it("compresses with zstd from QEMU 5.1 on, else (or when unknown) with zlib", () => {
    expect(exportCompression([7, 2])).toBe("zstd");
    expect(exportCompression([5, 1])).toBe("zstd");
    expect(exportCompression([5, 0])).toBe("zlib");
    expect(exportCompression([4, 9])).toBe("zlib");
    expect(exportCompression(undefined)).toBe("zlib");
  });

  it("needs room only for the part of each image the target does not hold yet", () => {
    expect(bytesStillNeeded([100, 200], [undefined, undefined])).toBe(300);
    expect(bytesStillNeeded([100, 200], [40, 250])).toBe(60);
    expect(bytesStillNeeded([], [])).toBe(0);
  });
});

describe("where an export's images are written", () => {
  const local = { streamed: false, sourceIsLocal: true, targetKind: "dir", bwlimitKiB: undefined } as const;

  it("converts this computer's VM straight into a folder here when nothing paces it", () => {
    expect(writesIntoTarget(local)).toBe(true);
  });

  it("stages a converted image for rsync when a bandwidth limit is asked, so the limit holds", () => {
    expect(writesIntoTarget({ ...local, bwlimitKiB: 4096 })).toBe(false);
  });

  it("stages for rsync whenever the image has to travel", () => {
    expect(writesIntoTarget({ ...local, sourceIsLocal: false })).toBe(false);
    expect(writesIntoTarget({ ...local, targetKind: "ssh" })).toBe(false);
  });

  it("always writes a streamed export itself: it paces itself to the limit", () => {
    expect(writesIntoTarget({ ...local, streamed: true, bwlimitKiB: 4096 })).toBe(true);
    expect(writesIntoTarget({ ...local, streamed: true, targetKind: "ssh", sourceIsLocal: false })).toBe(
      true,
    );
  });
});

import { describe, expect, it } from "vitest";

import { vmDeletePlan } from "../../core/app/library/delete-plan.js";
import { chooseArtifactSource } from "../../core/domain/plans/artifact-plan.js";
import type { Disk, Snapshot, VmWithSnapshots } from "../../core/domain/types.js";

const createdAt = "2026-11-26T12:00:00.000Z";

function disk(target: string, role: Disk["role"], source: string | null): Disk {
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

function snapshot(name: string, targets: string[]): Snapshot {
  return {
    tag: `snapkeep:manual:${name}`,
    name,
    kind: "manual",
    origin: null,
    createdAt,
    disks: targets.map((target, i) => ({
      target,
      imageSnapshotId: String(i + 1),
      createdAt,
      vmStateSize: 0,
    })),
    note: null,
    pinned: false,
    consistency: null,
    incomplete: false,
    hasVmState: false,
  };
}

const vm: VmWithSnapshots = {
  host: "local",
  name: "web01",
  uuid: "13f71cc3-b118-4340-a65b-6c39d1ff9a3e",
  state: "shut off",
  active: false,
  disks: [
    disk("vda", "root", "/img/web01-vda.qcow2"),
    disk("vdb", "additional", "/v/data.qcow2"),
    disk("vdc", "additional", "/img/other.qcow2"),
    disk("vdd", "additional", null),
  ],
  snapshots: [snapshot("both", ["vda", "vdb"]), snapshot("root only", ["vda"])],
};

describe("the source of a template or volume", () => {
  const both = snapshot("both", ["vda", "vdb"]);
  const request = { host: "local", name: "golden" };

  it("is the root disk for a template unless one is named, and the named disk for a volume", () => {
    expect(chooseArtifactSource("template", vm, both, request)).toMatchObject({
      target: "vda",
      disk: { source: "/img/web01-vda.qcow2" },
      image: { imageSnapshotId: "1" },
    });
    expect(chooseArtifactSource("volume", vm, both, { ...request, disk: "vdb" }).image.imageSnapshotId).toBe(
      "2",
    );
    expect(() => chooseArtifactSource("volume", vm, both, request)).toThrow(/Say which disk/);
  });

  it("refuses a disk the snapshot does not cover, and the wrong role with the command to use instead", () => {
    expect(() => chooseArtifactSource("volume", vm, both, { ...request, disk: "vdc" })).toThrow(
      /has no disk vdc/,
    );
    expect(() => chooseArtifactSource("template", vm, both, { ...request, disk: "vdb" })).toThrow(
      /only a root-disk snapshot can become an OS template/,
    );
    expect(() => chooseArtifactSource("volume", vm, both, { ...request, disk: "vda" })).toThrow(
      /not a volume/,
    );
  });
});

describe("the plan for deleting a VM Snapkeep made", () => {
  it("removes only the files Snapkeep made, says what survives, and takes the VM's schedules", () => {
    const plan = vmDeletePlan(
      vm,
      {
        host: "local",
        uuid: vm.uuid,
        name: vm.name,
        createdAt,
        from: "template:golden",
        files: ["/img/web01-vda.qcow2"],
      },
      {
        host: "local",
        templates: [{ name: "golden", image: "/t/golden.qcow2" }],
        volumes: [{ name: "data", image: "/v/data.qcow2" }],
        schedules: [
          { id: "aaaaaaaa", host: "local", vmUuid: vm.uuid },
          { id: "bbbbbbbb", host: "other", vmUuid: vm.uuid },
          { id: "cccccccc", host: "local", vmUuid: "another" },
        ],
        dryRun: true,
      },
    );
    expect(plan).toEqual({
      vm: "web01",
      uuid: vm.uuid,
      running: false,
      files: [{ path: "/img/web01-vda.qcow2", snapshots: ["both", "root only"] }],
      survives: [
        "volume data (detached)",
        "disk vdc (/img/other.qcow2): not made by Snapkeep, left as it is",
        "template golden",
        "every export of it on the targets",
      ],
      schedules: ["aaaaaaaa"],
      dryRun: true,
    });
  });

  it("does not name a template that is gone", () => {
    const plan = vmDeletePlan(
      vm,
      { host: "local", uuid: vm.uuid, name: vm.name, createdAt, from: "template:gone", files: [] },
      { host: "local", templates: [], volumes: [], schedules: [], dryRun: false },
    );
    expect(plan.survives).not.toContain("template gone");
    expect(plan.files).toEqual([]);
  });
});

import { describe, expect, it } from "vitest";

import type { ListedHost, ListedVm, TargetExports } from "../../core/api/contract.js";
import { needsAttention, overviewRows, rowMatches, vmMatches } from "../../renderer/src/overview.js";
import { ago } from "../../renderer/src/when.js";

function vm(name: string, extra: Partial<ListedVm> = {}): ListedVm {
  return {
    host: "h",
    name,
    uuid: `uuid-${name}`,
    state: "running",
    active: true,
    disks: [
      {
        target: "vda",
        device: "disk",
        type: "file",
        source: `/img/${name}.qcow2`,
        format: "qcow2",
        role: "root",
        readonly: false,
        virtualSize: 10 * 1024 ** 3,
        allocatedSize: 2 * 1024 ** 3,
        snapshotBlocker: null,
      },
      {
        target: "hdc",
        device: "cdrom",
        type: "file",
        source: "/iso/debian.iso",
        format: "raw",
        role: "additional",
        readonly: true,
        virtualSize: 700 * 1024 ** 2,
        allocatedSize: 700 * 1024 ** 2,
        snapshotBlocker: null,
      },
    ],
    snapshotCount: 3,
    lastSnapshotAt: "2026-12-06T10:00:00Z",
    rpo: { level: "ok", ageMs: 1, reason: null },
    offHost: { level: "ok", ageMs: 1, reason: null },
    offHostCopies: { newestAt: "2026-12-06T09:00:00Z", targets: ["nas"] },
    ...extra,
  } as ListedVm;
}

function host(name: string, vms: ListedVm[], error: string | null = null): ListedHost {
  return { host: name, vms, error, hint: null, action: null };
}

const exported = (
  uuid: string,
  state: "verified" | "corrupt" | "partial",
  at: string,
): TargetExports["exports"][number] =>
  ({
    id: at,
    vmFolder: "f",
    folder: "f/x",
    state,
    reason: null,
    manifest: null,
    vmName: "x",
    vmUuid: uuid,
    snapshotName: "s",
    createdAt: at,
  }) as TargetExports["exports"][number];

describe("the overview", () => {
  const hosts = [
    host("alpha", [
      vm("fine"),
      vm("late", { rpo: { level: "overdue", ageMs: 1, reason: "the schedule failed" } }),
      vm("bare", {
        snapshotCount: 0,
        lastSnapshotAt: null,
        offHostCopies: { newestAt: null, targets: [] },
        offHost: null,
      }),
      vm("local", {
        offHostCopies: { newestAt: null, targets: [] },
        offHost: { level: "on-host-only", ageMs: null, reason: "x" },
      }),
    ]),
    host("beta", [], "ssh: connection refused"),
  ];

  it("lists every VM, problems first (worst first), and the hosts that did not answer", () => {
    const { rows, offline } = overviewRows(hosts, null);
    expect(rows.map((r) => r.vm.name)).toEqual(["late", "bare", "local", "fine"]);
    expect(rows.map((r) => r.severity)).toEqual([3, 1, 1, 0]);
    expect(rows[0]?.problems[0]).toBe("Snapshots overdue: the schedule failed");
    expect(rows.find((r) => r.vm.name === "bare")?.problems).toEqual(["No snapshots: nothing to go back to"]);
    expect(rows.find((r) => r.vm.name === "local")?.problems).toEqual(["No copy off this host"]);
    expect(offline).toEqual([{ host: "beta", error: "ssh: connection refused" }]);
  });

  it("counts space of disks only (not a CD-ROM), and says 'unknown' until the targets are read", () => {
    const [row] = overviewRows([host("alpha", [vm("fine")])], null).rows;
    expect(row?.usedBytes).toBe(2 * 1024 ** 3);
    expect(row?.virtualBytes).toBe(10 * 1024 ** 3);
    expect(row?.verified).toBe("unknown");
    expect([row?.onHost, row?.offHost]).toEqual([true, true]);
  });

  it("judges 'verified' by the newest export of the VM on any target, and a damaged one is a problem", () => {
    const exports: TargetExports[] = [
      { target: "nas", error: null, exports: [exported("uuid-fine", "verified", "2026-12-01T00:00:00Z")] },
      { target: "usb", error: null, exports: [exported("uuid-fine", "corrupt", "2026-12-05T00:00:00Z")] },
    ];
    const rows = overviewRows([host("alpha", [vm("fine"), vm("other")])], exports).rows;
    const fine = rows.find((r) => r.vm.name === "fine");
    expect(fine?.verified).toBe("corrupt");
    expect(fine?.severity).toBe(3);
    expect(rows.find((r) => r.vm.name === "other")?.verified).toBe("none");
    const older: TargetExports[] = [
      { target: "nas", error: null, exports: [exported("uuid-fine", "corrupt", "2026-11-01T00:00:00Z")] },
      { target: "usb", error: null, exports: [exported("uuid-fine", "verified", "2026-12-05T00:00:00Z")] },
    ];
    expect(overviewRows([host("alpha", [vm("fine")])], older).rows[0]?.verified).toBe("yes");
  });
});

describe("what the overview counts", () => {
  it("says a VM's space is not known when a disk's size is not, never a smaller number", () => {
    const thin = vm("thin");
    const unknown = vm("thin", {
      disks: thin.disks.map((d) => (d.device === "disk" ? { ...d, allocatedSize: null } : d)),
    });
    expect(overviewRows([host("alpha", [unknown])], null).rows[0]?.usedBytes).toBeNull();
    expect(overviewRows([host("alpha", [{ ...unknown, spaceUsedBytes: 5 }])], null).rows[0]?.usedBytes).toBe(
      5,
    );
  });

  it("counts and filters 'needs attention' alike: due, nothing off the host, or a damaged newest export", () => {
    const exports: TargetExports[] = [
      { target: "nas", error: null, exports: [exported("uuid-broken", "corrupt", "2026-12-05T00:00:00Z")] },
    ];
    const rows = overviewRows(
      [
        host("alpha", [
          vm("fine"),
          vm("broken"),
          vm("local", {
            offHost: { level: "on-host-only", ageMs: null, reason: null },
            offHostCopies: undefined,
          }),
          vm("late", { rpo: { level: "overdue", ageMs: 1, reason: null } }),
        ]),
      ],
      exports,
    ).rows;
    const attention = rows.filter((r) => r.attention).map((r) => r.vm.name);
    expect(attention.sort()).toEqual(["broken", "late", "local"]);
    const shown = rows.filter((r) => rowMatches(r, { text: "", show: "attention" })).map((r) => r.vm.name);
    expect(shown.sort()).toEqual(attention.sort());
    expect(
      rows.filter((r) => rowMatches(r, { text: "bro", show: "attention" })).map((r) => r.vm.name),
    ).toEqual(["broken"]);
  });
});

describe("the VM search and filter", () => {
  it("matches every word against host/name, case-insensitively", () => {
    const v = vm("Web-01");
    expect(vmMatches("pve2", v, { text: "web", show: "all" })).toBe(true);
    expect(vmMatches("pve2", v, { text: "PVE2 01", show: "all" })).toBe(true);
    expect(vmMatches("pve2", v, { text: "db", show: "all" })).toBe(false);
    expect(vmMatches("pve2", v, { text: "   ", show: "all" })).toBe(true);
  });

  it("shows what needs attention, what runs, what does not", () => {
    const late = vm("late", { rpo: { level: "due", ageMs: 1, reason: null } });
    const off = vm("off", { state: "shut off", active: false });
    expect(needsAttention(late)).toBe(true);
    expect(needsAttention(vm("fine"))).toBe(false);
    expect(vmMatches("h", late, { text: "", show: "attention" })).toBe(true);
    expect(vmMatches("h", off, { text: "", show: "attention" })).toBe(false);
    expect(vmMatches("h", off, { text: "", show: "running" })).toBe(false);
    expect(vmMatches("h", off, { text: "", show: "shut off" })).toBe(true);
    expect(vmMatches("h", late, { text: "", show: "shut off" })).toBe(false);
  });
});

describe("ages", () => {
  const now = Date.parse("2026-12-06T12:00:00Z");
  it("read at a glance", () => {
    expect(ago("2026-12-06T11:59:30Z", now)).toBe("just now");
    expect(ago("2026-12-06T11:48:00Z", now)).toBe("12 min ago");
    expect(ago("2026-12-06T07:00:00Z", now)).toBe("5 h ago");
    expect(ago("2026-12-03T12:00:00Z", now)).toBe("3 days ago");
  });
});

import { describe, expect, it } from "vitest";
import { defaultSnapshotName, encodeSnapshotTag, parseSnapshotTag } from "../../core/domain/snapshot-tag.js";
import { groupSnapshots } from "../../core/domain/snapshots.js";
import type { Disk, Vm, VmWithSnapshots } from "../../core/domain/types.js";
import { chooseSnapshotDisks, resolveSnapshot } from "../../core/domain/selection.js";
import type { SnapkeepError } from "../../core/errors.js";
import { hintOf } from "../../core/domain/explain.js";

describe("snapshot tags", () => {
  it.each([
    ["manual", "nightly", undefined, "snapkeep:manual:nightly"],
    ["scheduled", "x:y", "sched-1", "snapkeep:scheduled@sched-1:x:y"],
    ["safety", 'before revert to "a"', undefined, 'snapkeep:safety:before revert to "a"'],
  ] as const)("round-trips %s %j", (kind, name, origin, tag) => {
    expect(encodeSnapshotTag(kind, name, origin)).toBe(tag);
    expect(parseSnapshotTag(tag)).toEqual({ kind, name, origin: origin ?? null });
  });

  it.each([
    ["snap1", "no prefix"],
    ["snapkeep:weird:x", "unknown kind"],
    ["snapkeep:manual", "no name separator"],
    ["snapkeep:scheduled@:x", "empty origin"],
    ["2", "a bare id"],
  ])("treats %j as foreign (%s)", (tag) => {
    expect(parseSnapshotTag(tag)).toEqual({ kind: "foreign", origin: null, name: tag });
  });

  it("refuses empty, control-character and overlong names", () => {
    expect(() => encodeSnapshotTag("manual", "")).toThrow(/empty/);
    expect(() => encodeSnapshotTag("manual", "a\nb")).toThrow(/control characters/);
    expect(() => encodeSnapshotTag("manual", "x".repeat(129))).toThrow(/too long/);
    expect(() => encodeSnapshotTag("scheduled", "x", "bad origin")).toThrow(/origin/);
  });

  it("makes a sortable default name from now", () => {
    expect(defaultSnapshotName("manual", new Date("2026-11-26T09:05:07Z"))).toBe("manual-2026-11-26-090507");
  });
});

describe("grouping per-image snapshots into VM snapshots", () => {
  const at = (s: string): Date => new Date(s);
  it("groups by tag across disks, oldest first, with annotations", () => {
    const grouped = groupSnapshots(
      [
        {
          target: "vda",
          snapshots: [
            { id: "1", name: "snapkeep:manual:b", createdAt: at("2026-01-02T00:00:01Z"), vmStateSize: 0 },
            { id: "2", name: "legacy", createdAt: at("2026-01-01T00:00:00Z"), vmStateSize: 4096 },
          ],
        },
        {
          target: "vdb",
          snapshots: [
            { id: "7", name: "snapkeep:manual:b", createdAt: at("2026-01-02T00:00:00Z"), vmStateSize: 0 },
          ],
        },
      ],
      (tag) => ({ note: tag === "legacy" ? null : "n", pinned: tag === "legacy" }),
    );
    expect(
      grouped.map((s) => [
        s.name,
        s.kind,
        s.createdAt,
        s.disks.map((d) => `${d.target}#${d.imageSnapshotId}`),
        s.pinned,
        s.note,
        s.hasVmState,
      ]),
    ).toEqual([
      ["legacy", "foreign", "2026-01-01T00:00:00.000Z", ["vda#2"], true, null, true],
      ["b", "manual", "2026-01-02T00:00:00.000Z", ["vda#1", "vdb#7"], false, "n", false],
    ]);
  });
});

const disk = (target: string, extra: Partial<Disk> = {}): Disk => ({
  target,
  device: "disk",
  type: "file",
  source: `/img/${target}.qcow2`,
  format: "qcow2",
  role: target === "vda" ? "root" : "additional",
  readonly: false,
  virtualSize: 1,
  allocatedSize: 1,
  snapshotBlocker: null,
  ...extra,
});
const vm = (disks: Disk[]): Vm => ({
  host: "h",
  name: "web",
  uuid: "u",
  state: "shut off",
  active: false,
  disks,
});

describe("choosing the disks of a snapshot", () => {
  it("takes every hard disk by default and skips CD-ROMs", () => {
    expect(
      chooseSnapshotDisks(
        vm([
          disk("vda"),
          disk("sda", { device: "cdrom", snapshotBlocker: "sda is a CD-ROM drive, not a disk" }),
          disk("vdb"),
        ]),
        undefined,
      ),
    ).toEqual(["vda", "vdb"]);
  });
  it("names the blocked disk and suggests the others", () => {
    const v = vm([disk("vda"), disk("vdb", { format: "raw", snapshotBlocker: "vdb is in raw format" })]);
    expect(() => chooseSnapshotDisks(v, undefined)).toThrow(/Cannot snapshot web: vdb is in raw format/);
    try {
      chooseSnapshotDisks(v, undefined);
    } catch (e) {
      expect(hintOf(e as SnapkeepError, "cli")).toBe("Choose the other disks with --disk vda");
    }
    expect(chooseSnapshotDisks(v, ["vda"])).toEqual(["vda"]);
  });
  it("refuses unknown targets and VMs without disks", () => {
    expect(() => chooseSnapshotDisks(vm([disk("vda")]), ["vdq"])).toThrow(/has no disk vdq/);
    expect(() => chooseSnapshotDisks(vm([]), undefined)).toThrow(/no disks/);
  });
});

describe("resolving a snapshot reference", () => {
  const snap = (tag: string, name: string) => ({
    tag,
    name,
    kind: "manual" as const,
    origin: null,
    createdAt: "",
    disks: [],
    note: null,
    pinned: false,
    consistency: null,
    incomplete: false,
    hasVmState: false,
  });
  const v: VmWithSnapshots = {
    ...vm([]),
    snapshots: [snap("snapkeep:manual:a", "a"), snap("a-foreign", "x"), snap("x", "x")],
  };
  it("matches the tag first, then a unique name", () => {
    expect(resolveSnapshot(v, "snapkeep:manual:a").name).toBe("a");
    expect(resolveSnapshot(v, "a").tag).toBe("snapkeep:manual:a");
    expect(resolveSnapshot(v, "x").tag).toBe("x");
  });
  it("refuses an unknown name", () => {
    expect(() => resolveSnapshot(v, "zzz")).toThrow(/no snapshot named "zzz"/);
  });
  it("takes latest for the newest complete snapshot, unless one is named latest", () => {
    const half = { ...snap("snapkeep:scheduled@s:half", "half"), incomplete: true };
    const listed = { ...v, snapshots: [snap("old", "old"), snap("new", "new"), half] };
    expect(resolveSnapshot(listed, "latest").tag).toBe("new");
    const named = { ...listed, snapshots: [snap("snapkeep:manual:latest", "latest"), ...listed.snapshots] };
    expect(resolveSnapshot(named, "latest").tag).toBe("snapkeep:manual:latest");
    expect(() => resolveSnapshot({ ...v, snapshots: [] }, "latest")).toThrow(/has no snapshot yet/);
  });
});

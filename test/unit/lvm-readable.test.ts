/**
 * The order of LVM commands around a snapshot's read (core/hypervisor/lvm.ts), with a scripted
 * `lvs` (pure logic: the real LVs are in test/lvm/): a thin snapshot is activated, its device
 * marked read-only before it is used, and deactivated after; users of one LV share one
 * activation; a thick snapshot (active as it is) is neither activated nor marked.
 */
import { describe, expect, it } from "vitest";

import { openLvSnapshotReadable, withLvSnapshotReadable } from "../../core/hypervisor/lvm.js";
import type { CommandRunner, RunOptions, RunResult } from "../../core/infra/runner/types.js";

function lvsJson(active: boolean, thin: boolean): string {
  const row = {
    lv_name: "vm2-root.snap",
    vg_name: "vgsk",
    lv_uuid: "U1",
    lv_attr: thin ? "Vwi---tz-k" : "swi-a-s---",
    lv_size: "1073741824",
    origin: "vm2-root",
    pool_lv: thin ? "pool" : "",
    snap_percent: thin ? "" : "1.00",
    data_percent: thin ? "10.00" : "",
    metadata_percent: "",
    lv_time: "1700000000",
    lv_path: "/dev/vgsk/vm2-root.snap",
    lv_dm_path: "/dev/mapper/vgsk-vm2--root.snap",
    lv_active: active ? "active" : "",
    lv_skip_activation: thin ? "skip activation" : "",
    lv_device_open: "",
    segtype: thin ? "thin" : "linear",
    lv_tags: "",
    vg_free: "0",
    vg_extent_size: "4194304",
    thin_id: thin ? "2" : "",
  };
  return JSON.stringify({ report: [{ lv: [row] }] });
}

class ScriptedLvm implements CommandRunner {
  readonly label = "scripted";
  readonly calls: string[] = [];
  constructor(private readonly lv: { active: boolean; thin: boolean }) {}
  run(argv: readonly string[], _options?: RunOptions): Promise<RunResult> {
    const words = argv.filter((a) => !a.includes("=") || a.startsWith("report"));
    const tool = words.find((w) => ["lvs", "lvchange", "blockdev"].includes(w)) ?? argv[0] ?? "";
    if (tool === "lvs") {
      return Promise.resolve({
        code: 0,
        signal: null,
        stdout: lvsJson(this.lv.active, this.lv.thin),
        stderr: "",
      });
    }
    this.calls.push(`${tool} ${argv.slice(argv.indexOf(tool) + 1).join(" ")}`);
    return Promise.resolve({ code: 0, signal: null, stdout: "", stderr: "" });
  }
  dispose(): Promise<void> {
    return Promise.resolve();
  }
}

describe("a snapshot LV made readable", () => {
  it("activates a thin snapshot, marks its device read-only before the read, deactivates after", async () => {
    const runner = new ScriptedLvm({ active: false, thin: true });
    await withLvSnapshotReadable(runner, "vda", "U1", async (path) => {
      runner.calls.push(`read ${path}`);
    });
    expect(runner.calls).toEqual([
      "lvchange --activate y --ignoreactivationskip vgsk/vm2-root.snap",
      "blockdev --setro /dev/vgsk/vm2-root.snap",
      "read /dev/vgsk/vm2-root.snap",
      "lvchange --activate n vgsk/vm2-root.snap",
    ]);
  });

  it("shares one activation between users of the same LV: the last one out deactivates", async () => {
    const runner = new ScriptedLvm({ active: false, thin: true });
    const first = await openLvSnapshotReadable(runner, "vda", "U1", { readOnly: true });
    const second = await openLvSnapshotReadable(runner, "vda", "U1", { readOnly: true });
    await first.release();
    await first.release();
    expect(runner.calls.filter((c) => c.includes("--activate n"))).toEqual([]);
    await second.release();
    expect(runner.calls.filter((c) => c.startsWith("lvchange"))).toEqual([
      "lvchange --activate y --ignoreactivationskip vgsk/vm2-root.snap",
      "lvchange --activate n vgsk/vm2-root.snap",
    ]);
  });

  it("leaves a thick snapshot as LVM keeps it: not activated, not marked, not deactivated", async () => {
    const runner = new ScriptedLvm({ active: true, thin: false });
    await withLvSnapshotReadable(runner, "vda", "U1", async () => undefined);
    expect(runner.calls).toEqual([]);
  });
});

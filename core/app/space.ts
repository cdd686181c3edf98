/**
 * Measures what deleting each snapshot of a VM would free (domain/space.ts has the table per
 * storage): qcow2 disks from their images' refcounts (qcow2-space.ts), LVM disks from what lvs
 * already said when the VM was inspected. A disk whose image cannot be measured says why and the
 * others are still measured: one odd image must not hide the space of the rest.
 */
import { mapLimit } from "../domain/concurrency.js";
import type { DiskFreed } from "../domain/space.js";
import type { Snapshot } from "../domain/types.js";
import { describeError } from "../errors.js";
import type { CommandRunner } from "../infra/runner/types.js";
import type { VmInspection } from "../hypervisor/libvirt.js";
import { qcow2SnapshotSpace } from "./qcow2-space.js";

/** Images read at once: a VM's disks in parallel, within the host's SSH session budget. */
const DISKS_AT_ONCE = 3;

export async function measureFreed(
  runner: CommandRunner,
  inspection: VmInspection,
  snapshots: readonly Snapshot[],
  signal?: AbortSignal,
): Promise<Map<string, DiskFreed>> {
  const measured = new Set(
    snapshots.flatMap((s) => s.disks.filter((d) => d.lv === undefined).map((d) => d.target)),
  );
  const disks = inspection.xml.disks.filter((d) => measured.has(d.target));
  const results = await mapLimit(disks, DISKS_AT_ONCE, async (disk): Promise<[string, DiskFreed]> => {
    if (disk.format !== "qcow2" || disk.source === null || disk.type !== "file") {
      return [disk.target, { known: false, reason: `${disk.target} is not a qcow2 file` }];
    }
    try {
      const space = await qcow2SnapshotSpace(runner, disk.source, signal);
      return [disk.target, { known: true, byImageSnapshotId: space.freedById }];
    } catch (error) {
      return [disk.target, { known: false, reason: describeError(error) }];
    }
  });
  return new Map(results);
}

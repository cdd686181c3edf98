/**
 * The VMs on each host, with their disks and their snapshots as Snapkeep sees them (the hypervisor's
 * snapshots joined with notes, pins and marks). Reads only: snapshots.ts and revert.ts change them.
 */
import { SnapkeepError, describeError, type HintAction } from "../errors.js";
import { settleLimit } from "../domain/concurrency.js";
import type { Settings } from "../domain/settings.js";
import { snapshotKey } from "../domain/settings.js";
import { groupSnapshots } from "../domain/snapshots.js";
import { vmSpace, withFreed, type VmSpace } from "../domain/space.js";
import type { VmWithSnapshots } from "../domain/types.js";
import type { VmInspection } from "../hypervisor/libvirt.js";
import type { Annotations } from "./annotations.js";
import type { Hosts } from "./hosts.js";
import { measureFreed } from "./space.js";

/** Hosts listed at once: enough to hide SSH latency, few enough not to flood a slow link. */
const HOSTS_AT_ONCE = 4;

export interface HostVms {
  readonly host: string;
  readonly vms: readonly VmWithSnapshots[];
  /** Set when this host could not be listed; the other hosts are still listed. */
  readonly error: string | null;
  /** What to do about the error, when Snapkeep knows (install virsh, ...). */
  readonly hint: string | null;
  /** What to do about it, when each front end words it (trust the key): see domain/hints.ts. */
  readonly action: HintAction | null;
}

export class Vms {
  constructor(
    private readonly hosts: Hosts,
    private readonly annotations: Annotations,
  ) {}

  /** VMs with their disks and snapshots on each host; an offline host does not hide the others. */
  async list(hostName?: string): Promise<HostVms[]> {
    const hosts = hostName === undefined ? this.hosts.list() : [this.hosts.get(hostName)];
    const results = await settleLimit(hosts, HOSTS_AT_ONCE, async (host) => {
      const inspections = await this.hosts.libvirt(host.name).listVms();
      const annotations = this.annotations.all(); // one read for the whole host
      return inspections.map((i) => this.withSnapshots(i, annotations));
    });
    return hosts.map((host, index) => {
      const result = results[index];
      if (result?.status === "fulfilled") {
        return { host: host.name, vms: result.value, error: null, hint: null, action: null };
      }
      const reason: unknown = result?.reason;
      return {
        host: host.name,
        vms: [],
        error: describeError(reason),
        hint: reason instanceof SnapkeepError ? (reason.hint ?? null) : null,
        action: reason instanceof SnapkeepError ? (reason.action ?? null) : null,
      };
    });
  }

  /** A VM by name or UUID, with its snapshots. */
  async get(hostName: string, vmRef: string): Promise<VmWithSnapshots> {
    return this.withSnapshots(await this.find(hostName, vmRef));
  }

  /**
   * A VM with what deleting each snapshot would free (on the snapshots and their disks), and its
   * space as vms.space answers it. Reads every qcow2 image's metadata (bench/space.ts: about a
   * second for 1,000 snapshots), which is why vms.get does not do it.
   */
  async space(
    hostName: string,
    vmRef: string,
    signal?: AbortSignal,
  ): Promise<{ vm: VmWithSnapshots; space: VmSpace }> {
    const inspection = await this.find(hostName, vmRef);
    const vm = this.withSnapshots(inspection);
    const runner = this.hosts.libvirt(hostName).runner;
    const freed = await measureFreed(runner, inspection, vm.snapshots, signal);
    return {
      vm: { ...vm, snapshots: withFreed(vm.snapshots, freed) },
      space: vmSpace(vm, vm.snapshots, freed),
    };
  }

  /** What libvirt and the disks say of a VM, for the modules that change it. */
  find(hostName: string, vmRef: string): Promise<VmInspection> {
    return this.hosts.libvirt(hostName).findVm(vmRef);
  }

  /** An inspection joined with Snapkeep's records, in the definition's disk order ("vda, vdb"). */
  withSnapshots(
    inspection: VmInspection,
    annotations: Settings["annotations"] = this.annotations.all(),
  ): VmWithSnapshots {
    const snapshots = groupSnapshots(
      inspection.vm.disks.flatMap((disk) => {
        const image = inspection.images.get(disk.target);
        return image === undefined ? [] : [{ target: disk.target, snapshots: image.snapshots }];
      }),
      (tag) =>
        annotations[snapshotKey(inspection.vm.host, inspection.vm.uuid, tag)] ?? {
          note: null,
          pinned: false,
        },
    );
    return { ...inspection.vm, snapshots };
  }
}

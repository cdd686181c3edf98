import { setTimeout as sleep } from "node:timers/promises";
import type { SshEnvironment } from "../infra/runner/factory.js";
import type { SettingsStore } from "../infra/store/store.js";
import { Annotations } from "./annotations.js";
import { Hosts } from "./hosts.js";
import { Revert } from "./revert.js";
import { Snapshots } from "./snapshots.js";
import { Vms } from "./vms.js";

/**
 * The use cases on one settings file, wired. Each module is the only writer of its slice of the
 * settings (hosts, targets, annotations, safetyKeep, schedules, managed VMs); they call one another
 * only downwards: hosts and annotations first, then VMs, snapshots, revert, and the orchestrations
 * (schedules, exports, restore) on top.
 */
export interface VmModules {
  readonly store: SettingsStore;
  readonly hosts: Hosts;
  readonly annotations: Annotations;
  readonly vms: Vms;
  readonly snapshots: Snapshots;
  readonly revert: Revert;
}

export interface VmModulesOptions {
  readonly store: SettingsStore;
  readonly ssh: SshEnvironment;
  readonly now: () => Date;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Overrides how host runners are made (benchmarks count calls, tests inject faults). */
  readonly hostRunner?: ConstructorParameters<typeof Hosts>[0]["runnerFor"];
}

/** The modules that find VMs and take, revert and delete their snapshots, on one store. */
export function openVmModules(options: VmModulesOptions): VmModules {
  const { store, now } = options;
  const hosts = new Hosts({ store, ssh: options.ssh, runnerFor: options.hostRunner });
  const annotations = new Annotations(store);
  const vms = new Vms(hosts, annotations);
  const snapshots = new Snapshots({ hosts, vms, annotations, now });
  const revert = new Revert({
    store,
    hosts,
    vms,
    snapshots,
    annotations,
    now,
    sleep: options.sleep ?? ((ms) => sleep(ms).then(() => undefined)),
  });
  return { store, hosts, annotations, vms, snapshots, revert };
}

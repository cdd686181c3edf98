import { setTimeout as sleep } from "node:timers/promises";
import { Exports } from "./exports/exports.js";
import { onPath } from "../infra/path.js";
import { openSealKey } from "../infra/seal-key.js";
import type { SshEnvironment } from "../infra/runner/factory.js";
import { Restore } from "./library/artifacts.js";
import { Schedules } from "./schedules/schedules.js";
import { SnapkeepService } from "./service.js";
import { openSettingsStore, type SettingsStore } from "../infra/store/store.js";

/** What every front end (CLI, daemon, `snapkeep serve`, the desktop app) works with. */
export interface CoreContext {
  readonly home: string;
  readonly store: SettingsStore;
  readonly service: SnapkeepService;
  readonly schedules: Schedules;
  readonly exports: Exports;
  readonly restore: Restore;
  /** Closes SSH connections and export runners; the front end calls it once, when it ends. */
  dispose(): Promise<void>;
}

export interface CoreContextOptions {
  readonly home: string;
  readonly ssh: SshEnvironment;
  /** PATH, to tell whether libvirt's client is installed on this computer. */
  readonly path: string | undefined;
  readonly now: () => Date;
}

/**
 * Opens the settings of `home` and builds the service and its helpers on them. On the very first
 * start, "This computer" is added when libvirt's client is installed. The caller reports
 * `store.recovered` (a settings file that could not be read and was moved aside) its own way.
 */
export function openCoreContext(options: CoreContextOptions): CoreContext {
  const { home, ssh, now } = options;
  const store = openSettingsStore(home, now());
  if (store.createdNow && onPath("virsh", options.path)) {
    store.update((s) => ({
      ...s,
      hosts: [{ name: "local", kind: "local", uri: "qemu:///system" }, ...s.hosts],
    }));
  }
  const service = new SnapkeepService({
    store,
    now,
    sleep: (ms) => sleep(ms).then(() => undefined),
    ssh,
  });
  const exports = new Exports({ service, store, ssh, now, sealKey: () => openSealKey(home) });
  return {
    home,
    store,
    service,
    schedules: new Schedules(service, store, now),
    exports,
    restore: new Restore(service, store, now),
    async dispose() {
      await exports.dispose();
      await service.dispose();
    },
  };
}

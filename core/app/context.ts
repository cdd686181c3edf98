import { onPath } from "../infra/path.js";
import { openSealKey } from "../infra/seal-key.js";
import type { SshEnvironment } from "../infra/runner/factory.js";
import { openSettingsStore } from "../infra/store/store.js";
import { Drills } from "./drill.js";
import { Exports } from "./exports/exports.js";
import { Files } from "./files.js";
import { Library } from "./library/library.js";
import { ScheduleCopies } from "./schedules/copies.js";
import { Schedules } from "./schedules/schedules.js";
import { Targets } from "./targets.js";
import { openVmModules, type VmModules } from "./vm-modules.js";

/** What every front end (CLI, daemon, `snapkeep serve`, the desktop app) works with. */
export interface CoreContext extends VmModules {
  readonly home: string;
  readonly targets: Targets;
  readonly schedules: Schedules;
  readonly exports: Exports;
  readonly library: Library;
  /** Files in snapshots: list and fetch, read-only (issue 19). */
  readonly files: Files;
  /** Restore drills: a snapshot or export booted in a throwaway VM on an isolated network. */
  readonly drills: Drills;
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
 * Opens the settings of `home` and builds the use cases on them. On the very first start, "This
 * computer" is added when libvirt's client is installed. The caller reports `store.recovered` (a
 * settings file that could not be read and was moved aside) its own way.
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
  const modules = openVmModules({ store, ssh, now });
  const targets = new Targets({ store, ssh });
  const exports = new Exports({ ...modules, targets, now, sealKey: () => openSealKey(home) });
  const files = new Files({ ...modules, now, targets, exports });
  const drills = new Drills({ ...modules, targets, exports, now, home });
  return {
    ...modules,
    home,
    targets,
    schedules: new Schedules(modules, now, new ScheduleCopies({ store, exports, targets, now, drills })),
    exports,
    library: new Library(modules, now),
    files,
    drills,
    async dispose() {
      await files.dispose();
      await targets.dispose();
      await modules.hosts.dispose();
    },
  };
}

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openVmModules, type VmModules } from "../../core/app/vm-modules.js";
import { openSettingsStore, type SettingsStore } from "../../core/infra/store/store.js";
import { createRunner, type SshEnvironment } from "../../core/infra/runner/factory.js";
import type { HostConfig } from "../../core/domain/types.js";
import type { CommandRunner } from "../../core/infra/runner/types.js";

/**
 * The modules that find VMs and take, revert and delete snapshots, on a fresh SNAPKEEP_HOME with
 * real runners; `dispose` closes connections and removes the state directory.
 */
export function makeApp(
  ssh: Partial<SshEnvironment> = {},
  options: { wrapRunner?: (runner: CommandRunner) => CommandRunner } = {},
): {
  app: VmModules;
  store: SettingsStore;
  ssh: SshEnvironment;
  home: string;
  dispose(): Promise<void>;
} {
  const home = mkdtempSync(join(tmpdir(), "snapkeep-home-"));
  const sshEnv: SshEnvironment = {
    homeDir: home,
    defaultUser: "root",
    agentSocket: undefined,
    passphrase: undefined,
    ...ssh,
  };
  const store = openSettingsStore(home, new Date());
  const wrap = options.wrapRunner;
  const app = openVmModules({
    store,
    now: () => new Date(),
    ssh: sshEnv,
    ...(wrap === undefined ? {} : { hostRunner: (host: HostConfig) => wrap(createRunner(host, sshEnv)) }),
  });
  return {
    app,
    store,
    ssh: sshEnv,
    home,
    async dispose() {
      await app.hosts.dispose();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { SnapkeepService } from "../../core/app/service.js";
import { openSettingsStore, type SettingsStore } from "../../core/infra/store/store.js";
import { createRunner, type SshEnvironment } from "../../core/infra/runner/factory.js";
import type { HostConfig } from "../../core/domain/types.js";
import type { CommandRunner } from "../../core/infra/runner/types.js";

/** A service on a fresh SNAPKEEP_HOME, with real runners; `dispose` removes the state directory. */
export function makeService(
  ssh: Partial<SshEnvironment> = {},
  options: { wrapRunner?: (runner: CommandRunner) => CommandRunner } = {},
): {
  service: SnapkeepService;
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
  const service = new SnapkeepService({
    store,
    now: () => new Date(),
    sleep: (ms) => sleep(ms).then(() => undefined),
    ssh: sshEnv,
    ...(options.wrapRunner === undefined
      ? {}
      : {
          runnerFor: (host: HostConfig) =>
            (options.wrapRunner as (r: CommandRunner) => CommandRunner)(createRunner(host, sshEnv)),
        }),
  });
  return {
    service,
    store,
    ssh: sshEnv,
    home,
    async dispose() {
      await service.dispose();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

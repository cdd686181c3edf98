import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { SnapkeepService } from "../../core/service.js";
import { openSettingsStore } from "../../core/store/store.js";
import type { SshEnvironment } from "../../core/hosts.js";

/** A service on a fresh SNAPKEEP_HOME, with real runners; `dispose` removes the state directory. */
export function makeService(ssh: Partial<SshEnvironment> = {}): {
  service: SnapkeepService;
  home: string;
  dispose(): Promise<void>;
} {
  const home = mkdtempSync(join(tmpdir(), "snapkeep-home-"));
  const service = new SnapkeepService({
    store: openSettingsStore(home, new Date()),
    now: () => new Date(),
    sleep: (ms) => sleep(ms).then(() => undefined),
    ssh: { homeDir: home, defaultUser: "root", agentSocket: undefined, passphrase: undefined, ...ssh },
  });
  return {
    service,
    home,
    async dispose() {
      await service.dispose();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

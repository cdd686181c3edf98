import { readFileSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { join } from "node:path";
import { SnapkeepError, describeError } from "./errors.js";
import type { HostConfig, SshHostConfig } from "./domain/types.js";
import { LocalRunner } from "./runner/local.js";
import type { SshRunner, SshRunnerOptions } from "./runner/ssh.js";
import type { CommandRunner, RunOptions, RunResult } from "./runner/types.js";
import { targetLabel } from "./ssh/failures.js";
import { resolveSshTarget } from "./ssh/config.js";

/** Secrets and environment the SSH runner may use; passed in so tests and the desktop can differ. */
export interface SshEnvironment {
  readonly homeDir: string;
  readonly defaultUser: string;
  /** The ssh-agent socket, from SSH_AUTH_SOCK. */
  readonly agentSocket: string | undefined;
  /** A key passphrase, from SNAPKEEP_KEY_PASSPHRASE or a prompt; never stored by the CLI. */
  readonly passphrase: string | undefined;
}

export function sshEnvironmentFromProcess(env: NodeJS.ProcessEnv = process.env): SshEnvironment {
  return {
    homeDir: homedir(),
    defaultUser: userInfo().username,
    agentSocket: env["SSH_AUTH_SOCK"] || undefined,
    passphrase: env["SNAPKEEP_KEY_PASSPHRASE"] || undefined,
  };
}

/** Builds the runner for a host: spawn for this computer, one pooled ssh2 connection for SSH hosts. */
export function createRunner(
  host: HostConfig,
  env: SshEnvironment,
  pinned = host.kind === "ssh" ? host.hostKey : undefined,
): CommandRunner {
  if (host.kind === "local") {
    return new LocalRunner();
  }
  return createSshRunner(host, env, pinned);
}

export function createSshRunner(
  host: SshHostConfig,
  env: SshEnvironment,
  pinned: string | undefined,
): DeferredSshRunner {
  const target = resolveSshTarget(
    {
      ...(host.alias === undefined ? {} : { alias: host.alias }),
      ...(host.host === undefined ? {} : { host: host.host }),
      ...(host.user === undefined ? {} : { user: host.user }),
      ...(host.port === undefined ? {} : { port: host.port }),
      ...(host.identityFile === undefined ? {} : { identityFile: host.identityFile }),
    },
    { configText: readSshConfig(env.homeDir), homeDir: env.homeDir, defaultUser: env.defaultUser },
  );
  const privateKey = loadFirstKey(target.identityFiles, host.identityFile !== undefined, env.homeDir);
  return new DeferredSshRunner({
    host: target.host,
    port: target.port,
    username: target.user,
    hostName: host.name,
    ...(privateKey === undefined ? {} : { privateKey }),
    ...(env.passphrase === undefined ? {} : { passphrase: env.passphrase }),
    ...(env.agentSocket === undefined ? {} : { agent: env.agentSocket }),
    ...(pinned === undefined ? {} : { pinnedFingerprint: pinned }),
  });
}

function readSshConfig(homeDir: string): string | undefined {
  try {
    return readFileSync(join(homeDir, ".ssh", "config"), "utf8");
  } catch {
    return undefined;
  }
}

/**
 * The key to offer: an explicitly configured file must exist (a typo should not silently fall back
 * to the agent); keys found through ~/.ssh/config or the defaults are used when readable.
 */
function loadFirstKey(files: readonly string[], explicit: boolean, homeDir: string): Buffer | undefined {
  const candidates =
    files.length > 0 ? files : ["id_ed25519", "id_ecdsa", "id_rsa"].map((f) => join(homeDir, ".ssh", f));
  for (const file of candidates) {
    try {
      return readFileSync(file);
    } catch (error) {
      if (explicit) {
        throw new SnapkeepError(
          "INVALID_INPUT",
          `Cannot read the identity file ${file}: ${describeError(error)}`,
        );
      }
    }
  }
  return undefined;
}

/**
 * An SSH runner whose ssh2 code is loaded on first use. Loading ssh2 costs about a tenth of a
 * second, which every CLI call that only touches this computer would otherwise pay.
 */
export class DeferredSshRunner implements CommandRunner {
  readonly label: string;
  readonly #options: SshRunnerOptions;
  #runner: Promise<SshRunner> | undefined;

  constructor(options: SshRunnerOptions) {
    this.#options = options;
    this.label = targetLabel(options.username, options.host, options.port);
  }

  async run(argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    return (await this.#load()).run(argv, options);
  }

  async probeHostKey(): Promise<string> {
    return (await this.#load()).probeHostKey();
  }

  async dispose(): Promise<void> {
    await (await this.#runner)?.dispose();
  }

  #load(): Promise<SshRunner> {
    this.#runner ??= import("./runner/ssh.js").then(({ SshRunner }) => new SshRunner(this.#options));
    return this.#runner;
  }
}

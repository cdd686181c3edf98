import { readFileSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { join } from "node:path";
import { SnapkeepError } from "../../errors.js";
import { systemCause } from "../../domain/explain.js";
import type { HostConfig, SshHostConfig } from "../../domain/types.js";
import { LocalRunner } from "./local.js";
import type { SshRunner, SshRunnerOptions } from "./ssh.js";
import type { CommandRunner, RunOptions, RunResult } from "./types.js";
import { resolveSshTarget } from "../ssh/config.js";
import { targetLabel } from "../ssh/failures.js";
import { isEncryptedPrivateKey } from "../ssh/keys.js";

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
  noun: "host" | "target" = "host",
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
  const key = chooseKey(target.identityFiles, host.identityFile !== undefined, env);
  return new DeferredSshRunner({
    host: target.host,
    port: target.port,
    username: target.user,
    hostName: host.name,
    noun,
    ...(key === undefined ? {} : { privateKey: key.data, privateKeyPath: key.path }),
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

interface KeyFile {
  readonly path: string;
  readonly data: Buffer;
}

/**
 * The key to offer. An explicitly configured file must be readable (a typo should not silently
 * fall back to the agent), and it is offered even when it is encrypted and no passphrase is set:
 * the person chose it, so ssh2's BAD_PASSPHRASE is the right answer, not a login through the agent
 * with some other key.
 *
 * Keys found through ~/.ssh/config or the defaults are offered when readable and usable. An
 * encrypted one without a passphrase is passed over, because ssh2 refuses to connect at all with
 * it, which would keep the agent (where such keys usually live) from being tried. Only when there is
 * no agent either is it offered anyway, so the failure names the key and the passphrase variable
 * instead of saying there was no key at all.
 */
function chooseKey(files: readonly string[], explicit: boolean, env: SshEnvironment): KeyFile | undefined {
  const candidates =
    files.length > 0 ? files : ["id_ed25519", "id_ecdsa", "id_rsa"].map((f) => join(env.homeDir, ".ssh", f));
  let encrypted: KeyFile | undefined;
  for (const path of candidates) {
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (error) {
      if (explicit) {
        throw new SnapkeepError(
          "INVALID_INPUT",
          `Cannot read the identity file ${path}: ${systemCause(error)}.`,
          { hint: "Check the path, or leave the identity file out to use ~/.ssh and the ssh-agent." },
        );
      }
      continue;
    }
    if (explicit || env.passphrase !== undefined || !isEncryptedPrivateKey(data.toString("latin1"))) {
      return { path, data };
    }
    encrypted ??= { path, data };
  }
  return env.agentSocket === undefined ? encrypted : undefined;
}

/**
 * An SSH runner whose ssh2 code is loaded on first use. Loading ssh2 costs about a tenth of a
 * second, which every CLI call that only touches this computer would otherwise pay.
 */
export class DeferredSshRunner implements CommandRunner {
  readonly label: string;
  readonly #options: SshRunnerOptions;
  #runner: Promise<SshRunner> | undefined;
  #disposed = false;

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
    this.#disposed = true;
    await (await this.#runner)?.dispose();
  }

  #load(): Promise<SshRunner> {
    // Disposed before first use: a runner created now would never be disposed.
    if (this.#disposed && this.#runner === undefined) {
      return Promise.reject(new SnapkeepError("CANCELLED", `The connection to ${this.label} is closed.`));
    }
    this.#runner ??= import("./ssh.js").then(({ SshRunner }) => new SshRunner(this.#options));
    return this.#runner;
  }
}

/**
 * The command runner for SSH hosts: one pooled ssh2 connection per host, at most a few exec
 * channels at a time, and nothing runs before the host key matches the pinned fingerprint.
 */
import type { Client } from "ssh2";

import { SnapkeepError } from "../../errors.js";
import { buildTrackedRemoteCommand } from "../../domain/shell-quote.js";
import { NotConnectedError, RemoteKiller, runOnChannel } from "../ssh/channel.js";
import { openConnection, probeFingerprint } from "../ssh/connection.js";
import { type SshAttempt, connectFailure, targetLabel } from "../ssh/failures.js";
import { closeClient, newClient, untilAborted, waitAtMost } from "../ssh/lifecycle.js";
import { Semaphore } from "../ssh/semaphore.js";
import type { CommandRunner, RunOptions, RunResult } from "./types.js";
import { logged } from "./job-log.js";

export interface SshRunnerOptions {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly privateKey?: Buffer | undefined;
  /** Where `privateKey` came from; used only to name the key in messages. */
  readonly privateKeyPath?: string | undefined;
  readonly passphrase?: string | undefined;
  /** Path of an ssh-agent socket, e.g. `process.env.SSH_AUTH_SOCK`. */
  readonly agent?: string | undefined;
  /** `SHA256:...`; without it every connection is refused with HOST_KEY_UNKNOWN. */
  readonly pinnedFingerprint?: string | undefined;
  /** Snapkeep's name for the host, used in the commands that hints suggest. */
  readonly hostName: string;
  /** "target" for export targets, so hints name `snapkeep target trust`. */
  readonly noun?: "host" | "target" | undefined;
  readonly readyTimeoutMs?: number | undefined;
  readonly keepaliveIntervalMs?: number | undefined;
  /**
   * Exec channels open at once. OpenSSH allows 10 sessions per connection (MaxSessions); the
   * default 6 leaves room for the kill channel and for an `ssh` the person has open themselves.
   */
  readonly maxChannels?: number | undefined;
}

interface Live {
  readonly client: Client;
  readonly killer: RemoteKiller;
}

interface Connection extends Live {
  readonly ready: Promise<Live>;
}

const DEFAULT_READY_TIMEOUT_MS = 20_000;
const DEFAULT_KEEPALIVE_MS = 15_000;

function cancelled(message: string): SnapkeepError {
  return new SnapkeepError("CANCELLED", message);
}

export class SshRunner implements CommandRunner {
  readonly label: string;
  private readonly options: SshRunnerOptions;
  private readonly slots: Semaphore;
  private readonly attempt: SshAttempt;
  private connection: Connection | undefined;
  private readonly active = new Set<AbortController>();
  private readonly probes = new Set<Client>();
  private readonly channels = new Set<Promise<void>>();
  private disposed: Promise<void> | undefined;
  private opened = 0;

  constructor(options: SshRunnerOptions) {
    this.options = options;
    this.label = targetLabel(options.username, options.host, options.port);
    this.slots = new Semaphore(options.maxChannels ?? 6);
    this.attempt = {
      user: options.username,
      host: options.host,
      port: options.port,
      hasKey: options.privateKey !== undefined,
      keyPath: options.privateKeyPath,
      agent: options.agent,
    };
  }

  /** How many SSH connections this runner has opened so far (one, unless connections dropped). */
  get connectionsOpened(): number {
    return this.opened;
  }

  run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return logged(this.label, argv, () => this.runNow(argv, options));
  }

  private async runNow(argv: readonly string[], options: RunOptions): Promise<RunResult> {
    const command = buildTrackedRemoteCommand(argv);
    const display = argv.join(" ").slice(0, 120);
    if (this.disposed !== undefined) {
      throw cancelled(`\`${display}\` was not run: the connection to ${this.label} is closed.`);
    }
    const stop = new AbortController();
    this.active.add(stop);
    const onCallerAbort = (): void => stop.abort(cancelled(`\`${display}\` on ${this.label} was cancelled.`));
    options.signal?.addEventListener("abort", onCallerAbort, { once: true });
    if (options.signal?.aborted === true) {
      onCallerAbort();
    }
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(
            () =>
              stop.abort(
                new SnapkeepError(
                  "TIMEOUT",
                  `\`${display}\` on ${this.label} did not finish within ${options.timeoutMs} ms and was stopped.`,
                ),
              ),
            options.timeoutMs,
          );
    try {
      for (let attempt = 1; ; attempt++) {
        const release = await this.slots.acquire(stop.signal);
        let handedOver = false;
        let connection: Live | undefined;
        try {
          connection = await untilAborted(this.connect(), stop.signal);
          const { killer } = connection;
          handedOver = true;
          return await runOnChannel(connection.client, command, options, stop.signal, {
            label: this.label,
            display,
            onChannelGone: this.trackChannel(release),
            kill: (pid) => killer.kill(pid),
          });
        } catch (error) {
          if (!(error instanceof NotConnectedError)) {
            throw error;
          }
          // The connection died between 'ready' and the exec request, so nothing ran: reconnect once.
          if (attempt > 1) {
            throw connectFailure(undefined, this.attempt, this.readyTimeoutMs, []);
          }
          if (connection !== undefined) {
            this.forget(connection.client);
          }
        } finally {
          if (!handedOver) {
            release();
          }
        }
      }
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onCallerAbort);
      this.active.delete(stop);
    }
  }

  /**
   * Connects only far enough to see the host key, refuses it, and returns its fingerprint, for
   * first contact (`snapkeep host trust`). No credentials are sent.
   */
  async probeHostKey(): Promise<string> {
    if (this.disposed !== undefined) {
      throw cancelled(`The connection to ${this.label} is closed.`);
    }
    const client = newClient();
    this.probes.add(client);
    try {
      return await probeFingerprint(client, this.attempt, this.readyTimeoutMs, () =>
        this.disposed === undefined
          ? undefined
          : cancelled(`Probing the host key of ${this.label} was cancelled.`),
      );
    } finally {
      this.probes.delete(client);
      await closeClient(client);
    }
  }

  dispose(): Promise<void> {
    this.disposed ??= this.shutDown();
    return this.disposed;
  }

  private async shutDown(): Promise<void> {
    for (const stop of this.active) {
      stop.abort(cancelled(`A command on ${this.label} was cancelled because the connection was closed.`));
    }
    const probes = [...this.probes].map(closeClient);
    const connection = this.connection;
    this.connection = undefined;
    if (connection !== undefined) {
      // Aborted commands are killed through this connection (a pid may still be on its way), and
      // their channels close once they are dead: wait for that, within reason, before hanging up.
      await waitAtMost(Promise.all(this.channels), 5000);
      await connection.killer.idle();
      await closeClient(connection.client);
    }
    await Promise.all(probes);
  }

  /** Wraps a slot's release so that shutDown() can wait until the channel behind it has closed. */
  private trackChannel(release: () => void): () => void {
    let markGone = (): void => undefined;
    const gone = new Promise<void>((resolve) => {
      markGone = resolve;
    });
    this.channels.add(gone);
    return () => {
      release();
      this.channels.delete(gone);
      markGone();
    };
  }

  private get readyTimeoutMs(): number {
    return this.options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  }

  private forget(client: Client): void {
    if (this.connection?.client === client) {
      this.connection = undefined;
    }
  }

  /** The pooled connection, opened on first use and again after it dropped. */
  private connect(): Promise<Live> {
    if (this.disposed !== undefined) {
      return Promise.reject(cancelled(`The connection to ${this.label} is closed.`));
    }
    if (this.connection !== undefined) {
      return this.connection.ready;
    }
    let opened: ReturnType<typeof openConnection>;
    try {
      opened = openConnection(
        {
          attempt: this.attempt,
          label: this.label,
          hostName: this.options.hostName,
          noun: this.options.noun,
          privateKey: this.options.privateKey,
          passphrase: this.options.passphrase,
          pinnedFingerprint: this.options.pinnedFingerprint,
          readyTimeoutMs: this.readyTimeoutMs,
          keepaliveIntervalMs: this.options.keepaliveIntervalMs ?? DEFAULT_KEEPALIVE_MS,
        },
        () => this.forget(opened.client),
      );
    } catch (error) {
      return Promise.reject(error);
    }
    const live: Live = { client: opened.client, killer: new RemoteKiller(opened.client) };
    const ready = opened.ready.then(() => live);
    ready.catch(() => undefined);
    this.connection = { ...live, ready };
    this.opened++;
    return ready;
  }
}

/**
 * Opening one ssh2 connection: host key check first, then login, with every way it can fail
 * turned into a SnapkeepError. Pooling and reconnecting are the runner's business.
 */
import type { Client, ConnectConfig } from "ssh2";

import { SnapkeepError } from "../../errors.js";
import { type SshAttempt, connectFailure, connectThrew } from "./failures.js";
import { fingerprintOf, keyTypeOf, verifyHostKey } from "./hostkey.js";
import { newClient } from "./lifecycle.js";

export interface OpenOptions {
  readonly attempt: SshAttempt;
  /** `user@host:port`, for messages. */
  readonly label: string;
  /** Snapkeep's name for the host, for the commands hints suggest. */
  readonly hostName: string;
  /** "target" for export targets, so hints name `snapkeep target trust`. */
  readonly noun?: "host" | "target" | undefined;
  readonly privateKey: Buffer | undefined;
  readonly passphrase: string | undefined;
  readonly pinnedFingerprint: string | undefined;
  readonly readyTimeoutMs: number;
  readonly keepaliveIntervalMs: number;
}

/**
 * Starts connecting. `ready` resolves once logged in; `onGone` runs once the connection failed or,
 * later, dropped. Throws at once (BAD_PASSPHRASE, INVALID_INPUT) when the key cannot be used:
 * ssh2 parses it inside connect().
 */
export function openConnection(
  options: OpenOptions,
  onGone: () => void,
): { client: Client; ready: Promise<void> } {
  const { attempt, privateKey, passphrase } = options;
  const client = newClient();
  let hostKeyError: SnapkeepError | undefined;
  const agentProblems: string[] = [];
  const config: ConnectConfig = {
    host: attempt.host,
    port: attempt.port,
    username: attempt.user,
    readyTimeout: options.readyTimeoutMs,
    keepaliveInterval: options.keepaliveIntervalMs,
    keepaliveCountMax: 3,
    hostVerifier: (key: Buffer) => {
      try {
        verifyHostKey(
          options.pinnedFingerprint,
          fingerprintOf(key),
          options.label,
          options.hostName,
          keyTypeOf(key),
          options.noun,
        );
        return true;
      } catch (error) {
        // ssh2 itself only reports "Host denied (verification failed)"; keep ours for the caller.
        hostKeyError = error instanceof SnapkeepError ? error : undefined;
        return false;
      }
    },
    ...(privateKey === undefined ? {} : { privateKey }),
    ...(passphrase === undefined ? {} : { passphrase }),
    ...(attempt.agent === undefined ? {} : { agent: attempt.agent }),
  };
  const ready = new Promise<void>((resolve, reject) => {
    let settled = false;
    let gone = false;
    const fail = (error?: Error & { level?: string }): void => {
      if (!gone) {
        gone = true;
        onGone();
      }
      if (!settled) {
        settled = true;
        reject(hostKeyError ?? connectFailure(error, attempt, options.readyTimeoutMs, agentProblems));
        client.end();
      }
    };
    client.on("ready", () => {
      settled = true;
      resolve();
    });
    client.on("error", (error: Error & { level?: string }) => {
      // Agent errors are not fatal: ssh2 goes on with the next auth method.
      if (error.level === "agent") {
        agentProblems.push(error.message);
        return;
      }
      // After 'ready' an error means the connection is going away; running channels see 'close'.
      fail(error);
    });
    client.once("close", () => fail());
  });
  // Every run waiting on this may have been cancelled meanwhile; that is not an unhandled failure.
  ready.catch(() => undefined);
  try {
    client.connect(config);
  } catch (error) {
    throw connectThrew(error, attempt, passphrase);
  }
  return { client, ready };
}

/**
 * Connects only far enough to see the host key, refuses it, and resolves with its fingerprint.
 * No credentials are offered. `cancelled` says whether a failure is the caller closing `client`.
 */
export function probeFingerprint(
  client: Client,
  attempt: SshAttempt,
  readyTimeoutMs: number,
  cancelled: () => SnapkeepError | undefined,
): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let offered: string | undefined;
    const settle = (error?: Error & { level?: string }): void => {
      if (offered !== undefined) {
        resolve(offered);
      } else {
        reject(cancelled() ?? connectFailure(error, attempt, readyTimeoutMs, []));
      }
    };
    client.on("error", settle);
    client.once("close", () => settle());
    client.connect({
      host: attempt.host,
      port: attempt.port,
      username: attempt.user,
      readyTimeout: readyTimeoutMs,
      hostVerifier: (key: Buffer) => {
        offered = fingerprintOf(key);
        return false;
      },
    });
  });
}

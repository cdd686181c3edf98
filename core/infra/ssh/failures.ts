/**
 * ssh2's failures turned into one sentence each that says what failed and what to try.
 *
 * ssh2 reports most connection problems as plain Errors told apart only by `level`, `code` and
 * message text; callers and the UI branch on SnapkeepError codes instead.
 */
import { SnapkeepError, describeError } from "../../errors.js";
import { NETWORK_CAUSES } from "../../domain/explain.js";

/** What the runner tried, for messages. */
export interface SshAttempt {
  readonly user: string;
  readonly host: string;
  readonly port: number;
  readonly hasKey: boolean;
  /** The private key's file, when known; only for messages. */
  readonly keyPath: string | undefined;
  readonly agent: string | undefined;
}

export function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

export function targetLabel(user: string, host: string, port: number): string {
  return `${user}@${hostPort(host, port)}`;
}

function keyPhrase(keyPath: string | undefined): string {
  return keyPath === undefined ? "the SSH private key" : `the SSH key ${keyPath}`;
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function passphraseError(
  keyPath: string | undefined,
  passphrase: string | undefined,
  cause: unknown,
): SnapkeepError {
  return new SnapkeepError(
    "BAD_PASSPHRASE",
    passphrase === undefined
      ? `${capitalized(keyPhrase(keyPath))} is protected by a passphrase, and none was given.`
      : `The passphrase for ${keyPhrase(keyPath)} is wrong.`,
    {
      // The CLI cannot prompt: the passphrase comes from the environment, or the agent holds the key.
      hint:
        `${passphrase === undefined ? "Set" : "Correct"} the environment variable SNAPKEEP_KEY_PASSPHRASE, ` +
        `or load the key into ssh-agent with \`ssh-add ${keyPath ?? "<key file>"}\` and let Snapkeep use the agent ` +
        "(SSH_AUTH_SOCK set, no identity file given for the host).",
      cause,
    },
  );
}

/**
 * Maps what ssh2's connect() throws synchronously: it parses the private key right there and throws
 * on a wrong or missing passphrase or an unusable key, instead of emitting 'error'.
 *
 * The key is deliberately not pre-parsed with utils.parseKey(): decrypting an OpenSSH key runs
 * bcrypt_pbkdf in JavaScript and blocks the event loop for about 0.3 s, and connect() parses it
 * again anyway.
 */
export function connectThrew(
  error: unknown,
  attempt: SshAttempt,
  passphrase: string | undefined,
): SnapkeepError {
  const text = describeError(error);
  const key = capitalized(keyPhrase(attempt.keyPath));
  if (attempt.hasKey && /passphrase|decrypt/i.test(text)) {
    return passphraseError(attempt.keyPath, passphrase, error);
  }
  if (attempt.hasKey && /does not contain a \(valid\) private key/i.test(text)) {
    return new SnapkeepError("INVALID_INPUT", `${key} is a public key, not a private key.`, {
      hint: "Choose the private key file (the one without .pub).",
      cause: error,
    });
  }
  if (attempt.hasKey && /privateKey/.test(text)) {
    return new SnapkeepError(
      "INVALID_INPUT",
      `${key} could not be read: ${text.replace(/^Cannot parse privateKey: /, "")}.`,
      {
        hint: "Use an OpenSSH or PEM private key file, such as one made by `ssh-keygen -t ed25519`.",
        cause: error,
      },
    );
  }
  return new SnapkeepError(
    "INVALID_INPUT",
    `Cannot connect to ${targetLabel(attempt.user, attempt.host, attempt.port)}: ${text}.`,
    { cause: error },
  );
}

function methodsTried(attempt: SshAttempt): string {
  const methods = [
    ...(attempt.hasKey ? [keyPhrase(attempt.keyPath)] : []),
    ...(attempt.agent === undefined ? [] : [`the ssh-agent at ${attempt.agent}`]),
  ];
  return methods.length === 0
    ? "no key at all (neither a key file nor an ssh-agent was set)"
    : methods.join(" and ");
}

/**
 * Maps an ssh2 'error' event (or an early 'close') that ended a connection attempt.
 * `agentProblems` are the non-fatal agent errors seen on the way, worth naming when auth fails.
 */
export function connectFailure(
  error: (Error & { level?: string; code?: unknown }) | undefined,
  attempt: SshAttempt,
  readyTimeoutMs: number,
  agentProblems: readonly string[],
): SnapkeepError {
  const where = hostPort(attempt.host, attempt.port);
  const who = targetLabel(attempt.user, attempt.host, attempt.port);
  const unreachable = (cause: string, hint?: string): SnapkeepError =>
    new SnapkeepError("HOST_UNREACHABLE", `Cannot reach ${where}: ${cause}.`, {
      hint:
        hint ??
        `Check that the host is up, that sshd listens on port ${attempt.port}, and that no firewall is in the way.`,
      details: { host: attempt.host, port: attempt.port },
      cause: error,
    });

  if (error === undefined) {
    return unreachable("the connection closed before the SSH login finished");
  }
  const message = error.message;
  if (error.level === "client-authentication" || /authentication/i.test(message)) {
    const agentNote =
      agentProblems.length > 0 ? ` (the agent could not be used: ${agentProblems.join("; ")})` : "";
    return new SnapkeepError(
      "AUTH_FAILED",
      `${who} refused the login with ${methodsTried(attempt)}${agentNote}.`,
      {
        hint:
          `Add the public key to ~${attempt.user}/.ssh/authorized_keys on the host (for example with \`ssh-copy-id\`), ` +
          "or choose another key or user.",
        details: { user: attempt.user, host: attempt.host, port: attempt.port, agentProblems },
        cause: error,
      },
    );
  }
  if (error.level === "client-socket" && typeof error.code === "string") {
    const cause = NETWORK_CAUSES[error.code] ?? message;
    return unreachable(
      cause,
      error.code === "ENOTFOUND" || error.code === "EAI_AGAIN"
        ? `Check the host name, or its HostName in ~/.ssh/config.`
        : undefined,
    );
  }
  if (error.level === "client-timeout") {
    return unreachable(`no SSH handshake within ${Math.round(readyTimeoutMs / 1000)} s`);
  }
  if (error.level === "handshake" || error.level === "protocol") {
    return unreachable(`the SSH handshake failed (${message})`);
  }
  return unreachable(message);
}

/** A connection that dropped while a command was running: the command's fate is unknown. */
export function connectionLost(label: string, display: string): SnapkeepError {
  return new SnapkeepError(
    "HOST_UNREACHABLE",
    `The connection to ${label} was lost while \`${display}\` was running; it may or may not have finished.`,
    { hint: "Check the host and the network, then run the operation again." },
  );
}

/**
 * A real OpenSSH sshd (and ssh-agent) for integration tests, each in its own temp dir, so the SSH
 * runner is tested against the same server it will meet on a KVM host rather than a mock.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { mkdtemp, rm, writeFile, readFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export interface TestSshd {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** ed25519 key listed in authorized_keys, no passphrase. */
  readonly userKeyPath: string;
  /** ed25519 key listed in authorized_keys, protected by `passphrase`. */
  readonly encryptedKeyPath: string;
  readonly passphrase: string;
  /** ed25519 key that is NOT in authorized_keys. */
  readonly strangerKeyPath: string;
  /** `SHA256:...` of the host key, as printed by `ssh-keygen -lf`. */
  readonly hostFingerprint: string;
  readonly tmpDir: string;
  /** Everything sshd has written to stderr so far (`-e`: its log). */
  log(): string;
  /** Number of logins sshd has accepted so far ("Accepted publickey for ..." log lines). */
  acceptedLogins(): number;
  /** Starts sshd again with the same keys and port (after a test killed it). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface TestSshAgent {
  readonly socketPath: string;
  stop(): Promise<void>;
}

async function keygen(keyPath: string, passphrase = ""): Promise<void> {
  await execFileAsync("ssh-keygen", [
    "-q",
    "-t",
    "ed25519",
    "-N",
    passphrase,
    "-C",
    "snapkeep-test",
    "-f",
    keyPath,
  ]);
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === "object") {
          resolve(address.port);
        } else {
          reject(new Error("no port"));
        }
      });
    });
  });
}

/** Resolves once something on the port answers with an SSH banner. */
async function waitForBanner(
  host: string,
  port: number,
  child: ChildProcess,
  deadlineMs: number,
): Promise<void> {
  const start = Date.now();
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`sshd exited early (${child.exitCode ?? child.signalCode})`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port });
      const done = (value: boolean): void => {
        socket.destroy();
        resolve(value);
      };
      socket.setTimeout(1000, () => done(false));
      socket.once("error", () => done(false));
      socket.once("data", (chunk: Buffer) => done(chunk.toString("latin1").startsWith("SSH-2.0-")));
    });
    if (ok) {
      return;
    }
    if (Date.now() - start > deadlineMs) {
      throw new Error(`sshd did not answer on port ${port} within ${deadlineMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

async function startOnce(
  tmpDir: string,
  hostKey: string,
  authorizedKeys: string,
  extraConfig: readonly string[],
  netns: SshdOptions["netns"],
): Promise<{ child: ChildProcess; port: number; logText: () => string }> {
  const address = netns?.address ?? "127.0.0.1";
  const port = await freePort();
  const configPath = path.join(tmpDir, `sshd_config.${port}`);
  await writeFile(
    configPath,
    [
      `ListenAddress ${address}`,
      `Port ${port}`,
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${authorizedKeys}`,
      "StrictModes no",
      "UsePAM no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      `PidFile ${path.join(tmpDir, "sshd.pid")}`,
      "MaxSessions 10",
      // Tests open many connections in quick succession; the default 10:30:100 could drop some.
      "MaxStartups 100",
      "LogLevel INFO",
      ...extraConfig,
      "",
    ].join("\n"),
  );
  // The privilege separation directory that sshd refuses to start without; the Debian package
  // creates it at boot through systemd, which a container does not run.
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  return spawnSshd(configPath, address, port, netns);
}

/** Starts sshd on a written config; also used to bring a killed one back with the same keys. */
async function spawnSshd(
  configPath: string,
  address: string,
  port: number,
  netns: SshdOptions["netns"],
): Promise<{ child: ChildProcess; port: number; logText: () => string }> {
  const sshd = ["/usr/sbin/sshd", "-D", "-e", "-f", configPath];
  const [command, ...args] = netns === undefined ? sshd : ["ip", "netns", "exec", netns.name, ...sshd];
  const child = spawn(command as string, args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    log += chunk;
  });
  try {
    await waitForBanner(address, port, child, 10_000);
  } catch (error) {
    await stopChild(child);
    throw new Error(`${String(error)}\n${log}`);
  }
  return { child, port, logText: () => log };
}

export interface SshdOptions {
  /** More sshd_config lines, e.g. `SetEnv BASH_ENV=...` to make the login shell print first. */
  readonly extraConfig?: readonly string[];
  /** Run sshd inside this network namespace, listening on its address (see netns.ts). */
  readonly netns?: { readonly name: string; readonly address: string };
}

export async function startSshd(options: SshdOptions = {}): Promise<TestSshd> {
  const tmpDir = await mkdtemp(path.join(os.tmpdir(), "snapkeep-sshd-"));
  const hostKey = path.join(tmpDir, "ssh_host_ed25519_key");
  const userKeyPath = path.join(tmpDir, "user_ed25519");
  const encryptedKeyPath = path.join(tmpDir, "user_encrypted_ed25519");
  const strangerKeyPath = path.join(tmpDir, "stranger_ed25519");
  const authorizedKeys = path.join(tmpDir, "authorized_keys");
  const passphrase = "correct horse";
  await Promise.all([
    keygen(hostKey),
    keygen(userKeyPath),
    keygen(encryptedKeyPath, passphrase),
    keygen(strangerKeyPath),
  ]);
  const publicKeys = await Promise.all([
    readFile(`${userKeyPath}.pub`, "utf8"),
    readFile(`${encryptedKeyPath}.pub`, "utf8"),
  ]);
  await writeFile(authorizedKeys, publicKeys.join(""), { mode: 0o600 });
  const { stdout } = await execFileAsync("ssh-keygen", ["-lf", `${hostKey}.pub`]);
  const hostFingerprint = stdout.split(" ")[1];
  if (hostFingerprint === undefined || !hostFingerprint.startsWith("SHA256:")) {
    throw new Error(`unexpected ssh-keygen output: ${stdout}`);
  }

  // freePort() releases the port before sshd binds it, so another process may take it first.
  let started: Awaited<ReturnType<typeof startOnce>> | undefined;
  let lastError: unknown;
  for (let attempt = 0; attempt < 3 && started === undefined; attempt++) {
    try {
      started = await startOnce(tmpDir, hostKey, authorizedKeys, options.extraConfig ?? [], options.netns);
    } catch (error) {
      lastError = error;
    }
  }
  if (started === undefined) {
    await rm(tmpDir, { recursive: true, force: true });
    throw lastError;
  }
  let { child, logText } = started;
  const { port } = started;
  const address = options.netns?.address ?? "127.0.0.1";
  const count = (pattern: RegExp): number => logText().match(pattern)?.length ?? 0;
  return {
    host: options.netns?.address ?? "127.0.0.1",
    port,
    user: os.userInfo().username,
    userKeyPath,
    encryptedKeyPath,
    passphrase,
    strangerKeyPath,
    hostFingerprint,
    tmpDir,
    log: () => logText(),
    acceptedLogins: () => count(/^Accepted publickey for /gm),
    restart: async () => {
      await stopChild(child);
      ({ child, logText } = await spawnSshd(
        path.join(tmpDir, `sshd_config.${port}`),
        address,
        port,
        options.netns,
      ));
    },
    stop: async () => {
      await stopChild(child);
      await rm(tmpDir, { recursive: true, force: true });
    },
  };
}

/** Starts an ssh-agent on a private socket and loads `keyPath` (which must have no passphrase) into it. */
export async function startSshAgent(keyPath: string): Promise<TestSshAgent> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "snapkeep-agent-"));
  const socketPath = path.join(dir, "agent.sock");
  const child = spawn("ssh-agent", ["-D", "-a", socketPath], { stdio: ["ignore", "ignore", "pipe"] });
  const stop = async (): Promise<void> => {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const start = Date.now();
    for (;;) {
      const connected = await new Promise<boolean>((resolve) => {
        const socket = net.connect(socketPath);
        socket.once("connect", () => {
          socket.destroy();
          resolve(true);
        });
        socket.once("error", () => resolve(false));
      });
      if (connected) {
        break;
      }
      if (child.exitCode !== null || Date.now() - start > 10_000) {
        throw new Error("ssh-agent did not start");
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await execFileAsync("ssh-add", ["-q", keyPath], { env: { ...process.env, SSH_AUTH_SOCK: socketPath } });
  } catch (error) {
    await stop();
    throw error;
  }
  return { socketPath, stop };
}

/** The request that adds this sshd as a trusted Snapkeep host, logging in with its user key. */
export function trustedHost(
  name: string,
  sshd: TestSshd,
): { name: string; ssh: string; identityFile: string; trust: string } {
  return {
    name,
    ssh: `${sshd.user}@${sshd.host}:${sshd.port}`,
    identityFile: sshd.userKeyPath,
    trust: sshd.hostFingerprint,
  };
}

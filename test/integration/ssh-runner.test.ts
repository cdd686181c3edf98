import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import { SshRunner, type SshRunnerOptions } from "../../core/infra/runner/ssh.js";
import { type TestSshd, startSshAgent, startSshd } from "../support/sshd.js";
import { waitFor } from "../support/wait.js";
import { failure } from "../support/failure.js";
import { hintOf } from "../../core/domain/explain.js";

let sshd: TestSshd;
const runners: SshRunner[] = [];
// Unique per run, so that a file left over from elsewhere can neither fail nor mask the check.
const pwned = path.join(os.tmpdir(), `snapkeep-pwned-${randomBytes(6).toString("hex")}`);

beforeAll(async () => {
  sshd = await startSshd();
});

afterEach(async () => {
  await Promise.all(runners.splice(0).map((runner) => runner.dispose()));
});

afterAll(async () => {
  await sshd.stop();
  rmSync(pwned, { force: true });
});

function makeRunner(overrides: Partial<SshRunnerOptions> = {}): SshRunner {
  const runner = new SshRunner({
    host: sshd.host,
    port: sshd.port,
    username: sshd.user,
    privateKey: readFileSync(sshd.userKeyPath),
    privateKeyPath: sshd.userKeyPath,
    pinnedFingerprint: sshd.hostFingerprint,
    hostName: "testhost",
    ...overrides,
  });
  runners.push(runner);
  return runner;
}

function processRunning(pattern: string): boolean {
  try {
    execFileSync("pgrep", ["-f", pattern]);
    return true;
  } catch {
    return false;
  }
}

/** Established TCP connections to (client side) or from (server side) a local port, as `ss` sees them. */
function establishedTo(port: number): number {
  return execFileSync("ss", ["-Htn", "state", "established", `( dport = :${port} )`], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line.trim() !== "").length;
}

function establishedFrom(port: number): number {
  return execFileSync("ss", ["-Htn", "state", "established", `( sport = :${port} )`], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line.trim() !== "").length;
}

function marker(name: string): string {
  return path.join(sshd.tmpDir, `${name}-${randomBytes(4).toString("hex")}`);
}

const hostile = [
  "",
  " ",
  "it's",
  '"quoted"',
  `$(touch ${pwned})`,
  `\`touch ${pwned}\``,
  `; touch ${pwned}`,
  `&& touch ${pwned}`,
  `| touch ${pwned}`,
  "a\nb",
  "tab\there",
  "-rf",
  "*",
  "~",
  "$HOME",
  "\\",
  "!",
  "\u{1F4BE}\u05E9\u05DC\u05D5\u05DD",
  "x".repeat(10_000),
];

describe("SshRunner against a real sshd", () => {
  it("passes hostile arguments byte for byte and runs none of them", async () => {
    const runner = makeRunner();
    const result = await runner.run(["printf", "%s\\0", ...hostile]);
    expect(result).toEqual({
      code: 0,
      signal: null,
      stdout: hostile.map((arg) => `${arg}\0`).join(""),
      stderr: "",
    });
    const echo = await runner.run(["echo", "it's", "$(id)", "a  b"]);
    expect(echo.stdout).toBe("it's $(id) a  b\n");
    expect(existsSync(pwned)).toBe(false);
  });

  it("keeps stdout and stderr apart, sets LC_ALL=C and streams chunks as they come", async () => {
    const runner = makeRunner();
    const split = await runner.run(["sh", "-c", 'echo out; echo err >&2; printf %s "$LC_ALL" >&2']);
    expect(split).toEqual({ code: 0, signal: null, stdout: "out\n", stderr: "err\nC" });
    // Only Snapkeep's own pid line is taken out of stderr, never a look-alike from the command.
    const lookAlike = await runner.run(["sh", "-c", "echo snapkeep-pid:12345 >&2; echo after >&2"]);
    expect(lookAlike.stderr).toBe("snapkeep-pid:12345\nafter\n");

    const seen: string[] = [];
    let resolved = false;
    const pending = runner.run(["sh", "-c", "echo first; sleep 0.5; echo second"], {
      onStdout: (chunk) => seen.push(chunk.toString()),
    });
    void pending.then(() => {
      resolved = true;
    });
    await waitFor(() => seen.join("").includes("first"));
    expect(resolved).toBe(false);
    expect((await pending).stdout).toBe("first\nsecond\n");
    expect(seen.join("")).toBe("first\nsecond\n");
  });

  it("reports exit codes, signals and missing programs", async () => {
    const runner = makeRunner();
    expect(await runner.run(["sh", "-c", "exit 7"])).toMatchObject({ code: 7, signal: null });
    expect(await runner.run(["sh", "-c", "kill -TERM $$"])).toMatchObject({ code: null, signal: "SIGTERM" });
    expect(await runner.run(["sh", "-c", "kill -KILL $$"])).toMatchObject({ code: null, signal: "SIGKILL" });
    expect(await runner.run(["snapkeep-no-such-tool", "--version"])).toMatchObject({
      code: 127,
      signal: null,
    });
  });

  it("feeds stdin and closes it", async () => {
    const runner = makeRunner();
    expect((await runner.run(["cat"], { stdin: "hello\nworld \u{1F4BE}" })).stdout).toBe(
      "hello\nworld \u{1F4BE}",
    );
    const input = randomBytes(3 * 1024 * 1024);
    const digest = await runner.run(["sha256sum"], { stdin: input });
    expect(digest.stdout.split(" ")[0]).toBe(createHash("sha256").update(input).digest("hex"));
    // Without stdin the command sees end-of-file at once instead of waiting forever.
    expect((await runner.run(["cat"], { timeoutMs: 10_000 })).stdout).toBe("");
  });

  it("returns 20 MB of output complete and intact", async () => {
    const runner = makeRunner();
    const binary = path.join(sshd.tmpDir, "big.bin");
    const text = path.join(sshd.tmpDir, "big.txt");
    writeFileSync(binary, randomBytes(20 * 1024 * 1024));
    writeFileSync(text, randomBytes(15 * 1024 * 1024).toString("base64"));
    const expectedBinary = createHash("sha256").update(readFileSync(binary)).digest("hex");

    const hash = createHash("sha256");
    let bytes = 0;
    const raw = await runner.run(["head", "-c", String(20 * 1024 * 1024), binary], {
      onStdout: (chunk) => {
        hash.update(chunk);
        bytes += chunk.length;
      },
    });
    expect(raw.code).toBe(0);
    expect(bytes).toBe(20 * 1024 * 1024);
    expect(hash.digest("hex")).toBe(expectedBinary);

    const collected = await runner.run(["cat", text]);
    expect(createHash("sha256").update(collected.stdout).digest("hex")).toBe(
      createHash("sha256").update(readFileSync(text)).digest("hex"),
    );
  });

  it("runs 30 commands at once over one connection, never more than maxChannels channels", async () => {
    const runner = makeRunner({ maxChannels: 6 });
    const loginsBefore = sshd.acceptedLogins();
    let inFlight = 0;
    let peak = 0;
    const results = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        let started = false;
        // A second's sleep: long enough that channels overlap even on a loaded machine.
        const result = await runner.run(["sh", "-c", 'echo "$1"; sleep 1', "sh", `run-${i}`], {
          onStdout: () => {
            if (!started) {
              started = true;
              peak = Math.max(peak, ++inFlight);
            }
          },
        });
        inFlight--;
        return result;
      }),
    );
    expect(results.map((result) => result.stdout)).toEqual(
      Array.from({ length: 30 }, (_, i) => `run-${i}\n`),
    );
    expect(results.every((result) => result.code === 0)).toBe(true);
    expect(peak).toBeLessThanOrEqual(6);
    expect(peak).toBeGreaterThan(1);
    expect(runner.connectionsOpened).toBe(1);
    expect(sshd.acceptedLogins() - loginsBefore).toBe(1);
  });

  it("needs that limit: without it sshd refuses sessions beyond MaxSessions 10", async () => {
    const runner = makeRunner({ maxChannels: 14 });
    const outcomes = await Promise.allSettled(Array.from({ length: 14 }, () => runner.run(["sleep", "0.5"])));
    const refused = outcomes.filter((outcome) => outcome.status === "rejected");
    expect(refused.length).toBeGreaterThan(0);
    for (const outcome of refused) {
      expect((outcome as PromiseRejectedResult).reason).toMatchObject({ code: "COMMAND_FAILED" });
    }
    // Refused channels released their slots: the runner still works.
    expect((await runner.run(["echo", "ok"])).stdout).toBe("ok\n");
  });

  it("kills a command that times out, rejects with TIMEOUT, and keeps working", async () => {
    const runner = makeRunner({ maxChannels: 2 });
    const duration = `61.${randomBytes(3).readUIntBE(0, 3)}`;
    const started = Date.now();
    const error = await failure(runner.run(["sleep", duration], { timeoutMs: 700 }));
    expect(error.code).toBe("TIMEOUT");
    expect(error.message).toContain("700 ms");
    expect(Date.now() - started).toBeLessThan(3000);
    await waitFor(() => !processRunning(`sleep ${duration}`));
    // Both slots must be free again: two more runs complete without waiting for the sleep.
    const results = await Promise.all([runner.run(["echo", "a"]), runner.run(["echo", "b"])]);
    expect(results.map((result) => result.stdout)).toEqual(["a\n", "b\n"]);
    expect(runner.connectionsOpened).toBe(1);
  });

  it("kills the whole remote process group, not just the shell", async () => {
    const runner = makeRunner();
    const duration = `62.${randomBytes(3).readUIntBE(0, 3)}`;
    const error = await failure(
      runner.run(["sh", "-c", `sleep ${duration} & sleep ${duration}; wait`], { timeoutMs: 500 }),
    );
    expect(error.code).toBe("TIMEOUT");
    await waitFor(() => !processRunning(`sleep ${duration}`));
  });

  it("stops only its own command when an output callback throws", async () => {
    const runner = makeRunner();
    const duration = `65.${randomBytes(3).readUIntBE(0, 3)}`;
    const bystander = runner.run(["sh", "-c", "sleep 0.5; echo fine"]);
    const boom = new Error("callback bug");
    const broken = runner.run(["sh", "-c", `echo hi; exec sleep ${duration}`], {
      onStdout: () => {
        throw boom;
      },
    });
    await expect(broken).rejects.toBe(boom);
    expect((await bystander).stdout).toBe("fine\n");
    await waitFor(() => !processRunning(`sleep ${duration}`));
    expect(runner.connectionsOpened).toBe(1);
  });

  it("kills a command when its AbortSignal fires and rejects with CANCELLED", async () => {
    const runner = makeRunner();
    const duration = `63.${randomBytes(3).readUIntBE(0, 3)}`;
    const controller = new AbortController();
    const pending = runner.run(["sleep", duration], { signal: controller.signal });
    await waitFor(() => processRunning(`sleep ${duration}`));
    const started = Date.now();
    controller.abort();
    const error = await failure(pending);
    expect(error.code).toBe("CANCELLED");
    expect(Date.now() - started).toBeLessThan(1000);
    await waitFor(() => !processRunning(`sleep ${duration}`));
    expect((await runner.run(["echo", "still here"])).stdout).toBe("still here\n");
  });

  it("kills a command cancelled while its channel was still opening", async () => {
    const runner = makeRunner();
    await runner.run(["true"]);
    const duration = `67.${randomBytes(3).readUIntBE(0, 3)}`;
    const controller = new AbortController();
    const pending = runner.run(["sleep", duration], { signal: controller.signal });
    // By the next macrotask the exec request is on the wire, but its answer is not back yet.
    setImmediate(() => controller.abort());
    expect((await failure(pending)).code).toBe("CANCELLED");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await waitFor(() => !processRunning(`sleep ${duration}`));
    expect((await runner.run(["echo", "ok"])).stdout).toBe("ok\n");
  });

  it("does not start a command whose signal is already aborted", async () => {
    const runner = makeRunner();
    const file = marker("aborted");
    const error = await failure(runner.run(["touch", file], { signal: AbortSignal.abort() }));
    expect(error.code).toBe("CANCELLED");
    expect(existsSync(file)).toBe(false);
    expect(runner.connectionsOpened).toBe(0);
  });

  it("refuses an unknown host key with its fingerprint, before running anything", async () => {
    const runner = makeRunner({ pinnedFingerprint: undefined });
    const file = marker("unknown-key");
    const error = await failure(runner.run(["touch", file]));
    expect(error.code).toBe("HOST_KEY_UNKNOWN");
    expect(error.details).toEqual({ expected: undefined, offered: sshd.hostFingerprint });
    expect(error.message).toContain(sshd.hostFingerprint);
    expect(hintOf(error, "cli")).toContain(`snapkeep host trust testhost ${sshd.hostFingerprint}`);
    expect(hintOf(error, "cli")).toContain("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub");
    expect(existsSync(file)).toBe(false);
  });

  it("refuses a changed host key naming both fingerprints", async () => {
    const pinned = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const runner = makeRunner({ pinnedFingerprint: pinned });
    const file = marker("changed-key");
    const error = await failure(runner.run(["touch", file]));
    expect(error.code).toBe("HOST_KEY_CHANGED");
    expect(error.details).toEqual({ expected: pinned, offered: sshd.hostFingerprint });
    expect(error.message).toContain(pinned);
    expect(error.message).toContain(sshd.hostFingerprint);
    expect(existsSync(file)).toBe(false);
  });

  it("probes the host key without logging in", async () => {
    const loginsBefore = sshd.acceptedLogins();
    const runner = makeRunner({ pinnedFingerprint: undefined, privateKey: undefined });
    expect(await runner.probeHostKey()).toBe(sshd.hostFingerprint);
    expect(sshd.acceptedLogins()).toBe(loginsBefore);
  });

  it("logs in with an encrypted key and the right passphrase", async () => {
    const runner = makeRunner({
      privateKey: readFileSync(sshd.encryptedKeyPath),
      privateKeyPath: sshd.encryptedKeyPath,
      passphrase: sshd.passphrase,
    });
    expect((await runner.run(["echo", "unlocked"])).stdout).toBe("unlocked\n");
  });

  it("says BAD_PASSPHRASE for a wrong or missing passphrase, without connecting", async () => {
    const loginsBefore = sshd.acceptedLogins();
    const key = readFileSync(sshd.encryptedKeyPath);
    const wrong = await failure(
      makeRunner({ privateKey: key, privateKeyPath: sshd.encryptedKeyPath, passphrase: "wrong horse" }).run([
        "true",
      ]),
    );
    expect(wrong.code).toBe("BAD_PASSPHRASE");
    expect(wrong.message).toBe(`The passphrase for the SSH key ${sshd.encryptedKeyPath} is wrong.`);
    const missing = await failure(
      makeRunner({ privateKey: key, privateKeyPath: sshd.encryptedKeyPath }).run(["true"]),
    );
    expect(missing.code).toBe("BAD_PASSPHRASE");
    expect(missing.message).toContain("none was given");
    // The CLI cannot ask for it: the hint names where a passphrase comes from instead.
    expect(missing.hint).toContain("Set the environment variable SNAPKEEP_KEY_PASSPHRASE");
    expect(missing.hint).toContain(`ssh-add ${sshd.encryptedKeyPath}`);
    expect(wrong.hint).toContain("Correct the environment variable SNAPKEEP_KEY_PASSPHRASE");
    expect(sshd.acceptedLogins()).toBe(loginsBefore);
  });

  it("says INVALID_INPUT when the key file is a public key", async () => {
    const publicKey = `${sshd.userKeyPath}.pub`;
    const error = await failure(
      makeRunner({ privateKey: readFileSync(publicKey), privateKeyPath: publicKey }).run(["true"]),
    );
    expect(error.code).toBe("INVALID_INPUT");
    expect(error.message).toBe(`The SSH key ${publicKey} is a public key, not a private key.`);
  });

  it("says AUTH_FAILED naming the target and the key tried", async () => {
    const runner = makeRunner({
      privateKey: readFileSync(sshd.strangerKeyPath),
      privateKeyPath: sshd.strangerKeyPath,
    });
    const error = await failure(runner.run(["true"]));
    expect(error.code).toBe("AUTH_FAILED");
    expect(error.message).toContain(`${sshd.user}@127.0.0.1:${sshd.port}`);
    expect(error.message).toContain(sshd.strangerKeyPath);

    const nothing = await failure(makeRunner({ privateKey: undefined }).run(["true"]));
    expect(nothing.code).toBe("AUTH_FAILED");
    expect(nothing.message).toContain("neither a key file nor an ssh-agent");
  });

  it("says HOST_UNREACHABLE for a closed port", async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, "127.0.0.1", () => {
        const address = server.address() as net.AddressInfo;
        server.close(() => resolve(address.port));
      });
    });
    const error = await failure(makeRunner({ port: closedPort }).run(["true"]));
    expect(error.code).toBe("HOST_UNREACHABLE");
    expect(error.message).toBe(
      `Cannot reach 127.0.0.1:${closedPort}: the connection was refused (nothing listens on that port).`,
    );
    const probeError = await failure(makeRunner({ port: closedPort }).probeHostKey());
    expect(probeError.code).toBe("HOST_UNREACHABLE");
  });

  it("logs in through ssh-agent", async () => {
    const agent = await startSshAgent(sshd.userKeyPath);
    try {
      const runner = makeRunner({
        privateKey: undefined,
        privateKeyPath: undefined,
        agent: agent.socketPath,
      });
      expect((await runner.run(["echo", "via agent"])).stdout).toBe("via agent\n");
      await runner.dispose();
    } finally {
      await agent.stop();
    }
    const error = await failure(makeRunner({ privateKey: undefined, agent: agent.socketPath }).run(["true"]));
    expect(error.code).toBe("AUTH_FAILED");
    expect(error.message).toContain("the agent could not be used");
  });

  it("reconnects after the connection drops", async () => {
    const runner = makeRunner();
    const sessionPid = Number((await runner.run(["sh", "-c", 'echo "$PPID"'])).stdout.trim());
    expect(sessionPid).toBeGreaterThan(1);
    // Killing the session's sshd process drops the TCP connection under the runner's feet.
    process.kill(sessionPid, "SIGTERM");
    expect((await runner.run(["echo", "again"])).stdout).toBe("again\n");
    expect(runner.connectionsOpened).toBe(2);
  });

  it("dispose cancels running commands, closes the connection and leaves no handles", async () => {
    const sockets = (): number =>
      process.getActiveResourcesInfo().filter((name) => name === "TCPSocketWrap").length;
    const timers = (): number => process.getActiveResourcesInfo().filter((name) => name === "Timeout").length;
    // Sockets of earlier tests (already closed) may take a moment to leave the list.
    await waitFor(() => sockets() === 0);
    const timersBefore = timers();
    const runner = makeRunner();
    expect((await runner.run(["echo", "x"])).stdout).toBe("x\n");
    expect(sockets()).toBe(1);
    expect(establishedTo(sshd.port)).toBe(1);

    const duration = `64.${randomBytes(3).readUIntBE(0, 3)}`;
    const running = runner.run(["sleep", duration], { timeoutMs: 60_000 });
    await waitFor(() => processRunning(`sleep ${duration}`));
    const disposing = runner.dispose();
    expect(runner.dispose()).toBe(disposing);
    const error = await failure(running);
    expect(error.code).toBe("CANCELLED");
    await disposing;

    expect(processRunning(`sleep ${duration}`)).toBe(false);
    // Both ends see the TCP connection gone, not just our side.
    expect(establishedTo(sshd.port)).toBe(0);
    await waitFor(() => establishedFrom(sshd.port) === 0);
    expect(sockets()).toBe(0);
    expect(timers()).toBeLessThanOrEqual(timersBefore);
    expect((await failure(runner.run(["echo", "late"]))).code).toBe("CANCELLED");
  });
});

describe("SshRunner when the login shell prints before the command", () => {
  let noisy: TestSshd;

  beforeAll(async () => {
    // Like a chatty login script or a wrapper on the host: output before the command even starts,
    // including half a line.
    noisy = await startSshd({
      extraConfig: [
        `ForceCommand printf 'Welcome to the lab\\n' >&2; printf 'half a line' >&2; eval "$SSH_ORIGINAL_COMMAND"`,
      ],
    });
  });

  afterAll(async () => {
    await noisy.stop();
  });

  it("passes the noise through as stderr and still finds the pid to kill", async () => {
    const runner = makeRunner({
      port: noisy.port,
      privateKey: readFileSync(noisy.userKeyPath),
      privateKeyPath: noisy.userKeyPath,
      pinnedFingerprint: noisy.hostFingerprint,
    });
    expect(await runner.run(["sh", "-c", "echo out; echo err >&2"])).toEqual({
      code: 0,
      signal: null,
      stdout: "out\n",
      stderr: "Welcome to the lab\nhalf a lineerr\n",
    });
    const duration = `66.${randomBytes(3).readUIntBE(0, 3)}`;
    const error = await failure(runner.run(["sleep", duration], { timeoutMs: 500 }));
    expect(error.code).toBe("TIMEOUT");
    await waitFor(() => !processRunning(`sleep ${duration}`));
  });
});

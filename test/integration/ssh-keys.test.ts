/**
 * Which key the service offers when none was chosen: the most common setup is an encrypted
 * ~/.ssh/id_ed25519 whose passphrase lives in ssh-agent, and that must log in through the agent.
 * Real sshd and ssh-agent; the service's home stands in for the person's home directory.
 */
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import type { SshHostConfig } from "../../core/domain/types.js";
import { type SshEnvironment, createSshRunner } from "../../core/infra/runner/factory.js";
import type { CommandRunner } from "../../core/infra/runner/types.js";
import { makeApp } from "../support/app.js";
import { type TestSshAgent, type TestSshd, startSshAgent, startSshd } from "../support/sshd.js";
import { failure } from "../support/failure.js";

let sshd: TestSshd;
let agent: TestSshAgent;
const contexts: ReturnType<typeof makeApp>[] = [];
const runners: CommandRunner[] = [];

beforeAll(async () => {
  sshd = await startSshd();
  // The agent holds a key the host accepts; the encrypted key on disk is a different one.
  agent = await startSshAgent(sshd.userKeyPath);
});
afterEach(async () => {
  await Promise.all(runners.splice(0).map((runner) => runner.dispose()));
  await Promise.all(contexts.splice(0).map((ctx) => ctx.dispose()));
});
afterAll(async () => {
  await agent?.stop();
  await sshd?.stop();
});

/** A service whose ~/.ssh/id_ed25519 is the passphrase-protected key. */
function withEncryptedDefaultKey(ssh: Partial<SshEnvironment>): ReturnType<typeof makeApp> {
  const ctx = makeApp(ssh);
  contexts.push(ctx);
  mkdirSync(join(ctx.home, ".ssh"), { recursive: true, mode: 0o700 });
  copyFileSync(sshd.encryptedKeyPath, join(ctx.home, ".ssh", "id_ed25519"));
  return ctx;
}

function hostConfig(identityFile?: string): SshHostConfig {
  return {
    name: "lab",
    kind: "ssh",
    host: sshd.host,
    user: sshd.user,
    port: sshd.port,
    uri: "qemu:///system",
    hostKey: sshd.hostFingerprint,
    ...(identityFile === undefined ? {} : { identityFile }),
  };
}

function runner(home: string, env: Partial<SshEnvironment>, identityFile?: string): CommandRunner {
  const created = createSshRunner(
    hostConfig(identityFile),
    { homeDir: home, defaultUser: "root", agentSocket: undefined, passphrase: undefined, ...env },
    sshd.hostFingerprint,
  );
  runners.push(created);
  return created;
}

describe("default keys and ssh-agent", () => {
  it("lists VMs through the agent when ~/.ssh/id_ed25519 is encrypted and no passphrase is set", async () => {
    const ctx = withEncryptedDefaultKey({ agentSocket: agent.socketPath });
    await ctx.app.hosts.addSsh({
      name: "lab",
      ssh: `${sshd.user}@${sshd.host}:${sshd.port}`,
      trust: sshd.hostFingerprint,
    });
    const loginsBefore = sshd.acceptedLogins();
    const [listed] = await ctx.app.vms.list("lab");
    expect(listed?.error).toBeNull();
    expect(sshd.acceptedLogins()).toBe(loginsBefore + 1);
  });

  it("still uses the encrypted default key when the passphrase is set", async () => {
    const ctx = withEncryptedDefaultKey({ passphrase: sshd.passphrase });
    expect((await runner(ctx.home, { passphrase: sshd.passphrase }).run(["echo", "unlocked"])).stdout).toBe(
      "unlocked\n",
    );
  });

  it("names the encrypted default key and SNAPKEEP_KEY_PASSPHRASE when there is no agent to fall back on", async () => {
    const ctx = withEncryptedDefaultKey({});
    const error = await failure(runner(ctx.home, {}).run(["true"]));
    expect(error.code).toBe("BAD_PASSPHRASE");
    expect(error.message).toBe(
      `The SSH key ${join(ctx.home, ".ssh", "id_ed25519")} is protected by a passphrase, and none was given.`,
    );
    expect(error.hint).toContain("SNAPKEEP_KEY_PASSPHRASE");
    expect(error.hint).toContain("ssh-agent");
  });

  it("fails with BAD_PASSPHRASE for an explicitly chosen encrypted key, even when the agent could log in", async () => {
    const ctx = withEncryptedDefaultKey({});
    const loginsBefore = sshd.acceptedLogins();
    const error = await failure(
      runner(ctx.home, { agentSocket: agent.socketPath }, sshd.encryptedKeyPath).run(["true"]),
    );
    expect(error.code).toBe("BAD_PASSPHRASE");
    expect(error.message).toContain(sshd.encryptedKeyPath);
    expect(error.hint).toContain("SNAPKEEP_KEY_PASSPHRASE");
    expect(sshd.acceptedLogins()).toBe(loginsBefore);
  });

  it("refuses to run once disposed, even when it was never used", async () => {
    const ctx = withEncryptedDefaultKey({});
    const unused = runner(ctx.home, { agentSocket: agent.socketPath });
    await unused.dispose();
    const loginsBefore = sshd.acceptedLogins();
    expect((await failure(unused.run(["true"]))).code).toBe("CANCELLED");
    expect(sshd.acceptedLogins()).toBe(loginsBefore);
  });
});

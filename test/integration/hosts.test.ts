/**
 * Hosts through the service, as users add them: ~/.ssh/config aliases, keys with passphrases,
 * ssh-agent, and the failures each person must be able to act on. Real sshd, real libvirtd.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { makeApp } from "../support/app.js";
import { startSshAgent, startSshd, trustedHost, type TestSshd } from "../support/sshd.js";
import { TestVms, uniqueSuffix } from "../support/libvirt.js";

describe("hosts", () => {
  const vms = new TestVms();
  const vmName = `sk-hosts-${uniqueSuffix()}`;
  let sshd: TestSshd;
  let noVirsh: TestSshd;
  const contexts: ReturnType<typeof makeApp>[] = [];
  const fresh = (ssh: Parameters<typeof makeApp>[0] = {}): ReturnType<typeof makeApp> => {
    const ctx = makeApp(ssh);
    contexts.push(ctx);
    return ctx;
  };

  beforeAll(async () => {
    sshd = await startSshd();
    // A host where virsh is not on the PATH of the login session.
    noVirsh = await startSshd({ extraConfig: ["SetEnv PATH=/nonexistent"] });
    await vms.create({ name: vmName, running: false, disks: [{ target: "vda", sizeMiB: 8 }] });
  });
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.dispose()));
  });
  afterAll(async () => {
    await vms.dispose();
    await sshd?.stop();
    await noVirsh?.stop();
  });

  it("uses a Host alias from ~/.ssh/config for address, port, user and key", async () => {
    const ctx = fresh();
    mkdirSync(join(ctx.home, ".ssh"), { recursive: true });
    writeFileSync(
      join(ctx.home, ".ssh", "config"),
      `Host kvm-lab\n  HostName ${sshd.host}\n  Port ${sshd.port}\n  User ${sshd.user}\n  IdentityFile ${sshd.userKeyPath}\n`,
    );
    const added = await ctx.app.hosts.addSsh({ name: "lab", ssh: "kvm-lab", trust: sshd.hostFingerprint });
    expect(added.host).toMatchObject({ alias: "kvm-lab", hostKey: sshd.hostFingerprint });
    const [listed] = await ctx.app.vms.list("lab");
    expect(listed?.error).toBeNull();
    expect(listed?.vms.some((v) => v.name === vmName)).toBe(true);
  });

  it("logs in with a passphrase-protected key, and names a wrong passphrase in one sentence", async () => {
    const good = fresh({ passphrase: sshd.passphrase });
    await good.app.hosts.addSsh({
      name: "enc",
      ssh: `${sshd.user}@${sshd.host}:${sshd.port}`,
      identityFile: sshd.encryptedKeyPath,
      trust: sshd.hostFingerprint,
    });
    expect((await good.app.vms.list("enc"))[0]?.error).toBeNull();

    const bad = fresh({ passphrase: "wrong" });
    await bad.app.hosts.addSsh({
      name: "enc",
      ssh: `${sshd.user}@${sshd.host}:${sshd.port}`,
      identityFile: sshd.encryptedKeyPath,
      trust: sshd.hostFingerprint,
    });
    const [result] = await bad.app.vms.list("enc");
    expect(result?.error).toMatch(/passphrase/i);
    expect(result?.error?.split(". ").length).toBeLessThanOrEqual(2);
  });

  it("logs in through ssh-agent when no key file is given", async () => {
    const agent = await startSshAgent(sshd.userKeyPath);
    try {
      const ctx = fresh({ agentSocket: agent.socketPath });
      await ctx.app.hosts.addSsh({
        name: "agent",
        ssh: `${sshd.user}@${sshd.host}:${sshd.port}`,
        trust: sshd.hostFingerprint,
      });
      expect((await ctx.app.vms.list("agent"))[0]?.error).toBeNull();
    } finally {
      await agent.stop();
    }
  });

  it("lists the other hosts when one is offline, and says which failed and why", async () => {
    const ctx = fresh();
    ctx.app.hosts.addLocal("local");
    await ctx.app.hosts.addSsh(trustedHost("up", sshd));
    // Trusted earlier, now gone: the sshd is stopped after pinning its key.
    const gone = await startSshd();
    await ctx.app.hosts.addSsh({
      name: "gone",
      ssh: `${gone.user}@${gone.host}:${gone.port}`,
      // A key that outlives the stopped sshd's temp dir: the failure must be the unreachable host.
      identityFile: sshd.userKeyPath,
      trust: gone.hostFingerprint,
    });
    await gone.stop();
    const results = await ctx.app.vms.list();
    const byHost = Object.fromEntries(results.map((r) => [r.host, r]));
    expect(byHost["local"]?.vms.some((v) => v.name === vmName)).toBe(true);
    expect(byHost["up"]?.vms.some((v) => v.name === vmName)).toBe(true);
    expect(byHost["gone"]?.vms).toEqual([]);
    expect(byHost["gone"]?.error).toMatch(new RegExp(`${gone.host}:${gone.port}`));
  });

  it("says virsh is missing on a host that lacks it", async () => {
    const ctx = fresh();
    await ctx.app.hosts.addSsh(trustedHost("bare", noVirsh));
    const [result] = await ctx.app.vms.list("bare");
    expect(result?.error).toBe(`virsh is not installed on ${noVirsh.user}@${noVirsh.host}:${noVirsh.port}.`);
  });

  it("refuses refused auth with a sentence naming the user and host", async () => {
    const ctx = fresh();
    await expect(
      ctx.app.hosts.addSsh({
        name: "stranger",
        ssh: `${sshd.user}@${sshd.host}:${sshd.port}`,
        identityFile: sshd.strangerKeyPath,
        trust: sshd.hostFingerprint,
      }),
    ).resolves.toMatchObject({ trusted: true });
    const [result] = await ctx.app.vms.list("stranger");
    expect(result?.error).toMatch(new RegExp(`${sshd.user}@${sshd.host}:${sshd.port}`));
    expect(result?.error).toMatch(/refused|authenticat/i);
  });
});

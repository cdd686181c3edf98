import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { describe, expect, it } from "vitest";

import { parseSshSpec, resolveSshTarget } from "../../core/infra/ssh/config.js";
import {
  fingerprintOf,
  hostKeyFileFor,
  isFingerprint,
  keyTypeOf,
  verifyHostKey,
} from "../../core/infra/ssh/hostkey.js";

const base = { homeDir: "/home/ann", defaultUser: "ann" };

describe("parseSshSpec", () => {
  it.each([
    ["web01", { alias: "web01" }],
    ["kvm.example.org", { alias: "kvm.example.org" }],
    ["root@web01", { alias: "web01", user: "root" }],
    ["root@web01:2222", { alias: "web01", user: "root", port: 2222 }],
    ["web01:22", { alias: "web01", port: 22 }],
    ["10.0.0.5", { host: "10.0.0.5" }],
    ["admin@10.0.0.5:65535", { host: "10.0.0.5", user: "admin", port: 65535 }],
    ["[::1]:2222", { host: "::1", port: 2222 }],
    ["root@[fe80::1%eth0]:22", { host: "fe80::1%eth0", user: "root", port: 22 }],
    ["[2001:db8::5]", { host: "2001:db8::5" }],
    ["2001:db8::5", { host: "2001:db8::5" }],
    ["  web01  ", { alias: "web01" }],
    ["svc_backup@kvm-2", { alias: "kvm-2", user: "svc_backup" }],
  ])("parses %s", (text, expected) => {
    expect(parseSshSpec(text)).toEqual(expected);
  });

  it.each([
    ["", /empty/],
    ["   ", /empty/],
    ["@web01", /user name before @ is empty/],
    ["root@", /host name is empty/],
    ["root@:22", /host name is empty/],
    ["web01:0", /outside 1-65535/],
    ["web01:65536", /outside 1-65535/],
    ["web01:", /port "" is not a number/],
    ["web01:ssh", /port "ssh" is not a number/],
    ["web01:-1", /not a number/],
    ["[::1", /never closed/],
    ["[::1]2222", /unexpected/],
    ["[web01]:22", /not an IPv6 address/],
    ["we b01", /characters host names cannot have/],
    ["web01;rm -rf /", /characters host names cannot have/],
    ["-oProxyCommand=x", /characters host names cannot have/],
    ["ro ot@web01", /user name "ro ot"/],
    ["$(id)@web01", /user name/],
  ])("refuses %j with a clear INVALID_INPUT", (text, message) => {
    expect(() => parseSshSpec(text)).toThrow(
      expect.objectContaining({ code: "INVALID_INPUT", message: expect.stringMatching(message) }),
    );
  });
});

describe("resolveSshTarget", () => {
  const configText = `
# a comment
Host web01
  HostName 10.0.0.5
  User admin
  Port 2222
  IdentityFile ~/.ssh/web01_ed25519
  IdentityFile /etc/keys/shared

Host *.lab
  user labuser
  hostname %h.internal
  identityfile ~/.ssh/lab

Host bad-port
  Port twenty

Host canon
  CanonicalizeHostName yes
  CanonicalDomains example.org

Match exec "touch ${"MARKER"}"
  User hacked

Host *
  User fallback
  IdentityFile ~/.ssh/id_ed25519
`;

  it("uses HostName, User, Port and every IdentityFile of the alias, with ~ expanded", () => {
    expect(resolveSshTarget({ alias: "web01" }, { ...base, configText })).toEqual({
      host: "10.0.0.5",
      port: 2222,
      user: "admin",
      identityFiles: ["/home/ann/.ssh/web01_ed25519", "/etc/keys/shared", "/home/ann/.ssh/id_ed25519"],
    });
  });

  it("lets explicit values win over the config", () => {
    expect(
      resolveSshTarget(
        { alias: "web01", host: "192.168.1.9", user: "root", port: 22, identityFile: "~/.ssh/other" },
        { ...base, configText },
      ),
    ).toEqual({ host: "192.168.1.9", port: 22, user: "root", identityFiles: ["/home/ann/.ssh/other"] });
  });

  it("matches patterns case-insensitively on directive names and expands %h in HostName", () => {
    expect(resolveSshTarget({ alias: "db.lab" }, { ...base, configText })).toEqual({
      host: "db.lab.internal",
      port: 22,
      user: "labuser",
      identityFiles: ["/home/ann/.ssh/lab", "/home/ann/.ssh/id_ed25519"],
    });
  });

  it("falls back to the alias itself, port 22 and the default user without a config", () => {
    expect(resolveSshTarget({ alias: "kvm1" }, base)).toEqual({
      host: "kvm1",
      port: 22,
      user: "ann",
      identityFiles: [],
    });
    expect(resolveSshTarget({ host: "10.1.1.1", user: "root" }, { ...base, configText: "" })).toEqual({
      host: "10.1.1.1",
      port: 22,
      user: "root",
      identityFiles: [],
    });
  });

  it("applies config to a plain host name, as ssh would", () => {
    expect(resolveSshTarget({ host: "other" }, { ...base, configText })).toEqual({
      host: "other",
      port: 22,
      user: "fallback",
      identityFiles: ["/home/ann/.ssh/id_ed25519"],
    });
  });

  it("never runs Match exec or canonicalisation lookups", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "snapkeep-sshcfg-"));
    const marker = path.join(dir, "ran");
    try {
      const text = configText.replace("MARKER", marker);
      const target = resolveSshTarget({ alias: "canon" }, { ...base, configText: text });
      expect(target.user).toBe("fallback");
      expect(target.host).toBe("canon");
      expect(existsSync(marker)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("expands ssh_config tokens in IdentityFile, but not in a path given to Snapkeep", () => {
    const text = "Host lab\n  HostName 10.0.0.7\n  User admin\n  IdentityFile %d/.ssh/%r@%h:%p_%n_%u%%x_%C\n";
    expect(resolveSshTarget({ alias: "lab" }, { ...base, configText: text }).identityFiles).toEqual([
      "/home/ann/.ssh/admin@10.0.0.7:22_lab_ann%x_%C",
    ]);
    expect(
      resolveSshTarget({ alias: "lab", identityFile: "/keys/%h" }, { ...base, configText: text })
        .identityFiles,
    ).toEqual(["/keys/%h"]);
  });

  it("ignores IdentityFile none and expands a bare ~", () => {
    const text = "Host a\n  IdentityFile none\nHost b\n  IdentityFile ~\n";
    expect(resolveSshTarget({ alias: "a" }, { ...base, configText: text }).identityFiles).toEqual([]);
    expect(resolveSshTarget({ alias: "b" }, { ...base, configText: text }).identityFiles).toEqual([
      "/home/ann",
    ]);
  });

  it("refuses a config Port that is not a number", () => {
    expect(() => resolveSshTarget({ alias: "bad-port" }, { ...base, configText })).toThrow(
      expect.objectContaining({ code: "INVALID_INPUT", message: expect.stringContaining("Port twenty") }),
    );
    expect(resolveSshTarget({ alias: "bad-port", port: 2200 }, { ...base, configText }).port).toBe(2200);
  });

  it("needs a host or an alias", () => {
    expect(() => resolveSshTarget({ user: "root" }, base)).toThrow(
      expect.objectContaining({ code: "INVALID_INPUT" }),
    );
  });

  it("resolves what parseSshSpec returns", () => {
    expect(resolveSshTarget(parseSshSpec("root@web01"), { ...base, configText })).toEqual({
      host: "10.0.0.5",
      port: 2222,
      user: "root",
      identityFiles: ["/home/ann/.ssh/web01_ed25519", "/etc/keys/shared", "/home/ann/.ssh/id_ed25519"],
    });
  });
});

describe("host key fingerprints", () => {
  // The ed25519 key blob from a known_hosts line, and what `ssh-keygen -lf` prints for it.
  const blob = Buffer.from("AAAAC3NzaC1lZDI1NTE5AAAAIDk0YPdsXjb/f0NmZEHahN9Ysc4Ntrg7cKWhlk60S2Dy", "base64");
  const expected = "SHA256:O+8RpH1NCW9EcofufZGP5sYzzeR7UiNrrp1gngrdcmY";

  it("matches ssh-keygen's notation", () => {
    expect(fingerprintOf(blob)).toBe(expected);
    expect(isFingerprint(expected)).toBe(true);
    expect(keyTypeOf(blob)).toBe("ssh-ed25519");
  });

  it.each([
    ["SHA256:O+8RpH1NCW9EcofufZGP5sYzzeR7UiNrrp1gngrdcmY=", false],
    ["sha256:O+8RpH1NCW9EcofufZGP5sYzzeR7UiNrrp1gngrdcmY", false],
    ["SHA256:O+8RpH1NCW9EcofufZGP5sYzzeR7UiNrrp1gngrdcm", false],
    ["SHA256:O+8RpH1NCW9EcofufZGP5sYzzeR7UiNrrp1gngrdcmV", false],
    ["MD5:ab:cd", false],
    ["", false],
  ])("rejects %j", (text, ok) => {
    expect(isFingerprint(text)).toBe(ok);
  });

  it("names the right public key file for the offered key type", () => {
    expect(hostKeyFileFor("ssh-ed25519")).toBe("/etc/ssh/ssh_host_ed25519_key.pub");
    expect(hostKeyFileFor("ecdsa-sha2-nistp256")).toBe("/etc/ssh/ssh_host_ecdsa_key.pub");
    expect(hostKeyFileFor("rsa-sha2-512")).toBe("/etc/ssh/ssh_host_rsa_key.pub");
    expect(hostKeyFileFor(undefined)).toBe("/etc/ssh/ssh_host_ed25519_key.pub");
    expect(keyTypeOf(Buffer.from([0, 0]))).toBeUndefined();
  });

  it("accepts the pinned key", () => {
    expect(() => verifyHostKey(expected, expected, "root@web01:22", "web01")).not.toThrow();
  });

  it("refuses an unknown key with the fingerprint and the trust command", () => {
    expect(() => verifyHostKey(undefined, expected, "root@web01:22", "web01")).toThrow(
      expect.objectContaining({
        code: "HOST_KEY_UNKNOWN",
        message: expect.stringContaining(expected),
        action: expect.objectContaining({ do: "trust", noun: "host", name: "web01", offered: expected }),
        details: { expected: undefined, offered: expected },
      }),
    );
  });

  it("refuses a changed key naming both fingerprints", () => {
    const old = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    expect(() => verifyHostKey(old, expected, "root@web01:22", "web01")).toThrow(
      expect.objectContaining({
        code: "HOST_KEY_CHANGED",
        message: expect.stringMatching(new RegExp(`${old}.*${expected.replace(/[+/]/g, "\\$&")}`)),
        action: { do: "trust", noun: "host", name: "web01", offered: expected, changed: true },
        details: { expected: old, offered: expected },
      }),
    );
  });
});

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, describe, expect, it } from "vitest";

import { isEncryptedPrivateKey } from "../../core/infra/ssh/keys.js";

// Keys from the real ssh-keygen, so the check is tested against the formats people actually have.
const dir = mkdtempSync(join(tmpdir(), "snapkeep-keys-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function keygen(name: string, passphrase: string, ...options: string[]): string {
  const file = join(dir, name);
  execFileSync("ssh-keygen", ["-q", ...options, "-N", passphrase, "-C", "snapkeep-test", "-f", file]);
  return readFileSync(file, "latin1");
}

// PEM encryption needs at least five characters.
const passphrase = "correct horse";

describe("isEncryptedPrivateKey", () => {
  it.each([
    ["ed25519 (OpenSSH format)", ["-t", "ed25519"]],
    ["RSA in PEM format", ["-t", "rsa", "-b", "1024", "-m", "PEM"]],
    ["RSA in OpenSSH format", ["-t", "rsa", "-b", "1024"]],
    ["ECDSA in PKCS#8 format", ["-t", "ecdsa", "-m", "PKCS8"]],
  ])("tells an encrypted %s key from a plain one", (format, options) => {
    const name = format.replace(/\W+/g, "-");
    const plain = keygen(`${name}-plain`, "", ...options);
    const encrypted = keygen(`${name}-encrypted`, passphrase, ...options);
    expect(isEncryptedPrivateKey(plain)).toBe(false);
    expect(isEncryptedPrivateKey(encrypted)).toBe(true);
    // Windows line endings, as a key copied through some editors has.
    expect(isEncryptedPrivateKey(plain.replaceAll("\n", "\r\n"))).toBe(false);
    expect(isEncryptedPrivateKey(encrypted.replaceAll("\n", "\r\n"))).toBe(true);
  });

  it("recognises the PEM header and the PKCS#8 banner on their own", () => {
    expect(
      isEncryptedPrivateKey(
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
      ),
    ).toBe(true);
    expect(
      isEncryptedPrivateKey(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
      ),
    ).toBe(true);
  });

  it("reads PuTTY's Encryption line", () => {
    const ppk = (encryption: string): string =>
      `PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: ${encryption}\nComment: x\nPublic-Lines: 1\nAAAA\n`;
    expect(isEncryptedPrivateKey(ppk("none"))).toBe(false);
    expect(isEncryptedPrivateKey(ppk("aes256-cbc"))).toBe(true);
  });

  it("leaves anything that is not an encrypted key to ssh2 to report", () => {
    keygen("for-public", "", "-t", "ed25519");
    const publicKey = readFileSync(join(dir, "for-public.pub"), "latin1");
    expect(isEncryptedPrivateKey(publicKey)).toBe(false);
    expect(isEncryptedPrivateKey("")).toBe(false);
    expect(isEncryptedPrivateKey("not a key at all")).toBe(false);
    expect(
      isEncryptedPrivateKey(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbg==\n-----END OPENSSH PRIVATE KEY-----\n",
      ),
    ).toBe(false);
  });
});

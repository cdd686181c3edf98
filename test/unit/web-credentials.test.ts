/**
 * The web UI's credentials on disk (infra/web-credentials.ts): the admin password as a scrypt hash
 * that matches only the password, a damaged file refused with what to do, a certificate kept
 * across starts and made again for a new address, and a user's certificate with the wrong key
 * refused.
 */
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import {
  ownCertificate,
  passwordMatches,
  providedCertificate,
  readAdminPassword,
  setAdminPassword,
} from "../../core/infra/web-credentials.js";

let home = "";
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), "sk-web-"));
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

describe("the admin password", () => {
  it("matches the password it was set with, and nothing else", async () => {
    expect(readAdminPassword(home)).toBeNull();
    await setAdminPassword(home, "correct horse battery");
    const verifier = readAdminPassword(home) ?? expect.fail("a verifier");
    expect(await passwordMatches(verifier, "correct horse battery")).toBe(true);
    expect(await passwordMatches(verifier, "correct horse batterY")).toBe(false);
    expect(await passwordMatches(verifier, "")).toBe(false);
    await expect(setAdminPassword(home, "short")).rejects.toThrow(/at least 10 characters/);
  });

  it("refuses a file it did not write, saying how to set the password again", async () => {
    await setAdminPassword(home, "correct horse battery");
    const file = join(home, "web", "admin.json");
    const verifier = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    // A weaker cost than Snapkeep writes is not taken.
    writeFileSync(file, JSON.stringify({ ...verifier, N: 1024 }));
    expect(() => readAdminPassword(home)).toThrow(/set the password again with snapkeep serve passwd/);
    writeFileSync(file, "{");
    expect(() => readAdminPassword(home)).toThrow(/cannot be read/);
  });
});

describe("the certificate", () => {
  const now = new Date();

  it("is made once and kept, for this machine's names and a specific address", async () => {
    const first = await ownCertificate(home, "192.0.2.10", now);
    const again = await ownCertificate(home, "192.0.2.10", now);
    expect(again.fingerprint).toBe(first.fingerprint);
    const x509 = new X509Certificate(first.cert);
    expect(x509.checkIP("192.0.2.10")).toBe("192.0.2.10");
    expect(x509.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(x509.fingerprint256).toBe(first.fingerprint);
    // Listening on every address adds none to it and keeps it.
    expect((await ownCertificate(home, "0.0.0.0", now)).fingerprint).toBe(first.fingerprint);
    // Another specific address: a new certificate that names it.
    const moved = await ownCertificate(home, "192.0.2.11", now);
    expect(moved.fingerprint).not.toBe(first.fingerprint);
    expect(new X509Certificate(moved.cert).checkIP("192.0.2.11")).toBe("192.0.2.11");
  });

  it("takes a user's certificate only with its own key", async () => {
    const a = await ownCertificate(home, "192.0.2.10", now);
    const other = mkdtempSync(join(tmpdir(), "sk-web-"));
    try {
      const b = await ownCertificate(other, "192.0.2.10", now);
      writeFileSync(join(home, "a.pem"), a.cert);
      writeFileSync(join(home, "b.key"), b.key);
      writeFileSync(join(home, "a.key"), a.key);
      expect(providedCertificate(join(home, "a.pem"), join(home, "a.key"))).toMatchObject({
        fingerprint: a.fingerprint,
        selfSigned: false,
      });
      expect(() => providedCertificate(join(home, "a.pem"), join(home, "b.key"))).toThrow(
        /are not a PEM certificate and its key: the key is not the certificate's/,
      );
      expect(() => providedCertificate(join(home, "none.pem"), join(home, "a.key"))).toThrow(
        /The certificate .*none.pem cannot be read/,
      );
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

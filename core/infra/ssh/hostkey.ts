/**
 * Host key fingerprints in OpenSSH's own notation, so that what Snapkeep shows can be compared
 * character for character with `ssh-keygen -lf` run on the host.
 */
import { createHash } from "node:crypto";

import { SnapkeepError } from "../../errors.js";

/**
 * `SHA256:` plus the unpadded base64 SHA-256 of the wire-format public key blob (the bytes ssh2
 * hands to `hostVerifier`, and the base64 field of a known_hosts line). This is exactly the text
 * `ssh-keygen -lf` prints.
 */
export function fingerprintOf(keyBlob: Buffer): string {
  return `SHA256:${createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "")}`;
}

// 32 bytes are 43 base64 characters; the last one carries only 2 significant bits, so only 16 of
// the 64 letters can appear there. Checking that catches truncated or mistyped pastes.
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]$/;

export function isFingerprint(s: string): boolean {
  return FINGERPRINT.test(s);
}

/**
 * The key type named inside a wire-format key blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`, ...), or
 * undefined when the blob is malformed.
 */
export function keyTypeOf(keyBlob: Buffer): string | undefined {
  if (keyBlob.length < 4) {
    return undefined;
  }
  const length = keyBlob.readUInt32BE(0);
  if (length === 0 || length > 64 || keyBlob.length < 4 + length) {
    return undefined;
  }
  return keyBlob.subarray(4, 4 + length).toString("latin1");
}

/**
 * The host's public key file that matches the key type the server offered, so the person checks
 * the right file: a host without an ed25519 key offers ECDSA or RSA instead.
 */
export function hostKeyFileFor(keyType: string | undefined): string {
  const prefix = keyType?.startsWith("ecdsa-")
    ? "ecdsa"
    : keyType === "ssh-rsa" || keyType?.startsWith("rsa-")
      ? "rsa"
      : keyType === "ssh-dss"
        ? "dsa"
        : "ed25519";
  return `/etc/ssh/ssh_host_${prefix}_key.pub`;
}

/**
 * Accepts the offered key only when it is the one the person pinned. There is no
 * trust-on-first-use: an unknown key is refused with the fingerprint to check, so nothing ever
 * runs on a host whose identity nobody confirmed.
 *
 * `keyType` only picks the public key file named in the hint; it defaults to ed25519.
 */
export function verifyHostKey(
  expected: string | undefined,
  offered: string,
  hostLabel: string,
  hostName: string,
  keyType?: string,
  /** Which CLI noun names this machine: hypervisor hosts and export targets are trusted apart. */
  noun: "host" | "target" = "host",
): void {
  if (expected === offered) {
    return;
  }
  const details = { expected, offered };
  if (expected === undefined) {
    throw new SnapkeepError(
      "HOST_KEY_UNKNOWN",
      `The host key of ${hostLabel} is not trusted yet; the host offered ${offered}.`,
      {
        action: {
          do: "trust",
          noun,
          name: hostName,
          offered,
          checkWith: `ssh-keygen -lf ${hostKeyFileFor(keyType)}`,
        },
        details,
      },
    );
  }
  throw new SnapkeepError(
    "HOST_KEY_CHANGED",
    `The host key of ${hostLabel} has changed: expected ${expected}, but the host offered ${offered}.`,
    {
      action: { do: "trust", noun, name: hostName, offered, changed: true },
      details,
    },
  );
}

/**
 * Checks a fingerprint the person typed (read off the machine out of band) against the one the
 * machine offers now; only a match may be pinned.
 */
export function requireOfferedFingerprint(
  noun: "Host" | "Target",
  name: string,
  given: string,
  offered: string,
): void {
  if (!isFingerprint(given)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `"${given}" is not a SHA256 fingerprint (SHA256: and 43 characters).`,
    );
  }
  if (given !== offered) {
    throw new SnapkeepError(
      "HOST_KEY_CHANGED",
      `${noun} ${name} offers ${offered}, not the fingerprint you gave (${given}); nothing was trusted.`,
      {
        hint: "Check the fingerprint on the machine with: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub",
        details: { expected: given, offered },
      },
    );
  }
}

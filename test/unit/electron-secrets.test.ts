/** When the desktop may remember an SSH key passphrase, and what it says when it may not. */
import { describe, expect, it } from "vitest";
import { assertMayStorePassphrase, effectivePassphrase } from "../../electron/lib/secrets.js";

describe("assertMayStorePassphrase", () => {
  it("allows a real keyring on Linux, and the OS store elsewhere", () => {
    for (const backend of ["gnome_libsecret", "kwallet", "kwallet5", "kwallet6"] as const) {
      expect(() =>
        assertMayStorePassphrase({ platform: "linux", backend, encryptionAvailable: true }),
      ).not.toThrow();
    }
    expect(() =>
      assertMayStorePassphrase({ platform: "darwin", backend: null, encryptionAvailable: true }),
    ).not.toThrow();
    expect(() =>
      assertMayStorePassphrase({ platform: "win32", backend: null, encryptionAvailable: true }),
    ).not.toThrow();
  });

  it("refuses basic_text, saying why and pointing to ssh-agent", () => {
    try {
      assertMayStorePassphrase({ platform: "linux", backend: "basic_text", encryptionAvailable: true });
      expect.unreachable("basic_text must be refused");
    } catch (error) {
      expect(error).toMatchObject({
        code: "INVALID_INPUT",
        message: expect.stringMatching(
          /no keyring is available .*basic_text.*anyone who can read the settings file/,
        ),
        hint: expect.stringMatching(/ssh-add .*GNOME Keyring, KWallet/),
      });
    }
  });

  it("refuses before the keyring is known, and where the OS offers no secret storage", () => {
    expect(() =>
      assertMayStorePassphrase({ platform: "linux", backend: "unknown", encryptionAvailable: true }),
    ).toThrow(/cannot tell yet which keyring/);
    expect(() =>
      assertMayStorePassphrase({ platform: "darwin", backend: null, encryptionAvailable: false }),
    ).toThrow(/secret storage is not available/);
  });
});

describe("effectivePassphrase", () => {
  it("prefers SNAPKEEP_KEY_PASSPHRASE over a stored one, and has none when neither is there", () => {
    expect(effectivePassphrase("from-env", "stored")).toBe("from-env");
    expect(effectivePassphrase("", "stored")).toBe("stored");
    expect(effectivePassphrase(undefined, undefined)).toBeUndefined();
  });
});

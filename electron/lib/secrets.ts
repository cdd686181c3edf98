/**
 * SSH key passphrases in the desktop app. ssh-agent comes first: with SSH_AUTH_SOCK set and the key
 * loaded (`ssh-add`), Snapkeep never sees a passphrase (core/infra/runner/factory.ts passes an encrypted key over
 * when it has no passphrase, so the agent gets its turn). A passphrase the admin asks Snapkeep to
 * remember is encrypted with the OS keyring through Electron's safeStorage, and only then.
 */
import { SnapkeepError } from "../../core/errors.js";

/** What safeStorage.getSelectedStorageBackend() answers on Linux; other platforms have no such call. */
export type StorageBackend =
  "basic_text" | "gnome_libsecret" | "kwallet" | "kwallet5" | "kwallet6" | "unknown";

export interface KeyringFacts {
  readonly platform: NodeJS.Platform;
  /** Linux only; null elsewhere. */
  readonly backend: StorageBackend | null;
  /** safeStorage.isAsyncEncryptionAvailable(). */
  readonly encryptionAvailable: boolean;
}

/** Throws, saying why and what to do instead, unless a passphrase may be stored encrypted. */
export function assertMayStorePassphrase(facts: KeyringFacts): void {
  const useAgent =
    "Load the key into ssh-agent instead (ssh-add ~/.ssh/KEY) and start Snapkeep where SSH_AUTH_SOCK is set.";
  if (facts.platform === "linux" && facts.backend === "basic_text") {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "Snapkeep will not store the passphrase: no keyring is available (safeStorage would use basic_text, a key built into Electron, which anyone who can read the settings file can undo).",
      { hint: `${useAgent} Or run a keyring (GNOME Keyring, KWallet) and restart Snapkeep.` },
    );
  }
  if (facts.platform === "linux" && facts.backend === "unknown") {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "Snapkeep cannot tell yet which keyring protects stored secrets.",
      {
        hint: "Try again in a moment; the keyring is chosen when the app has started.",
      },
    );
  }
  if (!facts.encryptionAvailable) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "Snapkeep will not store the passphrase: the operating system's secret storage is not available.",
      { hint: useAgent },
    );
  }
}

/** The passphrase the SSH runner gets: one from the environment wins over a stored one. */
export function effectivePassphrase(
  fromEnvironment: string | undefined,
  stored: string | undefined,
): string | undefined {
  return fromEnvironment !== undefined && fromEnvironment !== "" ? fromEnvironment : stored;
}

/**
 * The key Snapkeep seals its export verifications with (bundle.ts, sealVerification). It lives in
 * the state folder, never on a target: whoever can write to a target cannot make an export look
 * verified. Losing it (a new computer, a wiped state folder) only means that exports show as
 * unverified until they are verified again.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, linkSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { SnapkeepError, describeError } from "../errors.js";
import { TEMP_INFIX, removeIfThere, writeNewFile } from "./store/files.js";

export const SEAL_KEY_FILE = "export-seal.key";

/**
 * Reads the key, making it first when there is none. Made whole in a temporary file and linked
 * into place, so a full disk never leaves a cut-short key, and two processes starting at once end
 * up with the one key that was linked first.
 */
export function openSealKey(home: string): Buffer {
  const path = join(home, SEAL_KEY_FILE);
  try {
    mkdirSync(home, { recursive: true, mode: 0o700 });
    const temp = `${path}${TEMP_INFIX}${randomBytes(6).toString("hex")}`;
    try {
      writeNewFile(temp, Buffer.from(`${randomBytes(32).toString("hex")}\n`), 0o600);
      linkSync(temp, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
        throw error;
      }
    } finally {
      removeIfThere(temp);
    }
  } catch (error) {
    const full = ["ENOSPC", "EDQUOT"].includes((error as NodeJS.ErrnoException).code ?? "");
    throw new SnapkeepError(
      full ? "NO_SPACE" : "STORE_CORRUPT",
      `Snapkeep could not make its export seal key in ${home} (${describeError(error)}), so nothing was exported or verified.`,
      {
        hint: full
          ? "Free some space there, then run the command again."
          : "Check that the folder is writable by this user.",
        cause: error,
      },
    );
  }
  const text = readFileSync(path, "utf8").trim();
  if (!/^[0-9a-f]{64}$/.test(text)) {
    throw new SnapkeepError(
      "STORE_CORRUPT",
      `${path} is not a key Snapkeep wrote; move it aside and Snapkeep makes a new one (exports then show as unverified until verified again).`,
    );
  }
  chmodSync(path, 0o600);
  return Buffer.from(text, "hex");
}

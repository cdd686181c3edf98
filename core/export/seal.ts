/**
 * The key Snapkeep seals its export verifications with (bundle.ts, sealVerification). It lives in
 * the state folder, never on a target: whoever can write to a target cannot make an export look
 * verified. Losing it (a new computer, a wiped state folder) only means that exports show as
 * unverified until they are verified again.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { SnapkeepError, describeError } from "../errors.js";

export const SEAL_KEY_FILE = "export-seal.key";

export function openSealKey(home: string): Buffer {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const path = join(home, SEAL_KEY_FILE);
  try {
    // Exclusive create: two processes starting at once end up with the one key that won.
    writeFileSync(path, `${randomBytes(32).toString("hex")}\n`, { flag: "wx", mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
      throw new SnapkeepError(
        "STORE_CORRUPT",
        `Snapkeep could not create ${path}: ${describeError(error)}.`,
        {
          cause: error,
        },
      );
    }
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

/**
 * A fixed token for `snapkeep serve --token-file FILE`: scripts and a Prometheus scraper
 * (bearer_token_file) need one that survives restarts. Made on first use (random, 0600), read
 * after; refused when others may read it or when it is too short to guess at.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";

import { SnapkeepError, describeError } from "../errors.js";

const MIN_TOKEN_CHARS = 32;

export function tokenFromFile(path: string): string {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `The token file ${path} cannot be read: ${describeError(error)}.`,
      );
    }
    const token = randomBytes(32).toString("base64url");
    try {
      writeFileSync(path, `${token}\n`, { mode: 0o600, flag: "wx" });
    } catch (made) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `The token file ${path} cannot be made: ${describeError(made)}.`,
      );
    }
    return token;
  }
  if ((mode & 0o077) !== 0) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `The token file ${path} may be read by others (mode ${(mode & 0o777).toString(8)}): chmod 600 ${path}.`,
    );
  }
  const token = readFileSync(path, "utf8").trim();
  if (!/^[A-Za-z0-9_-]+$/.test(token) || token.length < MIN_TOKEN_CHARS) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `The token in ${path} must be at least ${MIN_TOKEN_CHARS} letters, digits, - or _ (remove the file to have one made).`,
    );
  }
  return token;
}

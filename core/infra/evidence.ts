/**
 * Restore drills' screenshots: `drills/<id>.png` in Snapkeep's home, beside the settings file that
 * holds the records. Only ids of 12 hex digits name a file, so no record can point elsewhere.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { removeIfThere, replaceFiles } from "./store/files.js";

const ID = /^[0-9a-f]{12}$/;

function screenshotPath(home: string, id: string): string | null {
  return ID.test(id) ? join(home, "drills", `${id}.png`) : null;
}

export function saveScreenshot(home: string, id: string, png: Uint8Array): void {
  const path = screenshotPath(home, id);
  if (path === null) {
    return;
  }
  mkdirSync(join(home, "drills"), { recursive: true, mode: 0o700 });
  replaceFiles([{ path, content: png }], 0o600);
}

/** The PNG of a drill, or null when it has none. */
export function readScreenshot(home: string, id: string): Buffer | null {
  const path = screenshotPath(home, id);
  if (path === null) {
    return null;
  }
  try {
    return readFileSync(path);
  } catch {
    return null;
  }
}

export function removeScreenshots(home: string, ids: readonly string[]): void {
  for (const id of ids) {
    const path = screenshotPath(home, id);
    if (path !== null) {
      removeIfThere(path);
    }
  }
}

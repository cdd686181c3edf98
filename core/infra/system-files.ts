/**
 * Files of this computer's system configuration that Snapkeep manages (its systemd unit), read
 * and removed here so that the app layer stays free of file system calls.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";

/** The file's text, or null when there is none. */
export function readTextIfThere(path: string): string | null {
  return existsSync(path) ? readFileSync(path, "utf8") : null;
}

export function removeFile(path: string): void {
  rmSync(path);
}

/** What sd_booted() checks: systemd is the running init. */
export function systemdRunning(): boolean {
  return existsSync("/run/systemd/system");
}

/**
 * A lock file around short read-modify-write sections that several processes share: the CLI, the
 * daemon and the desktop app all write the settings of one SNAPKEEP_HOME. It is synchronous like
 * the store itself; a section lasts milliseconds, so only a process that collides waits, briefly.
 */
import { randomBytes } from "node:crypto";
import { closeSync, linkSync, openSync, readFileSync, renameSync, statSync, unlinkSync } from "node:fs";
import type { Stats } from "node:fs";
import { hostname } from "node:os";
import { dirname } from "node:path";

import { SnapkeepError } from "../../errors.js";
import { removeIfThere, settingsWriteError, writeAll } from "./files.js";

export interface FileLockTiming {
  /** How long to wait for another process's lock before giving up. */
  readonly waitMs: number;
  /** A lock file older than this was left by a process that died holding it. */
  readonly staleMs: number;
}

const DEFAULT_TIMING: FileLockTiming = { waitMs: 5000, staleMs: 30_000 };

interface Owner {
  readonly pid: number;
  readonly hostname: string;
  readonly token: string;
}

/** Locks this process holds: taking one again (an update inside an update) would wait on itself. */
const held = new Set<string>();

/**
 * Runs `section` while holding the lock file `path`, created with O_EXCL so that exactly one
 * process has it. Lock files age by the file system clock (mtime against the wall clock), which is
 * the only clock two processes share.
 */
export function withFileLock<T>(path: string, section: () => T, timing: FileLockTiming = DEFAULT_TIMING): T {
  const owner: Owner = { pid: process.pid, hostname: hostname(), token: randomBytes(12).toString("hex") };
  if (held.has(path)) {
    throw new Error(`${path} is already locked by this process: sections under one lock must not nest.`);
  }
  acquire(path, owner, timing);
  held.add(path);
  try {
    return section();
  } finally {
    held.delete(path);
    release(path, owner);
  }
}

function acquire(path: string, owner: Owner, timing: FileLockTiming): void {
  const deadline = Date.now() + timing.waitMs;
  for (;;) {
    if (tryCreate(path, owner)) {
      return;
    }
    if (takeOverIfStale(path, timing.staleMs)) {
      continue;
    }
    if (Date.now() >= deadline) {
      const holder = readOwner(path);
      throw new SnapkeepError(
        "TIMEOUT",
        `Another Snapkeep process${holder === undefined ? "" : ` (pid ${holder.pid} on ${holder.hostname})`} ` +
          `held the lock ${path} for more than ${Math.round(timing.waitMs / 1000)} s.`,
        { hint: `Try again; if no other Snapkeep process is running, delete ${path}.`, details: { path } },
      );
    }
    sleep(10 + Math.random() * 15);
  }
}

function tryCreate(path: string, owner: Owner): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      return false;
    }
    throw settingsWriteError(error, dirname(path));
  }
  try {
    writeAll(fd, Buffer.from(JSON.stringify(owner)));
  } catch (error) {
    // A lock file without its owner looks like one being written this instant, and would hold
    // every other process off until it ages: a full disk must not leave one behind.
    closeSync(fd);
    removeIfThere(path);
    throw settingsWriteError(error, dirname(path));
  }
  closeSync(fd);
  return true;
}

/**
 * Removes a lock left by a process that died holding it (too old, or its process is gone), and says
 * whether the caller should try again at once. The file is renamed away rather than deleted and
 * then checked, so that a fresh lock another process took meanwhile is put back, not broken.
 */
function takeOverIfStale(path: string, staleMs: number): boolean {
  const seen = statIfExists(path);
  if (seen === undefined) {
    return true;
  }
  const owner = readOwner(path);
  const tooOld = Date.now() - seen.mtimeMs > staleMs;
  if (!tooOld && (owner === undefined || !isGone(owner))) {
    return false;
  }
  const aside = `${path}.stale-${randomBytes(6).toString("hex")}`;
  try {
    renameSync(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      return true;
    }
    throw error;
  }
  const moved = statSync(aside);
  const same =
    moved.ino === seen.ino && moved.mtimeMs === seen.mtimeMs && readOwner(aside)?.token === owner?.token;
  if (!same) {
    try {
      linkSync(aside, path);
    } catch {
      // A third process locked meanwhile; the one whose lock was moved will find it gone on release.
    }
  }
  unlinkSync(aside);
  return true;
}

function release(path: string, owner: Owner): void {
  // Only our own lock: after a section slower than staleMs, another process may have taken over.
  if (readOwner(path)?.token !== owner.token) {
    return;
  }
  removeIfThere(path);
}

function statIfExists(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      return undefined;
    }
    throw error;
  }
}

/** The lock's owner, or undefined when the file is gone or was read between its creation and write. */
function readOwner(path: string): Owner | undefined {
  try {
    const data: unknown = JSON.parse(readFileSync(path, "utf8"));
    if (typeof data !== "object" || data === null) {
      return undefined;
    }
    const { pid, hostname: host, token } = data as Record<string, unknown>;
    return typeof pid === "number" && typeof host === "string" && typeof token === "string"
      ? { pid, hostname: host, token }
      : undefined;
  } catch {
    return undefined;
  }
}

/** Only a process on this machine can be checked; one elsewhere (a shared home) counts as alive. */
function isGone(owner: Owner): boolean {
  if (owner.hostname !== hostname()) {
    return false;
  }
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

function sleep(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

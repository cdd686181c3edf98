import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { SnapkeepError } from "../errors.js";

/**
 * One scheduler per state directory. Two schedulers on one SNAPKEEP_HOME would both run and prune
 * the same schedules, so the second refuses, naming the first. The lock is a file created with
 * O_EXCL (atomic); one left by a process that no longer exists is taken over.
 */
const ownerSchema = z.object({
  pid: z.number(),
  hostname: z.string(),
  app: z.string(),
  startedAt: z.string(),
});
export type LockOwner = z.infer<typeof ownerSchema>;

export interface SchedulerLock {
  readonly owner: LockOwner;
  release(): void;
}

export function acquireSchedulerLock(home: string, app: string, now: Date): SchedulerLock {
  const path = join(home, "scheduler.lock");
  const owner: LockOwner = { pid: process.pid, hostname: hostname(), app, startedAt: now.toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600);
      writeSync(fd, JSON.stringify(owner));
      closeSync(fd);
      let released = false;
      return {
        owner,
        release() {
          if (!released) {
            released = true;
            unlinkSync(path);
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
        throw error;
      }
      const current = readOwner(path);
      if (current !== null && isAlive(current)) {
        throw new SnapkeepError(
          "ALREADY_EXISTS",
          `Another Snapkeep scheduler already runs on ${home}: ${current.app}, pid ${current.pid} on ${current.hostname}, started ${current.startedAt}.`,
          {
            hint: "Stop that one first, or give this one its own SNAPKEEP_HOME.",
            details: { owner: current },
          },
        );
      }
      // Left behind by a process that is gone (or unreadable): take it over.
      unlinkSync(path);
    }
  }
  throw new SnapkeepError("ALREADY_EXISTS", `Could not take the scheduler lock ${path}.`);
}

function readOwner(path: string): LockOwner | null {
  try {
    const parsed = ownerSchema.safeParse(JSON.parse(readFileSync(path, "utf8")));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** A lock from another machine (a shared home on NFS) cannot be checked, so it counts as alive. */
function isAlive(owner: LockOwner): boolean {
  if (owner.hostname !== hostname()) {
    return true;
  }
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The live scheduler on this state directory, if any (for `jobs list` and the UI). */
export function schedulerOwner(home: string): LockOwner | null {
  const owner = readOwner(join(home, "scheduler.lock"));
  return owner !== null && isAlive(owner) ? owner : null;
}

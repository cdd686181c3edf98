import { randomBytes } from "node:crypto";
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { SnapkeepError } from "../errors.js";
import { isProcessAlive, processOwnerSchema, thisProcess } from "./process-identity.js";

/**
 * One scheduler per state directory. Two schedulers on one SNAPKEEP_HOME would both run and prune
 * the same schedules, so the second refuses, naming the first. The lock is a file created with
 * O_EXCL (atomic); one left by a process that no longer exists is taken over.
 */
const ownerSchema = processOwnerSchema.extend({
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
  const owner: LockOwner = { ...thisProcess(), app, startedAt: now.toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    // Written whole to a private file, then linked into place: the lock never exists half-written,
    // so another process can never read it empty and mistake it for a stale one.
    const temporary = `${path}.${process.pid}.${randomBytes(4).toString("hex")}`;
    writeFileSync(temporary, JSON.stringify(owner), { mode: 0o600 });
    try {
      linkSync(temporary, path);
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
      if (current !== null && isProcessAlive(current)) {
        throw new SnapkeepError(
          "ALREADY_EXISTS",
          `Another Snapkeep scheduler already runs on ${home}: ${current.app}, pid ${current.pid} on ${current.hostname}, started ${current.startedAt}.`,
          {
            hint: "Stop that one first, or give this one its own SNAPKEEP_HOME.",
            details: { owner: current },
          },
        );
      }
      // Left by a process that is gone: move it aside and check it is still the one we judged
      // stale before deleting it, so a lock another process just took is never broken.
      const aside = `${path}.stale.${randomBytes(4).toString("hex")}`;
      try {
        renameSync(path, aside);
        const moved = readOwner(aside);
        if (moved !== null && current !== null && moved.pid !== current.pid) {
          renameSync(aside, path); // someone else's fresh lock: put it back and look again
        } else {
          unlinkSync(aside);
        }
      } catch {
        // another process is taking it over at this moment; try again
      }
    } finally {
      unlinkSync(temporary);
    }
  }
  throw new SnapkeepError(
    "ALREADY_EXISTS",
    `Could not take the scheduler lock ${path}; another scheduler is starting.`,
    {
      action: { do: "check-jobs" },
    },
  );
}

function readOwner(path: string): LockOwner | null {
  try {
    const parsed = ownerSchema.safeParse(JSON.parse(readFileSync(path, "utf8")));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** The live scheduler on this state directory, if any (for `jobs list` and the UI). */
export function schedulerOwner(home: string): LockOwner | null {
  const owner = readOwner(join(home, "scheduler.lock"));
  return owner !== null && isProcessAlive(owner) ? owner : null;
}

import { randomBytes } from "node:crypto";
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
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
  bootId: z.string().optional(),
  startTicks: z.string().optional(),
});
export type LockOwner = z.infer<typeof ownerSchema>;

export interface SchedulerLock {
  readonly owner: LockOwner;
  release(): void;
}

export function acquireSchedulerLock(home: string, app: string, now: Date): SchedulerLock {
  const path = join(home, "scheduler.lock");
  const owner: LockOwner = {
    pid: process.pid,
    hostname: hostname(),
    app,
    startedAt: now.toISOString(),
    ...processIdentity(process.pid),
  };
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

/**
 * What identifies a process beyond its pid, which is reused after a reboot or a wrap-around: the
 * boot id and the process start time (Linux /proc). Elsewhere both are absent and only the pid counts.
 */
function processIdentity(pid: number): { bootId?: string; startTicks?: string } {
  try {
    const bootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const startTicks = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    return startTicks === undefined ? { bootId } : { bootId, startTicks };
  } catch {
    return {};
  }
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
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  // The pid exists; after a reboot or pid reuse it is some other process.
  const now = processIdentity(owner.pid);
  return !(
    (owner.bootId !== undefined && now.bootId !== undefined && owner.bootId !== now.bootId) ||
    (owner.startTicks !== undefined && now.startTicks !== undefined && owner.startTicks !== now.startTicks)
  );
}

/** The live scheduler on this state directory, if any (for `jobs list` and the UI). */
export function schedulerOwner(home: string): LockOwner | null {
  const owner = readOwner(join(home, "scheduler.lock"));
  return owner !== null && isAlive(owner) ? owner : null;
}

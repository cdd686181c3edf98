import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { z } from "zod";

/**
 * Which process owns something (the scheduler lock, a job in the journal), told apart from a later
 * process with the same pid: the boot id and the process start time (Linux /proc). Elsewhere both
 * are absent and only the pid counts.
 */
export const processOwnerSchema = z.object({
  pid: z.number().int().min(1),
  hostname: z.string().max(256),
  bootId: z.string().max(64).optional(),
  startTicks: z.string().max(32).optional(),
});
export type ProcessOwner = z.infer<typeof processOwnerSchema>;

/** This process, as an owner. */
export function thisProcess(): ProcessOwner {
  return { pid: process.pid, hostname: hostname(), ...processIdentity(process.pid) };
}

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

/**
 * Whether the owner still runs. One on another machine (a shared home on NFS) cannot be checked,
 * so it counts as alive: never report someone else's running work as interrupted.
 */
export function isProcessAlive(owner: ProcessOwner): boolean {
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

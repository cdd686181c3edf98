/**
 * Scheduled verification (PBS's verify jobs): bits on a target rot, disks and NAS firmware lie, and
 * a copy verified once is not a copy that restores a year later. Each run of a schedule that copies
 * re-hashes at most one of its own older copies on the target, the one checked longest ago, once
 * that check is older than REVERIFY_AFTER_MS: bounded work per run, and every copy is checked again
 * within a cycle of about (its copies × the copy interval) after it comes due.
 */
import type { CopyOwner, TargetCopy } from "./target-retention.js";

/** A copy's last check may be this old before a run checks it again. */
export const REVERIFY_AFTER_MS = 30 * 24 * 3600_000;

/**
 * The owner's verified copy to check again now, or null: the one whose last check is oldest, among
 * those checked more than `afterMs` before `now` (a copy with no known check counts as oldest).
 */
export function copyToReverify(
  copies: readonly TargetCopy[],
  owner: CopyOwner,
  now: Date,
  afterMs: number = REVERIFY_AFTER_MS,
): TargetCopy | null {
  // No check known, or one that does not read as a date: the copy is checked first.
  const checkedAt = (c: TargetCopy): number => {
    const at = Date.parse(c.checkedAt ?? "");
    return Number.isNaN(at) ? -Infinity : at;
  };
  const due = copies
    .filter((c) => c.state === "verified" && c.scheduleId === owner.id && c.vmUuid === owner.vmUuid)
    .filter((c) => !(checkedAt(c) > now.getTime() - afterMs))
    .sort((a, b) => checkedAt(a) - checkedAt(b) || a.id.localeCompare(b.id));
  return due[0] ?? null;
}

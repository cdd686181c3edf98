/**
 * Retention on a target: which of a schedule's copies the target keeps, by the same counts as on
 * the host (retention/gfs.ts), with a reason for each one kept.
 *
 * A schedule's copy is recognisable on the target by the schedule's id in its manifest: a
 * top-level `scheduleId` in manifest.json, written by a schedule's copy and absent from exports
 * made by hand (and from those of Snapkeeps before copies). The manifest is covered by the seal of
 * the verification, so the id of a verified copy is this Snapkeep's own word; copies in any other
 * state are never removed, so an id written by someone else can never steer a prune.
 */
import { retainDated, type RetentionPolicy, type Standing } from "../retention/gfs.js";

/** As bundle.ts's ExportState: only "verified" is a good copy. */
export type CopyState = "verified" | "partial" | "corrupt" | "unverified";

/** One export on a target, as the copy rules see it (the app reads it from the target's listing). */
export interface TargetCopy {
  /** The export's id on the target. */
  readonly id: string;
  readonly state: CopyState;
  /** From the manifest (or a partial export's job record); null when neither could be read. */
  readonly vmUuid: string | null;
  /** The manifest's `scheduleId`: the schedule that made this copy; null for a manual export. */
  readonly scheduleId: string | null;
  /** The copied snapshot: its tag on the host and when it was taken (the recovery point). */
  readonly snapshotTag: string | null;
  readonly snapshotCreatedAt: string | null;
  /** When its files were last hashed on the target (its sealed status); absent when unknown. */
  readonly checkedAt?: string | null | undefined;
}

export interface KeptCopy {
  readonly copy: TargetCopy;
  /** Why it stays, e.g. ["latest-1", "daily-1"], ["manual export"], ["partial"]. Never empty. */
  readonly reasons: readonly string[];
}

export interface TargetRetention {
  /** In input order. */
  readonly keep: readonly KeptCopy[];
  /** Oldest first: the order to remove them in, so an interruption leaves the newest. */
  readonly remove: readonly TargetCopy[];
}

/** The schedule whose copies are pruned: its id and its VM. */
export interface CopyOwner {
  readonly id: string;
  readonly vmUuid: string;
}

/**
 * Which copies to remove from a target after a copy of `owner` landed. Only the owner's verified
 * copies are counted and ever removed; its newest verified copy always stays; partial, corrupt and
 * unverified copies, manual exports and other schedules' or VMs' copies are kept with the reason.
 */
export function applyTargetRetention(
  copies: readonly TargetCopy[],
  policy: RetentionPolicy,
  owner: CopyOwner,
  now: Date,
): TargetRetention {
  // retainDated orders by createdAt and then tag: the export id, unique on a target, makes the
  // order of two copies of one instant independent of the listing's order.
  const dated = copies.map((copy) => ({ copy, createdAt: copy.snapshotCreatedAt ?? "", tag: copy.id }));
  const { keep, remove } = retainDated(dated, policy, now, (item) => standingOf(item.copy, owner));
  return {
    keep: keep.map(({ item, reasons }) => ({ copy: item.copy, reasons })),
    remove: remove
      .map((item) => item.copy)
      .sort((a, b) => Date.parse(a.snapshotCreatedAt ?? "") - Date.parse(b.snapshotCreatedAt ?? "")),
  };
}

function standingOf(copy: TargetCopy, owner: CopyOwner): Standing {
  if (copy.state !== "verified") {
    // Partial: the next copy resumes it; corrupt or unverified: left for a person to look at.
    return { keep: copy.state };
  }
  if (copy.vmUuid !== owner.vmUuid) {
    return { keep: `VM ${copy.vmUuid ?? "?"}` };
  }
  if (copy.scheduleId !== owner.id) {
    return { keep: copy.scheduleId === null ? "manual export" : `schedule ${copy.scheduleId}` };
  }
  return copy.snapshotCreatedAt === null ? { keep: "undated" } : "count";
}

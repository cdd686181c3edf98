/**
 * Snapshots of VM disks that are LVM logical volumes (`<disk type='block'><source dev='/dev/VG/LV'/>`).
 *
 * A Snapkeep snapshot of such a disk is a snapshot LV of it, in the same volume group:
 *
 * | origin    | snapshot                                    | revert                                  |
 * |-----------|---------------------------------------------|-----------------------------------------|
 * | thick LV  | COW LV, `lvcreate -s -L` (20% of origin)    | `lvconvert --merge`, then taken again   |
 * | thin LV   | thin LV, no size, activation skipped        | `lvconvert --merge`, then taken again   |
 *
 * Its identity lives on the host in LV tags: `snapkeep` (the owner mark), `snapkeep.tag.<base64url>`
 * (the same tag a qcow2 snapshot has inside its image) and `snapkeep.time.<ms>`. LVM's merge
 * consumes the snapshot it merges; Snapkeep takes it again at once (same tags, same time), so a
 * revert keeps the snapshot as it does for qcow2 and retention and pins see no difference.
 */
import { SnapkeepError } from "../errors.js";
import { commandLine } from "../domain/shell-quote.js";
import type { LvSnapshot, Snapshot } from "../domain/types.js";
import * as lvm from "../drivers/lvm/args.js";
import { decodeOriginTag } from "../drivers/lvm/args.js";
import {
  isInvalidSnapshot,
  isMerging,
  lvRoleOf,
  parseLvs,
  type LogicalVolume,
} from "../drivers/lvm/parse.js";
import type { ImageState } from "../drivers/qemu-img/parse.js";
import { runChecked } from "../infra/runner/checked.js";
import type { CommandRunner } from "../infra/runner/types.js";
import { formatBytes } from "../domain/bytes.js";

/** COW space of a thick snapshot as a share of its origin: LVM's own advice ("often 20% is enough"). */
export const COW_PERCENT = 20;
const COW_MIN_BYTES = 8 * 1024 * 1024;
/** dmeventd starts warning at 80%; so does Snapkeep, in job logs and listings. */
export const COW_WARN_PERCENT = 80;
/**
 * A full thin pool queues writes for 60 s, then fails them, for every LV in it: no snapshot is
 * added to a pool already this full.
 */
export const THIN_POOL_LIMIT_PERCENT = 90;

const LVM_TIMEOUT_MS = 60_000;
/** A thick merge copies the changed chunks back before lvconvert returns. */
const MERGE_TIMEOUT_MS = 30 * 60_000;

/** The LV a disk's source names: /dev/VG/LV or /dev/mapper/VG-LV. */
export function findLv(lvs: readonly LogicalVolume[], source: string): LogicalVolume | undefined {
  return lvs.find((lv) => lv.path === source || lv.dmPath === source);
}

/** Why an LV-backed disk cannot be snapshotted, or null. */
export function lvDiskBlocker(target: string, source: string, lv: LogicalVolume | undefined): string | null {
  if (lv === undefined) {
    return `${target} (${source}) is a block device but not an LVM logical volume; Snapkeep snapshots qcow2 files and LVM volumes`;
  }
  const role = lvRoleOf(lv.attr);
  if (role === "thick-snapshot") {
    return `${target} is itself an LVM snapshot (${lv.vg}/${lv.name}); LVM cannot snapshot a thick snapshot`;
  }
  if (role === "thin-pool" || role === "other") {
    return `${target} is an LVM ${lv.segtype} volume (${lv.vg}/${lv.name}), which has no snapshots`;
  }
  if (isMerging(lv)) {
    return `${target} (${lv.vg}/${lv.name}) has a snapshot merge waiting; it runs when the LV is next activated while closed`;
  }
  return null;
}

/** The snapshot LVs of one origin, in the shape the qcow2 code gives an image's snapshots. */
export function lvImageState(lvs: readonly LogicalVolume[], origin: LogicalVolume): ImageState {
  const snapshots = lvs
    .filter(
      (s) =>
        s.vg === origin.vg &&
        (s.origin === origin.name ||
          (s.origin === null && s.snapkeepTag !== null && decodeOriginTag(s.tags) === origin.name)),
    )
    .map((s) => ({
      id: s.uuid,
      // A snapshot LV without Snapkeep's tags is someone else's: listed as foreign, under its LV name.
      name: s.snapkeepTag ?? s.name,
      createdAt: s.createdAt ?? new Date(0),
      vmStateSize: 0,
      lv: toLvSnapshot(s),
    }));
  return { virtualSize: origin.size, actualSize: lvAllocated(origin, snapshots), format: "raw", snapshots };
}

/**
 * What an LV disk takes in its volume group (types.ts, Disk.allocatedSize): a thick LV all of its
 * size plus its thick snapshots' COW space; a thin LV the share of its size that is mapped (lvs
 * knows it only while the LV is active; null otherwise).
 */
export function lvAllocated(
  origin: LogicalVolume,
  snapshots: readonly { readonly lv: LvSnapshot }[],
): number | null {
  if (lvRoleOf(origin.attr) === "thin-volume") {
    return origin.usedPercent === null ? null : Math.round((origin.size * origin.usedPercent) / 100);
  }
  return origin.size + snapshots.reduce((sum, s) => sum + (s.lv.cowBytes ?? 0), 0);
}

function toLvSnapshot(s: LogicalVolume): LvSnapshot {
  const thin = lvRoleOf(s.attr) === "thin-volume";
  return {
    vg: s.vg,
    name: s.name,
    path: s.path,
    thin,
    usedPercent: thin ? null : s.usedPercent,
    cowBytes: thin ? null : s.size,
    invalid: isInvalidSnapshot(s),
  };
}

/** COW space for a thick snapshot: 20% of the origin (at least 8 MiB, or `atLeast`), in whole extents. */
export function cowBytes(originBytes: number, extentBytes: number, atLeast = 0): number {
  const wanted = Math.max(Math.ceil((originBytes * COW_PERCENT) / 100), COW_MIN_BYTES, atLeast);
  const extent = Math.max(extentBytes, 1);
  return Math.ceil(wanted / extent) * extent;
}

export interface LvSnapshotPlan {
  readonly target: string;
  readonly vg: string;
  readonly origin: string;
  readonly name: string;
  readonly thin: boolean;
  /** COW space of a thick snapshot; null for a thin one. */
  readonly sizeBytes: number | null;
}

/**
 * What `lvcreate` will make for each disk, after checking that it fits: the thick snapshots of a
 * volume group together within its free space, no thin snapshot in a pool at or above 90%.
 * Refused with the numbers, before anything is made.
 */
export function planLvSnapshots(
  disks: readonly { readonly target: string; readonly lv: LogicalVolume }[],
  lvs: readonly LogicalVolume[],
  tag: string,
  atLeast: ReadonlyMap<string, number> = new Map(),
): LvSnapshotPlan[] {
  const plans = disks.map(({ target, lv }): LvSnapshotPlan => {
    const thin = lvRoleOf(lv.attr) === "thin-volume";
    return {
      target,
      vg: lv.vg,
      origin: lv.name,
      name: lvm.snapshotLvName(lv.name, tag),
      thin,
      sizeBytes: thin ? null : cowBytes(lv.size, lv.vgExtentSize, atLeast.get(target) ?? 0),
    };
  });
  for (const vg of new Set(plans.map((p) => p.vg))) {
    const needed = plans.filter((p) => p.vg === vg).reduce((sum, p) => sum + (p.sizeBytes ?? 0), 0);
    const free = lvs.find((lv) => lv.vg === vg)?.vgFree ?? 0;
    if (needed > free) {
      throw new SnapkeepError(
        "NO_SPACE",
        `The snapshot needs ${formatBytes(needed)} of COW space in volume group ${vg}, which has ${formatBytes(free)} free; nothing was made.`,
        {
          action: { do: "free-vg-or-fewer-disks", vg },
          details: { vg, neededBytes: needed, freeBytes: free },
        },
      );
    }
  }
  for (const plan of plans.filter((p) => p.thin)) {
    const origin = lvs.find((lv) => lv.vg === plan.vg && lv.name === plan.origin);
    const pool = lvs.find((lv) => lv.vg === plan.vg && lv.name === origin?.pool);
    const data = pool?.usedPercent ?? 0;
    const meta = pool?.metadataPercent ?? 0;
    if (pool !== undefined && (data >= THIN_POOL_LIMIT_PERCENT || meta >= THIN_POOL_LIMIT_PERCENT)) {
      throw new SnapkeepError(
        "NO_SPACE",
        `Thin pool ${pool.vg}/${pool.name} is ${data}% full (metadata ${meta}%) of ${formatBytes(pool.size)}; Snapkeep adds no snapshot to a pool at ${THIN_POOL_LIMIT_PERCENT}% or more, because a full pool stops writes to every volume in it.`,
        {
          hint: `Delete old snapshots in the pool, or grow it: lvextend -L +SIZE ${pool.vg}/${pool.name}`,
          details: { pool: `${pool.vg}/${pool.name}`, dataPercent: data, metadataPercent: meta },
        },
      );
    }
  }
  return plans;
}

/** Job-log warnings for a VM's LVM snapshots: COW space at 80% or more, and invalid ones. */
/**
 * What a merge revert would break before it runs, for the revert's plan (its dry run too):
 * - a snapshot Snapkeep did not make: LVM's merge consumes it, and it is not Snapkeep's to consume;
 * - another thick snapshot of the same origin without the COW space to absorb the merge: the merge
 *   rewrites every chunk the merged snapshot kept, and each sibling copies those chunks before they
 *   change, so one with less free space than that runs full and turns invalid (pinned ones too).
 * Pure: the snapshot's disks and the host's lvs in, a refusal (or nothing) out.
 */
export function mergeRefusal(
  snapshot: Snapshot,
  targets: readonly string[],
  lvs: readonly LogicalVolume[],
): SnapkeepError | null {
  const merged = snapshot.disks.filter((d) => targets.includes(d.target) && d.lv !== undefined);
  if (merged.length > 0 && snapshot.kind === "foreign") {
    const first = merged[0]?.lv;
    return new SnapkeepError(
      "INVALID_INPUT",
      `Snapshot "${snapshot.name}" is an LVM snapshot Snapkeep did not make; reverting to it merges it into its volume, which consumes it, so Snapkeep leaves that to you.`,
      {
        hint: `If that is what you want, stop the VM and run: ${commandLine`lvconvert --merge ${first?.vg ?? "VG"}/${first?.name ?? "LV"}`}`,
      },
    );
  }
  const short: string[] = [];
  for (const disk of merged) {
    const lv = lvs.find((l) => l.vg === disk.lv?.vg && l.name === disk.lv.name);
    if (lv === undefined || lv.origin === null || disk.lv?.thin === true) {
      continue;
    }
    const rewritten = (lv.size * (lv.usedPercent ?? 100)) / 100;
    for (const sibling of lvs) {
      if (
        sibling.vg !== lv.vg ||
        sibling.origin !== lv.origin ||
        sibling.name === lv.name ||
        lvRoleOf(sibling.attr) !== "thick-snapshot" ||
        isInvalidSnapshot(sibling)
      ) {
        continue;
      }
      const free = (sibling.size * (100 - (sibling.usedPercent ?? 0))) / 100;
      if (free < rewritten) {
        short.push(
          `${sibling.vg}/${sibling.name} has ${formatBytes(free)} of COW space free, the merge rewrites ${formatBytes(rewritten)} of ${lv.origin}`,
        );
      }
    }
  }
  if (short.length === 0) {
    return null;
  }
  return new SnapkeepError(
    "NO_SPACE",
    `Reverting to "${snapshot.name}" would overflow other snapshots of the same volume, which LVM then marks invalid: ${short.join("; ")}. Nothing was reverted.`,
    {
      hint: "Give them room first (lvextend -L +SIZE VG/LV for each), or delete the ones you do not need, then revert again.",
    },
  );
}

export function lvSnapshotWarnings(snapshots: readonly Snapshot[]): string[] {
  return snapshots.flatMap((s) =>
    s.disks.flatMap((d) => {
      if (d.lv === undefined) {
        return [];
      }
      if (d.lv.invalid) {
        return [
          `Snapshot "${s.name}" of ${d.target} is invalid: its COW space (${d.lv.vg}/${d.lv.name}) ran out, so it no longer holds the past content. It can only be deleted.`,
        ];
      }
      if (d.lv.usedPercent !== null && d.lv.usedPercent >= COW_WARN_PERCENT) {
        return [
          `Snapshot "${s.name}" of ${d.target} has used ${d.lv.usedPercent}% of its COW space; at 100% it becomes invalid. Grow it (lvextend -L +SIZE ${d.lv.vg}/${d.lv.name}) or delete it.`,
        ];
      }
      return [];
    }),
  );
}

export async function readLvs(runner: CommandRunner): Promise<LogicalVolume[]> {
  const result = await runChecked(runner, lvm.lvsArgs(), "Listing LVM volumes", {
    timeoutMs: LVM_TIMEOUT_MS,
  });
  return parseLvs(result.stdout);
}

async function lvmRun(
  runner: CommandRunner,
  argv: readonly string[],
  doing: string,
  timeoutMs = LVM_TIMEOUT_MS,
): Promise<void> {
  await runChecked(runner, argv, doing, { timeoutMs });
}

/** Makes the planned snapshot LVs; on a failure, removes the ones this call made and rethrows. */
export async function createLvSnapshots(
  runner: CommandRunner,
  plans: readonly LvSnapshotPlan[],
  tag: string,
  takenAt: Date,
): Promise<{ undo(): Promise<string[]> }> {
  const made: LvSnapshotPlan[] = [];
  const undo = async (): Promise<string[]> => {
    const left: string[] = [];
    for (const plan of made) {
      const result = await runner
        .run(lvm.removeByNameArgs(plan.vg, plan.name), { timeoutMs: LVM_TIMEOUT_MS })
        .catch(() => null);
      if (result?.code !== 0) {
        left.push(plan.target);
      }
    }
    return left;
  };
  try {
    for (const plan of plans) {
      const request = { vg: plan.vg, origin: plan.origin, name: plan.name, tag, takenAt };
      await lvmRun(
        runner,
        plan.sizeBytes === null
          ? lvm.thinSnapshotArgs(request)
          : lvm.thickSnapshotArgs({ ...request, sizeBytes: plan.sizeBytes }),
        `Snapshotting ${plan.target} (${plan.vg}/${plan.origin})`,
      );
      made.push(plan);
    }
  } catch (error) {
    await undo();
    throw error;
  }
  return { undo };
}

/** Deletes one snapshot LV, addressed by the UUID Snapkeep listed (never by a name alone). */
export async function removeLvSnapshot(
  runner: CommandRunner,
  target: string,
  uuid: string,
  lv: LvSnapshot,
): Promise<void> {
  await lvmRun(
    runner,
    lvm.removeByUuidArgs(lv.vg, uuid),
    `Deleting the snapshot of ${target} (${lv.vg}/${lv.name})`,
  );
}

/**
 * Reverts an LV to its snapshot with `lvconvert --merge`, on a VM that is not running.
 *
 * LVM starts a merge only when neither LV is open; otherwise it silently defers it to the next
 * activation, and "revert" would seem to do nothing. So an open LV is refused first, and a merge
 * that still did not start is pushed by re-activating the (closed) origin, or reported.
 * The merge consumes the snapshot; it is taken again at once with the same tags and time.
 */
export async function mergeLvSnapshot(
  runner: CommandRunner,
  target: string,
  originSource: string,
  uuid: string,
): Promise<void> {
  const before = await readLvs(runner);
  const origin = findLv(before, originSource);
  const snapshot = before.find((lv) => lv.uuid === uuid);
  if (origin === undefined || snapshot === undefined) {
    throw new SnapkeepError("NOT_FOUND", `The snapshot of ${target} is no longer on the host.`);
  }
  refuseUnmergeable(target, origin, snapshot);
  await lvmRun(
    runner,
    lvm.mergeArgs(snapshot.vg, snapshot.name),
    `Merging the snapshot into ${target}`,
    MERGE_TIMEOUT_MS,
  );
  await startDeferredMerge(runner, target, originSource, origin, snapshot);
  const tag = snapshot.snapkeepTag;
  if (tag === null) {
    return; // a foreign snapshot: merged as asked, not taken again under Snapkeep's name
  }
  await retakeMergedSnapshot(runner, target, origin, snapshot, tag);
}

/** Refuses a merge LVM could not do now or at all: an invalid snapshot, an open LV, a detached one. */
function refuseUnmergeable(target: string, origin: LogicalVolume, snapshot: LogicalVolume): void {
  if (isInvalidSnapshot(snapshot)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `The snapshot of ${target} (${snapshot.vg}/${snapshot.name}) is invalid (its COW space ran out); it cannot be reverted to.`,
      { hint: "Delete it; choose an older or newer snapshot." },
    );
  }
  const open = [origin, snapshot].filter(isOpen);
  if (open.length > 0) {
    throw new SnapkeepError(
      "VM_RUNNING",
      `${open.map((lv) => `${lv.vg}/${lv.name}`).join(" and ")} ${open.length === 1 ? "is" : "are"} open (another VM, a mount, or a process holds it), so LVM would only merge the snapshot once it is closed; nothing was reverted.`,
      { hint: "Close it (stop the VM or unmount it; lsblk and fuser show who holds it), then revert again." },
    );
  }
  if (snapshot.origin === null) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `LVM detached the thin snapshot ${snapshot.vg}/${snapshot.name} from ${origin.name} when another snapshot of it was merged (a revert); it keeps its content but can no longer be merged.`,
      {
        hint: `Copy it back by hand with the VM stopped (dd if=${snapshot.path} of=${origin.path} bs=4M after lvchange -ay -K ${snapshot.vg}/${snapshot.name}), or export it.`,
      },
    );
  }
}

/**
 * A deferred merge exits 0 too ("Delaying merge since origin is open"): the snapshot then hides
 * from lvs and the origin shows 'O'. Re-activating a closed origin starts it; a merge that still
 * waits is reported, since the disk would keep its current content.
 */
async function startDeferredMerge(
  runner: CommandRunner,
  target: string,
  originSource: string,
  origin: LogicalVolume,
  snapshot: LogicalVolume,
): Promise<void> {
  const pending = (lvs: readonly LogicalVolume[]): boolean => {
    const now = findLv(lvs, originSource);
    return lvs.some((lv) => lv.uuid === snapshot.uuid) || (now !== undefined && isMerging(now));
  };
  let after = await readLvs(runner);
  const stalled = findLv(after, originSource);
  if (pending(after) && stalled !== undefined && !isOpen(stalled)) {
    await lvmRun(
      runner,
      lvm.deactivateArgs(origin.vg, origin.name),
      `Deactivating ${origin.vg}/${origin.name}`,
    );
    await lvmRun(
      runner,
      lvm.activateArgs(origin.vg, origin.name, false),
      `Activating ${origin.vg}/${origin.name}`,
    );
    after = await readLvs(runner);
  }
  if (pending(after)) {
    throw new SnapkeepError(
      "COMMAND_FAILED",
      `LVM deferred the merge of ${snapshot.vg}/${snapshot.name} into ${origin.vg}/${origin.name}: it runs the next time ${origin.name} is activated while nothing holds it open. Until then ${target} keeps its current content.`,
      {
        hint: `Close what holds it (lsblk, fuser -v ${origin.path}), then run lvchange -an ${origin.vg}/${origin.name} && lvchange -ay ${origin.vg}/${origin.name} and check with lvs.`,
      },
    );
  }
}

/** The merge consumed Snapkeep's snapshot: take it again, same name, kind, tag and time. */
async function retakeMergedSnapshot(
  runner: CommandRunner,
  target: string,
  origin: LogicalVolume,
  snapshot: LogicalVolume,
  tag: string,
): Promise<void> {
  const thin = lvRoleOf(snapshot.attr) === "thin-volume";
  const request = {
    vg: snapshot.vg,
    origin: origin.name,
    name: snapshot.name,
    tag,
    takenAt: snapshot.createdAt ?? new Date(0),
  };
  await lvmRun(
    runner,
    thin ? lvm.thinSnapshotArgs(request) : lvm.thickSnapshotArgs({ ...request, sizeBytes: snapshot.size }),
    `Keeping the snapshot of ${target} after the merge`,
  );
}

/** Held open by some process: lv_device_open, or the 6th attr character. */
function isOpen(lv: LogicalVolume): boolean {
  return lv.open || lv.attr[5] === "o";
}

/**
 * Runs `use` with the snapshot LV readable at its path: a thin snapshot (activation skipped) is
 * activated with -K for the read, its device marked read-only, and deactivated after; a thick one
 * is active already.
 */
export async function withLvSnapshotReadable<T>(
  runner: CommandRunner,
  target: string,
  uuid: string,
  use: (path: string) => Promise<T>,
): Promise<T> {
  const readable = await openLvSnapshotReadable(runner, target, uuid);
  try {
    return await use(readable.path);
  } finally {
    await readable.release();
  }
}

/**
 * The snapshot LV made readable at its path until `release` (withLvSnapshotReadable, for a use
 * that outlives one call: a file browse that stays open). Only what was activated here is
 * deactivated again; `readOnly` marks its device read-only in the kernel before it is used.
 */
export async function openLvSnapshotReadable(
  runner: CommandRunner,
  target: string,
  uuid: string,
  options: { readOnly?: boolean } = {},
): Promise<{ path: string; release: () => Promise<void> }> {
  const snapshot = await requireLvSnapshot(runner, target, uuid);
  // Users in this process of the same LV share one activation: the last one out deactivates it
  // (the first one's lvchange -an would fail while another still reads, and be left active).
  const key = `${runner.label}\0${snapshot.vg}/${snapshot.name}`;
  const shared = activations.get(key);
  let activation: Activation;
  if (shared !== undefined) {
    activation = shared;
    activation.users++;
  } else {
    activation = { users: 1, activated: !snapshot.active };
    activations.set(key, activation);
  }
  const release = async (): Promise<void> => {
    activation.users--;
    if (activation.users > 0) {
      return;
    }
    activations.delete(key);
    if (activation.activated) {
      await runner
        .run(lvm.deactivateArgs(snapshot.vg, snapshot.name), { timeoutMs: LVM_TIMEOUT_MS })
        .catch(() => undefined);
    }
  };
  try {
    if (shared === undefined && activation.activated) {
      await lvmRun(
        runner,
        lvm.activateArgs(snapshot.vg, snapshot.name, true),
        `Activating the snapshot of ${target}`,
      );
    }
    // Every activation made here (a thin snapshot, for an export, a copy or a browse) is marked
    // read-only before anything opens it, and a browse marks it also when it was active already:
    // from here on no write reaches the snapshot through its device. A thick snapshot, active as
    // it is, is left as LVM keeps it.
    if (options.readOnly === true || (shared === undefined && activation.activated)) {
      const marked = await runner.run(lvm.setReadOnlyArgs(snapshot.path), { timeoutMs: LVM_TIMEOUT_MS });
      if (marked.code !== 0) {
        throw new SnapkeepError(
          "COMMAND_FAILED",
          `Could not make the snapshot of ${target} read-only on ${runner.label}: ${marked.stderr.trim()}`,
        );
      }
    }
  } catch (error) {
    await release();
    throw error;
  }
  let held = true;
  return {
    path: snapshot.path,
    release: async () => {
      if (held) {
        held = false;
        await release();
      }
    },
  };
}

interface Activation {
  users: number;
  /** Whether it was activated here (an LV found active is left active). */
  readonly activated: boolean;
}

const activations = new Map<string, Activation>();

/** The snapshot LV, still there and still valid (a copy of an invalid one would be garbage). */
export async function requireLvSnapshot(
  runner: CommandRunner,
  target: string,
  uuid: string,
): Promise<LogicalVolume> {
  const snapshot = (await readLvs(runner)).find((lv) => lv.uuid === uuid);
  if (snapshot === undefined) {
    throw new SnapkeepError("NOT_FOUND", `The snapshot of ${target} was deleted meanwhile.`);
  }
  if (isInvalidSnapshot(snapshot)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `The snapshot of ${target} (${snapshot.vg}/${snapshot.name}) is invalid: its COW space ran out, so it no longer holds the past content.`,
      { hint: "Delete it; use another snapshot." },
    );
  }
  return snapshot;
}

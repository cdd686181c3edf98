/**
 * Taking, listing, pinning and deleting snapshots, manual and scheduled alike. A snapshot is made
 * on the hypervisor first and recorded second; deleting refuses what Snapkeep did not make and what
 * is pinned.
 */
import { SnapkeepError, afterDone } from "../errors.js";
import { withConsistency } from "../domain/consistency.js";
import { summariseDefinition, type DefinitionSummary } from "../domain/definition-summary.js";
import { resolveSnapshot, chooseSnapshotDisks } from "../domain/selection.js";
import { defaultSnapshotName, encodeSnapshotTag, validateSnapshotName } from "../domain/snapshot-tag.js";
import type { Snapshot } from "../domain/types.js";
import { libvirtGuestOps } from "../hypervisor/guest.js";
import { lvSnapshotWarnings } from "../hypervisor/lvm.js";
import type { Annotations } from "./annotations.js";
import type { Hosts } from "./hosts.js";
import type { Vms } from "./vms.js";

/** The longest note a snapshot keeps (the settings schema says the same). */
const MAX_NOTE_LENGTH = 2000;

export interface CreateSnapshotRequest {
  readonly disks?: readonly string[];
  readonly name?: string;
  readonly note?: string;
}

export interface TakeSnapshotRequest extends CreateSnapshotRequest {
  readonly kind: "manual" | "scheduled" | "safety";
  /** The schedule that takes it, for scheduled snapshots. */
  readonly origin?: string;
  /** Least COW space per disk for thick LVM snapshots: a revert's safety snapshot must outlast the merge. */
  readonly cowAtLeast?: ReadonlyMap<string, number>;
}

export interface TakenSnapshot {
  readonly snapshot: Snapshot;
  /** What went less well than asked (no guest agent, an LVM snapshot filling up): for the job log. */
  readonly warnings: readonly string[];
  readonly log: readonly string[];
}

export interface SnapshotsDeps {
  readonly hosts: Hosts;
  readonly vms: Vms;
  readonly annotations: Annotations;
  readonly now: () => Date;
}

/** A definition summary, or undefined when the XML cannot be summarised (never fails a snapshot). */
export function summaryOf(xml: string): DefinitionSummary | undefined {
  try {
    return summariseDefinition(xml);
  } catch {
    return undefined;
  }
}

export class Snapshots {
  constructor(private readonly deps: SnapshotsDeps) {}

  async list(hostName: string, vmRef: string): Promise<Snapshot[]> {
    return [...(await this.deps.vms.get(hostName, vmRef)).snapshots];
  }

  async create(hostName: string, vmRef: string, request: CreateSnapshotRequest = {}): Promise<Snapshot> {
    return (await this.take(hostName, vmRef, { ...request, kind: "manual" })).snapshot;
  }

  /**
   * Takes a manual, scheduled or safety snapshot: the disks are checked first, the name must be new
   * on the VM, and the guest is made as consistent as its settings and agent allow (see
   * withConsistency). The consistency reached is recorded with the snapshot.
   */
  async take(hostName: string, vmRef: string, request: TakeSnapshotRequest): Promise<TakenSnapshot> {
    const { hosts, vms, annotations, now } = this.deps;
    // What was typed is checked first: a bad name is wrong whatever the VM, and needs no host.
    const name = request.name ?? defaultSnapshotName(request.kind, now());
    validateSnapshotName(name);
    if (request.note !== undefined && request.note.length > MAX_NOTE_LENGTH) {
      throw new SnapkeepError("INVALID_INPUT", `A note can be at most ${MAX_NOTE_LENGTH} characters long.`);
    }
    const libvirt = hosts.libvirt(hostName);
    const inspection = await vms.find(hostName, vmRef);
    const targets = chooseSnapshotDisks(inspection.vm, request.disks);
    const tag = encodeSnapshotTag(request.kind, name, request.origin);
    if (vms.withSnapshots(inspection).snapshots.some((s) => s.name === name || s.tag === tag)) {
      throw new SnapkeepError(
        "ALREADY_EXISTS",
        `${inspection.vm.name} already has a snapshot named "${name}".`,
        {
          hint: "Choose another name.",
        },
      );
    }
    const taken = await withConsistency(
      libvirtGuestOps(libvirt.runner, libvirt.uri, inspection.vm.uuid, inspection.xml.guestAgentChannel),
      annotations.consistencyOf(hostName, inspection.vm.uuid),
      inspection.vm.active,
      () =>
        libvirt.createSnapshot(inspection, targets, tag, {
          takenAt: now(),
          ...(request.cowAtLeast === undefined ? {} : { cowAtLeast: request.cowAtLeast }),
        }),
    );
    const definition = summaryOf(inspection.xml.raw);
    try {
      annotations.recordNew(hostName, inspection.vm.uuid, tag, {
        note: request.note !== undefined && request.note.length > 0 ? request.note : null,
        pinned: false,
        consistency: taken.consistency,
        ...(definition === undefined ? {} : { definition }),
      });
    } catch (error) {
      // The snapshot is on the host by now (a full state folder, say): the error must not read
      // as if nothing had happened.
      throw afterDone(
        error,
        `The snapshot "${name}" of ${inspection.vm.name} was made`,
        "its note and consistency record were not saved",
      );
    }
    const after = vms.withSnapshots(await libvirt.refreshImages(inspection));
    const created = after.snapshots.find((s) => s.tag === tag);
    if (created === undefined) {
      throw new SnapkeepError(
        "UNEXPECTED_OUTPUT",
        `The snapshot "${name}" was made but cannot be found on the host.`,
      );
    }
    // The job log is where a schedule's owner looks: LVM snapshots filling up are said there.
    return {
      snapshot: created,
      warnings: [...taken.warnings, ...taken.result, ...lvSnapshotWarnings(after.snapshots)],
      log: taken.log,
    };
  }

  /**
   * Deletes a snapshot Snapkeep made; refuses snapshots made by other tools and pinned ones. With
   * `dryRun` every check runs and the snapshot that would go is returned, but nothing is deleted.
   */
  async delete(
    hostName: string,
    vmRef: string,
    snapshotRef: string,
    options: { dryRun?: boolean } = {},
  ): Promise<Snapshot> {
    const libvirt = this.deps.hosts.libvirt(hostName);
    const inspection = await this.deps.vms.find(hostName, vmRef);
    const snapshot = resolveSnapshot(this.deps.vms.withSnapshots(inspection), snapshotRef);
    if (snapshot.kind === "foreign") {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `Snapshot "${snapshot.name}" was not made by Snapkeep, so Snapkeep will not delete it.`,
        { hint: "Delete it with the tool that made it (virsh snapshot-delete or qemu-img snapshot -d)." },
      );
    }
    if (snapshot.pinned) {
      throw new SnapkeepError("INVALID_INPUT", `Snapshot "${snapshot.name}" is pinned.`, {
        action: { do: "unpin", host: hostName, vm: inspection.vm.name, snapshot: snapshot.name },
      });
    }
    if (options.dryRun === true) {
      return snapshot;
    }
    await libvirt.deleteSnapshot(inspection, snapshot);
    this.deps.annotations.forget(hostName, inspection.vm.uuid, snapshot.tag);
    return snapshot;
  }

  /**
   * Removes a schedule's snapshots by tag: for its prune and its crash cleanup. Checked again here,
   * against what the host and the settings say now, so a snapshot pinned while the prune was being
   * computed, or any snapshot that schedule did not make, is never removed.
   */
  async removeScheduled(
    hostName: string,
    vmUuid: string,
    tags: readonly string[],
    scheduleId: string,
  ): Promise<void> {
    const libvirt = this.deps.hosts.libvirt(hostName);
    let inspection = await libvirt.inspect(vmUuid);
    for (const tag of tags) {
      const snapshot = this.deps.vms.withSnapshots(inspection).snapshots.find((s) => s.tag === tag);
      if (
        snapshot !== undefined &&
        snapshot.kind === "scheduled" &&
        snapshot.origin === scheduleId &&
        !snapshot.pinned
      ) {
        await libvirt.deleteSnapshot(inspection, snapshot);
        this.deps.annotations.forget(hostName, vmUuid, tag);
        inspection = await libvirt.refreshImages(inspection);
      }
    }
  }

  async setPinned(hostName: string, vmRef: string, snapshotRef: string, pinned: boolean): Promise<Snapshot> {
    const vm = await this.deps.vms.get(hostName, vmRef);
    const snapshot = resolveSnapshot(vm, snapshotRef);
    this.deps.annotations.annotate(hostName, vm.uuid, snapshot.tag, { pinned });
    return { ...snapshot, pinned };
  }

  /**
   * Thaws a guest that a crashed job may have left frozen (a frozen guest stops writing to disk).
   * Harmless on a guest that is not frozen; quiet when the VM is off or has no agent.
   */
  async thawAfterCrash(hostName: string, vmUuid: string): Promise<boolean> {
    const libvirt = this.deps.hosts.libvirt(hostName);
    const inspection = await libvirt.inspect(vmUuid);
    const ops = libvirtGuestOps(libvirt.runner, libvirt.uri, vmUuid, inspection.xml.guestAgentChannel);
    if (!inspection.vm.active || !(await ops.agentAnswers())) {
      return false;
    }
    await ops.thaw();
    return true;
  }
}

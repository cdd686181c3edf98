/**
 * Reverting disks to a snapshot, with a safety snapshot taken just before (undo is a revert to it),
 * and the number of safety snapshots kept per VM. The only writer of the settings' `safetyKeep`.
 */
import { SnapkeepError, describeError } from "../errors.js";
import { diffDefinitions } from "../domain/definition-summary.js";
import { MAX_SAFETY_KEPT } from "../domain/limits.js";
import { keepNewest } from "../domain/retention/newest.js";
import { resolveSnapshot } from "../domain/selection.js";
import { MAX_SNAPSHOT_NAME_LENGTH, encodeSnapshotTag } from "../domain/snapshot-tag.js";
import type { LvSnapshot, RevertProgress, RevertResult, Snapshot } from "../domain/types.js";
import type { LogicalVolume } from "../drivers/lvm/parse.js";
import { libvirtGuestOps } from "../hypervisor/guest.js";
import type { LibvirtHost, VmInspection } from "../hypervisor/libvirt.js";
import { mergeRefusal } from "../hypervisor/lvm.js";
import type { SettingsStore } from "../infra/store/store.js";
import type { Annotations } from "./annotations.js";
import type { Hosts } from "./hosts.js";
import { summaryOf, type Snapshots } from "./snapshots.js";
import type { Vms } from "./vms.js";

export type { RevertProgress, RevertResult };

export interface RevertRequest {
  readonly disks?: readonly string[];
  /** Check everything and say what would happen, but change nothing. */
  readonly dryRun?: boolean;
  /** Consent to stop a running VM, revert, and start it again. */
  readonly stopRunning?: boolean;
  /** Consent to power off a guest that ignores the shutdown request. */
  readonly force?: boolean;
  /**
   * Consent to power a running VM off at once, without a shutdown request: for a guest known to
   * ignore one (no OS, no ACPI), which would otherwise be waited for in vain. Needs `stopRunning`.
   */
  readonly powerOffNow?: boolean;
  readonly shutdownTimeoutMs?: number;
  /** Where the stop, revert and start are, for a countdown while the guest shuts down. */
  readonly onProgress?: (progress: RevertProgress) => void;
}

export interface RevertDeps {
  readonly store: SettingsStore;
  readonly hosts: Hosts;
  readonly vms: Vms;
  readonly snapshots: Snapshots;
  readonly annotations: Annotations;
  readonly now: () => Date;
  readonly sleep: (ms: number) => Promise<void>;
}

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 120_000;

/** "before revert to nightly (2026-11-26 13:40:05)", within the name length limit. */
export function safetySnapshotName(target: Snapshot, now: Date): string {
  const stamp = localStamp(now);
  const what = target.kind === "safety" ? "before undo" : `before revert to ${target.name}`;
  const room = MAX_SNAPSHOT_NAME_LENGTH - stamp.length - 3;
  return `${[...what].slice(0, room).join("")} (${stamp})`;
}

/**
 * "2026-12-06 23:51:05 +01:00": the time in this computer's zone, as the UI shows Taken, with the
 * offset, so the name says the same instant as the Taken column here and is not ambiguous when
 * read from another zone (it said UTC without saying so, an hour off Taken in Berlin).
 */
export function localStamp(now: Date): string {
  const pad = (n: number): string => String(Math.abs(n)).padStart(2, "0");
  const offset = -now.getTimezoneOffset();
  const zone = `${offset < 0 ? "-" : "+"}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`;
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())} ${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())} ${zone}`;
}

/** COW space a thick safety snapshot needs to survive merging `lv` into its origin: all it holds, and 20% more. */
function mergeCowBytes(lv: LvSnapshot, lvs: readonly LogicalVolume[]): number {
  const size = lvs.find((l) => l.vg === lv.vg && l.name === lv.name)?.size ?? 0;
  return Math.ceil((size * (lv.usedPercent ?? 100)) / 100 + size * 0.2);
}

/** The disks a revert touches: those asked for, each of which the snapshot must hold, valid. */
function revertTargets(
  snapshot: Snapshot,
  asked: readonly string[] | undefined,
  inspection: VmInspection,
): readonly string[] {
  const targets = asked ?? snapshot.disks.map((d) => d.target);
  for (const target of targets) {
    if (!snapshot.disks.some((d) => d.target === target)) {
      throw new SnapkeepError("NOT_FOUND", `Snapshot "${snapshot.name}" does not include disk ${target}.`, {
        hint: `It includes: ${snapshot.disks.map((d) => d.target).join(", ")}.`,
      });
    }
  }
  const invalid = snapshot.disks.filter((d) => targets.includes(d.target) && d.lv?.invalid === true);
  if (invalid.length > 0) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `Snapshot "${snapshot.name}" is invalid on ${invalid.map((d) => d.target).join(", ")}: its LVM COW space ran out, so it no longer holds the past content.`,
      { hint: "Delete it and revert to another snapshot." },
    );
  }
  const refusal = mergeRefusal(snapshot, targets, inspection.lvs);
  if (refusal !== null) {
    throw refusal;
  }
  return targets;
}

export class Revert {
  constructor(private readonly deps: RevertDeps) {}

  /**
   * Reverts disks to a snapshot. A running VM is only stopped with consent (`stopRunning`), and
   * started again afterwards; a guest that ignores the shutdown is only powered off with `force`.
   */
  async revert(
    hostName: string,
    vmRef: string,
    snapshotRef: string,
    request: RevertRequest = {},
  ): Promise<RevertResult> {
    const { hosts, vms, annotations } = this.deps;
    const libvirt = hosts.libvirt(hostName);
    const inspection = await vms.find(hostName, vmRef);
    const snapshot = resolveSnapshot(vms.withSnapshots(inspection), snapshotRef);
    const targets = revertTargets(snapshot, request.disks, inspection);
    const wasActive = inspection.vm.active;
    const saved = annotations.of(hostName, inspection.vm.uuid, snapshot.tag)?.definition;
    const current = summaryOf(inspection.xml.raw);
    const safetyName = safetySnapshotName(snapshot, this.deps.now());
    const result = {
      vm: inspection.vm.name,
      snapshot,
      disks: targets,
      restarted: wasActive,
      needsConsent: wasActive && request.stopRunning !== true,
      safety: { name: safetyName, tag: encodeSnapshotTag("safety", safetyName) },
      definitionChanges:
        saved === undefined || current === undefined ? null : diffDefinitions(saved, current),
      prunedSafety: [] as string[],
      // Asked only of a running VM, and only in the plan, which the wizard shows before the choice
      // of how to stop it (the real run does what was chosen).
      guestAgent:
        wasActive && request.dryRun === true
          ? await libvirtGuestOps(
              libvirt.runner,
              libvirt.uri,
              inspection.vm.uuid,
              inspection.xml.guestAgentChannel,
            ).agentAnswers()
          : null,
    };
    if (request.dryRun === true) {
      // The safety snapshot this revert adds pushes the oldest unpinned ones past the limit.
      const safety = vms.withSnapshots(inspection).snapshots.filter((s) => s.kind === "safety" && !s.pinned);
      const prunedSafety = keepNewest(safety, this.safetyKeep() - 1).remove.map((s) => s.name);
      return { ...result, prunedSafety, dryRun: true };
    }
    if (result.needsConsent) {
      throw new SnapkeepError(
        "VM_RUNNING",
        `${inspection.vm.name} is ${inspection.vm.state}; reverting its disks needs it stopped.`,
        { action: { do: "allow-stop" } },
      );
    }
    await this.#stopRevertStart(libvirt, inspection, snapshot, targets, safetyName, request);
    const prunedSafety = await this.#pruneSafety(hostName, inspection.vm.uuid).catch(() => []);
    return { ...result, prunedSafety, dryRun: false };
  }

  /** Reverts to the newest safety snapshot: the state just before the last revert. */
  async undo(
    hostName: string,
    vmRef: string,
    request: Omit<RevertRequest, "disks"> = {},
  ): Promise<RevertResult> {
    const vm = await this.deps.vms.get(hostName, vmRef);
    const latest = vm.snapshots.filter((s) => s.kind === "safety").at(-1);
    if (latest === undefined) {
      throw new SnapkeepError("NOT_FOUND", `${vm.name} has no safety snapshot: there is no revert to undo.`);
    }
    return this.revert(hostName, vm.uuid, latest.tag, {
      ...request,
      disks: latest.disks.map((d) => d.target),
    });
  }

  safetyKeep(): number {
    return this.deps.store.read().safetyKeep;
  }

  setSafetyKeep(keep: number): void {
    if (!Number.isInteger(keep) || keep < 1 || keep > MAX_SAFETY_KEPT) {
      throw new SnapkeepError("INVALID_INPUT", `Keep 1 to ${MAX_SAFETY_KEPT} safety snapshots per VM.`);
    }
    this.deps.store.update((s) => ({ ...s, safetyKeep: keep }));
  }

  /**
   * Stops a running VM, takes the safety snapshot of the same disks, reverts them, and starts the
   * VM again. A failure after the stop still starts the VM, and says so.
   */
  async #stopRevertStart(
    libvirt: LibvirtHost,
    before: VmInspection,
    snapshot: Snapshot,
    targets: readonly string[],
    safetyName: string,
    request: RevertRequest,
  ): Promise<void> {
    const wasActive = before.vm.active;
    const wasPaused = before.vm.state === "paused";
    // LVM's merge writes back every chunk the snapshot kept; the safety snapshot taken just before
    // receives all of them as changes, so its COW space must hold them (plus the usual share).
    const cowAtLeast = new Map(
      snapshot.disks.flatMap((d) =>
        d.lv === undefined || d.lv.thin || !targets.includes(d.target)
          ? []
          : [[d.target, mergeCowBytes(d.lv, before.lvs)] as const],
      ),
    );
    let inspection = before;
    const report = request.onProgress ?? ((): void => undefined);
    if (wasActive) {
      const then = request.force === true ? "power-off" : "give-up";
      const stop = {
        timeoutMs: request.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS,
        force: request.force === true,
        powerOffNow: request.powerOffNow === true,
        onWait: (deadline: Date) =>
          report({
            phase: "shutting-down",
            deadline: deadline.toISOString(),
            secondsLeft: Math.max(0, Math.ceil((deadline.getTime() - this.deps.now().getTime()) / 1000)),
            then,
          }),
        onPowerOff: () => report({ phase: "powering-off" }),
      } as const;
      await libvirt.stop(inspection.vm, stop, this.deps.sleep, this.deps.now);
      inspection = await libvirt.inspect(inspection.vm.uuid);
    }
    report({ phase: "reverting" });
    try {
      // The safety net first, of the same disks, while the VM is off: undo is a revert to it.
      await this.deps.snapshots.take(libvirt.hostName, inspection.vm.uuid, {
        kind: "safety",
        name: safetyName,
        disks: targets,
        cowAtLeast,
      });
      inspection = await libvirt.refreshImages(inspection);
      await libvirt.revertDisks(inspection, snapshot, targets);
    } catch (error) {
      // Never leave a VM the user had running stopped without saying so: start it, then report.
      if (wasActive && error instanceof SnapkeepError) {
        const restarted = await libvirt.start(inspection.vm.uuid, wasPaused).then(
          () => "it was started again",
          (startError: unknown) => `starting it again failed too (${describeError(startError)})`,
        );
        throw new SnapkeepError(
          error.code,
          `${error.message} ${inspection.vm.name} was stopped for the revert; ${restarted}.`,
          {
            hint: "Disks reverted before the failure keep the snapshot's content; the others are unchanged.",
            cause: error,
          },
        );
      }
      throw error;
    }
    if (wasActive) {
      report({ phase: "starting" });
      await libvirt.start(inspection.vm.uuid, wasPaused);
    }
  }

  /** Deletes the oldest unpinned safety snapshots of a VM beyond the configured number. */
  async #pruneSafety(hostName: string, vmUuid: string): Promise<string[]> {
    const keep = this.safetyKeep();
    const vm = await this.deps.vms.get(hostName, vmUuid);
    const safety = vm.snapshots.filter((s) => s.kind === "safety" && !s.pinned);
    const removed: string[] = [];
    for (const snapshot of keepNewest(safety, keep).remove) {
      await this.deps.snapshots.delete(hostName, vmUuid, snapshot.tag);
      removed.push(snapshot.name);
    }
    return removed;
  }
}

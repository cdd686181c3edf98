import { resolve } from "node:path";
import { SnapkeepError, afterDone, describeError, quoteInput } from "../errors.js";
import {
  MAX_SNAPSHOT_NAME_LENGTH,
  defaultSnapshotName,
  encodeSnapshotTag,
  validateSnapshotName,
} from "../domain/snapshot-tag.js";
import {
  diffDefinitions,
  summariseDefinition,
  type DefinitionSummary,
} from "../domain/definition-summary.js";
import { MAX_SAFETY_KEPT } from "../domain/limits.js";
import { validateName } from "../domain/names.js";
import { groupSnapshots } from "../domain/snapshots.js";
import { chooseSnapshotDisks, resolveSnapshot, validateLibvirtUri } from "../domain/selection.js";
import type {
  HostConfig,
  LvSnapshot,
  RevertResult,
  Snapshot,
  SshHostConfig,
  VmWithSnapshots,
} from "../domain/types.js";
import type { LogicalVolume } from "../drivers/lvm/parse.js";

export type { RevertResult };
import { createRunner, createSshRunner, type SshEnvironment } from "../infra/runner/factory.js";
import { LibvirtHost, type VmInspection } from "../hypervisor/libvirt.js";
import type { CommandRunner } from "../infra/runner/types.js";
import { requireOfferedFingerprint } from "../infra/ssh/hostkey.js";
import { parseSshSpec } from "../infra/ssh/config.js";
import { commandLine } from "../domain/shell-quote.js";
import { libvirtGuestOps } from "../hypervisor/guest.js";
import { lvSnapshotWarnings, mergeRefusal } from "../hypervisor/lvm.js";
import { withConsistency } from "../domain/consistency.js";
import { snapshotKey, type Annotation, type Consistency, type Settings } from "../domain/settings.js";
import type { SettingsStore } from "../infra/store/store.js";
import { settleLimit } from "../domain/concurrency.js";

export interface ServiceDeps {
  readonly store: SettingsStore;
  readonly now: () => Date;
  readonly sleep: (ms: number) => Promise<void>;
  readonly ssh: SshEnvironment;
  /** Overrides how runners are made (benchmarks count calls); defaults to local spawn / ssh2. */
  readonly runnerFor?: (host: HostConfig) => CommandRunner;
}

export interface HostVms {
  readonly host: string;
  readonly vms: readonly VmWithSnapshots[];
  /** Set when this host could not be listed; the other hosts are still listed. */
  readonly error: string | null;
  /** What to do about the error, when Snapkeep knows (trust the key, install virsh, ...). */
  readonly hint: string | null;
}

export interface CreateSnapshotRequest {
  readonly disks?: readonly string[];
  readonly name?: string;
  readonly note?: string;
}

export interface RevertRequest {
  readonly disks?: readonly string[];
  /** Check everything and say what would happen, but change nothing. */
  readonly dryRun?: boolean;
  /** Consent to stop a running VM, revert, and start it again. */
  readonly stopRunning?: boolean;
  /** Consent to power off a guest that ignores the shutdown request. */
  readonly force?: boolean;
  readonly shutdownTimeoutMs?: number;
}

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 120_000;

/** A definition summary, or undefined when the XML cannot be summarised (never fails a snapshot). */
function summaryOf(xml: string): DefinitionSummary | undefined {
  try {
    return summariseDefinition(xml);
  } catch {
    return undefined;
  }
}

/** COW space a thick safety snapshot needs to survive merging `lv` into its origin: all it holds, and 20% more. */
function mergeCowBytes(lv: LvSnapshot, lvs: readonly LogicalVolume[]): number {
  const size = lvs.find((l) => l.vg === lv.vg && l.name === lv.name)?.size ?? 0;
  return Math.ceil((size * (lv.usedPercent ?? 100)) / 100 + size * 0.2);
}

/** "before revert to nightly (2026-11-26 13:40:05)", within the name length limit. */
export function safetySnapshotName(target: Snapshot, now: Date): string {
  const stamp = now.toISOString().slice(0, 19).replace("T", " ");
  const what = target.kind === "safety" ? "before undo" : `before revert to ${target.name}`;
  const room = MAX_SNAPSHOT_NAME_LENGTH - stamp.length - 3;
  return `${[...what].slice(0, room).join("")} (${stamp})`;
}

/**
 * The one application API: the CLI, the daemon, the web server and the Electron main process all
 * drive Snapkeep through this class and nothing else.
 */
export class SnapkeepService {
  readonly #deps: ServiceDeps;
  readonly #runners = new Map<string, CommandRunner>();

  constructor(deps: ServiceDeps) {
    this.#deps = deps;
  }

  listHosts(): HostConfig[] {
    return this.#deps.store.read().hosts;
  }

  getHost(name: string): HostConfig {
    const host = this.listHosts().find((h) => h.name === name);
    if (host === undefined) {
      throw new SnapkeepError("NOT_FOUND", `There is no host named ${quoteInput(name)}.`, {
        hint: "See your hosts with: snapkeep host list",
      });
    }
    return host;
  }

  addLocalHost(name: string, uri = "qemu:///system"): HostConfig {
    validateName("host name", name);
    validateLibvirtUri(uri);
    const host: HostConfig = { name, kind: "local", uri };
    this.#saveNewHost(host);
    return host;
  }

  /**
   * Adds an SSH host. The host key is fetched first: with `trust` it must match and is pinned;
   * without it the host is saved untrusted, nothing runs on it, and the offered fingerprint is
   * returned so the user can check it and run `snapkeep host trust`.
   */
  async addSshHost(request: {
    name: string;
    ssh: string;
    identityFile?: string;
    uri?: string;
    trust?: string;
  }): Promise<{ host: SshHostConfig; offeredFingerprint: string; trusted: boolean }> {
    validateName("host name", request.name);
    if (request.uri !== undefined) {
      validateLibvirtUri(request.uri);
    }
    const spec = parseSshSpec(request.ssh);
    const host: SshHostConfig = {
      name: request.name,
      kind: "ssh",
      uri: request.uri ?? "qemu:///system",
      ...spec,
      // Stored absolute: the CLI may run from another folder next time.
      ...(request.identityFile === undefined ? {} : { identityFile: resolve(request.identityFile) }),
    };
    if (this.listHosts().some((h) => h.name === host.name)) {
      throw new SnapkeepError("ALREADY_EXISTS", `A host named "${host.name}" already exists.`);
    }
    const offered = await this.#probe(host);
    if (request.trust !== undefined) {
      requireOfferedFingerprint("Host", host.name, request.trust, offered);
    }
    const saved: SshHostConfig = request.trust === undefined ? host : { ...host, hostKey: offered };
    this.#saveNewHost(saved);
    return { host: saved, offeredFingerprint: offered, trusted: request.trust !== undefined };
  }

  /** Pins the host key the host offers now, which must equal `fingerprint` (checked out of band). */
  async trustHost(name: string, fingerprint: string): Promise<SshHostConfig> {
    const host = this.getHost(name);
    if (host.kind !== "ssh") {
      throw new SnapkeepError("INVALID_INPUT", `${name} is this computer; there is no host key to trust.`);
    }
    const offered = await this.#probe(host);
    requireOfferedFingerprint("Host", name, fingerprint, offered);
    const updated: SshHostConfig = { ...host, hostKey: offered };
    this.#deps.store.update((s) => ({ ...s, hosts: s.hosts.map((h) => (h.name === name ? updated : h)) }));
    await this.#dropRunner(name);
    return updated;
  }

  /** The fingerprint a host offers right now, without trusting it. */
  async offeredFingerprint(name: string): Promise<string> {
    const host = this.getHost(name);
    if (host.kind !== "ssh") {
      throw new SnapkeepError("INVALID_INPUT", `${name} is this computer; it has no host key.`);
    }
    return this.#probe(host);
  }

  async removeHost(name: string): Promise<void> {
    this.getHost(name);
    // Notes and pins stay: adding the host again under the same name brings them back, so a
    // mistaken remove cannot make pinned snapshots deletable.
    this.#deps.store.update((s) => ({ ...s, hosts: s.hosts.filter((h) => h.name !== name) }));
    await this.#dropRunner(name);
  }

  /** VMs with their disks and snapshots on each host; an offline host does not hide the others. */
  async listVms(hostName?: string): Promise<HostVms[]> {
    const hosts = hostName === undefined ? this.listHosts() : [this.getHost(hostName)];
    const results = await settleLimit(hosts, 4, async (host) => {
      const inspections = await this.#libvirt(host).listVms();
      const annotations = this.#deps.store.read().annotations; // one read for the whole host
      return inspections.map((i) => this.#withSnapshots(i, annotations));
    });
    return hosts.map((host, index) => {
      const result = results[index];
      if (result?.status === "fulfilled") {
        return { host: host.name, vms: result.value, error: null, hint: null };
      }
      const reason: unknown = result?.reason;
      return {
        host: host.name,
        vms: [],
        error: describeError(reason),
        hint: reason instanceof SnapkeepError ? (reason.hint ?? null) : null,
      };
    });
  }

  async getVm(hostName: string, vmName: string): Promise<VmWithSnapshots> {
    return this.#withSnapshots(await this.#find(hostName, vmName));
  }

  /** libvirt and the command runner of a trusted host, for work beside snapshots (exports, imports). */
  libvirtFor(hostName: string): LibvirtHost {
    return this.#libvirt(this.getHost(hostName));
  }

  async listSnapshots(hostName: string, vmName: string): Promise<Snapshot[]> {
    return [...(await this.getVm(hostName, vmName)).snapshots];
  }

  async createSnapshot(
    hostName: string,
    vmName: string,
    request: CreateSnapshotRequest = {},
  ): Promise<Snapshot> {
    return (await this.takeSnapshot(hostName, vmName, { ...request, kind: "manual" })).snapshot;
  }

  /**
   * Takes a manual or scheduled snapshot: the disks are checked first, the name must be new on the
   * VM, and the guest is made as consistent as its settings and agent allow (see withConsistency).
   * The consistency reached is recorded with the snapshot.
   */
  async takeSnapshot(
    hostName: string,
    vmRef: string,
    request: CreateSnapshotRequest & {
      kind: "manual" | "scheduled" | "safety";
      origin?: string;
      /** Least COW space per disk for thick LVM snapshots: a revert's safety snapshot must outlast the merge. */
      cowAtLeast?: ReadonlyMap<string, number>;
    },
  ): Promise<{ snapshot: Snapshot; warnings: readonly string[]; log: readonly string[] }> {
    // What was typed is checked first: a bad name is wrong whatever the VM, and needs no host.
    const name = request.name ?? defaultSnapshotName(request.kind, this.#deps.now());
    validateSnapshotName(name);
    if (request.note !== undefined && request.note.length > 2000) {
      throw new SnapkeepError("INVALID_INPUT", "A note can be at most 2000 characters long.");
    }
    const host = this.getHost(hostName);
    const inspection = await this.#find(hostName, vmRef);
    const targets = chooseSnapshotDisks(inspection.vm, request.disks);
    const tag = encodeSnapshotTag(request.kind, name, request.origin);
    const existing = this.#withSnapshots(inspection).snapshots;
    if (existing.some((s) => s.name === name || s.tag === tag)) {
      throw new SnapkeepError(
        "ALREADY_EXISTS",
        `${inspection.vm.name} already has a snapshot named "${name}".`,
        {
          hint: "Choose another name.",
        },
      );
    }
    const libvirt = this.#libvirt(host);
    const consistency = this.consistencyOf(hostName, inspection.vm.uuid);
    const taken = await withConsistency(
      libvirtGuestOps(libvirt.runner, libvirt.uri, inspection.vm.uuid, inspection.xml.guestAgentChannel),
      consistency,
      inspection.vm.active,
      () =>
        libvirt.createSnapshot(inspection, targets, tag, {
          takenAt: this.#deps.now(),
          ...(request.cowAtLeast === undefined ? {} : { cowAtLeast: request.cowAtLeast }),
        }),
    );
    // A fresh record, not a merge: notes or an "incomplete" mark left on this tag by an earlier,
    // interrupted attempt must not stick to the new, complete snapshot.
    const key = snapshotKey(hostName, inspection.vm.uuid, tag);
    const definition = summaryOf(inspection.xml.raw);
    const fresh = {
      note: request.note !== undefined && request.note.length > 0 ? request.note : null,
      pinned: false,
      consistency: taken.consistency,
      ...(definition === undefined ? {} : { definition }),
    };
    try {
      this.#deps.store.update((s) => ({ ...s, annotations: { ...s.annotations, [key]: fresh } }));
    } catch (error) {
      // The snapshot is on the host by now (a full state folder, say): the error must not read
      // as if nothing had happened.
      throw afterDone(
        error,
        `The snapshot "${name}" of ${inspection.vm.name} was made`,
        "its note and consistency record were not saved",
      );
    }
    const after = this.#withSnapshots(await libvirt.refreshImages(inspection));
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

  consistencyOf(hostName: string, vmUuid: string): Consistency | undefined {
    return this.#deps.store.read().vmSettings[`${hostName}/${vmUuid}`]?.consistency;
  }

  /** Freeze and hook settings for a VM's snapshots (manual and scheduled alike). */
  setConsistency(hostName: string, vmUuid: string, consistency: Consistency): void {
    this.getHost(hostName);
    this.#deps.store.update((s) => ({
      ...s,
      vmSettings: { ...s.vmSettings, [`${hostName}/${vmUuid}`]: { consistency } },
    }));
  }

  /**
   * Removes a schedule's snapshots by tag: for its prune and its crash cleanup. Checked again here,
   * against what the host and the settings say now, so a snapshot pinned while the prune was being
   * computed, or any snapshot that schedule did not make, is never removed.
   */
  async removeSnapshots(
    hostName: string,
    vmUuid: string,
    tags: readonly string[],
    scheduleId: string,
  ): Promise<void> {
    const host = this.getHost(hostName);
    const libvirt = this.#libvirt(host);
    let inspection = await libvirt.inspect(vmUuid);
    for (const tag of tags) {
      const snapshot = this.#withSnapshots(inspection).snapshots.find((s) => s.tag === tag);
      if (
        snapshot !== undefined &&
        snapshot.kind === "scheduled" &&
        snapshot.origin === scheduleId &&
        !snapshot.pinned
      ) {
        await libvirt.deleteSnapshot(inspection, snapshot);
        this.#forget(hostName, vmUuid, tag);
        inspection = await libvirt.refreshImages(inspection);
      }
    }
  }

  /**
   * Thaws a guest that a crashed job may have left frozen (a frozen guest stops writing to disk).
   * Harmless on a guest that is not frozen; quiet when the VM is off or has no agent.
   */
  async thawAfterCrash(hostName: string, vmUuid: string): Promise<boolean> {
    const libvirt = this.#libvirt(this.getHost(hostName));
    const inspection = await libvirt.inspect(vmUuid);
    const ops = libvirtGuestOps(libvirt.runner, libvirt.uri, vmUuid, inspection.xml.guestAgentChannel);
    if (!inspection.vm.active || !(await ops.agentAnswers())) {
      return false;
    }
    await ops.thaw();
    return true;
  }

  /** Marks a snapshot whose job was interrupted, so it is never taken for a good one. */
  markIncomplete(hostName: string, vmUuid: string, tag: string): void {
    this.#annotate(hostName, vmUuid, tag, { incomplete: true });
  }

  /**
   * Deletes a snapshot Snapkeep made; refuses snapshots made by other tools and pinned ones. With
   * `dryRun` every check runs and the snapshot that would go is returned, but nothing is deleted.
   */
  async deleteSnapshot(
    hostName: string,
    vmName: string,
    snapshotRef: string,
    options: { dryRun?: boolean } = {},
  ): Promise<Snapshot> {
    const host = this.getHost(hostName);
    const inspection = await this.#find(hostName, vmName);
    const snapshot = resolveSnapshot(this.#withSnapshots(inspection), snapshotRef);
    if (snapshot.kind === "foreign") {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `Snapshot "${snapshot.name}" was not made by Snapkeep, so Snapkeep will not delete it.`,
        { hint: "Delete it with the tool that made it (virsh snapshot-delete or qemu-img snapshot -d)." },
      );
    }
    if (snapshot.pinned) {
      throw new SnapkeepError("INVALID_INPUT", `Snapshot "${snapshot.name}" is pinned.`, {
        hint: `Unpin it first: ${commandLine`snapkeep snapshot unpin ${hostName}/${inspection.vm.name} ${snapshot.name}`}`,
      });
    }
    if (options.dryRun === true) {
      return snapshot;
    }
    await this.#libvirt(host).deleteSnapshot(inspection, snapshot);
    this.#forget(hostName, inspection.vm.uuid, snapshot.tag);
    return snapshot;
  }

  /**
   * Reverts disks to a snapshot. A running VM is only stopped with consent (`stopRunning`), and
   * started again afterwards; a guest that ignores the shutdown is only powered off with `force`.
   */
  async revertSnapshot(
    hostName: string,
    vmName: string,
    snapshotRef: string,
    request: RevertRequest = {},
  ): Promise<RevertResult> {
    const host = this.getHost(hostName);
    const libvirt = this.#libvirt(host);
    let inspection = await this.#find(hostName, vmName);
    const snapshot = resolveSnapshot(this.#withSnapshots(inspection), snapshotRef);
    const targets = request.disks ?? snapshot.disks.map((d) => d.target);
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
    // LVM's merge writes back every chunk the snapshot kept; the safety snapshot taken just before
    // receives all of them as changes, so its COW space must hold them (plus the usual share).
    const cowAtLeast = new Map(
      snapshot.disks.flatMap((d) =>
        d.lv === undefined || d.lv.thin || !targets.includes(d.target)
          ? []
          : [[d.target, mergeCowBytes(d.lv, inspection.lvs)] as const],
      ),
    );
    const wasActive = inspection.vm.active;
    const wasPaused = inspection.vm.state === "paused";
    const settings = this.#deps.store.read();
    const saved = settings.annotations[snapshotKey(hostName, inspection.vm.uuid, snapshot.tag)]?.definition;
    const current = summaryOf(inspection.xml.raw);
    const safetyName = safetySnapshotName(snapshot, this.#deps.now());
    const safety = { name: safetyName, tag: encodeSnapshotTag("safety", safetyName) };
    const result = {
      vm: inspection.vm.name,
      snapshot,
      disks: targets,
      restarted: wasActive,
      needsConsent: wasActive && request.stopRunning !== true,
      safety,
      definitionChanges:
        saved === undefined || current === undefined ? null : diffDefinitions(saved, current),
      prunedSafety: [] as string[],
    };
    if (request.dryRun === true) {
      // The safety snapshot this revert adds pushes the oldest unpinned ones past the limit.
      const safety = this.#withSnapshots(inspection, settings.annotations).snapshots.filter(
        (s) => s.kind === "safety" && !s.pinned,
      );
      const prunedSafety = safety
        .slice(0, Math.max(0, safety.length + 1 - settings.safetyKeep))
        .map((s) => s.name);
      return { ...result, prunedSafety, dryRun: true };
    }
    if (result.needsConsent) {
      throw new SnapkeepError(
        "VM_RUNNING",
        `${inspection.vm.name} is ${inspection.vm.state}; reverting its disks needs it stopped.`,
        { hint: "Run again with --yes to shut it down, revert, and start it again." },
      );
    }
    if (wasActive) {
      await libvirt.stop(
        inspection.vm,
        {
          timeoutMs: request.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS,
          force: request.force === true,
        },
        this.#deps.sleep,
      );
      inspection = await libvirt.inspect(inspection.vm.uuid);
    }
    try {
      // The safety net first, of the same disks, while the VM is off: undo is a revert to it.
      await this.takeSnapshot(hostName, inspection.vm.uuid, {
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
      await libvirt.start(inspection.vm.uuid, wasPaused);
    }
    const prunedSafety = await this.#pruneSafety(hostName, inspection.vm.uuid).catch(() => []);
    return { ...result, prunedSafety, dryRun: false };
  }

  /** Reverts to the newest safety snapshot: the state just before the last revert. */
  async undoRevert(
    hostName: string,
    vmName: string,
    request: Omit<RevertRequest, "disks"> = {},
  ): Promise<RevertResult> {
    const vm = await this.getVm(hostName, vmName);
    const latest = vm.snapshots.filter((s) => s.kind === "safety").at(-1);
    if (latest === undefined) {
      throw new SnapkeepError("NOT_FOUND", `${vm.name} has no safety snapshot: there is no revert to undo.`);
    }
    return this.revertSnapshot(hostName, vm.uuid, latest.tag, {
      ...request,
      disks: latest.disks.map((d) => d.target),
    });
  }

  safetyKeep(): number {
    return this.#deps.store.read().safetyKeep;
  }

  setSafetyKeep(keep: number): void {
    if (!Number.isInteger(keep) || keep < 1 || keep > MAX_SAFETY_KEPT) {
      throw new SnapkeepError("INVALID_INPUT", `Keep 1 to ${MAX_SAFETY_KEPT} safety snapshots per VM.`);
    }
    this.#deps.store.update((s) => ({ ...s, safetyKeep: keep }));
  }

  /** Deletes the oldest unpinned safety snapshots of a VM beyond the configured number. */
  async #pruneSafety(hostName: string, vmUuid: string): Promise<string[]> {
    const keep = this.safetyKeep();
    const vm = await this.getVm(hostName, vmUuid);
    const safety = vm.snapshots.filter((s) => s.kind === "safety" && !s.pinned);
    const doomed = safety.slice(0, Math.max(0, safety.length - keep));
    const removed: string[] = [];
    for (const snapshot of doomed) {
      await this.deleteSnapshot(hostName, vmUuid, snapshot.tag);
      removed.push(snapshot.name);
    }
    return removed;
  }

  async setPinned(hostName: string, vmName: string, snapshotRef: string, pinned: boolean): Promise<Snapshot> {
    const vm = await this.getVm(hostName, vmName);
    const snapshot = resolveSnapshot(vm, snapshotRef);
    this.#annotate(hostName, vm.uuid, snapshot.tag, { pinned });
    return { ...snapshot, pinned };
  }

  /** Closes every SSH connection. */
  async dispose(): Promise<void> {
    const runners = [...this.#runners.values()];
    this.#runners.clear();
    await Promise.all(runners.map((r) => r.dispose()));
  }

  #withSnapshots(
    inspection: VmInspection,
    annotations: Settings["annotations"] = this.#deps.store.read().annotations,
  ): VmWithSnapshots {
    // In the definition's disk order, so "vda, vdb" reads the same on every listing.
    const snapshots = groupSnapshots(
      inspection.vm.disks.flatMap((disk) => {
        const image = inspection.images.get(disk.target);
        return image === undefined ? [] : [{ target: disk.target, snapshots: image.snapshots }];
      }),
      (tag) =>
        annotations[snapshotKey(inspection.vm.host, inspection.vm.uuid, tag)] ?? {
          note: null,
          pinned: false,
        },
    );
    return { ...inspection.vm, snapshots };
  }

  #forget(host: string, uuid: string, tag: string): void {
    const key = snapshotKey(host, uuid, tag);
    this.#deps.store.update((s) => ({
      ...s,
      annotations: Object.fromEntries(Object.entries(s.annotations).filter(([k]) => k !== key)),
    }));
  }

  #annotate(host: string, uuid: string, tag: string, change: Partial<Annotation>): void {
    const key = snapshotKey(host, uuid, tag);
    this.#deps.store.update((s) => ({
      ...s,
      annotations: {
        ...s.annotations,
        [key]: { note: null, pinned: false, ...s.annotations[key], ...change },
      },
    }));
  }

  /** Notes a verified export on its snapshot, so timelines can mark exported snapshots. */
  recordExport(hostName: string, vmUuid: string, tag: string, exportRef: string): void {
    const key = snapshotKey(hostName, vmUuid, tag);
    const before = this.#deps.store.read().annotations[key]?.exportedTo ?? [];
    this.#annotate(hostName, vmUuid, tag, {
      exportedTo: [...before.filter((e) => e !== exportRef), exportRef].slice(-100),
    });
  }

  /** Drops exports that were pruned or found damaged from every snapshot that listed them. */
  forgetExports(exportRefs: readonly string[]): void {
    if (exportRefs.length === 0) {
      return;
    }
    const gone = new Set(exportRefs);
    this.#deps.store.update((s) => ({
      ...s,
      annotations: Object.fromEntries(
        Object.entries(s.annotations).map(([key, a]) =>
          a.exportedTo?.some((e) => gone.has(e)) === true
            ? [key, { ...a, exportedTo: a.exportedTo.filter((e) => !gone.has(e)) }]
            : [key, a],
        ),
      ),
    }));
  }

  async #find(hostName: string, vmName: string): Promise<VmInspection> {
    return this.#libvirt(this.getHost(hostName)).findVm(vmName);
  }

  #libvirt(host: HostConfig): LibvirtHost {
    if (host.kind === "ssh" && host.hostKey === undefined) {
      throw new SnapkeepError(
        "HOST_KEY_UNKNOWN",
        `Host ${host.name} is not trusted yet; nothing runs on it until it is.`,
        {
          hint: `Check its fingerprint and run: ${commandLine`snapkeep host trust ${host.name}`} SHA256:...`,
        },
      );
    }
    return new LibvirtHost(host.name, host.uri, this.#runner(host));
  }

  #runner(host: HostConfig): CommandRunner {
    let runner = this.#runners.get(host.name);
    if (runner === undefined) {
      runner = this.#deps.runnerFor?.(host) ?? createRunner(host, this.#deps.ssh);
      this.#runners.set(host.name, runner);
    }
    return runner;
  }

  async #dropRunner(name: string): Promise<void> {
    const runner = this.#runners.get(name);
    this.#runners.delete(name);
    await runner?.dispose();
  }

  async #probe(host: SshHostConfig): Promise<string> {
    const runner = createSshRunner(host, this.#deps.ssh, undefined);
    try {
      return await runner.probeHostKey();
    } finally {
      await runner.dispose();
    }
  }

  #saveNewHost(host: HostConfig): void {
    this.#deps.store.update((s) => {
      if (s.hosts.some((h) => h.name === host.name)) {
        throw new SnapkeepError("ALREADY_EXISTS", `A host named "${host.name}" already exists.`);
      }
      return { ...s, hosts: [...s.hosts, host] };
    });
  }
}

import { randomBytes } from "node:crypto";
import { SnapkeepError, quoteInput } from "../errors.js";
import { commandLine } from "../domain/shell-quote.js";
import type { Disk, Snapshot, Vm, VmState } from "../domain/types.js";
import * as virsh from "../drivers/libvirt/args.js";
import {
  parseDomainXml,
  parseDomState,
  parseUuidList,
  snapshotBlocker,
  splitBatch,
  type XmlDisk,
  type XmlDomain,
} from "../drivers/libvirt/parse.js";
import * as qemuImg from "../drivers/qemu-img/args.js";
import { parseImageInfoBatch, type ImageReadResult, type ImageState } from "../drivers/qemu-img/parse.js";
import * as qmp from "../drivers/qmp/commands.js";
import { checkResult, runChecked } from "../infra/runner/checked.js";
import type { CommandRunner } from "../infra/runner/types.js";
import { mapLimit } from "../domain/concurrency.js";
import type { LogicalVolume } from "../drivers/lvm/parse.js";
import { describeError } from "../errors.js";
import {
  createLvSnapshots,
  findLv,
  lvDiskBlocker,
  lvImageState,
  mergeLvSnapshot,
  planLvSnapshots,
  readLvs,
  removeLvSnapshot,
  type LvSnapshotPlan,
} from "./lvm.js";

/** Everything Snapkeep read about one VM in one pass: what the listing, snapshot and revert code use. */
export interface VmInspection {
  readonly vm: Vm;
  readonly xml: XmlDomain;
  /** Image state per disk target, for disks whose image could be read. */
  readonly images: ReadonlyMap<string, ImageState>;
  /** QMP node names per disk target; only for an active VM. */
  readonly nodes: ReadonlyMap<string, string>;
  /** The host's LVM volumes, read when a disk is a block device (else empty). */
  readonly lvs: readonly LogicalVolume[];
}

/** What `lvs` said on a host: the volumes, or why they could not be read. */
type LvmView = { readonly lvs: readonly LogicalVolume[]; readonly error: string | null };
const NO_LVM: LvmView = { lvs: [], error: null };

export interface CreateSnapshotOptions {
  /** When the snapshot is taken: recorded on LVM snapshots (qcow2 records its own time). */
  readonly takenAt: Date;
  /** Least COW space per disk target for thick LVM snapshots (a revert's safety snapshot). */
  readonly cowAtLeast?: ReadonlyMap<string, number>;
}

export interface StopOptions {
  readonly timeoutMs: number;
  /** Power off when the guest ignores the shutdown request (a VM with no OS always does). */
  readonly force: boolean;
  /** Power off at once, without a shutdown request: chosen up front for a guest known to ignore it. */
  readonly powerOffNow?: boolean;
  /** Called while waiting for the guest to shut down, with when the wait ends. */
  readonly onWait?: (deadline: Date) => void;
  /** Called just before the power-off. */
  readonly onPowerOff?: () => void;
}

/**
 * Every call is bounded, so a hung libvirtd or a stuck SSH session fails one host with a clear
 * error instead of hanging every listing. Snapshot changes on large images can take minutes.
 */
const QUERY_TIMEOUT_MS = 60_000;
const CHANGE_TIMEOUT_MS = 30 * 60_000;

/** How many tool calls one host gets at once: enough to hide latency, below sshd's MaxSessions. */
const HOST_CONCURRENCY = 6;
/** Commands per batched virsh or qemu-img call: keeps each output to a few hundred KiB. */
const BATCH_SIZE = 25;

/**
 * One libvirt host reached through a command runner. The mechanism per case:
 *
 * | VM       | create / delete                         | list                 | revert                  |
 * |----------|-----------------------------------------|----------------------|-------------------------|
 * | shut off | `qemu-img snapshot -c/-d` per image     | `qemu-img info`      | `qemu-img snapshot -a`  |
 * | running  | QMP transaction of internal snapshots   | QMP `query-block`    | stop, then as shut off  |
 *
 * Both paths make the same thing, an internal disk-only snapshot inside each qcow2 image, so a
 * snapshot taken while running reverts while shut off and vice versa. libvirt's own
 * snapshot-create-as is not used: for a running VM it only makes whole-VM snapshots with memory
 * or external overlays, which libvirt 9.0 cannot revert.
 */
export class LibvirtHost {
  constructor(
    readonly hostName: string,
    readonly uri: string,
    readonly runner: CommandRunner,
  ) {}

  /**
   * Every domain with its state: the lists in one virsh call rather than one domstate per VM.
   * States libvirt files under "other" (in shutdown, crashed, pmsuspended) are read one by one.
   */
  async listStates(): Promise<Map<string, VmState>> {
    const filters = ["all", "running", "paused", "shutoff", "other"] as const;
    const [all, running, paused, shutoff, other] = (
      await this.#batch(
        filters.map((f) => virsh.listCommand(f)),
        "Listing VMs",
      )
    ).map(parseUuidList);
    const states = new Map<string, VmState>();
    for (const uuid of all ?? []) {
      states.set(uuid, "unknown");
    }
    for (const [list, state] of [
      [other, "unknown"],
      [shutoff, "shut off"],
      [paused, "paused"],
      [running, "running"],
    ] as const) {
      for (const uuid of list ?? []) {
        if (states.has(uuid)) {
          states.set(uuid, state);
        }
      }
    }
    const unsure = [...states.entries()].filter(([uuid, state]) => state === "unknown" && virsh.isUuid(uuid));
    if (unsure.length > 0) {
      const exact = await this.#batch(
        unsure.map(([uuid]) => virsh.domStateCommand(uuid)),
        "Reading VM states",
      );
      unsure.forEach(([uuid], index) => states.set(uuid, parseDomState(exact[index] ?? "")));
    }
    return states;
  }

  /**
   * Every VM with disks and snapshots, in a handful of remote calls whatever the number of VMs:
   * the lists; the definitions (and QEMU's disk view of running VMs) in batched virsh calls; the
   * images of shut-off VMs in batched qemu-img calls.
   */
  async listVms(): Promise<VmInspection[]> {
    const states = await this.listStates();
    const uuids = [...states.keys()].filter((uuid) => virsh.isUuid(uuid));
    const described = (
      await mapLimit(chunk(uuids, BATCH_SIZE), HOST_CONCURRENCY, async (group) => {
        const commands = group.flatMap((uuid) => [
          virsh.dumpXmlCommand(uuid),
          ...(states.get(uuid) === "shut off" ? [] : [virsh.queryBlockCommand(uuid)]),
        ]);
        const segments = await this.#batch(commands, "Reading VM definitions");
        let next = 0;
        return group.map((uuid) => {
          const xml = segments[next++] ?? "";
          const blocks = states.get(uuid) === "shut off" ? null : (segments[next++] ?? "");
          return { uuid, xml, blocks };
        });
      })
    ).flat();
    // A domain undefined between the list and the dumpxml printed nothing: it is simply gone.
    const domains = described
      .filter((d) => d.xml.trim() !== "")
      .map((d) => ({ ...d, domain: parseDomainXml(d.xml) }));
    // qemu-img only ever reads images of domains whose definition says they are not running.
    const offline = domains.filter((d) => !d.domain.active);
    const [images, lvm] = await Promise.all([
      this.#readImages(offline.flatMap((d) => readableDisks(d.domain))),
      this.#readLvm(domains.map((d) => d.domain)),
    ]);
    return Promise.all(
      domains.map(async (d) => {
        const state = states.get(d.uuid) ?? "unknown";
        if (d.domain.active && d.blocks !== null && d.blocks.trim() !== "") {
          return this.#assemble(d.domain, state, qmp.parseQueryBlock(d.blocks), images, lvm);
        }
        // Started or stopped since the lists were taken: read this one on its own.
        return d.domain.active
          ? this.#withImages(d.domain, state)
          : this.#assemble(d.domain, state, null, images, lvm);
      }),
    );
  }

  /**
   * Finds a VM by its exact name (or UUID). One lookup through virsh, checked against the name in
   * the definition: virsh would resolve "7" to the domain with id 7, so a mismatch falls back to
   * comparing the names of every VM. Names are compared as written, never interpreted.
   */
  async findVm(nameOrUuid: string): Promise<VmInspection> {
    // virsh domuuid resolves names and ids, not UUIDs: a UUID is inspected directly.
    if (virsh.isUuid(nameOrUuid)) {
      const byUuid = await this.inspect(nameOrUuid).catch((error: unknown) => {
        if (error instanceof SnapkeepError && error.code === "NOT_FOUND") {
          return null;
        }
        throw error;
      });
      if (byUuid !== null) {
        return byUuid;
      }
    }
    const lookup = await this.runner.run(virsh.domUuidArgs(this.uri, nameOrUuid));
    if (lookup.code === 0) {
      const uuid = lookup.stdout.trim();
      const inspection = await this.inspect(uuid);
      if (inspection.vm.name === nameOrUuid || inspection.vm.uuid === nameOrUuid) {
        return inspection;
      }
    } else if (!/failed to get domain|Domain not found/i.test(lookup.stderr)) {
      checkResult(this.runner.label, virsh.domUuidArgs(this.uri, nameOrUuid), lookup, "Looking up the VM");
    }
    const match = (await this.listVms()).find((i) => i.vm.name === nameOrUuid);
    if (match === undefined) {
      throw new SnapkeepError(
        "NOT_FOUND",
        `There is no VM named ${quoteInput(nameOrUuid)} on host ${this.hostName}.`,
        {
          action: { do: "list-vms", host: this.hostName },
        },
      );
    }
    return match;
  }

  /** One VM: its definition and state in one virsh call, then its images. */
  async inspect(uuid: string): Promise<VmInspection> {
    if (!virsh.isUuid(uuid)) {
      throw new SnapkeepError("UNEXPECTED_OUTPUT", `virsh returned "${uuid}" where a UUID was expected.`);
    }
    const [xml, stateText] = await this.#batch(
      [virsh.dumpXmlCommand(uuid), virsh.domStateCommand(uuid)],
      "Reading the VM definition",
    );
    if (xml === undefined || xml.trim() === "") {
      throw new SnapkeepError("NOT_FOUND", `The VM ${uuid} is gone from host ${this.hostName}.`);
    }
    return this.#withImages(parseDomainXml(xml), parseDomState(stateText ?? ""));
  }

  /** Re-reads only the images (sizes, snapshots) of a VM inspected moments ago. */
  async refreshImages(inspection: VmInspection): Promise<VmInspection> {
    return this.#withImages(inspection.xml, inspection.vm.state);
  }

  async #withImages(xml: XmlDomain, state: VmState): Promise<VmInspection> {
    const lvm = await this.#readLvm([xml]);
    if (xml.active) {
      const blocks = await runChecked(
        this.runner,
        virsh.qmpArgs(this.uri, xml.uuid, qmp.queryBlock),
        "Querying disks",
        {
          timeoutMs: QUERY_TIMEOUT_MS,
        },
      );
      return this.#assemble(xml, state, qmp.parseQueryBlock(blocks.stdout), new Map(), lvm);
    }
    return this.#assemble(xml, state, null, await this.#readImages(readableDisks(xml)), lvm);
  }

  /**
   * The host's LVM volumes, in one `lvs` call, when some VM has a block-device disk. A host without
   * LVM (or where lvs fails) only makes those disks unsnapshottable, with the reason.
   */
  async #readLvm(domains: readonly XmlDomain[]): Promise<LvmView> {
    if (!domains.some((d) => d.disks.some(isBlockDisk))) {
      return NO_LVM;
    }
    try {
      return { lvs: await readLvs(this.runner), error: null };
    } catch (error) {
      return { lvs: [], error: describeError(error) };
    }
  }

  /** Puts one VM together from its definition and what QEMU or qemu-img said about its images. */
  #assemble(
    xml: XmlDomain,
    state: VmState,
    devices: readonly qmp.BlockDevice[] | null,
    images: ReadonlyMap<string, ImageReadResult>,
    lvm: LvmView,
  ): VmInspection {
    const byTarget = new Map<string, ImageState>();
    const nodes = new Map<string, string>();
    const unreadable = new Map<string, string>();
    for (const disk of xml.disks) {
      if (isBlockDisk(disk)) {
        const source = disk.source as string;
        const lv = findLv(lvm.lvs, source);
        const blocker =
          lvm.error !== null
            ? `${disk.target} (${source}) is a block device and the host's LVM volumes cannot be read: ${lvm.error}`
            : lvDiskBlocker(disk.target, source, lv);
        if (blocker !== null) {
          unreadable.set(disk.target, blocker);
        } else if (lv !== undefined) {
          byTarget.set(disk.target, lvImageState(lvm.lvs, lv));
        }
        continue;
      }
      if (devices !== null) {
        const device =
          devices.find((d) => disk.alias !== null && d.alias === disk.alias) ??
          devices.find((d) => d.file === disk.source);
        if (device !== undefined) {
          byTarget.set(disk.target, device.image);
          nodes.set(disk.target, device.nodeName);
        }
        continue;
      }
      const read = disk.source === null ? undefined : images.get(disk.source);
      if (read?.ok === true) {
        byTarget.set(disk.target, read.image);
      } else if (read?.ok === false) {
        unreadable.set(
          disk.target,
          read.missing
            ? `${disk.target}'s image ${disk.source ?? ""} does not exist`
            : `${disk.target}'s image cannot be read: ${read.error}`,
        );
      }
    }
    const disks: Disk[] = xml.disks.map((d) => ({
      target: d.target,
      device: d.device,
      type: d.type,
      source: d.source,
      format: d.format,
      role: d.role,
      readonly: d.readonly,
      virtualSize: byTarget.get(d.target)?.virtualSize ?? null,
      allocatedSize: byTarget.get(d.target)?.actualSize ?? null,
      snapshotBlocker: snapshotBlocker(d) ?? unreadable.get(d.target) ?? null,
    }));
    return {
      vm: { host: this.hostName, name: xml.name, uuid: xml.uuid, state, active: xml.active, disks },
      xml,
      images: byTarget,
      nodes,
      lvs: lvm.lvs,
    };
  }

  /**
   * Reads images that no QEMU holds, by path, in batched qemu-img calls. A missing file is an
   * answer (the disk shows why it cannot be snapshotted); any other failure is an error.
   */
  async #readImages(disks: readonly XmlDisk[]): Promise<Map<string, ImageReadResult>> {
    const unique = [...new Map(disks.map((d) => [d.source as string, d])).values()];
    const results = new Map<string, ImageReadResult>();
    await mapLimit(chunk(unique, BATCH_SIZE), HOST_CONCURRENCY, async (group) => {
      const images = group.map((d) => ({ path: d.source as string, format: d.format as string }));
      const result = await this.runner.run(qemuImg.imageInfoBatchArgs(images), {
        timeoutMs: QUERY_TIMEOUT_MS,
      });
      checkResult(this.runner.label, ["qemu-img"], result, "Reading disk images");
      parseImageInfoBatch(result.stdout, qemuImg.INFO_BATCH_MARKER, group.length).forEach((read, index) => {
        if (!read.ok && read.code === 127) {
          checkResult(
            this.runner.label,
            ["qemu-img"],
            { code: 127, signal: null, stdout: "", stderr: read.error },
            "",
          );
        }
        // Any other failure (a lock held by a backup tool, a damaged image) belongs to that disk
        // alone: it shows as the reason the disk cannot be snapshotted, and the rest still lists.
        results.set(images[index]?.path as string, read);
      });
    });
    return results;
  }

  /**
   * Runs commands in one virsh call. virsh's exit status is only the last command's, so stderr
   * is checked: "domain not found" means a VM vanished meanwhile (its segment is empty); any other
   * error line fails the call rather than silently dropping a VM from the list.
   */
  async #batch(commands: readonly (readonly string[])[], doing: string): Promise<string[]> {
    // A fresh separator each call: no text inside a VM's definition can imitate it.
    const separator = `@@snapkeep-${randomBytes(8).toString("hex")}@@`;
    const argv = virsh.batchArgs(this.uri, commands, separator);
    const result = await this.runner.run(argv, { timeoutMs: QUERY_TIMEOUT_MS });
    const errors = result.stderr.split("\n").filter((line) => /^error:/i.test(line.trim()));
    // A domain that is gone (or not running) answers empty: the caller says so in its own words.
    // virsh exits non-zero for it too, so only other errors, or a failure without any, are failures.
    const unexpected = errors.filter(
      (line) =>
        !/failed to get domain|Domain not found|no domain with matching|domain is not running/i.test(line),
    );
    if (unexpected.length > 0 || (result.code !== 0 && errors.length === 0)) {
      checkResult(
        this.runner.label,
        argv,
        {
          ...result,
          code: result.code === 0 ? 1 : result.code,
          stderr: unexpected.join("\n") || result.stderr,
        },
        doing,
      );
    }
    return splitBatch(result.stdout, separator, commands.length);
  }

  /**
   * Creates a snapshot with the same tag on each chosen disk: an internal snapshot in each qcow2
   * image, a snapshot LV of each LVM disk (hypervisor/lvm.ts). All or nothing: what was made is
   * removed again when a later disk fails.
   *
   * The qcow2 disks of a running VM are one QMP transaction, one instant. LVM has no transaction
   * across LVs (nor with QEMU), so when a running VM needs more than one step, its vCPUs are paused
   * for the steps and resumed after: every disk shows the same instant, as with qcow2 alone.
   * Returns warnings: a snapshot that was made stays made even if the VM could not be resumed.
   */
  async createSnapshot(
    inspection: VmInspection,
    targets: readonly string[],
    tag: string,
    options: CreateSnapshotOptions,
  ): Promise<string[]> {
    const all = targets.map((t) => requireDisk(inspection, t));
    const lvDisks = all.filter((d) => d.type === "block");
    const qcow2 = all.filter((d) => d.type !== "block");
    if (lvDisks.length === 0) {
      await this.#createQcow2Snapshot(inspection, qcow2, tag);
      return [];
    }
    const plans = await this.#planLvSnapshots(lvDisks, tag, options.cowAtLeast);
    const steps = lvDisks.length + (qcow2.length > 0 ? 1 : 0);
    const pause = inspection.vm.state === "running" && steps > 1;
    if (pause) {
      await runChecked(
        this.runner,
        virsh.suspendArgs(this.uri, inspection.vm.uuid),
        `Pausing ${inspection.vm.name}`,
        {
          timeoutMs: QUERY_TIMEOUT_MS,
        },
      );
    }
    let failure: unknown;
    try {
      await this.#createLvThenQcow2Snapshots(inspection, plans, qcow2, tag, options.takenAt);
    } catch (error) {
      failure = error;
    }
    const warnings: string[] = [];
    if (pause) {
      const resumed = await this.runner.run(virsh.resumeArgs(this.uri, inspection.vm.uuid), {
        timeoutMs: QUERY_TIMEOUT_MS,
      });
      if (resumed.code !== 0) {
        const paused = `${inspection.vm.name} stays paused: resuming it failed (${resumed.stderr.trim() || `exit code ${resumed.code}`}); resume it with: ${commandLine`virsh resume ${inspection.vm.uuid}`}`;
        if (failure instanceof SnapkeepError) {
          failure = new SnapkeepError(failure.code, `${failure.message} ${paused}.`, {
            hint: failure.hint,
            action: failure.action,
            cause: failure,
          });
        } else if (failure === undefined) {
          warnings.push(`The snapshot was made, but ${paused}.`);
        }
      }
    }
    if (failure !== undefined) {
      throw failure;
    }
    return warnings;
  }

  /** Plans the snapshot LVs on fresh numbers for the space check: the listing may be minutes old. */
  async #planLvSnapshots(
    lvDisks: readonly Disk[],
    tag: string,
    cowAtLeast: ReadonlyMap<string, number> | undefined,
  ): Promise<LvSnapshotPlan[]> {
    const lvs = await readLvs(this.runner);
    return planLvSnapshots(
      lvDisks.map((d) => {
        const lv = findLv(lvs, d.source as string);
        if (lv === undefined) {
          throw new SnapkeepError(
            "NOT_FOUND",
            `${d.target}'s volume ${d.source ?? ""} is gone from the host.`,
          );
        }
        return { target: d.target, lv };
      }),
      lvs,
      tag,
      cowAtLeast,
    );
  }

  /** The snapshot LVs, then the qcow2 snapshot; the LVs are removed again when the qcow2 step fails. */
  async #createLvThenQcow2Snapshots(
    inspection: VmInspection,
    plans: readonly LvSnapshotPlan[],
    qcow2: readonly Disk[],
    tag: string,
    takenAt: Date,
  ): Promise<void> {
    const made = await createLvSnapshots(this.runner, plans, tag, takenAt);
    try {
      await this.#createQcow2Snapshot(inspection, qcow2, tag);
    } catch (error) {
      const left = await made.undo();
      throw left.length === 0 || !(error instanceof SnapkeepError)
        ? error
        : new SnapkeepError(
            error.code,
            `${error.message} The snapshot LVs of ${left.join(", ")} could not be removed.`,
            {
              action: { do: "delete-snapshot", host: this.hostName, vm: inspection.vm.name, snapshot: tag },
              cause: error,
            },
          );
    }
  }

  async #createQcow2Snapshot(inspection: VmInspection, disks: readonly Disk[], tag: string): Promise<void> {
    if (disks.length === 0) {
      return;
    }
    if (inspection.vm.active) {
      const nodes = disks.map((d) => {
        const node = inspection.nodes.get(d.target);
        if (node === undefined) {
          throw new SnapkeepError(
            "DISK_UNSUPPORTED",
            `QEMU does not report disk ${d.target} of ${inspection.vm.name}; its definition and the running VM differ (a disk hot-plugged or removed?).`,
          );
        }
        return node;
      });
      qmp.parseQmpReply(
        (
          await runChecked(
            this.runner,
            virsh.qmpArgs(this.uri, inspection.vm.uuid, qmp.snapshotTransaction(nodes, tag)),
            "Creating the snapshot",
            { timeoutMs: CHANGE_TIMEOUT_MS },
          )
        ).stdout,
        "the snapshot",
      );
      return;
    }
    const done: Disk[] = [];
    try {
      for (const disk of disks) {
        await runChecked(
          this.runner,
          qemuImg.snapshotCreateArgs(disk.source as string, tag),
          `Snapshotting ${disk.target}`,
          {
            timeoutMs: CHANGE_TIMEOUT_MS,
          },
        );
        done.push(disk);
      }
    } catch (error) {
      const leftOver: string[] = [];
      for (const disk of done) {
        // The tag was checked to be new in every image, so deleting by tag removes only ours.
        try {
          const undo = await this.runner.run(qemuImg.snapshotDeleteArgs(disk.source as string, tag), {
            timeoutMs: CHANGE_TIMEOUT_MS,
          });
          if (undo.code !== 0) {
            leftOver.push(disk.target);
          }
        } catch {
          leftOver.push(disk.target);
        }
      }
      if (leftOver.length > 0 && error instanceof SnapkeepError) {
        throw new SnapkeepError(
          error.code,
          `${error.message} The part already made on ${leftOver.join(", ")} could not be removed.`,
          {
            action: { do: "delete-snapshot", host: this.hostName, vm: inspection.vm.name, snapshot: tag },
            cause: error,
          },
        );
      }
      throw error;
    }
  }

  /**
   * Deletes a snapshot from every disk that holds it. Every disk is checked before anything is
   * deleted; if a deletion still fails halfway, the error names the disks that keep the snapshot.
   */
  async deleteSnapshot(inspection: VmInspection, snapshot: Snapshot): Promise<void> {
    const steps = snapshot.disks.map((entry) => {
      const disk = requireDisk(inspection, entry.target);
      const lv = entry.lv;
      if (lv !== undefined) {
        return {
          target: entry.target,
          run: () => removeLvSnapshot(this.runner, entry.target, entry.imageSnapshotId, lv),
        };
      }
      if (inspection.vm.active) {
        const node = inspection.nodes.get(entry.target);
        if (node === undefined) {
          throw new SnapkeepError(
            "DISK_UNSUPPORTED",
            `QEMU does not report disk ${entry.target} of ${inspection.vm.name}; stop the VM and delete the snapshot then.`,
          );
        }
        const argv = virsh.qmpArgs(
          this.uri,
          inspection.vm.uuid,
          qmp.deleteInternalSnapshot(node, entry.imageSnapshotId, snapshot.tag),
        );
        return {
          target: entry.target,
          run: async () => {
            const result = await runChecked(this.runner, argv, `Deleting the snapshot on ${entry.target}`, {
              timeoutMs: CHANGE_TIMEOUT_MS,
            });
            qmp.parseQmpReply(result.stdout, "the snapshot deletion");
          },
        };
      }
      // qemu-img snapshot -d matches by tag only; with the tag twice in one image it could take
      // the wrong one, so that case is refused rather than guessed.
      const sameTag =
        inspection.images.get(entry.target)?.snapshots.filter((s) => s.name === snapshot.tag) ?? [];
      if (sameTag.length !== 1) {
        throw new SnapkeepError(
          "INVALID_INPUT",
          `Disk ${entry.target} holds ${sameTag.length} snapshots tagged "${snapshot.tag}"; Snapkeep will not guess which to delete.`,
          { hint: `Inspect them with: ${commandLine`qemu-img snapshot -l ${disk.source ?? ""}`}` },
        );
      }
      const argv = qemuImg.snapshotDeleteArgs(disk.source as string, snapshot.tag);
      return {
        target: entry.target,
        run: async () => {
          await runChecked(this.runner, argv, `Deleting the snapshot on ${entry.target}`, {
            timeoutMs: CHANGE_TIMEOUT_MS,
          });
        },
      };
    });
    for (const [index, step] of steps.entries()) {
      try {
        await step.run();
      } catch (error) {
        const remaining = steps.slice(index).map((s) => s.target);
        if (index === 0 || !(error instanceof SnapkeepError)) {
          throw error;
        }
        throw new SnapkeepError(
          error.code,
          `${error.message} The snapshot is still on ${remaining.join(", ")}.`,
          {
            hint: "Run the delete again once the cause is fixed; it continues with those disks.",
            cause: error,
          },
        );
      }
    }
  }

  /** Reverts the chosen disks of a VM that is not running; the caller stops and restarts it. */
  async revertDisks(inspection: VmInspection, snapshot: Snapshot, targets: readonly string[]): Promise<void> {
    if (inspection.vm.active) {
      throw new SnapkeepError(
        "VM_RUNNING",
        `${inspection.vm.name} is running; its disks cannot be reverted live.`,
      );
    }
    for (const target of targets) {
      const entry = snapshot.disks.find((d) => d.target === target);
      if (entry === undefined) {
        throw new SnapkeepError("NOT_FOUND", `Snapshot "${snapshot.name}" does not include disk ${target}.`);
      }
      const disk = requireDisk(inspection, target);
      if (entry.lv !== undefined) {
        await mergeLvSnapshot(this.runner, target, disk.source as string, entry.imageSnapshotId);
        continue;
      }
      await runChecked(
        this.runner,
        qemuImg.snapshotApplyArgs(disk.source as string, entry.imageSnapshotId),
        `Reverting ${target}`,
        {
          timeoutMs: CHANGE_TIMEOUT_MS,
        },
      );
    }
  }

  /**
   * Asks the guest to shut down and waits until `timeoutMs` has passed by `now`; powers off only
   * when `force` allows it, or at once with `powerOffNow`, because a power-off loses whatever the
   * guest had not written yet.
   */
  async stop(
    vm: Vm,
    options: StopOptions,
    sleep: (ms: number) => Promise<void>,
    now: () => Date,
  ): Promise<void> {
    const uuid = vm.uuid;
    if (options.powerOffNow !== true) {
      await runChecked(this.runner, virsh.shutdownArgs(this.uri, uuid), `Shutting ${vm.name} down`, {
        timeoutMs: QUERY_TIMEOUT_MS,
      });
      const deadline = new Date(now().getTime() + options.timeoutMs);
      const poll = 500;
      while (now() < deadline) {
        if (!(await this.isActive(uuid))) {
          return;
        }
        options.onWait?.(deadline);
        await sleep(Math.min(poll, Math.max(0, deadline.getTime() - now().getTime())));
      }
      if (!(await this.isActive(uuid))) {
        return;
      }
      if (!options.force) {
        throw new SnapkeepError(
          "VM_RUNNING",
          `${vm.name} did not shut down within ${Math.round(options.timeoutMs / 1000)} s; nothing was reverted.`,
          { action: { do: "allow-power-off" } },
        );
      }
    }
    options.onPowerOff?.();
    await runChecked(this.runner, virsh.destroyArgs(this.uri, uuid), `Powering ${vm.name} off`, {
      timeoutMs: QUERY_TIMEOUT_MS,
    });
  }

  /** Starts a VM; `paused` brings it back paused, as it was before a managed stop. */
  /** Defines (creates or replaces by UUID) a domain from its XML. */
  async define(xml: string, name: string): Promise<void> {
    // virsh reads the definition from a file on the host; /dev/stdin is not openable when stdin is
    // a socket (Node's spawn, an SSH channel), so the XML goes through a temporary file.
    const xmlFile = (
      await runChecked(
        this.runner,
        ["mktemp", "--tmpdir", "snapkeep-domain-XXXXXX.xml"],
        "Making a temporary file",
      )
    ).stdout.trim();
    try {
      await runChecked(this.runner, ["tee", "--", xmlFile], "Writing the VM definition", { stdin: xml });
      await runChecked(this.runner, virsh.defineArgs(this.uri, xmlFile), `Defining ${name}`, {
        timeoutMs: QUERY_TIMEOUT_MS,
      });
    } finally {
      await this.runner.run(["rm", "-f", "--", xmlFile]);
    }
  }

  async start(uuid: string, paused = false): Promise<void> {
    await runChecked(this.runner, virsh.startArgs(this.uri, uuid, paused), "Starting the VM", {
      timeoutMs: QUERY_TIMEOUT_MS,
    });
  }

  private async isActive(uuid: string): Promise<boolean> {
    const state = parseDomState(
      (
        await runChecked(this.runner, virsh.domStateArgs(this.uri, uuid), "Reading the VM state", {
          timeoutMs: QUERY_TIMEOUT_MS,
        })
      ).stdout,
    );
    return state !== "shut off";
  }
}

function requireDisk(inspection: VmInspection, target: string): Disk {
  const disk = inspection.vm.disks.find((d) => d.target === target);
  if (disk === undefined) {
    throw new SnapkeepError("NOT_FOUND", `${inspection.vm.name} has no disk ${target}.`, {
      hint: `Its disks: ${inspection.vm.disks.map((d) => d.target).join(", ") || "none"}.`,
    });
  }
  return disk;
}

/** Disks backed by a device under /dev: LVM volumes, when `lvs` knows them. */
function isBlockDisk(disk: XmlDisk): boolean {
  return disk.device === "disk" && disk.type === "block" && disk.source?.startsWith("/dev/") === true;
}

/** Disks whose image qemu-img can read: files with a known format at an absolute path. */
function readableDisks(xml: XmlDomain): XmlDisk[] {
  return xml.disks.filter(
    (d) =>
      d.device === "disk" && d.type === "file" && d.source?.startsWith("/") === true && d.format !== null,
  );
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const groups: T[][] = [];
  for (let i = 0; i < items.length; i += size) {
    groups.push(items.slice(i, i + size));
  }
  return groups;
}

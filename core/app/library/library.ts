/**
 * What can be made from a snapshot on its host besides a revert: OS templates (golden images) from
 * a root disk, new VMs from a template, standalone volumes from an additional disk that can be
 * attached to any VM there; and removing VMs Snapkeep made, saying what goes and what survives.
 *
 * Templates and volumes live beside libvirt's images, each as `<name>.qcow2` plus a `<name>.json`
 * record (source VM and snapshot, OS, size, and for templates the source's definition), so the
 * host itself says what they are, whichever computer runs Snapkeep.
 */
import { posix } from "node:path";
import { z } from "zod";

import { SnapkeepError, afterDone, isSnapkeepError, quoteInput } from "../../errors.js";
import { validateName } from "../../domain/names.js";
import { resolveSnapshot } from "../../domain/selection.js";
import { chooseArtifactSource } from "../../domain/plans/artifact-plan.js";
import { destroyArgs, undefineArgs } from "../../drivers/libvirt/args.js";
import { attachDiskArgs, detachDiskArgs, inactiveDefinitionArgs } from "../../drivers/libvirt/domain-args.js";
import { fullCopyArgs, overlayArgs } from "../../drivers/qemu-img/copy-args.js";
import { slug } from "../../drivers/bundle/bundle.js";
import { rewriteDefinitionForImport } from "../../drivers/libvirt/restored-definition.js";
import { RemoteFs, writeFailure } from "../../infra/remote-fs.js";
import type { LibvirtHost } from "../../hypervisor/libvirt.js";
import { runChecked } from "../../infra/runner/checked.js";
import type { VmModules } from "../vm-modules.js";
import type { Vms } from "../vms.js";
import type { ManagedVm } from "../../domain/settings.js";
import type { SettingsStore } from "../../infra/store/store.js";
import { makeArtifact, recordPath } from "./artifact-copy.js";
import { vmDeletePlan } from "./delete-plan.js";
import { forgetVms } from "../../domain/forget-vms.js";
import { parseSnapshotTag } from "../../domain/snapshot-tag.js";

export const IMAGES_DIR = "/var/lib/libvirt/images";
export const TEMPLATES_DIR = `${IMAGES_DIR}/snapkeep-templates`;
export const VOLUMES_DIR = `${IMAGES_DIR}/snapkeep-volumes`;

const QUICK_MS = 60_000;
/** Copying a whole image (a full clone of a template) may take hours on a slow disk. */
const COPY_MS = 6 * 60 * 60_000;
const MARK = "@@snapkeep-file ";

export type ArtifactKind = "template" | "volume";

export const artifactSchema = z.object({
  format: z.literal("snapkeep-artifact"),
  kind: z.enum(["template", "volume"]),
  name: z.string(),
  createdAt: z.string(),
  image: z.string(),
  virtualSize: z.number().nullable(),
  size: z.number(),
  source: z.object({
    host: z.string(),
    vmName: z.string(),
    vmUuid: z.string(),
    snapshotName: z.string(),
    snapshotTag: z.string(),
    disk: z.string(),
  }),
  /** libosinfo's id from the source's definition, e.g. http://debian.org/debian/12. */
  os: z.string().nullable(),
  /** The source VM's definition, which new VMs from a template are derived from. */
  definition: z.string().nullable(),
});
export type Artifact = z.infer<typeof artifactSchema>;

export interface ArtifactRequest {
  readonly host: string;
  readonly vm: string;
  readonly snapshot: string;
  readonly name: string;
  /** The disk; for a template the snapshot's root disk when left out. */
  readonly disk?: string | undefined;
  readonly dryRun?: boolean | undefined;
}

export interface ArtifactResult {
  readonly artifact: Artifact;
  readonly dryRun: boolean;
}

export interface CreateVmRequest {
  readonly host: string;
  readonly name: string;
  readonly template: string;
  /** A full copy instead of a linked clone (an overlay backed by the template). */
  readonly full?: boolean | undefined;
  readonly start?: boolean | undefined;
  readonly dryRun?: boolean | undefined;
}

/** How long a detach waits for the running guest to release the disk, and how often it looks. */
const DETACH_WAIT_MS = 5_000;
const DETACH_POLL_MS = 250;

export interface DeletePlan {
  readonly vm: string;
  readonly uuid: string;
  readonly running: boolean;
  /** Image files that are deleted, with the snapshots inside them that go with them. */
  readonly files: readonly { readonly path: string; readonly snapshots: readonly string[] }[];
  /** What stays: attached volumes, the template it was cloned from, exports. */
  readonly survives: readonly string[];
  /** Schedules of this VM that are removed with it. */
  readonly schedules: readonly string[];
  readonly dryRun: boolean;
}

export interface Orphan {
  readonly kind: "annotation" | "schedule" | "template" | "volume" | "managed-vm";
  readonly host: string;
  readonly what: string;
  readonly why: string;
}

export class Library {
  readonly store: SettingsStore;

  constructor(
    private readonly deps: VmModules,
    private readonly now: () => Date,
  ) {
    this.store = deps.store;
  }

  // ---- templates and volumes ---------------------------------------------------------------------

  /** A read-only template image from a root-disk snapshot. */
  createTemplate(request: ArtifactRequest): Promise<ArtifactResult> {
    return this.#createArtifact("template", request);
  }

  /** A standalone volume from an additional-disk snapshot. */
  createVolume(request: ArtifactRequest): Promise<ArtifactResult> {
    return this.#createArtifact("volume", request);
  }

  async list(kind: ArtifactKind, host: string): Promise<Artifact[]> {
    const fs = new RemoteFs(this.deps.hosts.libvirt(host).runner);
    const dir = kind === "template" ? TEMPLATES_DIR : VOLUMES_DIR;
    const result = await runChecked(
      fs.runner,
      [
        "sh",
        "-c",
        `for f in "$1"/*.json; do [ -f "$f" ] || continue; printf '${MARK}%s\\n' "$f"; head -c 4194304 -- "$f"; printf '\\n'; done`,
        "snapkeep-list",
        dir,
      ],
      `Listing ${kind}s`,
      { timeoutMs: QUICK_MS },
    );
    return result.stdout
      .split(MARK)
      .slice(1)
      .flatMap((block) => {
        const body = block.slice(block.indexOf("\n") + 1);
        try {
          const parsed = artifactSchema.safeParse(JSON.parse(body));
          return parsed.success && parsed.data.kind === kind ? [parsed.data] : [];
        } catch {
          return [];
        }
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async get(kind: ArtifactKind, host: string, name: string): Promise<Artifact> {
    const found = (await this.list(kind, host)).find((a) => a.name === name);
    if (found === undefined) {
      throw new SnapkeepError("NOT_FOUND", `There is no ${kind} named ${quoteInput(name)} on ${host}.`, {
        action: { do: "list-library", kind, host },
      });
    }
    return found;
  }

  /**
   * Deletes a template or volume Snapkeep made. A template that VMs are based on, or a volume that
   * is attached, is refused with their names.
   */
  async deleteArtifact(kind: ArtifactKind, host: string, name: string, dryRun: boolean): Promise<Artifact> {
    const artifact = await this.get(kind, host, name);
    // The record is a file on the host: it only ever names the image beside it, so an edited one
    // cannot point Snapkeep at a file it did not make.
    const expected = posix.join(kind === "template" ? TEMPLATES_DIR : VOLUMES_DIR, `${name}.qcow2`);
    if (artifact.image !== expected) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `The record of ${kind} ${name} names ${artifact.image}, not ${expected}; nothing was deleted.`,
      );
    }
    const users = await this.#usersOf(host, artifact.image);
    if (users.length > 0) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        kind === "template"
          ? `Template ${name} cannot be deleted: ${users.join(", ")} ${users.length === 1 ? "is" : "are"} based on it.`
          : `Volume ${name} cannot be deleted: it is attached to ${users.join(", ")}.`,
        {
          ...(kind === "template"
            ? { hint: "Delete those VMs first, or make them standalone (qemu-img rebase -b '' their disks)." }
            : { action: { do: "detach-volume", host, name } }),
          details: { users },
        },
      );
    }
    if (!dryRun) {
      const fs = new RemoteFs(this.deps.hosts.libvirt(host).runner);
      await fs.removeFiles([artifact.image, recordPath(artifact.image)]);
    }
    return artifact;
  }

  // ---- volumes on VMs ------------------------------------------------------------------------------

  /** Attaches a volume, read-only unless `rw`; live too when the VM runs. Returns the disk target. */
  async attachVolume(
    host: string,
    name: string,
    vmRef: string,
    rw: boolean,
  ): Promise<{ vm: string; target: string; readonly: boolean }> {
    const volume = await this.get("volume", host, name);
    const libvirt = this.deps.hosts.libvirt(host);
    const inspection = await libvirt.findVm(vmRef);
    const users = await this.#usersOf(host, volume.image);
    if (users.includes(inspection.vm.name)) {
      throw new SnapkeepError(
        "ALREADY_EXISTS",
        `Volume ${name} is already attached to ${inspection.vm.name}.`,
      );
    }
    if (users.length > 0 && rw) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `Volume ${name} is attached to ${users.join(", ")}; it can only be added read-only elsewhere.`,
      );
    }
    const target = nextTarget(new Set(inspection.vm.disks.map((d) => d.target)));
    await runChecked(
      libvirt.runner,
      attachDiskArgs(libvirt.uri, {
        uuid: inspection.vm.uuid,
        source: volume.image,
        target,
        readonly: !rw,
        live: inspection.vm.active,
      }),
      `Attaching volume ${name} to ${inspection.vm.name}`,
      { timeoutMs: QUICK_MS },
    );
    return { vm: inspection.vm.name, target, readonly: !rw };
  }

  async detachVolume(
    host: string,
    name: string,
    vmRef: string,
  ): Promise<{ vm: string; target: string; pending: boolean }> {
    const volume = await this.get("volume", host, name);
    const libvirt = this.deps.hosts.libvirt(host);
    const inspection = await libvirt.findVm(vmRef);
    const disk = inspection.vm.disks.find((d) => d.source === volume.image);
    if (disk === undefined) {
      throw new SnapkeepError("NOT_FOUND", `Volume ${name} is not attached to ${inspection.vm.name}.`);
    }
    const argv = detachDiskArgs(libvirt.uri, inspection.vm.uuid, disk.target, inspection.vm.active);
    const result = await libvirt.runner.run(argv, { timeoutMs: QUICK_MS });
    if (result.code !== 0 && inspection.vm.active) {
      // A guest that does not answer the unplug request keeps the device until it stops; the
      // definition no longer has it, so it is gone after the next shutdown.
      await runChecked(
        libvirt.runner,
        detachDiskArgs(libvirt.uri, inspection.vm.uuid, disk.target, false),
        `Detaching volume ${name}`,
        { timeoutMs: QUICK_MS },
      );
      return { vm: inspection.vm.name, target: disk.target, pending: true };
    }
    if (result.code !== 0) {
      throw new SnapkeepError("COMMAND_FAILED", `Detaching volume ${name} failed: ${result.stderr.trim()}`);
    }
    if (!inspection.vm.active) {
      return { vm: inspection.vm.name, target: disk.target, pending: false };
    }
    // virsh answers once the unplug is asked for; the guest releases the disk later, or never
    // (no OS, no hotplug driver). Say what the running VM really has, not what was asked.
    return {
      vm: inspection.vm.name,
      target: disk.target,
      pending: !(await this.#released(host, inspection.vm.uuid, volume.image)),
    };
  }

  /** Whether the running VM let go of `image` within a few seconds of the unplug request. */
  async #released(host: string, uuid: string, image: string): Promise<boolean> {
    const libvirt = this.deps.hosts.libvirt(host);
    for (let waited = 0; ; waited += DETACH_POLL_MS) {
      const live = await libvirt.findVm(uuid);
      if (!live.vm.active || !live.vm.disks.some((d) => d.source === image)) {
        return true;
      }
      if (waited >= DETACH_WAIT_MS) {
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, DETACH_POLL_MS));
    }
  }

  // ---- VMs ---------------------------------------------------------------------------------------------

  /** A new VM from a template: a linked clone (overlay) or a full copy, with its own identity. */
  async createVm(request: CreateVmRequest): Promise<{
    vm: string;
    uuid: string | null;
    disk: string;
    linked: boolean;
    started: boolean;
    dryRun: boolean;
  }> {
    const template = await this.get("template", request.host, request.template);
    if (template.definition === null) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `Template ${template.name} has no VM definition to start from.`,
      );
    }
    validateVmName(request.name);
    await requireNoVm(this.deps.vms, request.host, request.name);
    const libvirt = this.deps.hosts.libvirt(request.host);
    const fs = new RemoteFs(libvirt.runner);
    const disk = posix.join(IMAGES_DIR, `${slug(request.name)}-${template.source.disk}.qcow2`);
    const [exists] = await fs.sizes([disk]);
    if (exists !== undefined) {
      throw new SnapkeepError(
        "ALREADY_EXISTS",
        `${disk} already exists on ${request.host}; nothing was changed.`,
      );
    }
    const linked = request.full !== true;
    const plan = {
      vm: request.name,
      uuid: null,
      disk,
      linked,
      started: request.start === true,
      dryRun: true,
    };
    // Derived first, so a definition that cannot be used fails before any file is made.
    const xml = rewriteDefinitionForImport(template.definition, {
      name: request.name,
      disks: new Map([[template.source.disk, disk]]),
    });
    if (request.dryRun === true) {
      return plan;
    }
    const argv = linked ? overlayArgs(template.image, disk) : fullCopyArgs(template.image, disk);
    const made = await fs.run(argv, { timeoutMs: COPY_MS });
    if (made.code !== 0) {
      await fs.removeFiles([disk]).catch(() => undefined);
      throw writeFailure(fs.label, disk, made.stderr);
    }
    try {
      await libvirt.define(xml, request.name);
    } catch (error) {
      await fs.removeFiles([disk]).catch(() => undefined);
      throw error;
    }
    const defined = await libvirt.findVm(request.name);
    this.#recordManaged({
      host: request.host,
      uuid: defined.vm.uuid,
      name: request.name,
      createdAt: this.now().toISOString(),
      from: `template:${template.name}`,
      files: [disk],
    });
    if (request.start === true) {
      await libvirt.start(defined.vm.uuid);
    }
    return { ...plan, uuid: defined.vm.uuid, dryRun: false };
  }

  /** Records a VM Snapkeep made (import, template), so that `vm delete` may remove it later. */
  recordManaged(vm: ManagedVm): void {
    this.#recordManaged(vm);
  }

  /**
   * Deletes a VM that Snapkeep made. Its image files go, and the snapshots inside them with them;
   * templates, volumes and exports stay. Without `confirm` (or with `dryRun`) only the plan.
   */
  async deleteVm(
    host: string,
    vmRef: string,
    options: { dryRun: boolean; force: boolean },
  ): Promise<DeletePlan> {
    const vm = await this.deps.vms.get(host, vmRef);
    const managed = this.store.read().managedVms.find((m) => m.host === host && m.uuid === vm.uuid);
    if (managed === undefined) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `${vm.name} was not made by Snapkeep, so Snapkeep will not delete it.`,
        { hint: "Delete it with virsh undefine (and remove its disks yourself) if you really mean to." },
      );
    }
    const [templates, volumes] = await Promise.all([this.list("template", host), this.list("volume", host)]);
    const plan = vmDeletePlan(vm, managed, {
      host,
      templates,
      volumes,
      schedules: this.store.read().schedules,
      dryRun: options.dryRun,
    });
    // The plan is the run: what the real run refuses, the dry run refuses too.
    if (vm.active && !options.force) {
      throw new SnapkeepError(
        "VM_RUNNING",
        `${vm.name} is ${vm.state}; it is only deleted when stopped, or with --force (which stops it first).`,
      );
    }
    if (options.dryRun) {
      return plan;
    }
    const libvirt = this.deps.hosts.libvirt(host);
    if (vm.active) {
      await runChecked(libvirt.runner, destroyArgs(libvirt.uri, vm.uuid), `Stopping ${vm.name}`, {
        timeoutMs: QUICK_MS,
      });
    }
    await runChecked(libvirt.runner, undefineArgs(libvirt.uri, vm.uuid), `Removing ${vm.name}`, {
      timeoutMs: QUICK_MS,
    });
    await new RemoteFs(libvirt.runner).removeFiles(plan.files.map((f) => f.path));
    try {
      this.store.update((s) => forgetVms(s, host, new Set([vm.uuid])));
    } catch (error) {
      throw afterDone(
        error,
        `${vm.name} was deleted with its images`,
        "its schedules and notes are still in the settings (snapkeep orphans lists them)",
      );
    }
    return plan;
  }

  /**
   * What points at VMs that are gone: notes and pins, schedules, templates and volumes whose source
   * VM was deleted (they are kept on purpose; listed so a person can decide), and records of VMs
   * Snapkeep made that someone removed. Hosts that cannot be reached are skipped, not guessed.
   */
  /**
   * `orphans --clean`: forgets what the settings keep about VMs that are gone (notes and pins,
   * schedules, records of VMs Snapkeep made); templates and volumes stay (they are listed, kept on
   * purpose). A host that cannot be reached is not cleaned: a VM is gone only when its host says so.
   */
  async cleanOrphans(
    hostName: string | undefined,
    dryRun: boolean,
  ): Promise<{ removed: Orphan[]; kept: Orphan[]; skipped: string[] }> {
    const found = await this.orphans(hostName);
    const cleanable = (o: Orphan): boolean =>
      o.kind === "annotation" || o.kind === "schedule" || o.kind === "managed-vm";
    const removed = found.orphans.filter(cleanable);
    if (!dryRun && removed.length > 0) {
      const listed = await Promise.all(
        [...new Set(removed.map((o) => o.host))].map(async (host) => {
          const [listing] = await this.deps.vms.list(host);
          return {
            host,
            present: new Set((listing?.vms ?? []).map((v) => v.uuid)),
            ok: listing?.error === null,
          };
        }),
      );
      this.store.update((s) => {
        let next = s;
        for (const { host, present, ok } of listed) {
          if (!ok) {
            continue;
          }
          const known = [
            ...s.managedVms.filter((m) => m.host === host).map((m) => m.uuid),
            ...s.schedules.filter((x) => x.host === host).map((x) => x.vmUuid),
            ...Object.keys(s.annotations)
              .map((k) => k.split("/"))
              .filter(([h]) => h === host)
              .map(([, uuid]) => uuid ?? ""),
          ];
          next = forgetVms(next, host, new Set(known.filter((uuid) => uuid !== "" && !present.has(uuid))));
        }
        return next;
      });
    }
    return { removed, kept: found.orphans.filter((o) => !cleanable(o)), skipped: found.skipped };
  }

  async orphans(hostName?: string): Promise<{ orphans: Orphan[]; skipped: string[] }> {
    if (hostName !== undefined) {
      // A mistyped host would otherwise read as "nothing is orphaned there".
      this.deps.hosts.get(hostName);
    }
    const settings = this.store.read();
    const hosts = settings.hosts.filter((h) => hostName === undefined || h.name === hostName);
    const orphans: Orphan[] = [];
    const skipped: string[] = [];
    for (const host of hosts) {
      let uuids: Set<string>;
      let templates: Artifact[];
      let volumes: Artifact[];
      try {
        const [listing] = await this.deps.vms.list(host.name);
        if (listing === undefined || listing.error !== null) {
          skipped.push(host.name);
          continue;
        }
        uuids = new Set(listing.vms.map((v) => v.uuid));
        [templates, volumes] = await Promise.all([
          this.list("template", host.name),
          this.list("volume", host.name),
        ]);
      } catch {
        skipped.push(host.name);
        continue;
      }
      const gone = (uuid: string): boolean => !uuids.has(uuid);
      for (const key of Object.keys(settings.annotations)) {
        const [h, uuid, ...tag] = key.split("/");
        if (h === host.name && uuid !== undefined && gone(uuid)) {
          orphans.push({
            kind: "annotation",
            host: host.name,
            // The snapshot's name, as people know it (the key holds its tag).
            what: parseSnapshotTag(tag.join("/")).name,
            why: `notes or pin of a snapshot of VM ${uuid}, which is gone`,
          });
        }
      }
      for (const s of settings.schedules.filter((x) => x.host === host.name && gone(x.vmUuid))) {
        orphans.push({
          kind: "schedule",
          host: host.name,
          what: s.id,
          why: `schedule for ${s.vmName}, which is gone`,
        });
      }
      for (const a of [...templates, ...volumes].filter((x) => gone(x.source.vmUuid))) {
        orphans.push({
          kind: a.kind,
          host: host.name,
          what: a.name,
          why: `made from ${a.source.vmName}, which is gone (kept on purpose)`,
        });
      }
      for (const m of settings.managedVms.filter((x) => x.host === host.name && gone(x.uuid))) {
        orphans.push({
          kind: "managed-vm",
          host: host.name,
          what: m.name,
          why: "Snapkeep made this VM; it was removed outside Snapkeep",
        });
      }
    }
    return { orphans, skipped };
  }

  // ---- internals --------------------------------------------------------------------------------------

  async #createArtifact(kind: ArtifactKind, request: ArtifactRequest): Promise<ArtifactResult> {
    validateName(`${kind} name`, request.name);
    const vm = await this.deps.vms.get(request.host, request.vm);
    const snapshot = resolveSnapshot(vm, request.snapshot);
    const { target, disk, image } = chooseArtifactSource(kind, vm, snapshot, request);
    const dir = kind === "template" ? TEMPLATES_DIR : VOLUMES_DIR;
    const path = posix.join(dir, `${request.name}.qcow2`);
    const libvirt = this.deps.hosts.libvirt(request.host);
    const fs = new RemoteFs(libvirt.runner);
    const [imageExists, recordExists] = await fs.sizes([path, recordPath(path)]);
    if (imageExists !== undefined || recordExists !== undefined) {
      throw new SnapkeepError(
        "ALREADY_EXISTS",
        `A ${kind} named ${request.name} already exists on ${request.host}.`,
      );
    }
    const definition = kind === "template" ? await this.#definition(libvirt, vm.uuid) : null;
    const artifact: Artifact = {
      format: "snapkeep-artifact",
      kind,
      name: request.name,
      createdAt: this.now().toISOString(),
      image: path,
      virtualSize: disk.virtualSize,
      size: 0,
      source: {
        host: request.host,
        vmName: vm.name,
        vmUuid: vm.uuid,
        snapshotName: snapshot.name,
        snapshotTag: snapshot.tag,
        disk: target,
      },
      os: definition === null ? null : osOf(definition),
      definition,
    };
    if (request.dryRun === true) {
      return { artifact, dryRun: true };
    }
    const made = await makeArtifact(fs, dir, artifact, {
      vmName: vm.name,
      vmActive: vm.active,
      snapshot,
      image: { target, source: disk.source, imageSnapshotId: image.imageSnapshotId, lv: image.lv },
    });
    return { artifact: made, dryRun: false };
  }

  async #definition(libvirt: LibvirtHost, uuid: string): Promise<string> {
    return (
      await runChecked(
        libvirt.runner,
        inactiveDefinitionArgs(libvirt.uri, uuid),
        "Reading the VM definition",
        {
          timeoutMs: QUICK_MS,
        },
      )
    ).stdout;
  }

  /** VMs on the host whose disks are this image or have it in their backing chain. */
  async #usersOf(host: string, image: string): Promise<string[]> {
    return (await this.#usersOfAll(host, [image])).get(image) ?? [];
  }

  /**
   * The same for several images with one read of every disk's backing chain: the Library shows
   * what uses each of its items. Throws when a VM's chain cannot be read (it might include one).
   */
  async #usersOfAll(host: string, images: readonly string[]): Promise<Map<string, string[]>> {
    const [listing] = await this.deps.vms.list(host);
    if (listing === undefined || listing.error !== null) {
      throw new SnapkeepError(
        "HOST_UNREACHABLE",
        `Cannot list the VMs on ${host} to check what uses ${images.join(", ")}.`,
      );
    }
    const users = new Map(images.map((image) => [image, new Set<string>()]));
    const fs = new RemoteFs(this.deps.hosts.libvirt(host).runner);
    const disks = listing.vms.flatMap((vm) =>
      vm.disks
        .filter((d) => d.source !== null && d.type === "file")
        .map((d) => ({ vm: vm.name, path: d.source ?? "" })),
    );
    for (const d of disks) {
      users.get(d.path)?.add(d.vm);
    }
    const qcow2 = disks.filter((d) => !users.has(d.path));
    if (qcow2.length > 0 && images.length > 0) {
      const result = await fs.run(
        [
          "sh",
          "-c",
          `for f; do qemu-img info -U --backing-chain --output=json -- "$f" 2>/dev/null || echo '[]'; printf '\\n${MARK}\\n'; done`,
          "snapkeep-chains",
          ...qcow2.map((d) => d.path),
        ],
        { timeoutMs: QUICK_MS },
      );
      const chains = result.stdout.split(`\n${MARK}\n`);
      qcow2.forEach((user, i) => {
        const json = chains[i] ?? "";
        // A chain that could not be read might include the image: say so rather than guess.
        if (json.trim() === "[]" || json.trim() === "") {
          throw new SnapkeepError(
            "COMMAND_FAILED",
            `Cannot read the backing chain of ${user.path} (VM ${user.vm}) to check what uses ${images.join(", ")}; nothing was changed.`,
          );
        }
        for (const [image, vms] of users) {
          if (json.includes(JSON.stringify(image))) {
            vms.add(user.vm);
          }
        }
      });
    }
    return new Map([...users].map(([image, vms]) => [image, [...vms].sort()]));
  }

  /**
   * The library's items with the VMs that use each (disks cloned from a template, a volume
   * attached); `usedBy` null when that could not be read (a VM's chain unreadable, the host's VMs
   * not listed), never a guess of "nothing".
   */
  async listWithUsers(kind: ArtifactKind, host: string): Promise<(Artifact & { usedBy: string[] | null })[]> {
    const items = await this.list(kind, host);
    try {
      const users = await this.#usersOfAll(
        host,
        items.map((a) => a.image),
      );
      return items.map((a) => ({ ...a, usedBy: users.get(a.image) ?? [] }));
    } catch {
      return items.map((a) => ({ ...a, usedBy: null }));
    }
  }

  #recordManaged(vm: ManagedVm): void {
    try {
      this.store.update((s) => ({
        ...s,
        managedVms: [...s.managedVms.filter((m) => !(m.host === vm.host && m.uuid === vm.uuid)), vm],
      }));
    } catch (error) {
      throw afterDone(
        error,
        `${vm.name} was created on ${vm.host}`,
        "Snapkeep could not note that it made it, so vm delete will not remove it",
      );
    }
  }
}

/** Refuses a name a VM on the host already has. */
export async function requireNoVm(vms: Vms, host: string, name: string): Promise<void> {
  try {
    await vms.get(host, name);
  } catch (error) {
    if (isSnapkeepError(error, "NOT_FOUND")) {
      return;
    }
    throw error;
  }
  throw new SnapkeepError(
    "ALREADY_EXISTS",
    `A VM named ${name} already exists on ${host}; nothing was changed.`,
    {
      hint: "Choose another name.",
    },
  );
}

function validateVmName(name: string): void {
  if (!/^[^/\0\n]{1,200}$/.test(name)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `The VM name ${quoteInput(name)} must be 1 to 200 characters, without '/' or a newline.`,
    );
  }
}

/** libosinfo's OS id from a definition's metadata, the way virt-install records it. */
export function osOf(xml: string): string | null {
  return /<(?:[\w-]+:)?os\s+id=["']([^"']+)["']/.exec(xml)?.[1] ?? null;
}

/** The next free virtio disk name: vdb, vdc, ... */
export function nextTarget(used: Set<string>): string {
  for (let i = 0; i < 26 * 27; i++) {
    const name =
      i < 26
        ? `vd${String.fromCharCode(97 + i)}`
        : `vd${String.fromCharCode(96 + Math.floor(i / 26))}${String.fromCharCode(97 + (i % 26))}`;
    if (!used.has(name)) {
      used.add(name);
      return name;
    }
  }
  throw new SnapkeepError("INVALID_INPUT", "The VM has no free virtio disk names left.");
}

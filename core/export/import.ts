/**
 * Restoring an export bundle onto a host: as a new VM defined from the bundle's definition, or as
 * extra disks of a VM that exists. The bundle is checked against its manifest on the target first,
 * the images are checked again where they land, and nothing the host already has is overwritten.
 */
import { createHash } from "node:crypto";
import { posix } from "node:path";

import { SnapkeepError, isSnapkeepError } from "../errors.js";
import { virsh } from "../drivers/libvirt/args.js";
import { runChecked } from "../runner/checked.js";
import type { SnapkeepService } from "../service.js";
import { slug, type ManifestDisk } from "./bundle.js";
import { rewriteDefinitionForImport } from "./definition.js";
import type { Exports } from "./exports.js";
import { RemoteFs } from "./fs.js";
import { relayRsync } from "./relay.js";
import { nextTarget, requireNoVm } from "../restore/artifacts.js";
import type { ManagedVm } from "../store/schema.js";

/** libvirt's default storage folder, which QEMU may open on every distribution's defaults. */
export const DEFAULT_IMAGE_DIR = "/var/lib/libvirt/images";

export interface ImportRequest {
  readonly target: string;
  readonly export: string;
  readonly host: string;
  /** A new VM with this name (defined from the bundle's definition)... */
  readonly name?: string | undefined;
  /** ...or the bundle's disks attached to this existing VM. */
  readonly into?: string | undefined;
  /** Folder for the images on the host. */
  readonly dir?: string | undefined;
  /** Only these disks of the bundle (default: all; a new VM needs its root disk). */
  readonly disks?: readonly string[] | undefined;
  readonly start?: boolean | undefined;
  readonly dryRun?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((done: number, total: number) => void) | undefined;
}

export interface ImportPlan {
  readonly export: string;
  readonly host: string;
  readonly mode: "new-vm" | "attach";
  readonly vm: string;
  /** Each bundle disk: where its image goes and the guest target it gets. */
  readonly disks: readonly { readonly from: string; readonly file: string; readonly target: string }[];
  readonly start: boolean;
}

export interface ImportResult extends ImportPlan {
  readonly dryRun: boolean;
  readonly vmUuid: string | null;
}

const QUICK_MS = 60_000;

/**
 * Restores an export. `record` is told about a new VM, so that Snapkeep may delete it later
 * (`vm delete` only removes VMs Snapkeep made).
 */
export async function importExport(
  service: SnapkeepService,
  exports: Exports,
  request: ImportRequest,
  record?: (vm: ManagedVm) => void,
): Promise<ImportResult> {
  if ((request.name === undefined) === (request.into === undefined)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "Say where the export goes: --name NEWVM for a new VM, or --into VM to add its disks to one.",
    );
  }
  const { target, entry } = await exports.find(request.target, request.export);
  if (entry.state === "partial" || entry.manifest === null) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `Export ${entry.id} cannot be restored: ${entry.reason ?? "it has no manifest"}.`,
    );
  }
  const manifest = entry.manifest;
  const chosen = chooseDisks(manifest.disks, request.disks, request.name !== undefined);
  const libvirt = service.libvirtFor(request.host);
  const host = new RemoteFs(libvirt.runner);
  const dir = posix.resolve(request.dir ?? DEFAULT_IMAGE_DIR);
  if (!/^[A-Za-z0-9._/+-]+$/.test(dir)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `Restore into a folder whose path has only letters, digits and . _ - + / (not "${dir}").`,
    );
  }

  // Where everything goes, refusing anything that exists already.
  let plan: ImportPlan;
  if (request.name !== undefined) {
    const name = request.name;
    if (!/^[^/\0\n]{1,200}$/.test(name)) {
      throw new SnapkeepError("INVALID_INPUT", `"${name}" cannot be a VM name.`);
    }
    await requireNoVm(service, request.host, name);
    plan = {
      export: entry.id,
      host: request.host,
      mode: "new-vm",
      vm: name,
      disks: chosen.map((d) => ({
        from: d.name,
        file: posix.join(dir, `${slug(name)}-${d.target}.qcow2`),
        target: d.target,
      })),
      start: request.start === true,
    };
  } else {
    const vm = await service.getVm(request.host, request.into ?? "");
    const used = new Set(vm.disks.map((d) => d.target));
    const targets = chosen.map(() => nextTarget(used));
    plan = {
      export: entry.id,
      host: request.host,
      mode: "attach",
      vm: vm.name,
      disks: chosen.map((d, i) => ({
        from: d.name,
        file: posix.join(
          dir,
          `${slug(vm.name)}-restored-${entry.id.slice(0, 15).toLowerCase()}-${d.target}.qcow2`,
        ),
        target: targets[i] ?? "",
      })),
      start: false,
    };
  }
  const existing = await host.sizes(plan.disks.map((d) => d.file));
  const taken = plan.disks.filter((_, i) => existing[i] !== undefined).map((d) => d.file);
  if (taken.length > 0) {
    throw new SnapkeepError(
      "ALREADY_EXISTS",
      `${taken.join(", ")} already exists on ${request.host}; nothing was changed.`,
      {
        hint: "Choose another name (--name) or folder (--dir).",
      },
    );
  }
  if (request.dryRun === true) {
    return { ...plan, dryRun: true, vmUuid: null };
  }

  // 1. The bundle as it is on the target now must match its manifest.
  // Checked, not recorded: a restore must work from a backup disk mounted read-only.
  const check = await exports.verify(target.name, entry.id, request.signal, false);
  if (!check.ok) {
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `Export ${entry.id} is damaged on ${target.name}: ${check.badFiles.join(", ")} ${check.badFiles.length === 1 ? "does" : "do"} not match its manifest; nothing was restored.`,
    );
  }
  const source = exports.targetFs(target.name);
  const bundleDir = posix.join(target.path, entry.folder);
  const definition = await source.readFile(posix.join(bundleDir, "domain.xml"));
  if (createHash("sha256").update(definition).digest("hex") !== manifest.definition.sha256) {
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `domain.xml of export ${entry.id} changed while it was read; nothing was restored.`,
    );
  }

  // 2. Images copied into a staging folder beside their final place, checked, then moved in.
  const staging = posix.join(dir, `.snapkeep-import-${entry.id}`);
  const moved: string[] = [];
  let committed = false;
  try {
    await host.mkdirs(staging);
    const total = chosen.reduce((sum, d) => sum + d.size, 0);
    let before = 0;
    for (const disk of chosen) {
      await relayRsync({
        sender: source.runner,
        receiver: host.runner,
        // The bundle's side runs the rsync client here, and it may not be trusted with choosing
        // where the host writes: the destination goes on the server's command line, where the
        // relay checks it is exactly this one, instead of through the protocol (-s).
        send: {
          source: posix.join(bundleDir, disk.name),
          destination: posix.join(staging, disk.name),
          secluded: false,
        },
        expectedDestination: posix.join(staging, disk.name),
        signal: request.signal,
        onProgress: (p) => request.onProgress?.(before + Math.min(p.bytes, disk.size), total),
      });
      before += disk.size;
    }
    const sums = await host.sha256(
      chosen.map((d) => posix.join(staging, d.name)),
      request.signal,
    );
    const bad = chosen.filter((d, i) => sums[i] !== d.sha256).map((d) => d.name);
    if (bad.length > 0) {
      throw new SnapkeepError(
        "VERIFY_FAILED",
        `${bad.join(", ")} arrived on ${request.host} damaged; nothing was restored.`,
        {
          hint: "Run the import again; if it happens again, check the host's disk and memory.",
        },
      );
    }
    for (const [i, disk] of plan.disks.entries()) {
      // mv -n never replaces a file that appeared meanwhile; the size check below catches that.
      // mv -n skips quietly when the name was taken meanwhile: the source still being there says so.
      const result = await host.run(
        [
          "sh",
          "-c",
          'mv -n -- "$1" "$2" && [ ! -e "$1" ]',
          "snapkeep-place",
          posix.join(staging, chosen[i]?.name ?? ""),
          disk.file,
        ],
        { timeoutMs: QUICK_MS },
      );
      if (result.code !== 0) {
        throw new SnapkeepError(
          "ALREADY_EXISTS",
          `${disk.file} appeared on ${request.host} during the import; it was left alone and nothing was restored.`,
        );
      }
      moved.push(disk.file);
    }
    const landed = await host.sha256(plan.disks.map((d) => d.file));
    if (landed.some((sum, i) => sum !== chosen[i]?.sha256)) {
      throw new SnapkeepError(
        "ALREADY_EXISTS",
        `Another file took one of the image names on ${request.host} during the import; nothing was restored.`,
      );
    }

    // 3. The VM: defined from the bundle's definition, or the disks attached. From here on the
    // images belong to a VM, and a failure must not delete them under it.
    committed = true;
    let vmUuid: string;
    if (plan.mode === "new-vm") {
      const xml = rewriteDefinitionForImport(definition, {
        name: plan.vm,
        disks: new Map(plan.disks.map((d) => [d.target, d.file])),
      });
      await libvirt.define(xml, plan.vm);
      const defined = await libvirt.findVm(plan.vm);
      vmUuid = defined.vm.uuid;
      record?.({
        host: request.host,
        uuid: vmUuid,
        name: plan.vm,
        createdAt: new Date().toISOString(),
        from: `export:${target.name}/${entry.id}`,
        files: plan.disks.map((d) => d.file),
      });
      if (plan.start) {
        await libvirt.start(vmUuid);
      }
    } else {
      const vm = await libvirt.findVm(plan.vm);
      vmUuid = vm.vm.uuid;
      for (const disk of plan.disks) {
        await runChecked(
          libvirt.runner,
          virsh(
            libvirt.uri,
            "attach-disk",
            "--domain",
            vmUuid,
            "--source",
            disk.file,
            "--target",
            disk.target,
            "--driver",
            "qemu",
            "--subdriver",
            "qcow2",
            "--targetbus",
            "virtio",
            // The definition always; the running VM too when it runs.
            vm.vm.active ? "--persistent" : "--config",
          ),
          `Attaching ${disk.file} to ${plan.vm}`,
          { timeoutMs: QUICK_MS },
        );
      }
    }
    return { ...plan, dryRun: false, vmUuid };
  } catch (error) {
    // Nothing half restored: images moved in before any VM used them are taken out again, and
    // the staging folder goes. After the definition or an attach, they stay, and the error says so.
    if (!committed) {
      await host.removeFiles(moved).catch(() => undefined);
      throw error;
    }
    throw isSnapkeepError(error)
      ? new SnapkeepError(
          error.code,
          `${error.message} The images already in place were kept: ${moved.join(", ")}.`,
          {
            hint: error.hint,
            cause: error,
          },
        )
      : error;
  } finally {
    await host.removeTree(staging).catch(() => undefined);
  }
}

function chooseDisks(
  disks: readonly ManifestDisk[],
  chosen: readonly string[] | undefined,
  newVm: boolean,
): ManifestDisk[] {
  const picked =
    chosen === undefined || chosen.length === 0 ? [...disks] : disks.filter((d) => chosen.includes(d.target));
  const unknown = (chosen ?? []).filter((t) => !disks.some((d) => d.target === t));
  if (unknown.length > 0) {
    throw new SnapkeepError("INVALID_INPUT", `The export has no disk ${unknown.join(", ")}.`, {
      hint: `It has: ${disks.map((d) => d.target).join(", ")}`,
    });
  }
  if (newVm && !picked.some((d) => d.role === "root")) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "A new VM needs the export's root disk; include it, or use --into to add disks to a VM.",
    );
  }
  return picked;
}

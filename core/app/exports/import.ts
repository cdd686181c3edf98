/**
 * Restoring an export bundle onto a host: as a new VM defined from the bundle's definition, or as
 * extra disks of a VM that exists. The bundle is checked against its manifest on the target first,
 * the images are checked again where they land, and nothing the host already has is overwritten.
 */
import { createHash } from "node:crypto";
import { posix } from "node:path";

import {
  checkPinnedInfo,
  checkStandaloneHeader,
  headerArgs,
  parseOdHex,
  pinnedInfoArgs,
} from "../../drivers/qemu-img/standalone.js";
import type { CommandRunner } from "../../infra/runner/types.js";
import { formatBytes } from "../../domain/bytes.js";

import { SnapkeepError, isSnapkeepError, quoteInput } from "../../errors.js";
import { virsh } from "../../drivers/libvirt/args.js";
import { runChecked } from "../../infra/runner/checked.js";
import type { VmModules } from "../vm-modules.js";
import type { Targets } from "../targets.js";
import { slug, type ManifestDisk } from "../../drivers/bundle/bundle.js";
import {
  buildRestoredDefinition,
  type DefinitionNote,
  type RestoredDefinition,
} from "../../drivers/libvirt/restored-definition.js";
import type { Exports } from "./exports.js";
import { RemoteFs } from "../../infra/remote-fs.js";
import { relayRsync } from "../../infra/relay.js";
import { nextTarget, requireNoVm } from "../library/artifacts.js";
import type { ManagedVm } from "../../domain/settings.js";

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
  /** True when the export was named by a unique prefix of its id rather than the whole id. */
  readonly byPrefix: boolean;
  readonly host: string;
  readonly mode: "new-vm" | "attach";
  readonly vm: string;
  /** Each bundle disk: where its image goes and the guest target it gets. */
  readonly disks: readonly { readonly from: string; readonly file: string; readonly target: string }[];
  readonly start: boolean;
  /** Bytes the images take on the host, and what is free in their folder. */
  readonly bytes: number;
  readonly freeBytes: number;
  /**
   * A new VM's definition, built from what the bundle's domain.xml may carry over (the rest is
   * dropped, each with why): the same in the dry run as in the real one. Null for --into.
   */
  readonly definition: {
    readonly kept: readonly DefinitionNote[];
    readonly dropped: readonly DefinitionNote[];
  } | null;
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
  { hosts, vms, targets, exports }: Pick<VmModules, "hosts" | "vms"> & { targets: Targets; exports: Exports },
  request: ImportRequest,
  record?: (vm: ManagedVm) => void,
): Promise<ImportResult> {
  if ((request.name === undefined) === (request.into === undefined)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "Say where the export goes: --name NEWVM for a new VM, or --into VM to add its disks to one.",
    );
  }
  const { target, entry, byPrefix } = await exports.find(request.target, request.export);
  if (entry.state === "partial" || entry.manifest === null) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `Export ${entry.id} cannot be restored: ${entry.reason ?? "it has no manifest"}.`,
    );
  }
  if (entry.state === "corrupt") {
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `Export ${entry.id} cannot be restored: ${entry.reason ?? "it is damaged"}.`,
    );
  }
  const manifest = entry.manifest;
  const chosen = chooseDisks(manifest.disks, request.disks, request.name !== undefined);
  const libvirt = hosts.libvirt(request.host);
  const host = new RemoteFs(libvirt.runner);
  const dir = posix.resolve(request.dir ?? DEFAULT_IMAGE_DIR);
  if (!/^[A-Za-z0-9._/+-]+$/.test(dir)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `Restore into a folder whose path has only letters, digits and . _ - + / (not "${dir}").`,
    );
  }
  const source = targets.fs(target.name);
  const bundleDir = posix.join(target.path, entry.folder);

  // Where everything goes, refusing anything that exists already. Everything the real run checks
  // before it copies is checked here too, so that a dry run that passes is a run that starts.
  let plan: Omit<ImportPlan, "bytes" | "freeBytes" | "definition">;
  let definition: RestoredDefinition | null = null;
  let definitionXml: string | null = null;
  if (request.name !== undefined) {
    const name = request.name;
    if (!/^[^/\0\n]{1,200}$/.test(name)) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `${quoteInput(name)} cannot be a VM name: use at most 200 characters, without "/" or a line break.`,
      );
    }
    await requireNoVm(vms, request.host, name);
    plan = {
      export: entry.id,
      byPrefix,
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
    definitionXml = await readBundleDefinition(source, bundleDir, manifest.definition.sha256, entry.id);
    definition = buildRestoredDefinition(definitionXml, {
      name,
      disks: new Map(plan.disks.map((d) => [d.target, d.file])),
      host: await hostNetworks(libvirt.runner, libvirt.uri),
    });
  } else {
    const vm = await vms.get(request.host, request.into ?? "");
    const used = new Set(vm.disks.map((d) => d.target));
    const targets = chosen.map(() => nextTarget(used));
    plan = {
      export: entry.id,
      byPrefix,
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
  const bytes = chosen.reduce((sum, d) => sum + d.size, 0);
  const freeBytes = await host.freeBytes(await existingAncestor(host, dir));
  if (freeBytes < bytes) {
    throw new SnapkeepError(
      "NO_SPACE",
      `${dir} on ${request.host} has ${formatBytes(freeBytes)} free, but the images need ${formatBytes(bytes)}; nothing was changed.`,
      { hint: "Free space there, or restore into another folder (--dir)." },
    );
  }
  const fullPlan: ImportPlan = {
    ...plan,
    bytes,
    freeBytes,
    definition: definition === null ? null : { kept: definition.kept, dropped: definition.dropped },
  };
  if (request.dryRun === true) {
    return { ...fullPlan, dryRun: true, vmUuid: null };
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
  if (definitionXml !== null) {
    // The definition read for the plan must be the one that was just verified.
    const again = await readBundleDefinition(source, bundleDir, manifest.definition.sha256, entry.id);
    if (again !== definitionXml) {
      throw new SnapkeepError(
        "VERIFY_FAILED",
        `domain.xml of export ${entry.id} changed while it was read; nothing was restored.`,
      );
    }
  }

  // 2. Images copied into a staging folder beside their final place, checked, then moved in.
  const staging = posix.join(dir, `.snapkeep-import-${entry.id}`);
  const moved: string[] = [];
  const attached: string[] = [];
  let committed = false;
  try {
    // The images' folder as any folder QEMU must traverse; the staging folder inside it private.
    await runChecked(host.runner, ["mkdir", "-p", "--", dir], `Making ${dir}`, { timeoutMs: QUICK_MS });
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
    // The images are what the manifest says; now whether the manifest describes standalone images.
    for (const disk of chosen) {
      await requireStandaloneImage(host, posix.join(staging, disk.name), disk, entry.id);
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

    // 3. The VM: defined from the allowlisted definition, or the disks attached. Once a VM uses
    // the images, a failure must not delete them under it; until then they go again.
    let vmUuid: string;
    if (plan.mode === "new-vm" && definition !== null) {
      requireOnlyImportedPaths(
        definition.xml,
        plan.disks.map((d) => d.file),
      );
      await libvirt.define(definition.xml, plan.vm);
      committed = true;
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
        attached.push(disk.file);
        committed = true;
      }
    }
    return { ...fullPlan, dryRun: false, vmUuid };
  } catch (error) {
    // Nothing half restored: images moved in that no VM uses are taken out again, and the staging
    // folder goes. A new VM that was defined keeps its images (a failed start leaves a VM that
    // can be started by hand); attached disks stay with their VM; the error says which stayed.
    const unused = plan.mode === "new-vm" && committed ? [] : moved.filter((f) => !attached.includes(f));
    await host.removeFiles(unused).catch(() => undefined);
    const kept = moved.filter((f) => !unused.includes(f));
    if (kept.length === 0) {
      throw error;
    }
    throw isSnapkeepError(error)
      ? new SnapkeepError(
          error.code,
          `${error.message} The images already in use were kept: ${kept.join(", ")}.`,
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

/** The largest domain.xml an import reads; libvirt's own definitions are a few KiB. */
const MAX_DEFINITION_BYTES = 1024 * 1024;

/**
 * The bundle's domain.xml, read only when it is a regular file (not a link that could point at a
 * file of the target's host), bounded, and only when it is exactly what the manifest hashed.
 */
async function readBundleDefinition(
  source: RemoteFs,
  bundleDir: string,
  sha256: string,
  id: string,
): Promise<string> {
  const result = await source.run(
    [
      "sh",
      "-c",
      '{ [ -f "$1" ] && [ ! -L "$1" ]; } || exit 3; head -c "$2" -- "$1"',
      "snapkeep-read",
      posix.join(bundleDir, "domain.xml"),
      String(MAX_DEFINITION_BYTES + 1),
    ],
    { timeoutMs: QUICK_MS },
  );
  if (result.code === 3) {
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `domain.xml of export ${id} is not a regular file; nothing was restored.`,
    );
  }
  if (result.code !== 0) {
    throw new SnapkeepError(
      "COMMAND_FAILED",
      `Reading domain.xml of export ${id} on ${source.label} failed: ${result.stderr.trim().split("\n").at(-1) ?? ""}`,
    );
  }
  if (Buffer.byteLength(result.stdout) > MAX_DEFINITION_BYTES) {
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `domain.xml of export ${id} is larger than any VM definition; nothing was restored.`,
    );
  }
  if (createHash("sha256").update(result.stdout).digest("hex") !== sha256) {
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `domain.xml of export ${id} does not match its manifest; nothing was restored.`,
    );
  }
  return result.stdout;
}

/**
 * The libvirt networks and the Linux bridges a restored VM's NICs may join on the host: a NIC
 * naming anything else is dropped rather than defined to fail at start.
 * Arguments: URI. Prints the network names, a marker, then the bridge names.
 */
export const HOST_NETWORKS_SCRIPT = [
  'virsh -q -c "$1" net-list --all --name || exit 1',
  "echo @@snapkeep-bridges",
  'for b in /sys/class/net/*/bridge; do [ -d "$b" ] || continue; d=${b%/bridge}; printf \'%s\\n\' "${d##*/}"; done',
].join("\n");

export function parseHostNetworks(output: string): { networks: string[]; bridges: string[] } {
  const [networks = "", bridges = ""] = output.split("@@snapkeep-bridges");
  const names = (text: string): string[] =>
    text
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => /^[A-Za-z0-9_.:-]{1,64}$/.test(l));
  return { networks: names(networks), bridges: names(bridges) };
}

async function hostNetworks(
  runner: CommandRunner,
  uri: string,
): Promise<{ networks: string[]; bridges: string[] }> {
  const result = await runChecked(
    runner,
    ["sh", "-c", HOST_NETWORKS_SCRIPT, "snapkeep-networks", uri],
    "Listing the host's networks",
    { timeoutMs: QUICK_MS },
  );
  return parseHostNetworks(result.stdout);
}

/** The nearest folder of `path` that exists (the images' folder may be made by the import). */
async function existingAncestor(host: RemoteFs, path: string): Promise<string> {
  const result = await runChecked(
    host.runner,
    [
      "sh",
      "-c",
      'd=$1; while [ ! -d "$d" ]; do d=$(dirname -- "$d"); done; printf "%s" "$d"',
      "snapkeep-ancestor",
      path,
    ],
    `Looking for ${path}`,
    { timeoutMs: QUICK_MS },
  );
  return result.stdout.trim() || "/";
}

/**
 * An imported image must be a standalone qcow2 of the size the manifest says: its header is read
 * as bytes first (a backing file or external data file would make QEMU open a host path for the
 * guest), then qemu-img confirms it with the format pinned.
 */
async function requireStandaloneImage(
  host: RemoteFs,
  path: string,
  disk: ManifestDisk,
  id: string,
): Promise<void> {
  const what = `${disk.name} of export ${id}`;
  const header = await runChecked(host.runner, headerArgs(path), `Reading the header of ${what}`, {
    timeoutMs: QUICK_MS,
  });
  const { virtualSize } = checkStandaloneHeader(parseOdHex(header.stdout), what);
  if (disk.virtualSize !== null && virtualSize !== disk.virtualSize) {
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `${what} is not the image its manifest describes: its virtual size is ${virtualSize} bytes, the manifest says ${disk.virtualSize}; nothing was restored.`,
    );
  }
  const info = await runChecked(host.runner, pinnedInfoArgs(path), `Checking ${what}`, {
    timeoutMs: QUICK_MS,
  });
  checkPinnedInfo(info.stdout, { virtualSize: disk.virtualSize }, what);
}

/**
 * The last look before `virsh define`: every host path the definition names is one of the images
 * just imported (or the random-number source). The allowlist already guarantees it; this keeps a
 * future change to the allowlist from quietly breaking that promise.
 */
function requireOnlyImportedPaths(xml: string, files: readonly string[]): void {
  const allowed = new Set([...files, "/dev/urandom"]);
  const attributes =
    /\s(?:file|dev|path|dir|socket|template|evdev|rendernode)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
  const texts = /<(emulator|kernel|initrd|dtb|loader|nvram|backend|source)\b[^>]*>([^<]*)</g;
  const named = [
    ...[...xml.matchAll(attributes)].map((m) => m[1] ?? m[2] ?? ""),
    ...[...xml.matchAll(texts)].map((m) => (m[2] ?? "").trim()).filter((t) => t !== ""),
  ];
  // Attributes such as <target dev='vda'> name guest devices; only absolute paths are the host's.
  const stray = named.filter((p) => p.startsWith("/") && !allowed.has(p));
  if (stray.length > 0) {
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `The restored definition would name ${stray.slice(0, 3).join(", ")} on the host; nothing was defined.`,
    );
  }
}

/**
 * The first half of restoring an export, the same in a dry run as in the real one: the export
 * found and judged usable, where each image goes (refusing anything the host has already), the
 * new VM's definition built from what the bundle's may carry over, and the room the images need.
 * Everything the real run checks before it copies is checked here, so a dry run that passes is a
 * run that starts.
 */
import { createHash } from "node:crypto";
import { posix } from "node:path";

import { SnapkeepError, quoteInput } from "../../../errors.js";
import { formatBytes } from "../../../domain/bytes.js";
import type { Target } from "../../../domain/settings.js";
import { slug, type ExportEntry, type Manifest, type ManifestDisk } from "../../../drivers/bundle/bundle.js";
import {
  buildRestoredDefinition,
  type RestoredDefinition,
} from "../../../drivers/libvirt/restored-definition.js";
import type { LibvirtHost } from "../../../hypervisor/libvirt.js";
import { RemoteFs } from "../../../infra/remote-fs.js";
import { runChecked } from "../../../infra/runner/checked.js";
import type { CommandRunner } from "../../../infra/runner/types.js";
import { nextTarget, requireNoVm } from "../../library/library.js";
import type { VmModules } from "../../vm-modules.js";
import type { Targets } from "../../targets.js";
import type { Exports } from "../exports.js";
import type { ImportPlan, ImportRequest } from "../restore.js";
import { QUICK_MS } from "./context.js";

/** libvirt's default storage folder, which QEMU may open on every distribution's defaults. */
export const DEFAULT_IMAGE_DIR = "/var/lib/libvirt/images";

/** The largest domain.xml an import reads; libvirt's own definitions are a few KiB. */
const MAX_DEFINITION_BYTES = 1024 * 1024;

/** An import's fixed facts: the export, the disks chosen from it, and both ends. */
export interface ImportRun {
  readonly request: ImportRequest;
  readonly target: Target;
  readonly entry: ExportEntry;
  readonly manifest: Manifest;
  readonly byPrefix: boolean;
  readonly chosen: readonly ManifestDisk[];
  readonly libvirt: LibvirtHost;
  /** The host the export is restored onto. */
  readonly host: RemoteFs;
  /** The target the export is on. */
  readonly source: RemoteFs;
  /** The images' folder on the host. */
  readonly dir: string;
  readonly bundleDir: string;
  /**
   * For each chosen disk that is an incremental image, the exports it is built on, nearest
   * first, each with its folder on the target and its own entry for that disk.
   */
  readonly links: ReadonlyMap<string, readonly ChainLink[]>;
}

export interface ChainLink {
  readonly id: string;
  readonly dir: string;
  readonly disk: ManifestDisk;
}

export interface PlannedImport extends ImportRun {
  readonly plan: ImportPlan;
  /** A new VM's definition, null for --into; and the bundle's domain.xml it was built from. */
  readonly definition: RestoredDefinition | null;
  readonly definitionXml: string | null;
}

type Placement = Omit<ImportPlan, "bytes" | "freeBytes" | "definition">;

/** What restoring an export works with: the host and VM it goes to, the target it comes from. */
export type ImportDeps = Pick<VmModules, "hosts" | "vms"> & {
  readonly targets: Targets;
  readonly exports: Exports;
};

export async function openImport(
  { hosts, targets, exports }: ImportDeps,
  request: ImportRequest,
): Promise<ImportRun> {
  if ((request.name === undefined) === (request.into === undefined)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "Say where the export goes: --name NEWVM for a new VM, or --into VM to add its disks to one.",
    );
  }
  const { target, entry, byPrefix } = await exports.find(request.target, request.export);
  const manifest = restorableManifest(entry);
  const chosen = chooseDisks(manifest.disks, request.disks, request.name !== undefined);
  const libvirt = hosts.libvirt(request.host);
  const dir = posix.resolve(request.dir ?? DEFAULT_IMAGE_DIR);
  if (!/^[A-Za-z0-9._/+-]+$/.test(dir)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `Restore into a folder whose path has only letters, digits and . _ - + / (not "${dir}").`,
    );
  }
  const links = new Map<string, ChainLink[]>();
  for (const disk of chosen.filter((d) => d.backing !== undefined)) {
    const below = await exports.chain(target, entry, disk.target);
    links.set(
      disk.target,
      below.map((e) => ({
        id: e.id,
        dir: posix.join(target.path, e.folder),
        disk: e.manifest?.disks.find((d) => d.target === disk.target) as ManifestDisk,
      })),
    );
  }
  return {
    request,
    target,
    entry,
    manifest,
    byPrefix,
    chosen,
    libvirt,
    host: new RemoteFs(libvirt.runner),
    source: targets.fs(target.name),
    dir,
    bundleDir: posix.join(target.path, entry.folder),
    links,
  };
}

/** Where everything goes, refusing anything that exists already, and whether it fits. */
export async function planImport(deps: ImportDeps, run: ImportRun): Promise<PlannedImport> {
  const { request, host, dir, chosen } = run;
  const placed =
    request.name !== undefined
      ? await placeNewVm(deps, run, request.name)
      : { placement: await placeIntoVm(deps, run), definition: null, definitionXml: null };
  const { placement, definition } = placed;
  const existing = await host.sizes(placement.disks.map((d) => d.file));
  const taken = placement.disks.filter((_, i) => existing[i] !== undefined).map((d) => d.file);
  if (taken.length > 0) {
    throw new SnapkeepError(
      "ALREADY_EXISTS",
      `${taken.join(", ")} already exists on ${request.host}; nothing was changed.`,
      { action: { do: "restore-elsewhere", nameToo: true } },
    );
  }
  // An incremental disk's chain is copied, then flattened into one image beside it.
  const bytes = chosen.reduce((sum, d) => {
    const links = run.links.get(d.target);
    return sum + (links === undefined ? d.size : 2 * links.reduce((s, l) => s + l.disk.size, d.size));
  }, 0);
  const freeBytes = await host.freeBytes(await existingAncestor(host, dir));
  if (freeBytes < bytes) {
    throw new SnapkeepError(
      "NO_SPACE",
      `${dir} on ${request.host} has ${formatBytes(freeBytes)} free, but the images need ${formatBytes(bytes)}; nothing was changed.`,
      { action: { do: "restore-elsewhere", nameToo: false } },
    );
  }
  const plan: ImportPlan = {
    ...placement,
    bytes,
    freeBytes,
    definition: definition === null ? null : { kept: definition.kept, dropped: definition.dropped },
  };
  return { ...run, plan, definition, definitionXml: placed.definitionXml };
}

/** A new VM: images named after it, its definition built from the bundle's. */
async function placeNewVm(
  { vms }: ImportDeps,
  run: ImportRun,
  name: string,
): Promise<{ placement: Placement; definition: RestoredDefinition; definitionXml: string }> {
  const { request, entry, libvirt } = run;
  if (!/^[^/\0\n]{1,200}$/.test(name)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `${quoteInput(name)} cannot be a VM name: use at most 200 characters, without "/" or a line break.`,
    );
  }
  await requireNoVm(vms, request.host, name);
  const placement: Placement = {
    export: entry.id,
    byPrefix: run.byPrefix,
    host: request.host,
    mode: "new-vm",
    vm: name,
    disks: run.chosen.map((d) => ({
      from: d.name,
      file: posix.join(run.dir, `${slug(name)}-${d.target}.qcow2`),
      target: d.target,
    })),
    start: request.start === true,
  };
  const definitionXml = await readBundleDefinition(run);
  const definition = buildRestoredDefinition(definitionXml, {
    name,
    disks: new Map(placement.disks.map((d) => [d.target, d.file])),
    host: await hostNetworks(libvirt.runner, libvirt.uri),
  });
  return { placement, definition, definitionXml };
}

/** Disks added to a VM: the next free guest names, images named after the VM and the export. */
async function placeIntoVm({ vms }: ImportDeps, run: ImportRun): Promise<Placement> {
  const { request, entry } = run;
  const vm = await vms.get(request.host, request.into ?? "");
  const used = new Set(vm.disks.map((d) => d.target));
  const targets = run.chosen.map(() => nextTarget(used));
  return {
    export: entry.id,
    byPrefix: run.byPrefix,
    host: request.host,
    mode: "attach",
    vm: vm.name,
    disks: run.chosen.map((d, i) => ({
      from: d.name,
      file: posix.join(
        run.dir,
        `${slug(vm.name)}-restored-${entry.id.slice(0, 15).toLowerCase()}-${d.target}.qcow2`,
      ),
      target: targets[i] ?? "",
    })),
    start: false,
  };
}

export function restorableManifest(entry: ExportEntry): Manifest {
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
  return entry.manifest;
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

/**
 * The bundle's domain.xml, read only when it is a regular file (not a link that could point at a
 * file of the target's host), bounded, and only when it is exactly what the manifest hashed.
 */
export async function readBundleDefinition(run: ImportRun): Promise<string> {
  const { source, entry } = run;
  const id = entry.id;
  const result = await source.run(
    [
      "sh",
      "-c",
      '{ [ -f "$1" ] && [ ! -L "$1" ]; } || exit 3; head -c "$2" -- "$1"',
      "snapkeep-read",
      posix.join(run.bundleDir, "domain.xml"),
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
  if (createHash("sha256").update(result.stdout).digest("hex") !== run.manifest.definition.sha256) {
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

/**
 * Restoring an export bundle onto a host: as a new VM defined from the bundle's definition, or as
 * extra disks of a VM that exists. The bundle is checked against its manifest on the target first,
 * the images are checked again where they land, and nothing the host already has is overwritten.
 */
import { posix } from "node:path";

import type { ManagedVm } from "../../domain/settings.js";
import type { DefinitionNote } from "../../drivers/libvirt/restored-definition.js";
import { copyIntoStaging, moveIntoPlace, requireBundleIntact } from "./steps/import-copy.js";
import { openImport, planImport, type ImportDeps, type PlannedImport } from "./steps/import-plan.js";
import { attachDisks, defineVm, undoImport, type ImportDone } from "./steps/import-vm.js";

export { DEFAULT_IMAGE_DIR, HOST_NETWORKS_SCRIPT, parseHostNetworks } from "./steps/import-plan.js";

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

/**
 * Restores an export. `record` is told about a new VM, so that Snapkeep may delete it later
 * (`vm delete` only removes VMs Snapkeep made). The plan (steps/import-plan.ts) is all a dry run
 * does; the real run checks the bundle again, copies and checks the images (import-copy.ts), then
 * defines the VM or attaches the disks (import-vm.ts).
 */
export async function restoreExport(
  deps: ImportDeps,
  request: ImportRequest,
  record?: (vm: ManagedVm) => void,
): Promise<ImportResult> {
  const planned = await planImport(deps, await openImport(deps, request));
  if (request.dryRun === true) {
    return { ...planned.plan, dryRun: true, vmUuid: null };
  }
  await requireBundleIntact(deps.exports, planned);
  return restore(planned, record);
}

/**
 * Images copied into a staging folder beside their final place, checked, moved in, then used by
 * a VM. Once a VM uses them a failure must not delete them under it; until then they go again.
 */
async function restore(
  p: PlannedImport,
  record: ((vm: ManagedVm) => void) | undefined,
): Promise<ImportResult> {
  const staging = posix.join(p.dir, `.snapkeep-import-${p.entry.id}`);
  const done: ImportDone = { moved: [], attached: [], committed: false };
  try {
    const staged = await copyIntoStaging(p, staging);
    await moveIntoPlace(p, staging, staged, done.moved);
    const vmUuid =
      p.plan.mode === "new-vm" && p.definition !== null
        ? await defineVm(p, p.definition.xml, done, record)
        : await attachDisks(p, done);
    return { ...p.plan, dryRun: false, vmUuid };
  } catch (error) {
    throw await undoImport(p, done, error);
  } finally {
    await p.host.removeTree(staging).catch(() => undefined);
  }
}

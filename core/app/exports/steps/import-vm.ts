/**
 * The last step of a restore: the VM defined from the allowlisted definition, or the images
 * attached to the VM they were restored into; and, when anything failed, undoing what no VM uses.
 */
import { SnapkeepError, isSnapkeepError } from "../../../errors.js";
import type { ManagedVm } from "../../../domain/settings.js";
import { attachDiskArgs } from "../../../drivers/libvirt/domain-args.js";
import { runChecked } from "../../../infra/runner/checked.js";
import { QUICK_MS } from "./context.js";
import type { PlannedImport } from "./import-plan.js";

/** What a restore has done so far, for undoing what is not in use when a later step fails. */
export interface ImportDone {
  /** Images moved to their final names. */
  readonly moved: string[];
  /** Images attached to a VM. */
  readonly attached: string[];
  /** A VM uses the images now: a new one was defined, or a disk attached. */
  committed: boolean;
}

/** Defines the new VM; once it is defined it keeps its images, even when starting it fails. */
export async function defineVm(
  p: PlannedImport,
  xml: string,
  done: ImportDone,
  record: ((vm: ManagedVm) => void) | undefined,
): Promise<string> {
  const { libvirt, plan } = p;
  requireOnlyImportedPaths(
    xml,
    plan.disks.map((d) => d.file),
  );
  await libvirt.define(xml, plan.vm);
  done.committed = true;
  const defined = await libvirt.findVm(plan.vm);
  const vmUuid = defined.vm.uuid;
  record?.({
    host: p.request.host,
    uuid: vmUuid,
    name: plan.vm,
    createdAt: new Date().toISOString(),
    from: `export:${p.target.name}/${p.entry.id}`,
    files: plan.disks.map((d) => d.file),
  });
  if (plan.start) {
    await libvirt.start(vmUuid);
  }
  return vmUuid;
}

/** Attaches every image to the VM, one by one; each attached one stays with it. */
export async function attachDisks(p: PlannedImport, done: ImportDone): Promise<string> {
  const { libvirt, plan } = p;
  const vm = await libvirt.findVm(plan.vm);
  for (const disk of plan.disks) {
    await runChecked(
      libvirt.runner,
      attachDiskArgs(libvirt.uri, {
        uuid: vm.vm.uuid,
        source: disk.file,
        target: disk.target,
        readonly: false,
        live: vm.vm.active,
      }),
      `Attaching ${disk.file} to ${plan.vm}`,
      { timeoutMs: QUICK_MS },
    );
    done.attached.push(disk.file);
    done.committed = true;
  }
  return vm.vm.uuid;
}

/**
 * Nothing half restored: images moved in that no VM uses are taken out again. A new VM that was
 * defined keeps its images (a failed start leaves a VM that can be started by hand); attached
 * disks stay with their VM. Returns the error to throw, which says which images stayed.
 */
export async function undoImport(p: PlannedImport, done: ImportDone, error: unknown): Promise<unknown> {
  const unused =
    p.plan.mode === "new-vm" && done.committed ? [] : done.moved.filter((f) => !done.attached.includes(f));
  await p.host.removeFiles(unused).catch(() => undefined);
  const kept = done.moved.filter((f) => !unused.includes(f));
  if (kept.length === 0) {
    return error;
  }
  return isSnapkeepError(error)
    ? new SnapkeepError(
        error.code,
        `${error.message} The images already in use were kept: ${kept.join(", ")}.`,
        {
          hint: error.hint,
          action: error.action,
          cause: error,
        },
      )
    : error;
}

/**
 * The last look before `virsh define`: every host path the definition names is one of the images
 * just imported (or the random-number source). The allowlist already guarantees it; this keeps a
 * future change to the allowlist from quietly breaking that promise.
 */
export function requireOnlyImportedPaths(xml: string, files: readonly string[]): void {
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

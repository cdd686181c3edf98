/**
 * What deleting a VM Snapkeep made would do, decided from what was read: the image files that go
 * (with the snapshots inside them), what survives and why, and the schedules that go with it.
 */
import type { ManagedVm, Schedule } from "../../domain/settings.js";
import type { VmWithSnapshots } from "../../domain/types.js";
import type { Artifact, DeletePlan } from "./library.js";

export interface DeleteContext {
  /** The host's name in Snapkeep, as schedules record it. */
  readonly host: string;
  readonly templates: readonly Pick<Artifact, "name" | "image">[];
  readonly volumes: readonly Pick<Artifact, "name" | "image">[];
  readonly schedules: readonly Pick<Schedule, "id" | "host" | "vmUuid">[];
  readonly dryRun: boolean;
}

export function vmDeletePlan(vm: VmWithSnapshots, managed: ManagedVm, context: DeleteContext): DeletePlan {
  const files = vm.disks
    .filter((d) => d.source !== null && managed.files.includes(d.source))
    .map((d) => ({
      path: d.source ?? "",
      snapshots: vm.snapshots.filter((s) => s.disks.some((x) => x.target === d.target)).map((s) => s.name),
    }));
  return {
    vm: vm.name,
    uuid: vm.uuid,
    running: vm.active,
    files,
    survives: survivors(vm, managed, context),
    schedules: context.schedules
      .filter((s) => s.host === context.host && s.vmUuid === vm.uuid)
      .map((s) => s.id),
    dryRun: context.dryRun,
  };
}

/** Disks Snapkeep did not make stay (volumes are detached with the VM), and so do its sources. */
function survivors(vm: VmWithSnapshots, managed: ManagedVm, context: DeleteContext): string[] {
  const fromTemplate =
    managed.from.startsWith("template:") &&
    context.templates.some((t) => `template:${t.name}` === managed.from);
  return [
    ...vm.disks
      .filter((d) => d.source !== null && !managed.files.includes(d.source))
      .map((d) => {
        const volume = context.volumes.find((v) => v.image === d.source);
        return volume === undefined
          ? `disk ${d.target} (${d.source ?? ""}): not made by Snapkeep, left as it is`
          : `volume ${volume.name} (detached)`;
      }),
    ...(fromTemplate ? [`template ${managed.from.slice("template:".length)}`] : []),
    "every export of it on the targets",
  ];
}

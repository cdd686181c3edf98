/**
 * The pure half of making a template or a volume from a snapshot: which disk it is made of, and
 * the seeds' rule that only a root disk becomes an OS template and only an additional disk a volume.
 */
import { SnapkeepError } from "../../errors.js";
import type { Disk, DiskSnapshot, Snapshot, VmWithSnapshots } from "../types.js";

export interface ArtifactSource {
  /** The disk's guest name, e.g. vda. */
  readonly target: string;
  readonly disk: Disk & { readonly source: string };
  /** The disk's part of the snapshot. */
  readonly image: DiskSnapshot;
}

/**
 * The disk a template (by default the VM's root disk) or a volume (which must be named) is made
 * of, refusing one the snapshot does not cover and one of the wrong role, with what to do instead.
 */
export function chooseArtifactSource(
  kind: "template" | "volume",
  vm: VmWithSnapshots,
  snapshot: Snapshot,
  request: { readonly host: string; readonly name: string; readonly disk?: string | undefined },
): ArtifactSource {
  const target =
    request.disk ?? (kind === "template" ? vm.disks.find((d) => d.role === "root")?.target : undefined);
  if (target === undefined) {
    throw new SnapkeepError("INVALID_INPUT", "Say which disk the volume is made from: --disk vdb.");
  }
  const disk = vm.disks.find((d) => d.target === target);
  const image = snapshot.disks.find((d) => d.target === target);
  if (disk === undefined || image === undefined || disk.source === null) {
    throw new SnapkeepError("NOT_FOUND", `Snapshot "${snapshot.name}" has no disk ${target}.`, {
      hint: `It has: ${snapshot.disks.map((d) => d.target).join(", ")}`,
    });
  }
  if (kind === "template" && disk.role !== "root") {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `${target} is an additional disk of ${vm.name}; only a root-disk snapshot can become an OS template.`,
      {
        action: {
          do: "make-instead",
          kind: "volume",
          host: request.host,
          vm: vm.name,
          snapshot: snapshot.name,
          disk: target,
          name: request.name,
        },
      },
    );
  }
  if (kind === "volume" && disk.role === "root") {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `${target} is the root disk of ${vm.name}; a root-disk snapshot becomes an OS template, not a volume.`,
      {
        action: {
          do: "make-instead",
          kind: "template",
          host: request.host,
          vm: vm.name,
          snapshot: snapshot.name,
          disk: target,
          name: request.name,
        },
      },
    );
  }
  return { target, disk: { ...disk, source: disk.source }, image };
}

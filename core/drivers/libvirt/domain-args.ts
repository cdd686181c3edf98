/**
 * Pure argv builders for virsh commands that change a domain's disks or read its stored definition,
 * beside args.ts. Domains are addressed by UUID, as there.
 */
import { virsh } from "./args.js";

export interface AttachDisk {
  readonly uuid: string;
  /** The qcow2 image on the host. */
  readonly source: string;
  /** The guest-visible name it gets, e.g. vdb. */
  readonly target: string;
  readonly readonly: boolean;
  /** The VM runs: the disk goes into the definition and into the running VM. */
  readonly live: boolean;
}

/** A qcow2 image as a virtio disk; the definition always, the running VM too when it runs. */
export function attachDiskArgs(uri: string, disk: AttachDisk): string[] {
  return virsh(
    uri,
    "attach-disk",
    "--domain",
    disk.uuid,
    "--source",
    disk.source,
    "--target",
    disk.target,
    "--driver",
    "qemu",
    "--subdriver",
    "qcow2",
    "--targetbus",
    "virtio",
    ...(disk.readonly ? ["--mode", "readonly"] : []),
    disk.live ? "--persistent" : "--config",
  );
}

/** Removes a disk from the definition, and from the running VM when `live`. */
export function detachDiskArgs(uri: string, uuid: string, target: string, live: boolean): string[] {
  return virsh(uri, "detach-disk", "--domain", uuid, "--target", target, live ? "--persistent" : "--config");
}

/** The definition libvirt keeps for the next start, not the running VM's live one. */
export function inactiveDefinitionArgs(uri: string, uuid: string): string[] {
  return virsh(uri, "dumpxml", "--inactive", "--domain", uuid);
}

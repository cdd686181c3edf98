import { randomBytes, randomUUID } from "node:crypto";
import { SnapkeepError } from "../../errors.js";
import * as virsh from "../../drivers/libvirt/args.js";
import * as qemuImg from "../../drivers/qemu-img/args.js";
import { LibvirtHost } from "../../hypervisor/libvirt.js";
import { runChecked } from "../../infra/runner/checked.js";
import type { CommandRunner } from "../../infra/runner/types.js";
import { buildLabDomainXml, type LabDiskSpec } from "../../drivers/libvirt/lab-xml.js";

export interface LabVmRequest {
  readonly name: string;
  /** Folder for the disk images; QEMU (user libvirt-qemu) must be able to reach it. */
  readonly dir: string;
  readonly disks: readonly {
    readonly target: string;
    readonly sizeMiB: number;
    readonly format?: "qcow2" | "raw";
    /** A CD-ROM drive holding a raw image: a device that is not a disk, for tests and demos. */
    readonly device?: "cdrom";
  }[];
  readonly running: boolean;
  readonly owner: string;
  readonly memoryMiB?: number;
}

export interface LabVm {
  readonly name: string;
  readonly uuid: string;
  readonly diskPaths: readonly string[];
}

/** The two demo VMs `snapkeep lab up` makes: one running, one shut off, each with a root and a data disk. */
export const DEMO_VMS = [
  {
    name: "snapkeep-demo-web",
    running: true,
    disks: [
      { target: "vda", sizeMiB: 256 },
      { target: "vdb", sizeMiB: 128 },
    ],
  },
  {
    name: "snapkeep-demo-db",
    running: false,
    disks: [
      { target: "vda", sizeMiB: 256 },
      { target: "vdb", sizeMiB: 256 },
    ],
  },
] as const;
export const DEMO_OWNER = "demo";
export const DEFAULT_LAB_DIR = "/var/lib/libvirt/images/snapkeep-lab";

/** KVM when the host offers it, else plain emulation: a VM with no OS runs either way. */
export async function detectVirtType(runner: CommandRunner, uri: string): Promise<"kvm" | "qemu"> {
  const caps = await runChecked(runner, virsh.virsh(uri, "capabilities"), "Reading host capabilities");
  return /<domain type=['"]kvm['"]/.test(caps.stdout) ? "kvm" : "qemu";
}

/** Creates the disks and defines (and optionally starts) one throwaway VM carrying the lab marker. */
export async function createLabVm(runner: CommandRunner, uri: string, request: LabVmRequest): Promise<LabVm> {
  // A folder the lab creates is opened to QEMU (another user, which must traverse it); an
  // existing folder, maybe the user's own, keeps its permissions.
  const created = await runner.run(["mkdir", "--", request.dir]);
  if (created.code === 0) {
    await runChecked(runner, ["chmod", "0755", "--", request.dir], "Opening the lab folder to QEMU");
  } else {
    await runChecked(runner, ["test", "-d", request.dir], `Using ${request.dir} for the lab's images`);
  }
  const fileStem = `${request.name.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 40)}-${randomBytes(4).toString("hex")}`;
  const disks: LabDiskSpec[] = [];
  for (const disk of request.disks) {
    const format = disk.format ?? "qcow2";
    const path = `${request.dir}/${fileStem}-${disk.target}.${format}`;
    await runChecked(
      runner,
      qemuImg.createImageArgs(path, format, disk.sizeMiB * 1024 * 1024),
      `Creating disk ${disk.target}`,
    );
    disks.push({
      path,
      target: disk.target,
      format,
      ...(disk.device === undefined ? {} : { device: disk.device }),
    });
  }
  const xml = buildLabDomainXml({
    name: request.name,
    virtType: await detectVirtType(runner, uri),
    memoryMiB: request.memoryMiB ?? 32,
    disks,
    owner: request.owner,
    uuid: randomUUID(),
  });
  const host = new LibvirtHost("lab", uri, runner);
  await host.define(xml, request.name);
  const defined = await host.findVm(request.name);
  if (request.running) {
    await host.start(defined.vm.uuid);
  }
  return { name: request.name, uuid: defined.vm.uuid, diskPaths: disks.map((d) => d.path) };
}

export interface LabRemoval {
  readonly name: string;
  readonly uuid: string;
  readonly files: readonly string[];
}

/**
 * Removes the VMs carrying the lab marker of `owner`, and the image files the lab recorded as its
 * own in that marker; disks attached later, or shared with other VMs, stay. Domains without the
 * marker are never touched, whatever their name. With `dryRun` it only reports what it would remove.
 */
export async function removeLabVms(
  runner: CommandRunner,
  uri: string,
  owner: string,
  options: { dryRun: boolean },
): Promise<LabRemoval[]> {
  const host = new LibvirtHost("lab", uri, runner);
  const ours = (await host.listVms()).filter((i) => i.xml.labOwner === owner);
  const removals = ours.map((i) => ({
    name: i.vm.name,
    uuid: i.vm.uuid,
    files: i.xml.labFiles.filter((file) => i.xml.disks.some((d) => d.source === file)),
  }));
  if (options.dryRun) {
    return removals;
  }
  for (const [index, removal] of removals.entries()) {
    if (ours[index]?.vm.active) {
      await runChecked(runner, virsh.destroyArgs(uri, removal.uuid), `Stopping ${removal.name}`);
    }
    await runChecked(runner, virsh.undefineArgs(uri, removal.uuid), `Removing ${removal.name}`);
    for (const file of removal.files) {
      await runChecked(runner, ["rm", "-f", "--", file], `Deleting ${file}`);
    }
  }
  return removals;
}

export async function labUp(runner: CommandRunner, uri: string, dir = DEFAULT_LAB_DIR): Promise<LabVm[]> {
  const host = new LibvirtHost("lab", uri, runner);
  const existing = await host.listVms();
  const made: LabVm[] = [];
  for (const demo of DEMO_VMS) {
    const same = existing.find((i) => i.vm.name === demo.name);
    if (same !== undefined) {
      if (same.xml.labOwner !== DEMO_OWNER) {
        throw new SnapkeepError(
          "ALREADY_EXISTS",
          `A VM named ${demo.name} exists and was not made by snapkeep lab; leaving it alone.`,
        );
      }
      continue;
    }
    made.push(await createLabVm(runner, uri, { ...demo, dir, owner: DEMO_OWNER }));
  }
  return made;
}

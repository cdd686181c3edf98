import { LAB_NAMESPACE } from "./parse.js";

/**
 * Builds the definition of a small VM with no OS (SeaBIOS only): enough for libvirt to run it and
 * for QEMU to hold its qcow2 disks, which is all live snapshots need. Used by `snapkeep lab` and by
 * the test hosts. Every such domain carries a metadata marker, and `lab down` only ever removes
 * domains that carry it.
 */

export interface LabDiskSpec {
  readonly path: string;
  readonly target: string;
  readonly format: "qcow2" | "raw";
  readonly device?: "disk" | "cdrom";
}

export interface LabDomainSpec {
  readonly name: string;
  readonly virtType: "kvm" | "qemu";
  readonly memoryMiB: number;
  readonly disks: readonly LabDiskSpec[];
  /** Which lab or test run made it, so cleanup can be scoped to one run. */
  readonly owner: string;
  /** Chosen by the lab and written into the marker too: a clone of the VM gets a new UUID, so
   * `lab down` can tell the VM it made from copies a person made of it. */
  readonly uuid: string;
}

export function buildLabDomainXml(spec: LabDomainSpec): string {
  const disks = spec.disks
    .map((disk, index) => {
      const device = disk.device ?? "disk";
      const bus = device === "cdrom" ? "sata" : "virtio";
      return [
        `    <disk type='file' device='${device}'>`,
        `      <driver name='qemu' type='${disk.format}'/>`,
        `      <source file='${escapeXml(disk.path)}'/>`,
        `      <target dev='${escapeXml(disk.target)}' bus='${bus}'/>`,
        ...(device === "cdrom" ? ["      <readonly/>"] : []),
        ...(index === 0 ? ["      <boot order='1'/>"] : []),
        "    </disk>",
      ].join("\n");
    })
    .join("\n");
  return `<domain type='${spec.virtType}'>
  <name>${escapeXml(spec.name)}</name>
  <uuid>${spec.uuid}</uuid>
  <metadata>
    <lab:lab xmlns:lab='${LAB_NAMESPACE}' owner='${escapeXml(spec.owner)}' uuid='${spec.uuid}'>
${spec.disks.map((d) => `      <lab:file>${escapeXml(d.path)}</lab:file>`).join("\n")}
    </lab:lab>
  </metadata>
  <memory unit='MiB'>${spec.memoryMiB}</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
${disks}
    <serial type='pty'/>
    <console type='pty'/>
  </devices>
</domain>
`;
}

export function escapeXml(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll("'", "&apos;")
    .replaceAll('"', "&quot;");
}

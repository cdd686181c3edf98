import { XMLParser } from "fast-xml-parser";
import { SnapkeepError } from "../../errors.js";
import type { DiskRole, SnapshotBlocker, VmState } from "../../domain/types.js";
import { asNode, isNode, text, type XmlNode } from "../../domain/xml-tree.js";

/** A disk as the domain XML describes it, before sizes are read from the image. */
export interface XmlDisk {
  readonly target: string;
  readonly device: string;
  readonly type: string;
  readonly source: string | null;
  readonly format: string | null;
  readonly readonly: boolean;
  readonly bootOrder: number | null;
  /** libvirt's device alias on a running domain (virtio-disk0): matches QMP's qdev path. */
  readonly alias: string | null;
  readonly role: DiskRole;
}

export interface XmlDomain {
  readonly name: string;
  readonly uuid: string;
  /** The live XML of an active domain carries its runtime id; an inactive one has none. */
  readonly active: boolean;
  readonly disks: readonly XmlDisk[];
  /** The owner in Snapkeep's lab marker (see drivers/libvirt/lab-xml.ts); null for every other domain. */
  readonly labOwner: string | null;
  /** The domain has a guest-agent channel: without one no agent can answer, so none is asked. */
  readonly guestAgentChannel: boolean;
  /** The image files the lab created for this domain: the only files `lab down` may delete. */
  readonly labFiles: readonly string[];
  /** The XML as read, for the definition summary kept with each snapshot. */
  readonly raw: string;
}

// Values stay strings exactly as written: a VM named "007" or " spaced " must survive parsing.
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@_",
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  isArray: (name) => name === "disk" || name === "boot" || name === "lab:file",
});

export function parseDomainXml(xml: string): XmlDomain {
  const root = asNode(parser.parse(xml))["domain"];
  if (!isNode(root)) {
    throw new SnapkeepError("UNEXPECTED_OUTPUT", "virsh dumpxml did not return a <domain> document.");
  }
  const name = text(root["name"]);
  const uuid = text(root["uuid"]);
  if (name === null || uuid === null) {
    throw new SnapkeepError("UNEXPECTED_OUTPUT", "Domain XML without <name> or <uuid>.");
  }
  const devices = asNode(root["devices"]);
  const rawDisks = Array.isArray(devices["disk"]) ? (devices["disk"] as unknown[]) : [];
  const disks = rawDisks.filter(isNode).map(parseDisk);
  return {
    name,
    uuid,
    active: typeof root["@_id"] === "string" && root["@_id"] !== "-1",
    disks: assignRoles(disks),
    guestAgentChannel: (Array.isArray(devices["channel"])
      ? (devices["channel"] as unknown[])
      : [devices["channel"]]
    )
      .filter(isNode)
      .some((c) => text(asNode(c["target"])["@_name"]) === "org.qemu.guest_agent.0"),
    ...labMarker(asNode(asNode(root["metadata"])["lab:lab"]), uuid),
    raw: xml,
  };
}

/** Namespace of the marker `snapkeep lab` and the test hosts put on the domains they create. */
export const LAB_NAMESPACE = "https://snapkeep.dev/xmlns/lab/1";

function labMarker(marker: XmlNode, uuid: string): { labOwner: string | null; labFiles: string[] } {
  if (marker["@_xmlns:lab"] !== LAB_NAMESPACE || text(marker["@_uuid"]) !== uuid) {
    return { labOwner: null, labFiles: [] };
  }
  const files = Array.isArray(marker["lab:file"]) ? (marker["lab:file"] as unknown[]) : [];
  return {
    labOwner: text(marker["@_owner"]),
    labFiles: files.map(text).filter((f): f is string => f !== null),
  };
}

function parseDisk(disk: XmlNode): Omit<XmlDisk, "role"> {
  const source = asNode(disk["source"]);
  const boot = Array.isArray(disk["boot"]) ? disk["boot"].filter(isNode)[0] : undefined;
  const order = boot === undefined ? null : Number(text(boot["@_order"]));
  return {
    target: text(asNode(disk["target"])["@_dev"]) ?? "",
    device: text(disk["@_device"]) ?? "disk",
    type: text(disk["@_type"]) ?? "file",
    source: text(source["@_file"]) ?? text(source["@_dev"]) ?? text(source["@_name"]) ?? null,
    format: text(asNode(disk["driver"])["@_type"]),
    readonly: "readonly" in disk,
    bootOrder: order !== null && Number.isFinite(order) ? order : null,
    alias: text(asNode(disk["alias"])["@_name"]),
  };
}

/**
 * The root disk is the one the VM boots from: the hard disk with the lowest per-device boot order,
 * else (legacy `<os><boot dev='hd'/>` or no boot element at all) the first hard disk in XML order,
 * which is the one SeaBIOS and OVMF try first. Every other disk is an additional volume.
 */
function assignRoles(disks: Omit<XmlDisk, "role">[]): XmlDisk[] {
  const hardDisks = disks.filter((d) => d.device === "disk");
  const ordered = hardDisks
    .flatMap((d) => (d.bootOrder === null ? [] : [{ disk: d, order: d.bootOrder }]))
    .sort((a, b) => a.order - b.order)
    .map((entry) => entry.disk);
  const root = ordered[0] ?? hardDisks[0];
  return disks.map((d) => ({ ...d, role: d === root ? "root" : "additional" }));
}

/** Why Snapkeep cannot snapshot this disk (today: internal qcow2 snapshots only), or null. */
export function snapshotBlocker(disk: XmlDisk): SnapshotBlocker {
  if (disk.device === "cdrom" || disk.device === "floppy") {
    return `${disk.target} is a ${disk.device === "cdrom" ? "CD-ROM" : "floppy"} drive, not a disk`;
  }
  if (disk.type === "block") {
    // Whether the device is an LVM volume only `lvs` on the host can say (hypervisor/lvm.ts).
    if (disk.source === null || !disk.source.startsWith("/dev/")) {
      return `${disk.target} is a block device without a /dev path`;
    }
    return disk.readonly ? `${disk.target} is attached read-only` : null;
  }
  if (disk.type !== "file") {
    return `${disk.target} is a ${disk.type} disk; Snapkeep snapshots qcow2 files and LVM volumes`;
  }
  if (disk.source === null) {
    return `${disk.target} has no source file`;
  }
  if (!disk.source.startsWith("/")) {
    return `${disk.target}'s source is not an absolute path`;
  }
  if (disk.format !== "qcow2") {
    return `${disk.target} is in ${disk.format ?? "an unknown"} format; only qcow2 images hold snapshots (convert it with qemu-img convert -O qcow2)`;
  }
  if (disk.readonly) {
    return `${disk.target} is attached read-only`;
  }
  return null;
}

/** `virsh list --uuid` prints one UUID a line and a trailing blank line. */
export function parseUuidList(output: string): string[] {
  return output
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
}

const STATES: readonly VmState[] = [
  "running",
  "paused",
  "shut off",
  "in shutdown",
  "crashed",
  "pmsuspended",
  "idle",
];

export function parseDomState(output: string): VmState {
  const line = output.trim().split("\n")[0]?.trim() ?? "";
  return (STATES as readonly string[]).includes(line) ? (line as VmState) : "unknown";
}

/**
 * Splits the output of a batched virsh call into one segment per command. A command that failed
 * printed nothing on stdout, so its segment is empty (its error went to stderr).
 */
export function splitBatch(output: string, separator: string, expected: number): string[] {
  const segments = output.split(separator);
  if (segments.length !== expected) {
    throw new SnapkeepError(
      "UNEXPECTED_OUTPUT",
      `A batched virsh call returned ${segments.length} results for ${expected} commands.`,
    );
  }
  return segments;
}

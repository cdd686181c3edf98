import { XMLParser, XMLValidator } from "fast-xml-parser";
import { z } from "zod";
import { SnapkeepError } from "../errors.js";
import type { DefinitionChange } from "./types.js";
import { asNode, isNode, text, type XmlNode } from "./xml-tree.js";

/**
 * A compact summary of a VM's libvirt definition, stored with each snapshot, and the comparison
 * of that summary with today's definition before a revert. Reverting puts the disks back as they
 * were; it does not touch the definition. A VM that has since gained memory, a disk or a NIC, or
 * moved to UEFI, keeps that after the revert, and the guest on the reverted disks may not expect
 * it (a UEFI guest on BIOS firmware does not boot; a reverted fstab may not know the new disk).
 * The person is shown what changed so they can decide before anything is touched.
 *
 * Only what a guest notices is summarised: the summary lives in the settings file, a few hundred
 * bytes per snapshot, and a full copy of the XML is what an export is for.
 */

export interface DiskSummary {
  readonly target: string;
  /** disk, cdrom, floppy or lun. */
  readonly device: string;
  /** The image file, block device or network/volume name; null for an empty CD-ROM drive. */
  readonly source: string | null;
  readonly format: string | null;
  readonly bus: string | null;
}

export interface NicSummary {
  readonly mac: string | null;
  readonly model: string | null;
  /** The libvirt network, host bridge or host device (macvtap) the NIC is attached to. */
  readonly network: string | null;
}

export interface DefinitionSummary {
  readonly memoryKiB: number | null;
  readonly vcpus: number | null;
  /** "bios" or "uefi", followed by " secure-boot" when the firmware enforces it. */
  readonly firmware: string;
  readonly machine: string | null;
  readonly disks: readonly DiskSummary[];
  readonly nics: readonly NicSummary[];
}

export type { DefinitionChange };

// The summary is read back from a settings file a person can edit: it is checked, not trusted.
// Unknown keys are dropped rather than refused, so a summary written by a later version that
// records more still reads.
const diskSchema = z.object({
  target: z.string(),
  device: z.string(),
  source: z.string().nullable(),
  format: z.string().nullable(),
  bus: z.string().nullable(),
});

const nicSchema = z.object({
  mac: z.string().nullable(),
  model: z.string().nullable(),
  network: z.string().nullable(),
});

export const definitionSummarySchema: z.ZodType<DefinitionSummary> = z.object({
  memoryKiB: z.number().int().min(0).nullable(),
  vcpus: z.number().int().min(1).nullable(),
  firmware: z.string().min(1),
  machine: z.string().nullable(),
  disks: z.array(diskSchema),
  nics: z.array(nicSchema),
});

// Values stay strings exactly as written, as in the libvirt driver's parser: a path or a bridge
// name is compared with what it was, not with what a number parser made of it.
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@_",
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  // libxml2 writes characters it must escape in an attribute (a newline in a path, say) as
  // numeric references, which the parser otherwise leaves as literal text.
  htmlEntities: true,
});

export function summariseDefinition(xml: string): DefinitionSummary {
  const domain = domainElement(xml);
  const os = asNode(domain["os"]);
  const devices = asNode(domain["devices"]);
  return {
    memoryKiB: memoryKiB(domain["memory"]),
    vcpus: positiveInteger(text(domain["vcpu"])),
    firmware: firmware(os),
    machine: text(asNode(os["type"])["@_machine"]),
    disks: children(devices, "disk").map(summariseDisk),
    nics: children(devices, "interface").map(summariseNic),
  };
}

function notADomain(reason: string): SnapkeepError {
  return new SnapkeepError("INVALID_INPUT", "The VM definition is not a libvirt domain XML.", {
    details: { reason },
  });
}

function domainElement(xml: string): XmlNode {
  // fast-xml-parser reads malformed XML without complaint: a truncated document would otherwise
  // summarise as a VM without disks, and the comparison would report them all as added.
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    throw notADomain(`line ${valid.err.line}: ${valid.err.msg}`);
  }
  const document = asNode(parser.parse(xml));
  const root = Object.keys(document).find((key) => !key.startsWith("?") && !key.startsWith("#"));
  // A snapshot's own XML (<domainsnapshot>) holds a <domain> too, but it is the definition at the
  // time libvirt took that snapshot, not one Snapkeep was asked to summarise.
  if (root !== "domain") {
    throw notADomain(root === undefined ? "it has no root element" : `its root element is <${root}>`);
  }
  // An empty <domain/> parses as a string; libvirt never prints one.
  const domain = document[root];
  if (!isNode(domain)) {
    throw notADomain("its <domain> element is empty");
  }
  return domain;
}

// libvirt's scaled integers (virScaleInteger): the unit is case-insensitive, a bare letter or
// "<letter>iB" is a power of 1024, "<letter>B" a power of 1000, and no unit means KiB.
const SCALE_LETTERS = "kmgtpe";

function unitInBytes(unit: string): bigint | null {
  if (unit === "") {
    return 1024n;
  }
  const lower = unit.toLowerCase();
  if (lower === "b" || lower === "byte" || lower === "bytes") {
    return 1n;
  }
  const power = SCALE_LETTERS.indexOf(lower.charAt(0)) + 1;
  const rest = lower.slice(1);
  const base = rest === "" || rest === "ib" ? 1024n : rest === "b" ? 1000n : null;
  return power === 0 || base === null ? null : base ** BigInt(power);
}

function memoryKiB(memory: unknown): number | null {
  const value = text(memory)?.trim() ?? "";
  const unit = unitInBytes(text(asNode(memory)["@_unit"]) ?? "");
  if (!/^\d+$/.test(value) || unit === null) {
    return null;
  }
  // libvirt rounds up to whole KiB; BigInt keeps 1 TB in bytes or a long digit string exact.
  const kib = (BigInt(value) * unit + 1023n) / 1024n;
  return kib <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(kib) : null;
}

function positiveInteger(value: string | null): number | null {
  const trimmed = value?.trim() ?? "";
  const number = Number(trimmed);
  return /^\d+$/.test(trimmed) && Number.isSafeInteger(number) && number > 0 ? number : null;
}

/**
 * UEFI is either asked for (`<os firmware='efi'>`, libvirt picks the files) or spelled out (a
 * pflash loader); a live or recently defined domain often has both. Secure Boot shows as
 * `secure='yes'` on the loader, or, where libvirt has not resolved the firmware into a loader
 * (an inactive definition on older libvirt, which resolved it only at start-up), only as the
 * requested firmware feature: both count, so a summary taken from either kind of XML agrees.
 */
function firmware(os: XmlNode): string {
  const loader = asNode(os["loader"]);
  const uefi = text(os["@_firmware"]) === "efi" || text(loader["@_type"]) === "pflash";
  if (!uefi) {
    return "bios";
  }
  const secureFeature = children(asNode(os["firmware"]), "feature").some(
    (feature) => text(feature["@_name"]) === "secure-boot" && text(feature["@_enabled"]) === "yes",
  );
  return text(loader["@_secure"]) === "yes" || secureFeature ? "uefi secure-boot" : "uefi";
}

function summariseDisk(disk: XmlNode): DiskSummary {
  const target = asNode(disk["target"]);
  return {
    target: text(target["@_dev"]) ?? "",
    device: text(disk["@_device"]) ?? "disk",
    source: diskSource(asNode(disk["source"])),
    format: text(asNode(disk["driver"])["@_type"]),
    bus: text(target["@_bus"]),
  };
}

function diskSource(source: XmlNode): string | null {
  const pool = text(source["@_pool"]);
  const volume = text(source["@_volume"]);
  // A storage-pool volume is named by both; either alone would match another pool's volume.
  if (pool !== null && volume !== null) {
    return `${pool}/${volume}`;
  }
  return text(source["@_file"]) ?? text(source["@_dev"]) ?? text(source["@_name"]);
}

function summariseNic(nic: XmlNode): NicSummary {
  const source = asNode(nic["source"]);
  return {
    mac: text(asNode(nic["mac"])["@_address"]),
    model: text(asNode(nic["model"])["@_type"]),
    // The network comes first: a running domain's XML adds the network's bridge (virbr0) to its
    // source, and the definition libvirt keeps on disk does not, so the two must agree.
    network: text(source["@_network"]) ?? text(source["@_bridge"]) ?? text(source["@_dev"]),
  };
}

// ---- the comparison ----

export function diffDefinitions(then: DefinitionSummary, now: DefinitionSummary): DefinitionChange[] {
  const changes: DefinitionChange[] = [];
  if (then.memoryKiB !== now.memoryKiB) {
    changes.push({
      what: "memory",
      description: `memory: ${formatMemory(then.memoryKiB)} then, ${formatMemory(now.memoryKiB)} now`,
    });
  }
  if (then.vcpus !== now.vcpus) {
    changes.push({
      what: "vcpus",
      description: `vCPUs: ${then.vcpus ?? "unknown"} then, ${now.vcpus ?? "unknown"} now`,
    });
  }
  if (then.firmware !== now.firmware) {
    changes.push({ what: "firmware", description: `firmware: ${then.firmware} then, ${now.firmware} now` });
  }
  if (then.machine !== now.machine) {
    changes.push({
      what: "machine",
      description: `machine type: ${then.machine ?? "unknown"} then, ${now.machine ?? "unknown"} now`,
    });
  }
  changes.push(...diffDisks(then.disks, now.disks), ...diffNics(then.nics, now.nics));
  return changes;
}

function diffDisks(then: readonly DiskSummary[], now: readonly DiskSummary[]): DefinitionChange[] {
  const pairs = matchByKey(then, now, (disk) => disk.target).sort((a, b) =>
    compareTargets(sideOf(a).item.target, sideOf(b).item.target),
  );
  return pairs.flatMap((pair): DefinitionChange[] => {
    if (pair.kind === "added") {
      const disk = pair.now.item;
      const source = disk.source === null ? "" : ` (${disk.source})`;
      return [{ what: "disk", description: `${diskLabel(disk)} was added since the snapshot${source}` }];
    }
    if (pair.kind === "removed") {
      return [{ what: "disk", description: `${diskLabel(pair.then.item)} was removed since the snapshot` }];
    }
    const before = pair.then.item;
    const after = pair.now.item;
    const label = diskLabel(before);
    // An empty drive has no medium rather than no source: the words a person sees in virt-manager.
    const noSource = before.device === "cdrom" || before.device === "floppy" ? "no medium" : "none";
    return [
      fieldChange("disk", label, "device", before.device, after.device, "none"),
      fieldChange("disk", label, "source", before.source, after.source, noSource),
      fieldChange("disk", label, "format", before.format, after.format, "unknown"),
      fieldChange("disk", label, "bus", before.bus, after.bus, "unknown"),
    ].filter((change) => change !== null);
  });
}

/** "disk vda: source /a.qcow2 then, /b.qcow2 now", or null when the field is unchanged. */
function fieldChange(
  what: DefinitionChange["what"],
  label: string,
  field: string,
  then: string | null,
  now: string | null,
  none: string,
): DefinitionChange | null {
  return then === now
    ? null
    : { what, description: `${label}: ${field} ${then ?? none} then, ${now ?? none} now` };
}

function diskLabel(disk: DiskSummary): string {
  const kind = disk.device === "cdrom" ? "CD-ROM" : disk.device === "floppy" ? "floppy" : "disk";
  return `${kind} ${disk.target}`;
}

/**
 * libvirt names targets as a bus prefix ending in "d" (hd, sd, vd, xvd, ubd, fd) followed by a
 * base-26 index written in letters, so vdz is followed by vdaa: a plain string sort would put
 * vdaa between vda and vdb. Names of any other shape sort as plain strings.
 */
function compareTargets(a: string, b: string): number {
  const [prefixA, indexA] = splitTarget(a);
  const [prefixB, indexB] = splitTarget(b);
  return compareStrings(prefixA, prefixB) || indexA.length - indexB.length || compareStrings(indexA, indexB);
}

function splitTarget(target: string): [string, string] {
  const match = /^([a-z]*?d)([a-z]+)$/.exec(target);
  return match === null ? [target, ""] : [match[1] ?? target, match[2] ?? ""];
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function diffNics(then: readonly NicSummary[], now: readonly NicSummary[]): DefinitionChange[] {
  // libvirt does not write MAC addresses in upper case, but it accepts them from a person.
  const key = (nic: NicSummary): string => (nic.mac === null ? "" : `mac ${nic.mac.toLowerCase()}`);
  return matchByKey(then, now, key).flatMap((pair): DefinitionChange[] => {
    if (pair.kind === "added") {
      const network = pair.now.item.network === null ? "" : ` (on ${pair.now.item.network})`;
      return [
        { what: "nic", description: `${nicLabel(pair.now, now)} was added since the snapshot${network}` },
      ];
    }
    if (pair.kind === "removed") {
      return [{ what: "nic", description: `${nicLabel(pair.then, then)} was removed since the snapshot` }];
    }
    const before = pair.then.item;
    const after = pair.now.item;
    const label = nicLabel(pair.then, then);
    return [
      fieldChange("nic", label, "network", before.network, after.network, "none"),
      fieldChange("nic", label, "model", before.model, after.model, "none"),
    ].filter((change) => change !== null);
  });
}

/** A NIC is named by its MAC address, or else by its place among the NICs that have none. */
function nicLabel({ item, index }: Side<NicSummary>, list: readonly NicSummary[]): string {
  if (item.mac !== null) {
    return `NIC ${item.mac}`;
  }
  const position = list.slice(0, index + 1).filter((other) => other.mac === null).length;
  return `NIC #${position} without a MAC address`;
}

interface Side<T> {
  readonly item: T;
  /** Its place in its own list. */
  readonly index: number;
}

type Pair<T> =
  | { readonly kind: "added"; readonly now: Side<T> }
  | { readonly kind: "removed"; readonly then: Side<T> }
  | { readonly kind: "kept"; readonly then: Side<T>; readonly now: Side<T> };

function sideOf<T>(pair: Pair<T>): Side<T> {
  return pair.kind === "added" ? pair.now : pair.then;
}

/**
 * Pairs the items of two lists that share a key, the first of each key with the first, the second
 * with the second: NICs without a MAC share the empty key and so pair up by position, and a
 * duplicate (which libvirt refuses, but a hand-edited settings file may hold) does not make the
 * rest go astray. Pairs come in `then` order, followed by what only `now` has, in its order.
 */
function matchByKey<T>(then: readonly T[], now: readonly T[], key: (item: T) => string): Pair<T>[] {
  const waiting = new Map<string, Side<T>[]>();
  now.forEach((item, index) => {
    const k = key(item);
    waiting.set(k, [...(waiting.get(k) ?? []), { item, index }]);
  });
  const matched = new Set<number>();
  const pairs: Pair<T>[] = then.map((item, index): Pair<T> => {
    const partner = waiting.get(key(item))?.shift();
    if (partner === undefined) {
      return { kind: "removed", then: { item, index } };
    }
    matched.add(partner.index);
    return { kind: "kept", then: { item, index }, now: partner };
  });
  now.forEach((item, index) => {
    if (!matched.has(index)) {
      pairs.push({ kind: "added", now: { item, index } });
    }
  });
  return pairs;
}

const MEMORY_UNITS = ["KiB", "MiB", "GiB", "TiB"] as const;

/**
 * The largest unit that shows the amount exactly with at most two decimals (1.5 GiB, but 1100 MiB
 * rather than a rounded 1.07 GiB), so two different amounts never read the same: a diff that said
 * "2 GiB then, 2 GiB now" would be worse than none.
 */
function formatMemory(kib: number | null): string {
  if (kib === null) {
    return "unknown";
  }
  for (let power = MEMORY_UNITS.length - 1; power > 0; power--) {
    const hundredths = (kib * 100) / 1024 ** power;
    if (kib >= 1024 ** power && Number.isInteger(hundredths)) {
      return `${hundredths / 100} ${MEMORY_UNITS[power] ?? "KiB"}`;
    }
  }
  return `${kib} KiB`;
}

// ---- the parsed tree ----

/** The child elements named `name`: fast-xml-parser makes a list only when there are several. */
function children(node: XmlNode, name: string): XmlNode[] {
  const value = node[name];
  return (Array.isArray(value) ? (value as unknown[]) : [value]).filter(isNode);
}

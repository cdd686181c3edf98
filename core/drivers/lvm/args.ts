/**
 * argv for the LVM tools (lvm2 2.03). Pure: names reach LVM only as argv elements, which the
 * runner passes as-is locally and quotes one by one over SSH.
 *
 * Every call goes through `env LVM_SUPPRESS_FD_WARNINGS=1`: LVM warns on stderr about every file
 * descriptor it inherits (an SSH session has several), which would bury real errors.
 */
import { createHash } from "node:crypto";
import { parseSnapshotTag } from "../../domain/snapshot-tag.js";

const LVM_ENV = ["env", "LVM_SUPPRESS_FD_WARNINGS=1"];

/** The columns Snapkeep reads; parse.ts validates exactly these. */
export const LVS_FIELDS = [
  "lv_name",
  "vg_name",
  "lv_uuid",
  "lv_attr",
  "lv_size",
  "origin",
  "pool_lv",
  "snap_percent",
  "data_percent",
  "metadata_percent",
  "lv_time",
  "lv_path",
  "lv_dm_path",
  "lv_active",
  "lv_skip_activation",
  "lv_device_open",
  "segtype",
  "lv_tags",
  "vg_free",
  "vg_extent_size",
  "thin_id",
] as const;

/**
 * Every LV of the given volume groups (all of them when none are given), as JSON with sizes in
 * bytes and times as epoch seconds. `json_std` (typed numbers) does not exist in 2.03.16.
 */
export function lvsArgs(vgs: readonly string[] = []): string[] {
  return [
    ...LVM_ENV,
    "lvs",
    "--reportformat",
    "json",
    "--units",
    "b",
    "--nosuffix",
    "--config",
    'report{time_format="%s"}',
    "-o",
    LVS_FIELDS.join(","),
    ...vgs,
  ];
}

/** The LV tag that marks an LV as a snapshot Snapkeep made; lvs -S/@tag can find them all. */
export const OWNER_TAG = "snapkeep";
const TAG_PREFIX = "snapkeep.tag.";
const TIME_PREFIX = "snapkeep.time.";

/**
 * When the snapshot was taken, in epoch milliseconds. lv_time has only seconds and is reset when
 * a revert takes the snapshot again after LVM's merge consumed it; this tag keeps the original.
 */
export function encodeTimeTag(at: Date): string {
  return `${TIME_PREFIX}${at.getTime()}`;
}

const OF_PREFIX = "snapkeep.of.";

/**
 * The LV a snapshot was taken of. LVM forgets it for thin snapshots when another snapshot of the
 * same LV is merged (the merged one replaces the origin); this tag keeps the snapshot with its disk.
 */
export function encodeOriginTag(origin: string): string {
  return `${OF_PREFIX}${origin}`;
}

export function decodeOriginTag(lvTags: readonly string[]): string | null {
  return lvTags.find((t) => t.startsWith(OF_PREFIX))?.slice(OF_PREFIX.length) ?? null;
}

export function decodeTimeTag(lvTags: readonly string[]): Date | null {
  const text = lvTags.find((t) => t.startsWith(TIME_PREFIX))?.slice(TIME_PREFIX.length);
  return text !== undefined && /^\d{1,15}$/.test(text) ? new Date(Number(text)) : null;
}

/**
 * Snapkeep's snapshot tag as an LV tag. LV tags allow only [A-Za-z0-9_+.:/=!&#-], and the tag
 * carries any name a person typed, so it is stored base64url-encoded; 128 characters of name
 * stay well below LVM's 1024-character tag limit.
 */
export function encodeLvTag(tag: string): string {
  return TAG_PREFIX + Buffer.from(tag, "utf8").toString("base64url");
}

/** The Snapkeep tag in an LV's tags, or null for an LV Snapkeep did not make. */
export function decodeLvTag(lvTags: readonly string[]): string | null {
  if (!lvTags.includes(OWNER_TAG)) {
    return null;
  }
  const encoded = lvTags.find((t) => t.startsWith(TAG_PREFIX))?.slice(TAG_PREFIX.length);
  if (encoded === undefined || !/^[A-Za-z0-9_-]+$/.test(encoded)) {
    return null;
  }
  const tag = Buffer.from(encoded, "base64url").toString("utf8");
  // A round trip that differs means the text was not ours (or was damaged): treat it as foreign.
  return encodeLvTag(tag) === TAG_PREFIX + encoded ? tag : null;
}

/**
 * The snapshot LV's name: readable in `lvs` (origin, then the snapshot name), unique per origin
 * and tag through a short hash. Kept short: LVM's device-mapper names hold VG and LV together.
 */
export function snapshotLvName(origin: string, tag: string): string {
  const hash = createHash("sha256").update(`${origin}\0${tag}`).digest("hex").slice(0, 8);
  const name = parseSnapshotTag(tag).name;
  const slug = name
    .replace(/[^A-Za-z0-9+_.-]+/g, "-")
    .slice(0, 24)
    .replace(/^[-.]+|[-.]+$/g, "");
  return `${origin.slice(0, 32)}.sk.${slug === "" ? "" : `${slug}.`}${hash}`;
}

export interface ThickSnapshotRequest {
  readonly vg: string;
  readonly origin: string;
  readonly name: string;
  readonly tag: string;
  readonly takenAt: Date;
  /** COW space, in bytes; LVM rounds it up to whole extents. */
  readonly sizeBytes: number;
}

/** A COW snapshot of a linear (thick) LV. */
export function thickSnapshotArgs(r: ThickSnapshotRequest): string[] {
  return [
    ...LVM_ENV,
    "lvcreate",
    "--quiet",
    "--snapshot",
    "--size",
    `${r.sizeBytes}b`,
    "--name",
    r.name,
    ...snapshotTags(r),
    `${r.vg}/${r.origin}`,
  ];
}

/** The tags that make a snapshot LV Snapkeep's: owner, snapshot tag, time taken, origin LV. */
function snapshotTags(r: Pick<ThickSnapshotRequest, "tag" | "takenAt" | "origin">): string[] {
  return [
    "--addtag",
    OWNER_TAG,
    "--addtag",
    encodeLvTag(r.tag),
    "--addtag",
    encodeTimeTag(r.takenAt),
    "--addtag",
    encodeOriginTag(r.origin),
  ];
}

/**
 * A thin snapshot: no size (it shares the pool's blocks). It keeps LVM's activation-skip flag, so
 * it is never activated (and never opened by accident) until Snapkeep reads it with -K.
 */
export function thinSnapshotArgs(r: Omit<ThickSnapshotRequest, "sizeBytes">): string[] {
  return [
    ...LVM_ENV,
    "lvcreate",
    "--quiet",
    "--snapshot",
    "--name",
    r.name,
    ...snapshotTags(r),
    `${r.vg}/${r.origin}`,
  ];
}

/** Removes exactly the LV with this UUID (the one Snapkeep inspected), or nothing. */
export function removeByUuidArgs(vg: string, uuid: string): string[] {
  return [...LVM_ENV, "lvremove", "--yes", "--quiet", "--select", `lv_uuid=${uuid}`, vg];
}

/** Merges a snapshot back into its origin: thick (COW) or thin, LVM picks by the LV's type. */
/** Removes an LV this very job just made (a rollback); the caller knows the name is its own. */
export function removeByNameArgs(vg: string, lv: string): string[] {
  return [...LVM_ENV, "lvremove", "--yes", "--quiet", `${vg}/${lv}`];
}

export function mergeArgs(vg: string, snapshot: string): string[] {
  return [...LVM_ENV, "lvconvert", "--merge", `${vg}/${snapshot}`];
}

/** Activates an LV; `ignoreSkip` (-K) is needed for thin snapshots, which skip activation. */
export function activateArgs(vg: string, lv: string, ignoreSkip: boolean): string[] {
  return [
    ...LVM_ENV,
    "lvchange",
    "--activate",
    "y",
    ...(ignoreSkip ? ["--ignoreactivationskip"] : []),
    `${vg}/${lv}`,
  ];
}

/**
 * The kernel's read-only flag on an activated LV's device: every write through it fails, and the
 * LV's permission in the metadata stays as it is (a later merge needs it writable). LVM's own
 * read-only activation (`read_only_volume_list`) is refused for a thin LV by device-mapper
 * ("reload ioctl ... Invalid argument"); the flag goes with the device when it is deactivated.
 */
export function setReadOnlyArgs(device: string): string[] {
  // blockdev takes no "--": a path that starts with "/" cannot be read as an option.
  if (!device.startsWith("/")) {
    throw new RangeError(`not a device path: ${JSON.stringify(device)}`);
  }
  return ["blockdev", "--setro", device];
}

export function deactivateArgs(vg: string, lv: string): string[] {
  return [...LVM_ENV, "lvchange", "--activate", "n", `${vg}/${lv}`];
}

/**
 * Parsers for LVM's report output. Pure; tested on real `lvs` JSON captured in the LVM test guest
 * (test/fixtures/lvm/).
 */
import { z } from "zod";
import { SnapkeepError } from "../../errors.js";
import { parseJson } from "../qemu-img/parse.js";
import { decodeLvTag, decodeTimeTag } from "./args.js";

// lvm2 2.03.16 prints every value as a string, "" when unset (json_std with numbers is newer).
const lvRow = z.object({
  lv_name: z.string(),
  vg_name: z.string(),
  lv_uuid: z.string(),
  lv_attr: z.string(),
  lv_size: z.string(),
  origin: z.string(),
  pool_lv: z.string(),
  snap_percent: z.string(),
  data_percent: z.string(),
  metadata_percent: z.string(),
  lv_time: z.string(),
  lv_path: z.string(),
  lv_dm_path: z.string(),
  lv_active: z.string(),
  lv_skip_activation: z.string(),
  lv_device_open: z.string(),
  segtype: z.string(),
  lv_tags: z.string(),
  vg_free: z.string(),
  vg_extent_size: z.string(),
  thin_id: z.string(),
});

const lvsReport = z.object({ report: z.array(z.object({ lv: z.array(lvRow) })) });

export interface LogicalVolume {
  readonly name: string;
  readonly vg: string;
  readonly uuid: string;
  readonly attr: string;
  readonly size: number;
  /** The origin LV of a (thick or thin) snapshot, else null. */
  readonly origin: string | null;
  /** The thin pool of a thin LV, else null. */
  readonly pool: string | null;
  /** COW space used by a thick snapshot, or data used by a thin LV / pool, in percent; null when inactive. */
  readonly usedPercent: number | null;
  readonly metadataPercent: number | null;
  readonly createdAt: Date | null;
  /** /dev/VG/LV */
  readonly path: string;
  /** /dev/mapper/VG-LV */
  readonly dmPath: string;
  readonly active: boolean;
  readonly skipActivation: boolean;
  /** Some process (a running VM, a mount) holds the device open. */
  readonly open: boolean;
  readonly segtype: string;
  readonly tags: readonly string[];
  readonly vgFree: number;
  readonly vgExtentSize: number;
  /** Snapkeep's snapshot tag from the LV tags, or null for an LV Snapkeep did not make. */
  readonly snapkeepTag: string | null;
  /** The thin device's id in its pool (what thin_delta and thin_dump name), else null. */
  readonly thinId: number | null;
}

export type LvRole = "thick-origin" | "thick-snapshot" | "thin-volume" | "thin-pool" | "plain" | "other";

/** `lvs --reportformat json --units b --nosuffix -o LVS_FIELDS`: every LV listed. */
export function parseLvs(json: string): LogicalVolume[] {
  // LVM prints some warnings (a thin pool without autoextend, ...) on stdout ahead of the report.
  const start = json.search(/^\s*\{/m);
  const report = parseJson(start === -1 ? json : json.slice(start), lvsReport, "lvs");
  return report.report.flatMap((r) => r.lv.map(toLogicalVolume));
}

function toLogicalVolume(row: z.infer<typeof lvRow>): LogicalVolume {
  const tags = row.lv_tags === "" ? [] : row.lv_tags.split(",");
  const role = lvRoleOf(row.lv_attr);
  return {
    name: row.lv_name,
    vg: row.vg_name,
    uuid: row.lv_uuid,
    attr: row.lv_attr,
    size: bytes(row.lv_size, "lv_size"),
    origin: row.origin === "" ? null : row.origin,
    pool: row.pool_lv === "" ? null : row.pool_lv,
    // A thick snapshot reports its COW use in snap_percent; thin LVs and pools in data_percent.
    usedPercent: percent(role === "thick-snapshot" ? row.snap_percent || row.data_percent : row.data_percent),
    metadataPercent: percent(row.metadata_percent),
    createdAt:
      decodeTimeTag(tags) ?? (/^\d+$/.test(row.lv_time) ? new Date(Number(row.lv_time) * 1000) : null),
    path: row.lv_path,
    dmPath: row.lv_dm_path,
    active: row.lv_active === "active",
    skipActivation: row.lv_skip_activation !== "",
    open: row.lv_device_open === "open",
    segtype: row.segtype,
    tags,
    vgFree: bytes(row.vg_free, "vg_free"),
    vgExtentSize: bytes(row.vg_extent_size, "vg_extent_size"),
    snapkeepTag: decodeLvTag(tags),
    thinId: row.thin_id === "" ? null : bytes(row.thin_id, "thin_id"),
  };
}

/** The LV's kind from lv_attr's first character (and its target type, the 7th). */
export function lvRoleOf(attr: string): LvRole {
  switch (attr[0]) {
    case "o":
    case "O":
      return "thick-origin";
    case "s":
    case "S":
      return "thick-snapshot";
    case "V":
      return "thin-volume";
    case "t":
      return "thin-pool";
    case "-":
      return "plain";
    default:
      return "other";
  }
}

/** The 5th attr character: 'I' once a thick snapshot ran out of COW space (it is then useless). */
export function isInvalidSnapshot(lv: LogicalVolume): boolean {
  return lv.attr[4] === "I";
}

/** 'O' origin with a merging snapshot, 'S' the merging snapshot itself: a merge is pending or running. */
export function isMerging(lv: LogicalVolume): boolean {
  return lv.attr[0] === "O" || lv.attr[0] === "S";
}

function bytes(text: string, field: string): number {
  if (text === "") {
    return 0;
  }
  if (!/^\d+$/.test(text)) {
    throw new SnapkeepError(
      "UNEXPECTED_OUTPUT",
      `lvs printed "${text}" for ${field} where bytes were expected.`,
    );
  }
  return Number(text);
}

function percent(text: string): number | null {
  if (text === "") {
    return null;
  }
  const value = Number(text);
  if (!Number.isFinite(value)) {
    throw new SnapkeepError("UNEXPECTED_OUTPUT", `lvs printed "${text}" where a percentage was expected.`);
  }
  return value;
}

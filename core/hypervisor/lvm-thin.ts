/**
 * The changed blocks of an LVM thin snapshot (issue 16): the guest ranges that differ from an
 * older thin snapshot of the same volume, or (no older one) every range it maps, as the extents a
 * streamed export reads. Found in the pool's metadata (drivers/lvm/thin.ts); the data is then read
 * from the snapshot's device, where a guest offset is the device offset.
 *
 * Anything that makes the comparison doubtful (the older snapshot gone, of another volume or pool,
 * the volume resized, the tools missing or their output not understood, the pool's metadata
 * snapshot held by something else) is a ThinUnsupported error: the export falls back to a full
 * one, or to the old way, and says why.
 */
import { formatBytes } from "../domain/bytes.js";
import type { GuestExtent } from "../domain/plans/stream-plan.js";
import type { LogicalVolume } from "../drivers/lvm/parse.js";
import {
  thinDeltaArgs,
  thinDumpArgs,
  ThinReport,
  ThinReportSink,
  ThinUnsupported,
  type ThinRanges,
} from "../drivers/lvm/thin.js";
import type { CommandRunner } from "../infra/runner/types.js";
import { readLvs } from "./lvm.js";

/** The cluster size of the images written from thin volumes: LVM's smallest chunk divides it. */
export const THIN_CLUSTER = 64 * 1024;
const THIN_TOOL_MS = 10 * 60_000;

export interface ThinChanges {
  readonly clusterSize: number;
  readonly virtualSize: number;
  readonly extents: readonly GuestExtent[];
  /** Commands it took on the host. */
  readonly commands: number;
}

/**
 * The extents of snapshot LV `newer` (by UUID) that differ from snapshot LV `older`, or all that
 * `newer` maps when `older` is null.
 */
export async function thinChanges(
  runner: CommandRunner,
  newer: string,
  older: string | null,
  signal?: AbortSignal,
): Promise<ThinChanges> {
  const lvs = await readLvs(runner);
  const b = thinLv(lvs, newer, "the snapshot");
  const a = older === null ? null : thinLv(lvs, older, "the previous export's snapshot");
  if (a !== null) {
    if (a.vg !== b.vg || a.pool !== b.pool) {
      throw new ThinUnsupported(
        `the previous export's snapshot is in another thin pool (${a.vg}/${a.pool ?? "?"})`,
      );
    }
    if (a.origin === null || a.origin !== b.origin) {
      throw new ThinUnsupported(`the previous export's snapshot is not of ${b.vg}/${b.origin ?? "?"}`);
    }
    if (a.size !== b.size) {
      throw new ThinUnsupported(
        `the volume was resized between the snapshots (${formatBytes(a.size)} → ${formatBytes(b.size)})`,
      );
    }
  }
  const external = externalOrigin(lvs, b);
  if (external !== null) {
    // Blocks the thin volume never wrote read from the external origin, which the pool's metadata
    // does not list: a listing would leave them out and the export would read zeros there.
    throw new ThinUnsupported(
      `the volume reads unwritten blocks from the external origin ${b.vg}/${external}`,
    );
  }
  if (b.size % THIN_CLUSTER !== 0) {
    throw new ThinUnsupported(`its size (${b.size} bytes) is not a whole number of 64 KiB clusters`);
  }
  const pool = lvs.find((lv) => lv.vg === b.vg && lv.name === b.pool);
  if (pool === undefined) {
    throw new ThinUnsupported(`its thin pool ${b.vg}/${b.pool ?? "?"} is not listed`);
  }
  const argv = a === null ? thinDumpArgs(pool.dmPath, idOf(b)) : thinDeltaArgs(pool.dmPath, idOf(a), idOf(b));
  // Read as it arrives: a fragmented volume's report is too long to hold as one string.
  const report = new ThinReportSink(
    new ThinReport(a === null ? { dump: idOf(b) } : { delta: [idOf(a), idOf(b)] }),
  );
  const result = await runner.run(argv, {
    timeoutMs: THIN_TOOL_MS,
    stdoutTo: report,
    ...(signal === undefined ? {} : { signal }),
  });
  if (result.code !== 0) {
    const said =
      result.stderr.trim().split("\n").at(-1) || `thin_${argv[5] ?? "tools"} exited with ${result.code}`;
    throw new ThinUnsupported(said.replace(/^snapkeep: /, ""));
  }
  const ranges = report.result();
  return { clusterSize: THIN_CLUSTER, virtualSize: b.size, extents: extentsOf(ranges, b.size), commands: 2 };
}

function thinLv(lvs: readonly LogicalVolume[], uuid: string, what: string): LogicalVolume {
  const lv = lvs.find((l) => l.uuid === uuid);
  if (lv === undefined) {
    throw new ThinUnsupported(`${what} is no longer on the host`);
  }
  if (lv.segtype !== "thin" || lv.thinId === null || lv.pool === null) {
    throw new ThinUnsupported(`${what} (${lv.vg}/${lv.name}) is not a thin volume`);
  }
  return lv;
}

/** The external origin (lv_attr "e") below a thin LV, following its origins, or null. */
export function externalOrigin(lvs: readonly LogicalVolume[], lv: LogicalVolume): string | null {
  const seen = new Set<string>();
  for (let at: LogicalVolume | undefined = lv; at !== undefined && !seen.has(at.name);) {
    seen.add(at.name);
    if (at.attr.startsWith("e")) {
      return at.name;
    }
    const origin: string | null = at.origin;
    at = origin === null ? undefined : lvs.find((l) => l.vg === lv.vg && l.name === origin);
  }
  return null;
}

function idOf(lv: LogicalVolume): number {
  return lv.thinId ?? -1;
}

/** Ranges in bytes to extents read from the device at the same offset, cut at the volume's end. */
export function extentsOf(ranges: ThinRanges, size: number): GuestExtent[] {
  if (ranges.blockBytes % THIN_CLUSTER !== 0) {
    throw new ThinUnsupported(
      `the pool's chunk size (${ranges.blockBytes} bytes) is not a multiple of 64 KiB`,
    );
  }
  return ranges.ranges
    .filter((r) => r.offset < size)
    .map((r) => ({
      guestOffset: r.offset,
      length: Math.min(r.length, size - r.offset),
      source: { kind: "data" as const, hostOffset: r.offset },
    }));
}

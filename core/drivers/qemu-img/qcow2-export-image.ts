/**
 * Reading back an image Snapkeep wrote on a target (qcow2-writer.ts), so that retention can merge
 * an export it deletes into the export built on it (issue 16, core/app/exports/merge.ts).
 *
 * The file lies on a target, which is not trusted: only the shape Snapkeep writes is accepted
 * (qcow2 v3, no snapshots, no encryption, no incompatible features, 16-bit refcounts, a backing
 * name inside the header cluster), every offset is checked against the file, and compressed
 * clusters (which Snapkeep never writes) are refused. What is returned is a map from guest cluster
 * to where its bytes are in the file, or that it reads as zeros; clusters not in the map read
 * through to the backing image.
 */
import { SnapkeepError } from "../../errors.js";
import { LayerBuilder, type LayerClusters } from "../../domain/plans/merge-plan.js";
import { l2TableOffset, parseTable, sourceOf } from "./qcow2-tables.js";

const QCOW2_MAGIC = 0x514649fb;
/** QEMU's own limit on L1 tables (QCOW_MAX_L1_SIZE): 32 MiB of entries. */
const MAX_L1_ENTRIES = (32 * 1024 * 1024) / 8;
/** What is read of the front of the file: the header, its extensions and the backing name. */
export const EXPORT_HEADER_BYTES = 4096;

export interface ExportImageHeader {
  readonly clusterSize: number;
  readonly virtualSize: number;
  readonly l1Offset: number;
  readonly l1Size: number;
  /** The backing file's name as written in the header, or null for a standalone image. */
  readonly backing: string | null;
}

/** Where a guest cluster's bytes are in one image: data at a file offset, or zeros. */
export type ClusterSource =
  { readonly kind: "data"; readonly hostOffset: number } | { readonly kind: "zero" };

export class ImageRefused extends SnapkeepError {
  constructor(what: string, why: string) {
    super("VERIFY_FAILED", `${what} is not an image as Snapkeep writes them: ${why}.`, {
      hint: "Verify the export with every export below it: it may have been changed on the target.",
      details: { reason: why },
    });
  }
}

export function parseExportHeader(header: Buffer, fileSize: number, what: string): ExportImageHeader {
  const refuse = (why: string): never => {
    throw new ImageRefused(what, why);
  };
  if (header.length < 104 || header.readUInt32BE(0) !== QCOW2_MAGIC) {
    refuse("it does not start with the qcow2 magic");
  }
  if (header.readUInt32BE(4) !== 3 || header.readUInt32BE(100) < 104) {
    refuse("it is not qcow2 version 3");
  }
  const clusterBits = header.readUInt32BE(20);
  if (clusterBits < 9 || clusterBits > 21) {
    refuse(`its cluster size is 2^${clusterBits}`);
  }
  if (header.readUInt32BE(32) !== 0) {
    refuse("it is encrypted");
  }
  if (header.readBigUInt64BE(72) !== 0n) {
    refuse("it has incompatible feature bits set (dirty, corrupt or others)");
  }
  if (header.readUInt32BE(60) !== 0) {
    refuse("it has internal snapshots");
  }
  if (header.readUInt32BE(96) !== 4) {
    refuse("its refcounts are not 16 bits wide");
  }
  const clusterSize = 2 ** clusterBits;
  const virtualSize = header.readBigUInt64BE(24);
  const l1Offset = header.readBigUInt64BE(40);
  const l1Size = header.readUInt32BE(36);
  if (virtualSize === 0n || virtualSize > BigInt(Number.MAX_SAFE_INTEGER)) {
    refuse("its disk size is out of range");
  }
  const perL1 = (BigInt(clusterSize) * BigInt(clusterSize)) / 8n;
  if (l1Size > MAX_L1_ENTRIES || BigInt(l1Size) * perL1 < virtualSize) {
    refuse("its L1 table does not cover the disk");
  }
  if (
    l1Offset === 0n ||
    l1Offset % BigInt(clusterSize) !== 0n ||
    l1Offset + BigInt(l1Size * 8) > BigInt(fileSize)
  ) {
    refuse("its L1 table lies outside the file");
  }
  return {
    clusterSize,
    virtualSize: Number(virtualSize),
    l1Offset: Number(l1Offset),
    l1Size,
    backing: backingOf(header, clusterSize, refuse),
  };
}

function backingOf(header: Buffer, clusterSize: number, refuse: (why: string) => never): string | null {
  const at = header.readBigUInt64BE(8);
  const size = header.readUInt32BE(16);
  if (at === 0n) {
    return size === 0 ? null : refuse("its backing name has a length but no place");
  }
  if (size === 0 || size > 1023 || at + BigInt(size) > BigInt(Math.min(header.length, clusterSize))) {
    refuse("its backing name lies outside the header");
  }
  const bytes = header.subarray(Number(at), Number(at) + size);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return refuse("its backing name is not text");
  }
}

/** The L2 tables to read: the offsets of the L1 entries that have one. */
export function l2Offsets(
  l1: readonly bigint[],
  head: ExportImageHeader,
  fileSize: number,
  what: string,
): number[] {
  try {
    return [...new Set(l1.map((e) => l2TableOffset(e, head, fileSize)).filter((o) => o !== 0))];
  } catch (error) {
    throw new ImageRefused(what, error instanceof Error ? error.message : String(error));
  }
}

/**
 * Every guest cluster the image holds, in guest order, from its L1 table and the L2 tables it
 * points at (read by their offsets). Entries past the disk's end are refused, as are compressed
 * ones.
 */
export function clusterMap(
  l1: readonly bigint[],
  tables: ReadonlyMap<number, Buffer>,
  head: ExportImageHeader,
  fileSize: number,
  what: string,
): LayerClusters {
  // In guest order, compact: a layer of a multi-terabyte disk has more clusters than a Map holds.
  const layer = new LayerBuilder();
  const l2Entries = head.clusterSize / 8;
  const clusters = Math.ceil(head.virtualSize / head.clusterSize);
  for (const [i, entry] of l1.entries()) {
    let offset: number;
    try {
      offset = l2TableOffset(entry, head, fileSize);
    } catch (error) {
      throw new ImageRefused(what, error instanceof Error ? error.message : String(error));
    }
    if (offset === 0) {
      continue;
    }
    const table = parseTable(tables.get(offset) ?? Buffer.alloc(0), l2Entries);
    for (const [j, e] of table.entries()) {
      if ((e & ~(1n << 63n)) === 0n) {
        continue;
      }
      const guestCluster = i * l2Entries + j;
      if (guestCluster >= clusters) {
        throw new ImageRefused(what, "an L2 entry lies past the end of the disk");
      }
      let source;
      try {
        source = sourceOf(e, head, fileSize);
      } catch (error) {
        throw new ImageRefused(what, error instanceof Error ? error.message : String(error));
      }
      if (source.kind === "compressed") {
        throw new ImageRefused(what, "it holds compressed clusters");
      }
      layer.add(guestCluster, source);
    }
  }
  return layer.build();
}

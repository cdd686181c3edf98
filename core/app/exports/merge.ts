/**
 * Merging on retention (issue 16): before an export that a kept one is built on is deleted, its
 * data is merged into the kept one (domain/plans/merge-plan.ts decides which and with what).
 *
 * Everything happens on the target; no image data crosses the network. For each disk to merge:
 * the layers' images are hashed and compared with their manifests (a merge must not launder
 * damage into a fresh checksum), their tables read and checked (drivers/qemu-img/
 * qcow2-export-image.ts), the merged image's metadata written by Snapkeep and its data clusters
 * appended with `dd` from the layers' files (drivers/sh/merge-scripts.ts), then hashed where it
 * lies. The new manifest, sums, restore notes and sealed status are written beside as `.merge`
 * files, and one command renames them all into place, manifest last. An interruption before that
 * leaves the export as it was (the `.merge` files are written again next time); one during it is
 * finished by the next prune (`finishPendingMerges`), as every `.merge` file is complete by then.
 */
import { createHash } from "node:crypto";
import { posix } from "node:path";

import { SnapkeepError } from "../../errors.js";
import type { Target } from "../../domain/settings.js";
import { backingId, backingName } from "../../domain/plans/chain-plan.js";
import {
  planMergedImage,
  type LayerClusters,
  type MergedImage,
  type MergeStep,
} from "../../domain/plans/merge-plan.js";
import {
  restoreNotes,
  sealVerification,
  sha256sums,
  type ExportEntry,
  type ExportStatus,
  type Manifest,
  type ManifestDisk,
} from "../../drivers/bundle/bundle.js";
import {
  EXPORT_HEADER_BYTES,
  clusterMap,
  l2Offsets,
  parseExportHeader,
  type ExportImageHeader,
} from "../../drivers/qemu-img/qcow2-export-image.js";
import { checkFile } from "../../drivers/bundle/chunks.js";
import { parseTable } from "../../drivers/qemu-img/qcow2-tables.js";
import { layoutImage, type ImageLayout } from "../../drivers/qemu-img/qcow2-writer.js";
import {
  MERGE_SUFFIX,
  layerFile,
  mergeArgs,
  mergeCopyInput,
  parseMergeCopy,
  type MergePlace,
} from "../../drivers/sh/merge-scripts.js";
import { writeFailure, type RemoteFs } from "../../infra/remote-fs.js";
import { RangeReader } from "./changed-blocks.js";
import { QUICK_MS } from "./steps/context.js";

/** Hours, for a merge that copies a whole full image on a slow NAS. */
const MERGE_MS = 6 * 60 * 60_000;
/** Room left on the target besides the merged image: other writers and the file system. */
const FREE_MARGIN = 64 * 1024 * 1024;
/** The bundle's own files, renamed after the images; the manifest goes last. */
const BUNDLE_FILES = ["SHA256SUMS", "RESTORE.md", "status.json", "manifest.json"] as const;

export interface MergeContext {
  readonly fs: RemoteFs;
  readonly target: Target;
  readonly now: () => Date;
  readonly sealKey: () => Uint8Array;
  readonly signal?: AbortSignal | undefined;
}

export interface MergeDone {
  /** The export merged into (its folder). */
  readonly into: string;
  /** The exports whose data it took (their ids). */
  readonly from: readonly string[];
  /** Bytes of the merged images written on the target. */
  readonly bytesWritten: number;
}

export async function mergeExport(ctx: MergeContext, step: MergeStep<ExportEntry>): Promise<MergeDone> {
  const { into } = step;
  const manifest = into.manifest;
  if (manifest === null) {
    throw new SnapkeepError("INVALID_INPUT", `Export ${into.id} has no manifest to merge into.`);
  }
  // What an earlier attempt left is written again: none of it may be taken for this merge's.
  const place = placeOf(ctx, into);
  await step_(ctx, place, "clean", [...manifest.disks.map((d) => d.name), ...BUNDLE_FILES]);
  const rewritten = new Map<string, { size: number; sha256: string; basis: string | null; from: string[] }>();
  let bytesWritten = 0;
  for (const disk of step.disks) {
    const done = await mergeDisk(ctx, into, disk.target, disk.merged, disk.basis);
    rewritten.set(disk.target, { ...done, basis: disk.basis, from: disk.merged.map((m) => m.id) });
    bytesWritten += done.size;
  }
  // Each disk's basis as it will be: a rewritten one's new one, else what its image names now.
  const bases = new Set(
    manifest.disks.flatMap((d) => {
      const r = rewritten.get(d.target);
      const b = r === undefined ? (d.backing === undefined ? null : backingId(d.backing, d.target)) : r.basis;
      return b === null ? [] : [b];
    }),
  );
  if (bases.size > 1) {
    throw new SnapkeepError("INVALID_INPUT", `Export ${into.id}'s disks would rest on different exports.`);
  }
  const basis = [...bases][0];
  const next: Manifest = {
    ...manifest,
    disks: manifest.disks.map((d): ManifestDisk => {
      const r = rewritten.get(d.target);
      if (r === undefined) {
        return d;
      }
      // The merged image is another file: the old chunk hashes do not describe it, and it is
      // verified by its whole hash (taken where it was written).
      const { backing: _old, chunks: _oldChunks, ...rest } = d;
      return {
        ...rest,
        size: r.size,
        sha256: r.sha256,
        ...(r.basis === null ? {} : { backing: backingName(r.basis, d.target) }),
        why: `${d.target} ${r.basis === null ? "full" : `incremental on ${r.basis}`}: merged with ${r.from.join(", ")} when retention removed ${r.from.length === 1 ? "it" : "them"}`.slice(
          0,
          400,
        ),
      };
    }),
  };
  const { basis: _oldBasis, ...withoutBasis } = next;
  await commit(ctx, into, basis === undefined ? withoutBasis : { ...withoutBasis, basis }, [
    ...rewritten.keys(),
  ]);
  return {
    into: into.folder,
    from: [...new Set(step.disks.flatMap((d) => d.merged.map((m) => m.id)))],
    bytesWritten,
  };
}

/** Writes the bundle's new files beside the old ones, then renames everything into place. */
async function commit(
  ctx: MergeContext,
  into: ExportEntry,
  manifest: Manifest,
  disks: readonly string[],
): Promise<void> {
  const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
  // The merged images were hashed where they lie just now; the export's other files were checked
  // when its status says, and that date stays, so the periodic re-check still comes for them.
  const checked = {
    state: "verified" as const,
    checkedAt: into.status?.checkedAt ?? ctx.now().toISOString(),
    badFiles: [],
  };
  const status: ExportStatus = {
    ...checked,
    seal: sealVerification(
      ctx.sealKey(),
      into.folder,
      createHash("sha256").update(manifestText).digest("hex"),
      checked,
    ),
  };
  const place = placeOf(ctx, into);
  const files: [string, string][] = [
    ["SHA256SUMS", sha256sums(manifest)],
    ["RESTORE.md", restoreNotes(manifest)],
    ["status.json", `${JSON.stringify(status, null, 2)}\n`],
    // Last: its presence says every other .merge file is complete (finishPendingMerges).
    ["manifest.json", manifestText],
  ];
  await step_(
    ctx,
    place,
    "files",
    files.flatMap(([name, content]) => [`${name}${MERGE_SUFFIX}`, content]),
  );
  await step_(ctx, place, "commit", ["strict", ...disks.map((t) => `${t}.qcow2`), ...BUNDLE_FILES]);
}

function placeOf(ctx: { target: Target }, entry: ExportEntry): MergePlace {
  return {
    root: ctx.target.path,
    vmFolder: entry.vmFolder,
    name: entry.folder.slice(entry.vmFolder.length + 1),
  };
}

/** One step of the merge script on the target; a failure names the export and what failed. */
async function step_(
  ctx: Pick<MergeContext, "fs" | "signal">,
  place: MergePlace,
  step: string,
  args: readonly string[],
  options: { stdin?: string | Buffer; timeoutMs?: number } = {},
): Promise<string> {
  const result = await ctx.fs.run(mergeArgs(place, step, args), {
    timeoutMs: options.timeoutMs ?? QUICK_MS,
    ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
    ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
  });
  const where = `${place.vmFolder}/${place.name}`;
  if (result.code === 7) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `${where} on ${ctx.fs.label} is not a plain folder any more (a link, or gone); Snapkeep merged nothing there.`,
    );
  }
  if (result.code === 6) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `The merged image in ${where} on ${ctx.fs.label} is gone: another prune may be merging the same export. Nothing was renamed; prune again.`,
    );
  }
  if (result.code !== 0) {
    throw writeFailure(ctx.fs.label, where, result.stderr);
  }
  return result.stdout;
}

/**
 * Finishes merges an interruption stopped while renaming: an export with a complete
 * `manifest.json.merge` has all its new files written. Returns whether any was finished.
 */
export async function finishPendingMerges(
  fs: RemoteFs,
  target: Target,
  entries: readonly ExportEntry[],
): Promise<boolean> {
  let any = false;
  for (const entry of entries) {
    if (entry.pendingMerge === undefined || entry.pendingMerge === null) {
      continue;
    }
    const pending = entry.pendingMerge;
    if (pending.id !== entry.id) {
      continue;
    }
    // The images the merge rewrote are those whose checksum the new manifest changes.
    const before = new Map((entry.manifest?.disks ?? []).map((d) => [d.name, d.sha256]));
    await step_({ fs }, placeOf({ target }, entry), "commit", [
      "finish",
      ...pending.disks.filter((d) => before.get(d.name) !== d.sha256).map((d) => d.name),
      ...BUNDLE_FILES,
    ]);
    any = true;
  }
  return any;
}

interface Layer {
  readonly entry: ExportEntry;
  readonly file: string;
  readonly disk: ManifestDisk;
}

async function mergeDisk(
  ctx: MergeContext,
  into: ExportEntry,
  target: string,
  merged: readonly ExportEntry[],
  basis: string | null,
): Promise<{ size: number; sha256: string }> {
  const layers: Layer[] = [into, ...merged].map((entry) => {
    const disk = entry.manifest?.disks.find((d) => d.target === target);
    if (disk === undefined) {
      throw new SnapkeepError("INVALID_INPUT", `Export ${entry.id} has no disk ${target} to merge.`);
    }
    return { entry, disk, file: posix.join(ctx.target.path, entry.folder, disk.name) };
  });
  await checkLayers(ctx, layers);
  const tables = [];
  for (const layer of layers) {
    tables.push(await readLayer(ctx, layer));
  }
  const first = tables[0];
  if (
    first === undefined ||
    tables.some(
      (t) => t.head.clusterSize !== first.head.clusterSize || t.head.virtualSize !== first.head.virtualSize,
    )
  ) {
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `The images of ${target} in the chain of ${into.id} differ in size or cluster size.`,
    );
  }
  const plan = planMergedImage(
    tables.map((t) => t.map),
    {
      clusterSize: first.head.clusterSize,
      virtualSize: first.head.virtualSize,
      backing: basis === null ? null : backingName(basis, target),
    },
  );
  const layout = layoutImage(plan.image);
  const dir = posix.join(ctx.target.path, into.folder);
  const free = await ctx.fs.freeBytes(dir);
  if (free < layout.fileSize + FREE_MARGIN) {
    throw new SnapkeepError(
      "TARGET_FULL",
      `Merging ${merged.map((m) => m.id).join(", ")} into ${into.id} needs ${layout.fileSize} bytes free on ${ctx.target.name}; ${free} are.`,
      { hint: "Free space on the target; until then the exports stay as they are (none is removed)." },
    );
  }
  const out = `${layers[0]?.disk.name ?? ""}${MERGE_SUFFIX}`;
  const written = await writeMerged(ctx, placeOf(ctx, into), out, layout, plan, layers);
  if (written === null || written.size !== layout.fileSize) {
    throw new SnapkeepError(
      "UNEXPECTED_OUTPUT",
      `Merging ${target} into ${into.id} on ${ctx.target.name} gave ${written?.size ?? "?"} bytes where ${layout.fileSize} were expected.`,
      { hint: "The exports stay as they were; prune again, and verify them if it happens again." },
    );
  }
  return written;
}

/** The merged image `out`: Snapkeep's metadata, then the layers' runs copied on the target. */
async function writeMerged(
  ctx: MergeContext,
  place: MergePlace,
  out: string,
  layout: ImageLayout,
  plan: MergedImage,
  layers: readonly Layer[],
): Promise<{ size: number; sha256: string } | null> {
  await step_(ctx, place, "meta", [out], { stdin: Buffer.concat(layout.metadata), timeoutMs: MERGE_MS });
  // The layers in the order their runs come (bottom first), each with its runs.
  const order = [...new Set(plan.copies.map((c) => c.layer))];
  const files = order.map((i) => {
    const layer = layers[i];
    return layer === undefined ? "" : layerFile(place, placeOf(ctx, layer.entry).name, layer.disk.name);
  });
  const stdout = await step_(ctx, place, "copy", [out, ...files], {
    stdin: mergeCopyInput(order.map((i) => plan.copies.filter((c) => c.layer === i))),
    timeoutMs: MERGE_MS,
  });
  return parseMergeCopy(stdout);
}

/** Each layer's image must still be what its manifest says: a merge starts from known-good data. */
async function checkLayers(ctx: MergeContext, layers: readonly Layer[]): Promise<void> {
  // Whole: which file is damaged is all a merge needs to know (a verify says where).
  const found = await ctx.fs.verifyFiles(
    layers.map((l) => ({ path: l.file, chunkBytes: 0, chunks: 0 })),
    ctx.signal,
  );
  const bad = layers.filter((l, i) => !checkFile({ size: l.disk.size, sha256: l.disk.sha256 }, found[i]).ok);
  if (bad.length > 0) {
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `Cannot merge on retention: ${bad.map((l) => `${l.entry.id}/${l.disk.name}`).join(", ")} on ${ctx.target.name} no longer match${bad.length === 1 ? "es" : ""} its checksum; nothing was removed.`,
      {
        hint: "Verify the newest export with every export below it to see what is damaged; the exports stay until then.",
      },
    );
  }
}

async function readLayer(
  ctx: MergeContext,
  layer: Layer,
): Promise<{ head: ExportImageHeader; map: LayerClusters }> {
  const what = `${layer.entry.id}/${layer.disk.name}`;
  const reader = new RangeReader(ctx.fs.runner, layer.file, ctx.signal);
  const fileSize = layer.disk.size;
  const [header] = await reader.read([{ offset: 0, length: Math.min(EXPORT_HEADER_BYTES, fileSize) }]);
  const head = parseExportHeader(header ?? Buffer.alloc(0), fileSize, what);
  if (head.backing !== (layer.disk.backing ?? null)) {
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `${what} on ${ctx.target.name} names ${head.backing ?? "no backing file"} where its manifest says ${layer.disk.backing ?? "none"}; nothing was merged or removed.`,
    );
  }
  const [l1Bytes] = await reader.read([{ offset: head.l1Offset, length: head.l1Size * 8 }]);
  const l1 = parseTable(l1Bytes ?? Buffer.alloc(0), head.l1Size);
  const offsets = l2Offsets(l1, head, fileSize, what);
  const read = await reader.read(offsets.map((offset) => ({ offset, length: head.clusterSize })));
  const tables = new Map(offsets.map((o, i) => [o, read[i] ?? Buffer.alloc(0)]));
  return { head, map: clusterMap(l1, tables, head, fileSize, what) };
}

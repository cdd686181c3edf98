/**
 * What the steps of one export share, passed from step to step instead of living in locals:
 * `ExportRun` is fixed when the export starts, `PreparedExport` adds what the source and the
 * target said while it was prepared. Disks move on as values (`StagedDisk`), each step returning
 * the ones it completed.
 */
import { posix } from "node:path";

import type { ExportDiskPlan } from "../../../domain/plans/export-plan.js";
import type { Target } from "../../../domain/settings.js";
import type { Snapshot, VmWithSnapshots } from "../../../domain/types.js";
import type { ExportEntry } from "../../../drivers/bundle/bundle.js";
import type { ChunkSums } from "../../../drivers/bundle/chunks.js";
import type { SourcePrepared } from "../../../drivers/sh/export-scripts.js";
import type { RemoteFs } from "../../../infra/remote-fs.js";
import type { CommandRunner } from "../../../infra/runner/types.js";
import type { ExportRequest } from "../exports.js";
import type { ProgressMeter } from "../progress.js";

export const QUICK_MS = 60_000;
export const HASH_MS = 6 * 60 * 60_000;

export interface ExportDisk extends ExportDiskPlan {
  /** Its image's name in the bundle, e.g. vda.qcow2. */
  readonly file: string;
}

export interface ExportRun {
  readonly request: ExportRequest;
  readonly target: Target;
  readonly vm: VmWithSnapshots;
  readonly snapshot: Snapshot;
  readonly disks: readonly ExportDisk[];
  readonly libvirt: { readonly uri: string; readonly runner: CommandRunner };
  readonly source: RemoteFs;
  readonly dest: RemoteFs;
  readonly progress: ProgressMeter;
  /**
   * "stream": Snapkeep writes each image itself from the snapshot's clusters (stream.ts);
   * "convert": qemu-img convert, then rsync (convert.ts, transfer.ts), for what cannot be streamed.
   */
  readonly engine: "stream" | "convert";
  /** Why the export is not streamed, when it is not. */
  readonly notStreamed: string | null;
  /**
   * The images are written straight into the export's folder on the target: streamed, or this
   * computer's VM converted into a folder here without a bandwidth limit (writesIntoTarget).
   * No staging folder on the source.
   */
  readonly direct: boolean;
  /** The target's folder for this VM. */
  readonly vmFolder: string;
  /** The source host's folder for the converted images, unless `direct`. */
  readonly stagingRoot: string;
  readonly now: () => Date;
  readonly sleep: (ms: number) => Promise<void>;
  readonly sealKey: () => Uint8Array;
}

export interface PreparedExport extends ExportRun {
  readonly id: string;
  readonly startedAt: Date;
  /** The export's folder on the target until it is finished. */
  readonly partial: string;
  /** Where the images are converted to: `partial` when direct, else the staging folder. */
  readonly staging: string;
  /** Each disk's converted image, in `staging`. */
  readonly stagedPaths: readonly string[];
  /** The unfinished export on the target that this one continues. */
  readonly resumable: ExportEntry | undefined;
  /** The newest verified export of the VM, rsync's basis. */
  readonly basis: ExportEntry | undefined;
  /** Every export in the VM's folder on the target, as it was before this one started. */
  readonly existing: readonly ExportEntry[];
  /** Tool versions, the definition and earlier conversions, as the source host reported them. */
  readonly sourceState: SourcePrepared;
  readonly compression: "zstd" | "zlib";
  readonly definitionSha: string;
  /** The job record (for a new export) and the definition, written before the images. */
  readonly smallFiles: readonly { path: string; content: string }[];
}

/** One disk's image once converted, and later once on the target. */
export interface StagedDisk {
  readonly target: string;
  readonly role: "root" | "additional";
  readonly path: string;
  readonly file: string;
  /** 0 until known: an image converted by an earlier attempt is measured before it is sent. */
  readonly size: number;
  /** "" until taken: on the source while the image is sent, or on the target where it landed. */
  readonly sha256: string;
  readonly virtualSize: number | null;
  readonly sourcePath: string | null;
  /** Set by a streamed export: no compression, its backing file, the snapshot's id, full or why. */
  readonly compression?: "none" | undefined;
  readonly backing?: string | undefined;
  readonly snapshotId?: string | undefined;
  readonly why?: string | undefined;
  /** Per-chunk hashes, taken by a streamed export on the way (drivers/bundle/chunks.ts). */
  readonly chunks?: ChunkSums | undefined;
}

export function landedPaths(ex: PreparedExport, disks: readonly StagedDisk[]): string[] {
  return disks.map((d) => posix.join(ex.partial, d.file));
}

export function signalOption(ex: ExportRun): { signal?: AbortSignal } {
  return ex.request.signal === undefined ? {} : { signal: ex.request.signal };
}

/** The folder a new export claims on the target; none when it resumes its own unfinished one. */
export function claimOf(ex: PreparedExport): { vmFolder: string; name: string } | undefined {
  return ex.resumable === undefined ? { vmFolder: ex.vmFolder, name: posix.basename(ex.partial) } : undefined;
}

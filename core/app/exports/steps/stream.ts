/**
 * The streamed export (issue 16), for disks whose snapshots are qcow2 internal snapshots: no
 * staging copy, and only what changed is read and sent.
 *
 * For each disk the chain rules (domain/plans/chain-plan.ts) pick the export it builds on, the
 * image's tables (changed-blocks.ts) give the changed guest clusters, or every allocated one for
 * a full export, and Snapkeep writes the qcow2 image itself (drivers/qemu-img/qcow2-writer.ts):
 * its metadata first, then the data clusters as `dd` reads them on the source, piped through this
 * process into a plain `cat` on the target. The image is hashed on the way; the finish step hashes
 * it again where it landed. A resumed export sends only what the target does not have yet: the
 * stream is the same bytes again (the snapshots it is made from cannot change), so the part that
 * is there is skipped, and the final hash shows whether it really was the same.
 *
 * An LVM thin volume streams the same way: its pool's metadata gives the changed blocks
 * (hypervisor/lvm-thin.ts) and the snapshot's device is read where they lie. What cannot be
 * streamed (a thick LVM volume, an image with a backing file or compressed clusters) goes the old
 * way, convert and rsync (convert.ts, transfer.ts), with the reason in the result.
 */
import { createHash } from "node:crypto";
import { posix } from "node:path";
import { Readable, Transform, type TransformCallback } from "node:stream";

import { SnapkeepError } from "../../../errors.js";
import { formatBytes } from "../../../domain/bytes.js";
import { backingName, decideDiskBasis } from "../../../domain/plans/chain-plan.js";
import { planStream, type GuestExtent, type StreamPlan } from "../../../domain/plans/stream-plan.js";
import { ChunkHasher, type ChunkSums } from "../../../drivers/bundle/chunks.js";
import { ThinUnsupported } from "../../../drivers/lvm/thin.js";
import { layoutImage, type ImageLayout } from "../../../drivers/qemu-img/qcow2-writer.js";
import { Qcow2Unsupported } from "../../../drivers/qemu-img/qcow2-tables.js";
import { streamReadArgs, streamReadInput, streamWriteArgs } from "../../../drivers/sh/stream-scripts.js";
import { thinChanges } from "../../../hypervisor/lvm-thin.js";
import { withLvSnapshotReadable } from "../../../hypervisor/lvm.js";
import { writeFailure } from "../../../infra/remote-fs.js";
import { changedBlocks } from "../changed-blocks.js";
import { prepareExportFolder } from "../target-folders.js";
import { requireSnapshotStill } from "./convert.js";
import { claimOf, type ExportDisk, type PreparedExport, type StagedDisk } from "./context.js";
import { jobFile } from "./prepare.js";

/** One disk's streamed image: what it builds on, why, and how it is laid out and fed. */
export interface DiskStream {
  readonly disk: ExportDisk;
  readonly mode: "full" | "incremental";
  readonly why: string;
  /** The export this disk's image is backed by (incremental only). */
  readonly basis: string | null;
  readonly plan: StreamPlan;
  readonly layout: ImageLayout;
  /** Bytes of the source's tables read to find the clusters. */
  readonly metadataRead: number;
}

/** Why an export cannot be streamed at all: it goes the old way (convert and rsync). */
export class NotStreamable extends Error {}

/** Each disk's stream, deciding full or incremental from the target's exports and the tables. */
export async function planDiskStreams(ex: PreparedExport): Promise<DiskStream[]> {
  const streams: DiskStream[] = [];
  // Every incremental disk is built on the same export: the VM's newest verified one.
  for (const disk of ex.disks) {
    streams.push(await planDisk(ex, disk));
  }
  return streams;
}

async function planDisk(ex: PreparedExport, disk: ExportDisk): Promise<DiskStream> {
  const newer = { id: disk.imageSnapshotId, name: ex.snapshot.tag };
  const decided = decideDiskBasis(ex.existing, ex.vm, disk.target, disk.virtualSize);
  const signal = ex.request.signal;
  if (disk.lv !== undefined) {
    return planThinDisk(ex, disk, decided);
  }
  if (decided.mode === "incremental") {
    try {
      const changed = await changedBlocks(
        ex.source.runner,
        disk.source,
        decided.basisSnapshot,
        newer,
        signal,
      );
      if (!changed.extents.some((e) => e.source.kind === "compressed")) {
        return diskStream(disk, "incremental", decided.why, decided.basis, qcow2Changes(changed));
      }
      return await fullStream(ex, disk, "the changed clusters include compressed ones");
    } catch (error) {
      if (!(error instanceof Qcow2Unsupported)) {
        throw error;
      }
      return await fullStream(ex, disk, String(error.details["reason"] ?? error.message));
    }
  }
  return fullStream(ex, disk, decided.why);
}

async function fullStream(ex: PreparedExport, disk: ExportDisk, why: string): Promise<DiskStream> {
  const newer = { id: disk.imageSnapshotId, name: ex.snapshot.tag };
  let changed: Awaited<ReturnType<typeof changedBlocks>>;
  try {
    changed = await changedBlocks(ex.source.runner, disk.source, null, newer, ex.request.signal);
  } catch (error) {
    if (error instanceof Qcow2Unsupported) {
      throw new NotStreamable(`${disk.target}: ${String(error.details["reason"] ?? error.message)}`);
    }
    throw error;
  }
  if (changed.extents.some((e) => e.source.kind === "compressed")) {
    throw new NotStreamable(`${disk.target}'s image holds compressed clusters`);
  }
  return diskStream(disk, "full", why, null, qcow2Changes(changed));
}

/**
 * A thin volume's snapshot: what changed since the basis export's snapshot, from the pool's
 * metadata (hypervisor/lvm-thin.ts); every block it maps for a full export. Only a pool whose
 * metadata cannot be read sends the export the old way.
 */
async function planThinDisk(
  ex: PreparedExport,
  disk: ExportDisk,
  decided: ReturnType<typeof decideDiskBasis>,
): Promise<DiskStream> {
  const runner = ex.source.runner;
  const signal = ex.request.signal;
  let why = decided.why;
  if (decided.mode === "incremental") {
    try {
      const changes = await thinChanges(runner, disk.imageSnapshotId, decided.basisSnapshot.id, signal);
      return diskStream(disk, "incremental", why, decided.basis, { ...changes, metadataBytes: 0 });
    } catch (error) {
      if (!(error instanceof ThinUnsupported)) {
        throw error;
      }
      why = String(error.details["reason"] ?? error.message);
    }
  }
  try {
    const changes = await thinChanges(runner, disk.imageSnapshotId, null, signal);
    return diskStream(disk, "full", why, null, { ...changes, metadataBytes: 0 });
  } catch (error) {
    if (error instanceof ThinUnsupported) {
      throw new NotStreamable(`${disk.target}: ${String(error.details["reason"] ?? error.message)}`);
    }
    throw error;
  }
}

/** What a disk's snapshot holds for this export, whichever kind of disk it is. */
interface FoundChanges {
  readonly clusterSize: number;
  readonly virtualSize: number;
  readonly extents: readonly GuestExtent[];
  readonly metadataBytes: number;
}

function qcow2Changes(changed: Awaited<ReturnType<typeof changedBlocks>>): FoundChanges {
  return { ...changed, clusterSize: changed.layout.clusterSize };
}

function diskStream(
  disk: ExportDisk,
  mode: "full" | "incremental",
  why: string,
  basis: string | null,
  changed: FoundChanges,
): DiskStream {
  const clusterSize = changed.clusterSize;
  const plan = planStream(changed.extents, clusterSize, mode === "incremental");
  const layout = layoutImage({
    clusterSize,
    virtualSize: changed.virtualSize,
    backing: basis === null ? null : backingName(basis, disk.target),
    clusters: plan.clusters,
  });
  return { disk, mode, why, basis, plan, layout, metadataRead: changed.metadataBytes };
}

/** What streaming the disks did, for the result and the manifest. */
export interface Streamed {
  readonly disks: readonly StagedDisk[];
  /** Bytes that left this process for the target (less than the images when resumed). */
  readonly bytesSent: number;
  /** Bytes read on the source: its tables and the data clusters. */
  readonly bytesRead: number;
}

/**
 * Claims the export's folder (or finds the unfinished one), checks the target's room, writes the
 * job record and definition, then each disk's image.
 */
export async function streamDisks(ex: PreparedExport, streams: readonly DiskStream[]): Promise<Streamed> {
  const basis = streams.find((s) => s.basis !== null)?.basis ?? undefined;
  const files = [
    ...(ex.resumable === undefined ? [jobFile(ex, ex.id, ex.startedAt, ex.partial, basis)] : []),
    { path: posix.join(ex.partial, "domain.xml"), content: ex.sourceState.definition },
  ];
  const paths = streams.map((s) => posix.join(ex.partial, s.disk.file));
  const space = await prepareExportFolder(ex.dest, claimOf(ex), ex.partial, paths, files);
  // What is there already counts only when it was written for the same base (the same stream).
  const sameStream = ex.resumable === undefined || ex.resumable.job?.basis === basis;
  const resumeAt = streams.map((s, i) => {
    const have = space.sizes[i] ?? 0;
    return sameStream && have <= s.layout.fileSize ? have : 0;
  });
  const needed = streams.reduce((sum, s, i) => sum + s.layout.fileSize - (resumeAt[i] ?? 0), 0);
  if (space.freeBytes < needed) {
    throw new SnapkeepError(
      "TARGET_FULL",
      `${ex.target.name} has ${formatBytes(space.freeBytes)} free at ${ex.vmFolder}, but this export needs ${formatBytes(needed)}.`,
      { action: { do: "prune-exports" }, details: { free: space.freeBytes, needed } },
    );
  }
  return sendStreams(ex, streams, resumeAt);
}

async function sendStreams(
  ex: PreparedExport,
  streams: readonly DiskStream[],
  resumeAt: readonly number[],
): Promise<Streamed> {
  const total = streams.reduce((sum, s) => sum + s.layout.fileSize, 0);
  const disks: StagedDisk[] = [];
  let before = 0;
  let bytesSent = 0;
  let bytesRead = 0;
  ex.progress.streamed = true;
  for (const [i, s] of streams.entries()) {
    ex.progress.phase("transfer", s.disk.target, before, total);
    const path = posix.join(ex.partial, s.disk.file);
    const start = before;
    const sent = await streamDisk(ex, s, path, resumeAt[i] ?? 0, (at) => ex.progress.update(start + at));
    disks.push({
      target: s.disk.target,
      role: s.disk.role,
      path,
      file: s.disk.file,
      size: s.layout.fileSize,
      sha256: sent.sha256,
      chunks: sent.chunks,
      virtualSize: s.disk.virtualSize,
      sourcePath: s.disk.source,
      compression: "none",
      ...(s.basis === null ? {} : { backing: backingName(s.basis, s.disk.target) }),
      snapshotId: s.disk.imageSnapshotId,
      why: `${s.mode}: ${s.why}`,
    });
    bytesSent += sent.sent;
    bytesRead += s.metadataRead + s.plan.readBytes;
    before += s.layout.fileSize;
  }
  // The snapshots were read while the VM may have run: had one been deleted meanwhile, its
  // clusters could have been reused, and the copy would not be the snapshot.
  await requireSnapshotStill(ex);
  // The target checks every image it holds now: `before` has summed their sizes.
  ex.progress.verifying(before);
  return { disks, bytesSent, bytesRead };
}

/**
 * One image: metadata, then the source's clusters through the picker, hashed on the way and
 * written from `resumeAt`. Either end failing stops the other, so nothing waits on a dead pipe.
 */
async function streamDisk(
  ex: PreparedExport,
  s: DiskStream,
  path: string,
  resumeAt: number,
  onBytes: (at: number) => void,
): Promise<{ sha256: string; chunks: ChunkSums; sent: number }> {
  const stop = new AbortController();
  const outer = ex.request.signal;
  const abort = (): void => stop.abort();
  outer?.addEventListener("abort", abort, { once: true });
  const picker = new SegmentPicker(s.plan.segments);
  const hash = createHash("sha256");
  const chunks = new ChunkHasher(s.layout.fileSize);
  let at = 0;
  let sent = 0;
  const limit = bandwidth(ex.request.bwlimitKiB);
  async function* image(): AsyncGenerator<Buffer> {
    for await (const chunk of concat(s.layout.metadata, picker)) {
      hash.update(chunk);
      chunks.update(chunk);
      const skip = Math.max(0, Math.min(chunk.length, resumeAt - at));
      at += chunk.length;
      if (skip < chunk.length) {
        sent += chunk.length - skip;
        yield skip === 0 ? chunk : chunk.subarray(skip);
        await limit(sent);
      }
      onBytes(at);
    }
  }
  try {
    const readFrom = (from: string): ReturnType<typeof ex.source.runner.run> =>
      ex.source.runner.run(streamReadArgs(from), {
        stdin: streamReadInput(s.plan.reads),
        stdoutTo: picker,
        signal: stop.signal,
      });
    // A thin snapshot LV skips activation: it is made readable for the read, and only then.
    const reading =
      s.disk.lv === undefined
        ? readFrom(s.disk.source)
        : withLvSnapshotReadable(ex.source.runner, s.disk.target, s.disk.imageSnapshotId, readFrom);
    const writing = ex.dest.runner.run(streamWriteArgs(path, resumeAt), {
      stdin: Readable.from(image()),
      signal: stop.signal,
    });
    const [read, written] = await Promise.allSettled([
      reading.catch((error: unknown) => {
        stop.abort();
        throw error;
      }),
      writing.catch((error: unknown) => {
        // The reader is killed; its output then ends, and so does the image stream.
        stop.abort();
        throw error;
      }),
    ]);
    if (outer?.aborted === true) {
      throw new SnapkeepError("CANCELLED", "The export was cancelled.");
    }
    checkEnds(ex, s, read, written, path);
    if (at !== s.layout.fileSize) {
      throw new SnapkeepError(
        "UNEXPECTED_OUTPUT",
        `Reading ${s.disk.target}'s snapshot on ${ex.source.label} gave ${at} bytes of image where ${s.layout.fileSize} were expected.`,
        { hint: "The image may have changed under the export; export again." },
      );
    }
  } finally {
    outer?.removeEventListener("abort", abort);
  }
  return { sha256: hash.digest("hex"), chunks: chunks.digest(), sent };
}

function checkEnds(
  ex: PreparedExport,
  s: DiskStream,
  read: PromiseSettledResult<{ code: number | null; stderr: string }>,
  written: PromiseSettledResult<{ code: number | null; stderr: string }>,
  path: string,
): void {
  if (written.status === "rejected") {
    throw written.reason;
  }
  if (written.value.code !== 0) {
    if (written.value.code === 4 || written.value.code === 5) {
      throw new SnapkeepError(
        "UNEXPECTED_OUTPUT",
        `${path} on ${ex.dest.label} changed under an unfinished export; it was not written.`,
        { hint: "Export again: the unfinished copy is then started over." },
      );
    }
    throw writeFailure(ex.dest.label, path, written.value.stderr);
  }
  if (read.status === "rejected") {
    throw read.reason;
  }
  if (read.value.code !== 0) {
    throw new SnapkeepError(
      "COMMAND_FAILED",
      `Reading ${s.disk.target}'s snapshot from ${s.disk.source} on ${ex.source.label} failed: ${read.value.stderr.trim().split("\n").at(-1) ?? `exit ${read.value.code}`}`,
    );
  }
}

/** Waits as long as keeps `sent` bytes at or under the limit (KiB/s) since the first call. */
function bandwidth(kiBPerSecond: number | undefined): (sent: number) => Promise<void> {
  if (kiBPerSecond === undefined || kiBPerSecond <= 0) {
    return async () => undefined;
  }
  let started: number | undefined;
  return async (sent) => {
    started ??= performance.now();
    const due = started + (sent / (kiBPerSecond * 1024)) * 1000;
    const wait = due - performance.now();
    if (wait > 5) {
      await new Promise<void>((resolve) => setTimeout(resolve, wait));
    }
  };
}

async function* concat(head: readonly Buffer[], tail: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield* head;
  for await (const chunk of tail) {
    yield chunk;
  }
}

/** Passes the bytes of "keep" segments and drops the rest (holes read through between clusters). */
class SegmentPicker extends Transform {
  #index = 0;
  #left: number;

  constructor(private readonly segments: readonly { keep: boolean; length: number }[]) {
    super();
    this.#left = segments[0]?.length ?? 0;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    let at = 0;
    while (at < chunk.length) {
      const segment = this.segments[this.#index];
      if (segment === undefined) {
        done(new SnapkeepError("UNEXPECTED_OUTPUT", "The source sent more bytes than were asked for."));
        return;
      }
      const take = Math.min(this.#left, chunk.length - at);
      if (segment.keep) {
        this.push(chunk.subarray(at, at + take));
      }
      at += take;
      this.#left -= take;
      if (this.#left === 0) {
        this.#index++;
        this.#left = this.segments[this.#index]?.length ?? 0;
      }
    }
    done();
  }
}

/** Whether a planning failure means "go the old way" rather than "the export failed". */
export function isNotStreamable(error: unknown): error is NotStreamable {
  return error instanceof NotStreamable;
}

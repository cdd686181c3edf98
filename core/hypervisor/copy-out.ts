/**
 * A snapshot copied out of its disk into a standalone qcow2 image on the same host: what an export
 * stages and what a template or volume is made of. A qcow2 snapshot is read from inside its image
 * (shared while the VM runs); an LVM snapshot is a device, readable for the copy only.
 */
import type { LvSnapshot } from "../domain/types.js";
import {
  parseConvertProgress,
  qcow2ImageOpts,
  type ConvertSnapshotOptions,
} from "../drivers/qemu-img/args.js";
import { copyOutArgs } from "../drivers/qemu-img/copy-args.js";
import { SNAPSHOTS_SCRIPT, parseSnapshotsNow } from "../drivers/sh/export-scripts.js";
import type { RemoteFs } from "../infra/remote-fs.js";
import type { RunResult } from "../infra/runner/types.js";
import { requireLvSnapshot, withLvSnapshotReadable } from "./lvm.js";

const QUICK_MS = 60_000;
const COPY_MS = 6 * 60 * 60_000;

/** One disk's part of a snapshot, where it can be read. */
export interface SnapshotImage {
  /** The disk's guest name, e.g. vda: how LVM errors name it. */
  readonly target: string;
  /** The disk's image (a qcow2 file) or volume. */
  readonly source: string;
  /** qcow2's id of the snapshot in that image, or the snapshot LV's UUID. */
  readonly imageSnapshotId: string;
  readonly lv: LvSnapshot | undefined;
}

export interface CopyOutOptions {
  readonly output: string;
  /** The VM runs: QEMU holds the image, so it is opened shared (read-only, never written). */
  readonly shared: boolean;
  readonly compression: "zstd" | "zlib" | "none";
  readonly signal?: AbortSignal | undefined;
  readonly onFraction?: ((fraction: number) => void) | undefined;
}

export interface CopyOut {
  /** qemu-img's result; a failed copy's partial output is removed already. */
  readonly result: RunResult;
  /** What was read: the image, or the LVM snapshot's device. */
  readonly read: string;
}

/**
 * Copies the snapshot tagged `tag` out into `options.output`. The result says how it went and the
 * caller words a failure, because only it knows what the copy was for.
 */
export async function copySnapshotOut(
  fs: RemoteFs,
  tag: string,
  image: SnapshotImage,
  options: CopyOutOptions,
): Promise<CopyOut> {
  const output = { output: options.output, shared: options.shared, compression: options.compression };
  const made =
    image.lv === undefined
      ? {
          read: image.source,
          result: await runCopy(fs, options, {
            source: image.source,
            snapshotId: image.imageSnapshotId,
            snapshotTag: tag,
            ...output,
          }),
        }
      : await withLvSnapshotReadable(fs.runner, image.target, image.imageSnapshotId, async (device) => ({
          read: device,
          result: await runCopy(fs, options, { device, ...output }),
        }));
  if (made.result.code !== 0) {
    await fs.removeFiles([options.output]).catch(() => undefined);
  }
  return made;
}

async function runCopy(
  fs: RemoteFs,
  options: CopyOutOptions,
  what: ConvertSnapshotOptions,
): Promise<RunResult> {
  let tail = "";
  const onFraction = options.onFraction;
  return fs.run(copyOutArgs(what), {
    timeoutMs: COPY_MS,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(onFraction === undefined
      ? {}
      : {
          onStdout: (chunk: Buffer) => {
            tail = (tail + chunk.toString("latin1")).slice(-64);
            const fraction = parseConvertProgress(tail);
            if (fraction !== undefined) {
              onFraction(fraction);
            }
          },
        }),
  });
}

/**
 * Whether every snapshot is still the one that was copied: a qcow2 image read shared while its VM
 * ran could have had the snapshot deleted meanwhile and its clusters reused, making the copy
 * garbage. qcow2 snapshots are looked up by id and tag, in one command; LVM ones must still be
 * there and valid.
 */
export async function snapshotsStillThere(
  fs: RemoteFs,
  tag: string,
  images: readonly SnapshotImage[],
): Promise<boolean> {
  const qcow2 = images.filter((d) => d.lv === undefined);
  const qcow2Still = qcow2.length === 0 || (await qcow2SnapshotsStill(fs, tag, qcow2));
  const lvsStill = await Promise.all(
    images
      .filter((d) => d.lv !== undefined)
      .map((d) =>
        requireLvSnapshot(fs.runner, d.target, d.imageSnapshotId).then(
          () => true,
          () => false,
        ),
      ),
  );
  return lvsStill.every(Boolean) && qcow2Still;
}

async function qcow2SnapshotsStill(
  fs: RemoteFs,
  tag: string,
  images: readonly SnapshotImage[],
): Promise<boolean> {
  const result = await fs.run(
    ["sh", "-c", SNAPSHOTS_SCRIPT, "snapkeep-snapshots", ...images.map((d) => qcow2ImageOpts(d.source))],
    { timeoutMs: QUICK_MS },
  );
  const found = result.code === 0 ? parseSnapshotsNow(result.stdout) : [];
  return (
    found.length === images.length &&
    images.every((d, i) =>
      (found[i]?.snapshots ?? []).some((s) => s.id === d.imageSnapshotId && s.name === tag),
    )
  );
}

/**
 * A template's or volume's image made on the host: the snapshot copied out (uncompressed: a
 * template is read by every VM cloned from it, a volume is used directly) under a temporary name,
 * checked to be the snapshot's content, then given its mode and final name, and its record
 * written beside it. A failed attempt leaves nothing behind.
 */
import { posix } from "node:path";

import { SnapkeepError } from "../../errors.js";
import type { Snapshot } from "../../domain/types.js";
import { copySnapshotOut, snapshotsStillThere, type SnapshotImage } from "../../hypervisor/copy-out.js";
import { requireLvSnapshot } from "../../hypervisor/lvm.js";
import { writeFailure, type RemoteFs } from "../../infra/remote-fs.js";
import { runChecked } from "../../infra/runner/checked.js";
import type { Artifact } from "./library.js";

const QUICK_MS = 60_000;

/** The record beside an image: `<name>.json` for `<name>.qcow2`. */
export function recordPath(image: string): string {
  return image.replace(/\.qcow2$/, ".json");
}

export interface ArtifactFrom {
  readonly vmName: string;
  /** The VM runs: its image is read shared. */
  readonly vmActive: boolean;
  readonly snapshot: Snapshot;
  readonly image: SnapshotImage;
}

/** Makes `artifact.image` in `dir` from the snapshot; returns the record with the image's size. */
export async function makeArtifact(
  fs: RemoteFs,
  dir: string,
  artifact: Artifact,
  from: ArtifactFrom,
): Promise<Artifact> {
  await fs.mkdirs(dir, "hypervisor");
  const tmp = posix.join(dir, `.${artifact.name}.qcow2.tmp`);
  try {
    const copy = await copySnapshotOut(fs, from.snapshot.tag, from.image, {
      output: tmp,
      shared: from.vmActive,
      compression: "none",
    });
    const { code, stderr } = copy.result;
    if (code !== 0) {
      throw /No space|Permission denied|Read-only/i.test(stderr)
        ? writeFailure(fs.label, dir, stderr)
        : new SnapkeepError(
            "COMMAND_FAILED",
            `Copying the snapshot of ${from.image.target} failed: ${stderr.trim().split("\n").at(-1) ?? ""}`,
          );
    }
    await requireSnapshotStill(fs, from);
    const [size] = await fs.sizes([tmp]);
    const record: Artifact = { ...artifact, size: size ?? 0 };
    await runChecked(
      fs.runner,
      [
        "sh",
        "-c",
        'chmod "$1" -- "$2" && mv -n -- "$2" "$3" && [ ! -e "$2" ]',
        "snapkeep-place",
        artifact.kind === "template" ? "0444" : "0644",
        tmp,
        artifact.image,
      ],
      `Placing the ${artifact.kind}`,
      { timeoutMs: QUICK_MS },
    );
    await fs.writeFiles([
      { path: recordPath(artifact.image), content: `${JSON.stringify(record, null, 2)}\n` },
    ]);
    return record;
  } catch (error) {
    await fs.removeFiles([tmp]).catch(() => undefined);
    throw error;
  }
}

/** A copy read while the snapshot was deleted (its clusters reused) would be garbage. */
async function requireSnapshotStill(fs: RemoteFs, from: ArtifactFrom): Promise<void> {
  const { image, snapshot } = from;
  if (image.lv !== undefined) {
    await requireLvSnapshot(fs.runner, image.target, image.imageSnapshotId);
    return;
  }
  if (!(await snapshotsStillThere(fs, snapshot.tag, [image]))) {
    throw new SnapkeepError(
      "NOT_FOUND",
      `Snapshot "${snapshot.name}" of ${from.vmName} was deleted while it was being copied; nothing was kept.`,
    );
  }
}

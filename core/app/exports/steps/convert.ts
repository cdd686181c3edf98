/**
 * The second step of an export: every disk's snapshot copied out into a standalone image on the
 * source host (or found there, converted by an earlier attempt), and the check that the snapshot
 * outlived the copy.
 */
import { SnapkeepError } from "../../../errors.js";
import { parseStagedSize, STAGE_SCRIPT } from "../../../drivers/sh/export-scripts.js";
import { copySnapshotOut, snapshotsStillThere, type CopyOut } from "../../../hypervisor/copy-out.js";
import { writeFailure, type RemoteFs } from "../../../infra/remote-fs.js";
import { runChecked } from "../../../infra/runner/checked.js";
import { QUICK_MS, type ExportDisk, type PreparedExport, type StagedDisk } from "./context.js";

/** Every disk converted, in order, with progress over their virtual sizes. */
export async function convertDisks(ex: PreparedExport): Promise<StagedDisk[]> {
  const staged: StagedDisk[] = [];
  const virtualTotal = ex.disks.reduce((sum, d) => sum + (d.virtualSize ?? 0), 0);
  let convertedBytes = 0;
  for (const [i, disk] of ex.disks.entries()) {
    ex.progress.phase("convert", disk.target, convertedBytes, virtualTotal);
    const before = convertedBytes;
    const onFraction = (fraction: number): void =>
      ex.progress.update(before + fraction * (disk.virtualSize ?? 0));
    // A hash recorded beside a staged image means an earlier attempt converted it completely.
    const earlier = ex.direct ? undefined : ex.sourceState.staged[i];
    staged.push(await convertDisk(ex, disk, ex.stagedPaths[i] ?? "", earlier, onFraction));
    convertedBytes += disk.virtualSize ?? 0;
  }
  return staged;
}

async function convertDisk(
  ex: PreparedExport,
  disk: ExportDisk,
  path: string,
  earlierSha256: string | undefined,
  onFraction: (fraction: number) => void,
): Promise<StagedDisk> {
  let size = 0;
  if (earlierSha256 === undefined) {
    // Staged images are converted under a temporary name: only a complete one has the final name.
    const output = ex.direct ? path : `${path}.tmp`;
    const copy = await copySnapshotOut(ex.source, ex.snapshot.tag, disk, {
      output,
      shared: ex.vm.active,
      compression: ex.compression,
      signal: ex.request.signal,
      onFraction,
    });
    if (copy.result.code !== 0) {
      throw convertFailure(ex.source, copy, output);
    }
    if (!ex.direct) {
      const argv = ["sh", "-c", STAGE_SCRIPT, "snapkeep-stage", output, path];
      const moved = await runChecked(ex.source.runner, argv, "Staging the converted image", {
        timeoutMs: QUICK_MS,
      });
      size = parseStagedSize(moved.stdout);
    }
  }
  return {
    target: disk.target,
    role: disk.role,
    path,
    file: disk.file,
    size,
    sha256: earlierSha256 ?? "",
    virtualSize: disk.virtualSize,
    sourcePath: disk.source,
  };
}

function convertFailure(fs: RemoteFs, copy: CopyOut, output: string): SnapkeepError {
  const { code, stderr } = copy.result;
  if (/No space left|Permission denied|Read-only file system|Disk quota/i.test(stderr)) {
    return writeFailure(fs.label, output, stderr);
  }
  return new SnapkeepError(
    "COMMAND_FAILED",
    `Converting ${copy.read} on ${fs.label} failed: ${stderr.trim().split("\n").at(-1) ?? `exit ${code}`}`,
    { details: { stderr: stderr.slice(0, 2000) } },
  );
}

/**
 * The images were read shared while the VM ran: had the snapshot been deleted meanwhile, its
 * clusters could have been reused and the copy would be garbage. What was staged from such a copy
 * is removed, so that a retry never reuses it. When the images are sent, this runs while they
 * travel (transfer.ts).
 */
export async function requireSnapshotStill(ex: PreparedExport): Promise<void> {
  try {
    if (!(await snapshotsStillThere(ex.source, ex.snapshot.tag, ex.disks))) {
      throw new SnapkeepError(
        "NOT_FOUND",
        `Snapshot "${ex.snapshot.name}" of ${ex.vm.name} was deleted or replaced while it was being exported; the copy was not kept.`,
        { hint: "Export it again, or pin snapshots you export so retention leaves them alone." },
      );
    }
  } catch (error) {
    // Whatever stopped the check, what was staged is not known to be the snapshot's content.
    if (!ex.direct) {
      await ex.source.removeTree(ex.staging).catch(() => undefined);
    }
    throw error;
  }
}

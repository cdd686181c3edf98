/**
 * The last step of an export: the manifest, then one command on the target that hashes every file
 * where it landed and compares it with the hash taken where it was made, writes the bundle's own
 * files (manifest, sums, restore notes, the sealed verification) and gives the folder its final
 * name. Only then is the export listed as good.
 */
import { createHash } from "node:crypto";
import { posix } from "node:path";

import { SnapkeepError } from "../../../errors.js";
import {
  BUNDLE_FORMAT,
  BUNDLE_VERSION,
  restoreNotes,
  sealVerification,
  sha256sums,
  type ExportStatus,
  type Manifest,
  type ManifestDisk,
} from "../../../drivers/bundle/bundle.js";
import { backingId } from "../../../domain/plans/chain-plan.js";
import { finishArgs, parseBadFiles } from "../../../drivers/sh/export-scripts.js";
import { writeFailure } from "../../../infra/remote-fs.js";
import { HASH_MS, signalOption, type PreparedExport, type StagedDisk } from "./context.js";

/** Snapkeep's version, recorded in every manifest. */
export const SNAPKEEP_VERSION = "0.1.0";

export function exportManifest(ex: PreparedExport, disks: readonly StagedDisk[]): Manifest {
  const { snapshot, vm, sourceState } = ex;
  return {
    format: BUNDLE_FORMAT,
    formatVersion: BUNDLE_VERSION,
    id: ex.id,
    createdAt: ex.resumable?.job?.startedAt ?? ex.startedAt.toISOString(),
    source: {
      host: ex.request.host,
      vm: { name: vm.name, uuid: vm.uuid },
      snapshot: {
        name: snapshot.name,
        tag: snapshot.tag,
        kind: snapshot.kind,
        createdAt: snapshot.createdAt,
        consistency: snapshot.consistency,
        note: snapshot.note,
      },
    },
    definition: {
      name: "domain.xml",
      size: Buffer.byteLength(sourceState.definition),
      sha256: ex.definitionSha,
    },
    disks: disks.map((d): ManifestDisk => ({
      name: d.file,
      size: d.size,
      sha256: d.sha256,
      target: d.target,
      role: d.role,
      format: "qcow2",
      compression: d.compression ?? ex.compression,
      virtualSize: d.virtualSize,
      sourcePath: d.sourcePath,
      ...(d.backing === undefined ? {} : { backing: d.backing }),
      ...(d.snapshotId === undefined ? {} : { snapshotId: d.snapshotId }),
      ...(d.why === undefined ? {} : { why: d.why }),
      ...(d.chunks === undefined ? {} : { chunks: { bytes: d.chunks.bytes, sha256: [...d.chunks.sha256] } }),
    })),
    tools: {
      snapkeep: SNAPKEEP_VERSION,
      "qemu-img": sourceState.qemuImg,
      ...(ex.direct || sourceState.rsync === null ? {} : { rsync: sourceState.rsync }),
    },
    ...(ex.request.scheduleId === undefined ? {} : { scheduleId: ex.request.scheduleId }),
    ...basisOf(disks),
  };
}

/** The export the incremental images are backed by (all by the same one: the newest verified). */
function basisOf(disks: readonly StagedDisk[]): { basis?: string } {
  const disk = disks.find((d) => d.backing !== undefined);
  const id = disk?.backing === undefined ? null : backingId(disk.backing, disk.target);
  return id === null ? {} : { basis: id };
}

/** Checks and seals the bundle on the target and renames it; returns its final folder. */
export async function finishExport(
  ex: PreparedExport,
  disks: readonly StagedDisk[],
  manifest: Manifest,
): Promise<string> {
  const { dest, partial } = ex;
  const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
  const final = posix.join(ex.vmFolder, ex.id);
  const status = sealedStatus(ex, final, manifestText);
  const finished = await dest.run(
    finishArgs(
      partial,
      final,
      [
        ...disks.map((d) => ({ name: d.file, sha256: d.sha256 })),
        { name: "domain.xml", sha256: ex.definitionSha },
      ],
      [
        { path: posix.join(partial, "manifest.json"), content: manifestText },
        { path: posix.join(partial, "SHA256SUMS"), content: sha256sums(manifest) },
        { path: posix.join(partial, "RESTORE.md"), content: restoreNotes(manifest) },
        { path: posix.join(partial, "status.json"), content: `${JSON.stringify(status, null, 2)}\n` },
      ],
    ),
    { timeoutMs: HASH_MS, ...signalOption(ex) },
  );
  ex.progress.phase("finish", null, 0, 0);
  if (finished.code === 2) {
    const bad = parseBadFiles(finished.stdout);
    // Delete the bad copies so that the next attempt sends them again rather than resuming.
    await dest.removeFiles(bad.filter((f) => f !== "domain.xml").map((f) => posix.join(partial, f)));
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `${bad.join(", ")} on ${ex.target.name} does not match what was sent.`,
      {
        hint: "Run the export again; if it happens again, check the target's disk and memory.",
        details: { files: bad },
      },
    );
  }
  if (finished.code !== 0) {
    throw writeFailure(dest.label, partial, finished.stderr);
  }
  return final;
}

/** The verification the finish command stands for, sealed so that a target cannot forge one. */
function sealedStatus(ex: PreparedExport, final: string, manifestText: string): ExportStatus {
  const checked = { state: "verified" as const, checkedAt: ex.now().toISOString(), badFiles: [] };
  return {
    ...checked,
    badFiles: [],
    seal: sealVerification(
      ex.sealKey(),
      posix.relative(ex.target.path, final),
      createHash("sha256").update(manifestText).digest("hex"),
      checked,
    ),
  };
}

/**
 * The first step of an export: the target (its folder for this VM made, and what is there already)
 * and the source (tool versions, definition, staging folder, earlier conversions), asked at once,
 * and from their answers the export's id, whether it resumes one, and its small files.
 */
import { createHash } from "node:crypto";
import { posix } from "node:path";

import { SnapkeepError } from "../../../errors.js";
import {
  exportCompression,
  findResumable,
  newestVerified,
  type ExportDiskPlan,
  writesIntoTarget,
} from "../../../domain/plans/export-plan.js";
import { streamable } from "../../../domain/plans/stream-plan.js";
import type { Target } from "../../../domain/settings.js";
import type { Snapshot, VmWithSnapshots } from "../../../domain/types.js";
import {
  BUNDLE_FORMAT,
  PARTIAL_SUFFIX,
  diskFileName,
  exportId,
  vmFolderName,
  type ExportEntry,
  type ExportJob,
} from "../../../drivers/bundle/bundle.js";
import { parseQemuImgVersion } from "../../../drivers/qemu-img/args.js";
import { SOURCE_PREPARE_SCRIPT, parseSourcePrepared } from "../../../drivers/sh/export-scripts.js";
import { RemoteFs, writeFailure } from "../../../infra/remote-fs.js";
import { runChecked } from "../../../infra/runner/checked.js";
import type { CommandRunner } from "../../../infra/runner/types.js";
import type { ExportRequest } from "../exports.js";
import { ProgressMeter } from "../progress.js";
import { prepareExportFolder, scanExports } from "../target-folders.js";

import { QUICK_MS, claimOf, type ExportRun, type PreparedExport } from "./context.js";

export interface ExportStart {
  readonly target: Target;
  readonly vm: VmWithSnapshots;
  readonly snapshot: Snapshot;
  readonly disks: readonly ExportDiskPlan[];
  readonly libvirt: { readonly uri: string; readonly runner: CommandRunner };
  readonly dest: RemoteFs;
  /** Where staging folders go on the source host. */
  readonly stagingRoot: string;
  readonly now: () => Date;
  /** Monotonic milliseconds, for rates. */
  readonly clock: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly sealKey: () => Uint8Array;
}

/**
 * The export's fixed facts, with progress reported from here on. It is streamed when every disk
 * can be (stream.ts), unless `convert` says why it cannot after all.
 */
export function startExport(request: ExportRequest, start: ExportStart, convert?: string): ExportRun {
  const { target, vm, snapshot, libvirt } = start;
  const disks = start.disks.map((d) => ({ ...d, file: diskFileName(d.target) }));
  const notStreamed =
    convert ??
    (request.engine === "convert" ? "a compressed standalone copy was asked for" : streamable(disks));
  const progress = new ProgressMeter(request.onProgress, start.clock);
  progress.phase("prepare", null, 0, 0);
  const key = stagingKey(
    vm.uuid,
    snapshot.tag,
    disks.map((d) => d.imageSnapshotId),
    target.name,
  );
  return {
    request,
    target,
    vm,
    snapshot,
    disks,
    libvirt,
    source: new RemoteFs(libvirt.runner),
    dest: start.dest,
    progress,
    engine: notStreamed === null ? "stream" : "convert",
    notStreamed,
    direct: writesIntoTarget({
      streamed: notStreamed === null,
      sourceIsLocal: libvirt.runner.isLocal === true,
      targetKind: target.kind,
      bwlimitKiB: request.bwlimitKiB,
    }),
    vmFolder: posix.join(target.path, vmFolderName(vm.name, vm.uuid)),
    stagingRoot: posix.join(start.stagingRoot, key),
    now: start.now,
    sleep: start.sleep,
    sealKey: start.sealKey,
  };
}

/**
 * Asks the target and the source at once, picks the export's id (the unfinished one's when this
 * resumes it), and for a folder written straight into claims it and writes the small files now.
 */
export async function prepareExport(run: ExportRun): Promise<PreparedExport> {
  const { request, vm, snapshot, disks, direct, vmFolder, stagingRoot, libvirt } = run;
  const stagedPathsIn = (dir: string): string[] => disks.map((d) => posix.join(dir, d.file));
  const [existing, prepareOutput] = await Promise.all([
    scanExports(run.dest, run.target, run.sealKey, vmFolder),
    runChecked(
      libvirt.runner,
      [
        "sh",
        "-c",
        SOURCE_PREPARE_SCRIPT,
        "snapkeep-prepare",
        libvirt.uri,
        vm.uuid,
        // Written straight into the target: its scan makes the VM folder, and refuses to when the
        // target's own folder is missing (an unmounted disk); mkdir here would go around that.
        direct ? "" : stagingRoot,
        ...(direct ? [] : stagedPathsIn(stagingRoot)),
      ],
      "Preparing the export",
      { timeoutMs: QUICK_MS },
    ),
  ]);
  const sourceState = parseSourcePrepared(prepareOutput.stdout, direct ? 0 : disks.length);
  const resumable = findResumable(existing, {
    snapshotTag: snapshot.tag,
    host: request.host,
    vmUuid: vm.uuid,
    disks: disks.map((d) => d.target),
  });
  const startedAt = run.now();
  const id = newId(run, existing, resumable, startedAt);
  const partial = posix.join(vmFolder, `${id}${PARTIAL_SUFFIX}`);
  const staging = direct ? partial : stagingRoot;
  if (!direct && sourceState.rsync === null) {
    throw new SnapkeepError("TOOL_MISSING", `rsync is not installed on ${run.source.label}.`, {
      hint: "Install it there with: apt-get install rsync",
      details: { tool: "rsync" },
    });
  }
  const prepared: PreparedExport = {
    ...run,
    id,
    startedAt,
    partial,
    staging,
    stagedPaths: stagedPathsIn(staging),
    resumable,
    basis: newestVerified(existing),
    existing,
    sourceState,
    compression: exportCompression(parseQemuImgVersion(sourceState.qemuImg)),
    definitionSha: createHash("sha256").update(sourceState.definition).digest("hex"),
    smallFiles: smallFiles(run, id, startedAt, partial, resumable, sourceState.definition),
  };
  // Converted straight into a folder, the job record and definition go first; for an SSH target
  // they go with the space check once the images are ready (transfer.ts), and a streamed export
  // writes them once it knows what it builds on (stream.ts).
  if (direct && run.engine === "convert") {
    await prepareExportFolder(run.dest, claimOf(prepared), partial, [], prepared.smallFiles);
  }
  if (sourceState.stagingError !== null) {
    throw writeFailure(run.source.label, staging, sourceState.stagingError);
  }
  return prepared;
}

function newId(
  run: ExportRun,
  existing: readonly ExportEntry[],
  resumable: ExportEntry | undefined,
  now: Date,
): string {
  const id = resumable?.id ?? exportId(now, run.snapshot.name);
  if (resumable === undefined && existing.some((e) => e.id === id)) {
    throw new SnapkeepError(
      "ALREADY_EXISTS",
      `An export ${id} already exists on ${run.target.name}; try again in a second.`,
    );
  }
  return id;
}

/** The job record (only for a new export: a resumed one has its own) and the definition. */
function smallFiles(
  run: ExportRun,
  id: string,
  now: Date,
  partial: string,
  resumable: ExportEntry | undefined,
  definition: string,
): { path: string; content: string }[] {
  return [
    ...(resumable === undefined ? [jobFile(run, id, now, partial, undefined)] : []),
    { path: posix.join(partial, "domain.xml"), content: definition },
  ];
}

/** The job record of a new export; `basis`: the export a streamed one builds on. */
export function jobFile(
  run: ExportRun,
  id: string,
  now: Date,
  partial: string,
  basis: string | undefined,
): { path: string; content: string } {
  const job: ExportJob = {
    format: BUNDLE_FORMAT,
    id,
    startedAt: now.toISOString(),
    host: run.request.host,
    vmUuid: run.vm.uuid,
    vmName: run.vm.name,
    snapshotTag: run.snapshot.tag,
    snapshotCreatedAt: run.snapshot.createdAt,
    disks: run.disks.map((d) => d.target),
    ...(basis === undefined ? {} : { basis }),
    ...(run.request.scheduleId === undefined ? {} : { scheduleId: run.request.scheduleId }),
  };
  return { path: posix.join(partial, "job.json"), content: `${JSON.stringify(job, null, 2)}\n` };
}

/**
 * One staging folder per VM, snapshot and target, so a retry finds the images an earlier attempt
 * made. The snapshot's qcow2 ids are part of it: a snapshot deleted and taken again under the same
 * name is another snapshot, and must never be exported from the old one's staged image. The target
 * keeps two exports of one snapshot running at once from sharing (and removing) one folder.
 */
function stagingKey(vmUuid: string, tag: string, snapshotIds: readonly string[], target: string): string {
  const key = JSON.stringify([tag, snapshotIds, target]);
  return `${vmUuid}-${createHash("sha256").update(key).digest("hex").slice(0, 12)}`;
}

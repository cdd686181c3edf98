/**
 * Off-host exports: targets, exporting a snapshot as a verified bundle, listing, verifying and
 * pruning exports. Imports (restoring a bundle) live in import.ts.
 *
 * The path a disk takes:
 *
 * | source host | target        | how                                                                 |
 * |-------------|---------------|---------------------------------------------------------------------|
 * | this        | folder        | qemu-img convert writes straight into the export's .partial folder  |
 * | this        | SSH           | convert into a staging folder here, rsync push over ssh2            |
 * | SSH         | folder        | convert into staging on the host, rsync from the host over ssh2     |
 * | SSH         | SSH           | convert into staging on the host, rsync relayed through Snapkeep    |
 *
 * In the SSH cases the rsync client runs where the staged image is and `rsync --server` where it
 * goes, joined by Snapkeep's ssh2 connections (relay.ts). Host to host goes through this computer
 * on purpose: the hosts never get keys for each other, Snapkeep's pinned host keys hold on both
 * legs, and nothing else has to be reachable from the hypervisor.
 */
import { posix } from "node:path";

import { SnapkeepError, describeError, isSnapkeepError, quoteInput } from "../../errors.js";
import { planExportDisks } from "../../domain/plans/export-plan.js";
import { resolveSnapshot } from "../../domain/selection.js";
import { keepNewest } from "../../domain/retention/newest.js";
import { chainBelow } from "../../domain/plans/chain-plan.js";
import type { RetentionPolicy } from "../../domain/retention/gfs.js";
import {
  applyTargetRetention,
  type CopyOwner,
  type KeptCopy,
  type TargetCopy,
} from "../../domain/copy/target-retention.js";
import type { VmModules } from "../vm-modules.js";
import type { Targets } from "../targets.js";
import type { Target } from "../../domain/settings.js";
import {
  sealVerification,
  type ExportEntry,
  type ExportStatus,
  type Manifest,
} from "../../drivers/bundle/bundle.js";
import { RemoteFs } from "../../infra/remote-fs.js";
import { checkFile, type ChunkSums } from "../../drivers/bundle/chunks.js";
import { DEFAULT_ABANDONED_QUIET_MS, sweepAbandoned, type AbandonedExport, type Swept } from "./abandoned.js";
import { finishPendingMerges } from "./merge.js";
import { retireExports, type MergeReport, type Retired } from "./retire.js";
import { cleanStaging, type CleanResult } from "./staging.js";
import { scanExports } from "./target-folders.js";
import { convertDisks } from "./steps/convert.js";
import { exportManifest, finishExport } from "./steps/finish.js";
import { prepareExport, startExport, type ExportStart } from "./steps/prepare.js";
import { isNotStreamable, planDiskStreams, streamDisks } from "./steps/stream.js";
import { landDirect, sendStaged, type Landed } from "./steps/transfer.js";
import type { PreparedExport } from "./steps/context.js";

export { chooseExportDisks } from "../../domain/plans/export-plan.js";
export { SNAPKEEP_VERSION } from "./steps/finish.js";

/** Where a source host keeps converted images until they are on the target. Disk-backed on Debian. */
export const DEFAULT_STAGING_ROOT = "/var/tmp/snapkeep-export";

export type ExportPhase = "prepare" | "convert" | "transfer" | "verify" | "finish";

export interface ExportProgress {
  readonly phase: ExportPhase;
  readonly disk: string | null;
  /** Bytes of the current phase done and in all, over every disk. */
  readonly bytesDone: number;
  readonly bytesTotal: number;
  /** 0..1 over the whole export. */
  readonly fraction: number;
  readonly bytesPerSecond: number | null;
  readonly etaSeconds: number | null;
}

export interface ExportRequest {
  readonly host: string;
  readonly vm: string;
  readonly snapshot: string;
  readonly target: string;
  readonly disks?: readonly string[] | undefined;
  readonly bwlimitKiB?: number | undefined;
  /**
   * "convert": a standalone, compressed image per disk, converted on the source host and sent
   * with rsync (smaller on the target, but the whole disk is read and staged). Default: streamed
   * where the disks allow it, incremental against the previous export.
   */
  readonly engine?: "stream" | "convert" | undefined;
  /** Overrides the target's keep setting for this run. */
  readonly keep?: number | undefined;
  /**
   * A schedule's copy: the manifest names the schedule, and the target's keep setting (which
   * counts exports made by hand) does not prune after it; the schedule prunes its own copies.
   */
  readonly scheduleId?: string | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((progress: ExportProgress) => void) | undefined;
}

export interface ExportResult {
  readonly target: string;
  readonly id: string;
  readonly folder: string;
  readonly manifest: Manifest;
  readonly resumed: boolean;
  /** The earlier export whose images served as rsync's basis, if any. */
  readonly basis: string | null;
  /** Bytes rsync sent (its total); 0 when the images were written straight into the folder. */
  readonly bytesSent: number;
  /** New data rsync had to send (the rest matched the basis or a resumed partial). */
  readonly literalBytes: number;
  /** Streamed: bytes read from the source images (their tables and the data sent); else null. */
  readonly bytesRead: number | null;
  /** "stream": only the snapshot's clusters (or the changed ones) read and sent; "convert": the old way. */
  readonly engine: "stream" | "convert";
  /** For the job's log: each disk full or incremental and why, and why it was not streamed. */
  readonly notes: readonly string[];
  readonly pruned: readonly string[];
}

export interface VerifyResult {
  readonly target: string;
  readonly id: string;
  readonly ok: boolean;
  readonly badFiles: readonly string[];
  /**
   * Where a damaged image differs, for images with chunk hashes: byte ranges of the file, whole
   * chunks (the last one shorter), and the part beyond the manifest's size when it grew or shrank.
   */
  readonly badRanges: readonly { file: string; start: number; end: number }[];
  readonly checkedAt: string;
}

export interface PruneResult {
  readonly removed: readonly string[];
  readonly kept: readonly string[];
  /** Unfinished exports a newer verified one superseded, untouched for the quiet time (abandoned.ts). */
  readonly abandoned: readonly AbandonedExport[];
  /** Such exports the target could not check or remove: they stay, and why. */
  readonly abandonedKept: readonly AbandonedExport[];
  /** Exports retention would remove but an unverified or unfinished one is built on: "base of …". */
  readonly held: readonly { folder: string; reason: string }[];
  /** Kept exports that took in the data of removed ones they were built on. */
  readonly merged: readonly MergeReport[];
  readonly dryRun: boolean;
}

export interface RemoveResult {
  readonly removed: readonly string[];
  readonly held: readonly { folder: string; reason: string }[];
  readonly merged: readonly MergeReport[];
  readonly dryRun: boolean;
}

export interface ExportsDeps extends Pick<VmModules, "hosts" | "vms" | "annotations"> {
  readonly targets: Targets;
  readonly now: () => Date;
  /** Monotonic milliseconds, for rates. */
  readonly clock?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly stagingRoot?: string;
  /**
   * The state folder's key for sealing verifications (sealVerification in drivers/bundle/bundle.ts): what makes an export "verified".
   * Asked for only when a target is read or written, so commands that never touch one never make it.
   */
  readonly sealKey: () => Uint8Array;
}

export class Exports {
  readonly #deps: ExportsDeps;

  #key: Uint8Array | undefined;
  /** Exports under way in this process, per target and VM: a prune leaves their folders alone. */
  readonly #exporting = new Map<string, number>();

  constructor(deps: ExportsDeps) {
    this.#deps = deps;
  }

  #sealKey(): Uint8Array {
    this.#key ??= this.#deps.sealKey();
    return this.#key;
  }

  // ---- export ----------------------------------------------------------------------------------

  /**
   * Exports a snapshot as a bundle that is listed as good only once verified on the target. The
   * steps (steps/) run in this order and hand each other what they found: prepare the source and
   * the target, convert each disk, land the images on the target, then finish the bundle there.
   */
  async export(request: ExportRequest): Promise<ExportResult> {
    const { hosts, vms, annotations } = this.#deps;
    const target = this.#deps.targets.get(request.target);
    const vm = await vms.get(request.host, request.vm);
    const snapshot = resolveSnapshot(vm, request.snapshot);
    const start: ExportStart = {
      target,
      vm,
      snapshot,
      disks: planExportDisks(vm, snapshot, request.disks),
      libvirt: hosts.libvirt(request.host),
      dest: this.#deps.targets.fsOf(target),
      stagingRoot: this.#deps.stagingRoot ?? DEFAULT_STAGING_ROOT,
      now: () => this.#deps.now(),
      clock: this.#deps.clock ?? (() => performance.now()),
      sleep: this.#deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms))),
      sealKey: () => this.#sealKey(),
    };
    const { prepared, landed, manifest, folder } = await this.#whileExporting(
      target.name,
      vm.uuid,
      async () => {
        const { prepared, landed } = await land(request, start);
        const manifest = exportManifest(prepared, landed.disks);
        const folder = await finishExport(prepared, landed.disks, manifest).finally(() =>
          prepared.progress.stop(),
        );
        return { prepared, landed, manifest, folder };
      },
    );
    // The staged images are not needed any more; older exports beyond `keep` go at the same time.
    const keep = request.scheduleId === undefined ? (request.keep ?? target.keep) : undefined;
    const [, pruned] = await Promise.all([
      prepared.direct ? undefined : prepared.source.removeTree(prepared.staging).catch(() => undefined),
      keep === undefined
        ? []
        : this.prune(target.name, { vmUuid: vm.uuid, keep, dryRun: false }).then((r) => r.removed),
    ]);
    annotations.recordExport(request.host, vm.uuid, snapshot.tag, `${target.name}/${prepared.id}`);
    return {
      target: target.name,
      id: prepared.id,
      folder,
      manifest,
      resumed: prepared.resumable !== undefined,
      basis: manifest.basis ?? (prepared.engine === "convert" ? (prepared.basis?.id ?? null) : null),
      bytesSent: landed.bytesSent,
      literalBytes: landed.literalBytes,
      bytesRead: landed.bytesRead,
      engine: prepared.engine,
      notes: [
        ...(prepared.notStreamed === null ? [] : [`not streamed: ${prepared.notStreamed}`]),
        ...manifest.disks.flatMap((d) => (d.why === undefined ? [] : [`${d.target} ${d.why}`])),
      ],
      pruned,
    };
  }

  /** Removes staging folders on `host` that interrupted exports left and nothing wrote to for a while. */
  cleanStaging(host: string, options: { quietMs: number; dryRun: boolean }): Promise<CleanResult> {
    const fs = new RemoteFs(this.#deps.hosts.libvirt(host).runner);
    return cleanStaging(fs, this.#deps.stagingRoot ?? DEFAULT_STAGING_ROOT, {
      ...options,
      now: this.#deps.now(),
    });
  }

  // ---- listing, verifying, pruning ----------------------------------------------------------------

  /** Every Snapkeep export on a target (or on every target), with its state and why it is not good. */
  async list(
    targetName?: string,
  ): Promise<{ target: string; exports: ExportEntry[]; error: string | null }[]> {
    const targets =
      targetName === undefined ? this.#deps.targets.list() : [this.#deps.targets.get(targetName)];
    return Promise.all(
      targets.map(async (target) => {
        try {
          return { target: target.name, exports: await this.#scan(target), error: null };
        } catch (error) {
          return { target: target.name, exports: [], error: describeError(error) };
        }
      }),
    );
  }

  /**
   * The export `ref` names: its id or folder exactly, else the one export whose id starts with it
   * (`byPrefix` says so, for the front ends to tell the person which one that was).
   */
  async find(
    targetName: string,
    ref: string,
  ): Promise<{ target: Target; entry: ExportEntry; byPrefix: boolean }> {
    const target = this.#deps.targets.get(targetName);
    return { target, ...pickExport(await this.#scan(target), ref, targetName) };
  }

  /**
   * The exports disk `disk` of `entry` is built on, nearest first (none for a standalone image),
   * or a VERIFY_FAILED error saying why its chain cannot be followed.
   */
  async chain(target: Target, entry: ExportEntry, disk: string): Promise<readonly ExportEntry[]> {
    const { links, broken } = chainBelow(await this.#scan(target), entry, disk);
    if (broken !== null) {
      throw new SnapkeepError("VERIFY_FAILED", `Export ${entry.id} cannot be restored: ${broken}.`, {
        hint: "Restore an earlier export, or make a new one: the next export is a full one by itself.",
      });
    }
    return links;
  }

  /**
   * Hashes every file of an export again on the target. The result is recorded in its status.json
   * (`record`, the default), unless the target cannot be written (a read-only backup disk): the
   * check itself needs only reading.
   */
  async verify(targetName: string, ref: string, signal?: AbortSignal, record = true): Promise<VerifyResult> {
    const { target, entry } = await this.find(targetName, ref);
    if (entry.state === "partial" || entry.manifest === null) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `Export ${entry.id} cannot be verified: ${entry.reason ?? "it has no manifest"}.`,
      );
    }
    const fs = this.#deps.targets.fsOf(target);
    const dir = posix.join(target.path, entry.folder);
    const files: { name: string; size: number; sha256: string; chunks?: ChunkSums | undefined }[] = [
      entry.manifest.definition,
      ...entry.manifest.disks,
    ];
    // Only regular files count: a link in a bundle could point anywhere on the target's host.
    // An image with chunk hashes is hashed chunk by chunk, so that damage is found where it is.
    const found = await fs.verifyFiles(
      files.map((f) => ({
        path: posix.join(dir, f.name),
        chunkBytes: f.chunks?.bytes ?? 0,
        chunks: f.chunks?.sha256.length ?? 0,
      })),
      signal,
    );
    const checks = files.map((f, i) => checkFile(f, found[i]));
    const badFiles = files.filter((_, i) => !(checks[i]?.ok ?? false)).map((f) => f.name);
    const badRanges = files.flatMap((f, i) => (checks[i]?.ranges ?? []).map((r) => ({ file: f.name, ...r })));
    const checked = {
      state: badFiles.length === 0 ? ("verified" as const) : ("corrupt" as const),
      checkedAt: this.#deps.now().toISOString(),
      badFiles,
    };
    const status: ExportStatus = {
      ...checked,
      badFiles,
      seal: sealVerification(this.#sealKey(), entry.folder, entry.manifestSha256 ?? "", checked),
    };
    if (record) {
      if (badFiles.length > 0) {
        // A damaged copy is no recovery point: the timeline stops marking its snapshot as exported.
        this.#deps.annotations.forgetExports([`${target.name}/${entry.id}`]);
      }
      await fs
        .writeFile(posix.join(dir, "status.json"), `${JSON.stringify(status, null, 2)}\n`)
        .catch((error: unknown) => {
          if (!isSnapkeepError(error, "TARGET_UNWRITABLE")) {
            throw error;
          }
        });
    }
    return {
      target: target.name,
      id: entry.id,
      ok: badFiles.length === 0,
      badFiles,
      badRanges,
      checkedAt: status.checkedAt,
    };
  }

  /**
   * Verifies an export and every export its disks are built on: all a restore of it reads. Bad
   * files are named with their export's id ("<id>/vda.qcow2") when they are in one below it.
   */
  async verifyChain(targetName: string, ref: string, signal?: AbortSignal): Promise<VerifyResult> {
    const { target, entry } = await this.find(targetName, ref);
    const below = new Map<string, ExportEntry>();
    for (const disk of entry.manifest?.disks ?? []) {
      for (const link of await this.chain(target, entry, disk.target)) {
        below.set(link.id, link);
      }
    }
    const top = await this.verify(targetName, entry.id, signal);
    const badFiles = [...top.badFiles];
    const badRanges = [...top.badRanges];
    for (const link of below.values()) {
      const checked = await this.verify(targetName, link.id, signal);
      badFiles.push(...checked.badFiles.map((f) => `${link.id}/${f}`));
      badRanges.push(...checked.badRanges.map((r) => ({ ...r, file: `${link.id}/${r.file}` })));
    }
    return { ...top, ok: badFiles.length === 0, badFiles, badRanges };
  }

  /**
   * Keeps the newest `keep` verified exports per VM and removes older ones. The newest verified
   * export of a VM is never removed, whatever `keep` says, and neither is anything that is not
   * verified (a partial one may be resumed; a corrupt one is evidence the person should see).
   * Only exports made by hand count: a schedule's copies are kept by the schedule (pruneCopies).
   * Unfinished exports that a newer verified one superseded go too, once nothing has written to
   * them for `quietMs` (default a day): they would never be resumed (abandoned.ts).
   */
  async prune(
    targetName: string,
    options: {
      vmUuid?: string | undefined;
      keep?: number | undefined;
      quietMs?: number | undefined;
      dryRun: boolean;
    },
  ): Promise<PruneResult> {
    const target = this.#deps.targets.get(targetName);
    const keep = options.keep ?? target.keep;
    if (keep === undefined || keep < 1) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `Say how many exports per VM to keep (--keep N, at least 1) or set it on ${targetName}.`,
      );
    }
    const swept = await this.#sweep(target, {
      vmUuid: options.vmUuid,
      scheduleId: null,
      quietMs: options.quietMs ?? DEFAULT_ABANDONED_QUIET_MS,
      dryRun: options.dryRun,
    });
    // Planned without them: what they were built on is no longer held for them.
    const all = swept.rest;
    const entries = all.filter(
      (e) =>
        e.state === "verified" &&
        e.manifest?.scheduleId === undefined &&
        (options.vmUuid === undefined || e.vmUuid === options.vmUuid),
    );
    const byVm = new Map<string, ExportEntry[]>();
    for (const entry of entries) {
      byVm.set(entry.vmFolder, [...(byVm.get(entry.vmFolder) ?? []), entry]);
    }
    const unwanted: ExportEntry[] = [];
    const kept: string[] = [];
    for (const list of byVm.values()) {
      // A VM's newest verified export always stays, whatever `keep` says.
      const decided = keepNewest(list, Math.max(1, keep));
      kept.push(...decided.keep.map((k) => k.item.folder));
      unwanted.push(...decided.remove);
    }
    // An incremental export needs the exports below it: they are merged into it before they go.
    const retired = await this.#retire(target, all, unwanted, options.dryRun);
    return {
      removed: retired.removed.map((e) => e.folder),
      kept,
      abandoned: swept.removed,
      abandonedKept: swept.kept,
      held: retired.held,
      merged: retired.merged,
      dryRun: options.dryRun,
    };
  }

  /**
   * Removes exports the person names (ids or unique prefixes), whatever their state; an export
   * built on one of them takes its data first (a merge on the target), so it still restores.
   */
  async remove(
    targetName: string,
    refs: readonly string[],
    options: { dryRun: boolean },
  ): Promise<RemoveResult> {
    const target = this.#deps.targets.get(targetName);
    const all = await this.#scanSettled(target);
    const unwanted: ExportEntry[] = [];
    for (const ref of refs) {
      const { entry } = pickExport(all, ref, targetName);
      if (!unwanted.some((e) => e.folder === entry.folder)) {
        unwanted.push(entry);
      }
    }
    const retired = await this.#retire(target, all, unwanted, options.dryRun);
    return {
      removed: retired.removed.map((e) => e.folder),
      held: retired.held,
      merged: retired.merged,
      dryRun: options.dryRun,
    };
  }

  /** The exports on a target as a schedule's copy rules see them (domain/copy/target-retention.ts). */
  async copiesOn(targetName: string): Promise<TargetCopy[]> {
    const entries = await this.#scan(this.#deps.targets.get(targetName));
    return entries.map(targetCopyOf);
  }

  /**
   * A schedule's retention on a target: removes the owner's verified copies its policy does not
   * keep, never its newest verified one, nor anything else on the target (applyTargetRetention).
   */
  async pruneCopies(
    targetName: string,
    owner: CopyOwner,
    policy: RetentionPolicy,
    options: { dryRun: boolean },
  ): Promise<{
    removed: readonly string[];
    kept: readonly KeptCopy[];
    abandoned: readonly AbandonedExport[];
    abandonedKept: readonly AbandonedExport[];
    held: readonly { folder: string; reason: string }[];
    merged: readonly MergeReport[];
    dryRun: boolean;
  }> {
    const target = this.#deps.targets.get(targetName);
    // The VM's abandoned attempts go first, so that what they were built on is not held for them.
    const swept = await this.#sweep(target, {
      vmUuid: owner.vmUuid,
      scheduleId: owner.id,
      quietMs: DEFAULT_ABANDONED_QUIET_MS,
      dryRun: options.dryRun,
    });
    const entries = swept.rest;
    const copies = entries.map(targetCopyOf);
    const wanted = applyTargetRetention(copies, policy, owner, this.#deps.now());
    // Back from copy to entry by the object itself: ids repeat across VM folders, so an id could
    // name another VM's export.
    const entryOf = new Map(copies.map((c, i) => [c, entries[i] as ExportEntry]));
    // Oldest first: an interruption leaves the newest copies. An incremental copy's bases are
    // merged into it before they go.
    const retired = await this.#retire(
      target,
      entries,
      wanted.remove.flatMap((c) => entryOf.get(c) ?? []),
      options.dryRun,
    );
    return {
      removed: retired.removed.map((e) => e.folder),
      kept: wanted.keep,
      abandoned: swept.removed,
      abandonedKept: swept.kept,
      held: retired.held,
      merged: retired.merged,
      dryRun: options.dryRun,
    };
  }

  // ---- internals ---------------------------------------------------------------------------------

  /** Runs `work` counted as an export of the VM to the target under way (a prune leaves it alone). */
  async #whileExporting<T>(targetName: string, vmUuid: string, work: () => Promise<T>): Promise<T> {
    const key = `${targetName}\0${vmUuid}`;
    this.#exporting.set(key, (this.#exporting.get(key) ?? 0) + 1);
    try {
      return await work();
    } finally {
      const left = (this.#exporting.get(key) ?? 1) - 1;
      if (left === 0) {
        this.#exporting.delete(key);
      } else {
        this.#exporting.set(key, left);
      }
    }
  }

  /** The target's exports, less the abandoned attempts cleared (abandoned.ts). */
  async #sweep(
    target: Target,
    options: { vmUuid: string | undefined; scheduleId: string | null; quietMs: number; dryRun: boolean },
  ): Promise<Swept> {
    const entries = await this.#scanSettled(target);
    // Taken after the scan: an export that started meanwhile may be resuming one of these folders.
    const exporting = new Set(
      [...this.#exporting.keys()].flatMap((key) => {
        const [name, uuid] = key.split("\0");
        return name === target.name && uuid !== undefined ? [uuid] : [];
      }),
    );
    return sweepAbandoned(this.#deps.targets.fsOf(target), target, entries, { ...options, exporting });
  }

  /** The exports, after finishing any merge an interruption left half renamed. */
  async #scanSettled(target: Target): Promise<ExportEntry[]> {
    const all = await this.#scan(target);
    const fs = this.#deps.targets.fsOf(target);
    return (await finishPendingMerges(fs, target, all)) ? this.#scan(target) : all;
  }

  /** Merges what kept exports need of the unwanted ones, then removes these. */
  async #retire(
    target: Target,
    all: readonly ExportEntry[],
    unwanted: readonly ExportEntry[],
    dryRun: boolean,
  ): Promise<Retired> {
    return retireExports(
      {
        fs: this.#deps.targets.fsOf(target),
        target,
        now: this.#deps.now,
        sealKey: () => this.#sealKey(),
      },
      all,
      unwanted,
      {
        dryRun,
        onRemoved: (entry) => this.#deps.annotations.forgetExports([`${target.name}/${entry.id}`]),
      },
    );
  }

  /** Every export on the target; with `create`, that folder is made first (an export starts). */
  async #scan(target: Target, create?: string): Promise<ExportEntry[]> {
    return scanExports(this.#deps.targets.fsOf(target), target, () => this.#sealKey(), create);
  }
}

/**
 * Prepares the export and lands its images on the target: streamed when it can be, else (or when
 * the tables refuse, which is known only once they are read) converted and sent the old way.
 */
async function land(
  request: ExportRequest,
  start: ExportStart,
): Promise<{ prepared: PreparedExport; landed: Landed & { bytesRead: number | null } }> {
  let prepared = await prepareExport(startExport(request, start));
  if (prepared.engine === "stream") {
    try {
      const streams = await planDiskStreams(prepared);
      const streamed = await streamDisks(prepared, streams);
      return { prepared, landed: { ...streamed, literalBytes: streamed.bytesSent } };
    } catch (error) {
      prepared.progress.stop();
      if (!isNotStreamable(error)) {
        throw error;
      }
      prepared = await prepareExport(startExport(request, start, error.message));
    }
  }
  const converted = prepared;
  try {
    const staged = await convertDisks(converted);
    const landed = converted.direct
      ? await landDirect(converted, staged)
      : await sendStaged(converted, staged);
    return { prepared: converted, landed: { ...landed, bytesRead: null } };
  } catch (error) {
    converted.progress.stop();
    throw error;
  }
}

function targetCopyOf(entry: ExportEntry): TargetCopy {
  const snapshot = entry.manifest?.source.snapshot;
  return {
    id: entry.id,
    state: entry.state,
    vmUuid: entry.manifest?.source.vm.uuid ?? entry.job?.vmUuid ?? null,
    scheduleId: entry.manifest?.scheduleId ?? null,
    snapshotTag: snapshot?.tag ?? entry.job?.snapshotTag ?? null,
    snapshotCreatedAt: snapshot?.createdAt ?? null,
    checkedAt: entry.status?.checkedAt ?? null,
  };
}

/** The export a reference names: its id, its folder, or a prefix of one id only. */
function pickExport(
  entries: readonly ExportEntry[],
  ref: string,
  targetName: string,
): { entry: ExportEntry; byPrefix: boolean } {
  const exact = entries.filter((e) => e.id === ref || e.folder === ref);
  if (exact.length === 1) {
    return { entry: exact[0] as ExportEntry, byPrefix: false };
  }
  const matches = exact.length > 1 ? exact : entries.filter((e) => ref.length > 0 && e.id.startsWith(ref));
  if (matches.length !== 1) {
    throw new SnapkeepError(
      "NOT_FOUND",
      matches.length === 0
        ? `There is no export ${quoteInput(ref)} on ${targetName}.`
        : `${quoteInput(ref)} matches ${matches.length} exports on ${targetName} (${matches
            .slice(0, 3)
            .map((e) => e.folder)
            .join(", ")}${matches.length > 3 ? ", …" : ""}); give the whole id or its folder.`,
      { action: { do: "list-exports", target: targetName } },
    );
  }
  return { entry: matches[0] as ExportEntry, byPrefix: true };
}

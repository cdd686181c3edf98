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
import { createHash } from "node:crypto";
import { posix } from "node:path";

import { SnapkeepError, describeError, isSnapkeepError, quoteInput } from "../../errors.js";
import { commandLine } from "../../domain/shell-quote.js";
import type { LvSnapshot, Snapshot } from "../../domain/types.js";
import { requireLvSnapshot, withLvSnapshotReadable } from "../../hypervisor/lvm.js";
import { resolveSnapshot } from "../../domain/selection.js";
import { keepNewest } from "../../domain/retention/newest.js";
import {
  convertSnapshotArgs,
  parseConvertProgress,
  parseQemuImgVersion,
  qcow2ImageOpts,
} from "../../drivers/qemu-img/args.js";
import { runChecked } from "../../infra/runner/checked.js";
import type { CommandRunner } from "../../infra/runner/types.js";
import type { VmModules } from "../vm-modules.js";
import type { Targets } from "../targets.js";
import type { Target } from "../../domain/settings.js";
import {
  BUNDLE_FORMAT,
  BUNDLE_VERSION,
  PARTIAL_SUFFIX,
  SCAN_SCRIPT,
  diskFileName,
  exportId,
  parseScan,
  restoreNotes,
  sealVerification,
  sha256sums,
  vmFolderName,
  type ExportEntry,
  type ExportJob,
  type ExportStatus,
  type Manifest,
  type ManifestDisk,
} from "../../drivers/bundle/bundle.js";
import { RemoteFs, removeExportFolder, writeFailure } from "../../infra/remote-fs.js";
import { isRetryable, relayRsync } from "../../infra/relay.js";
import { ProgressMeter } from "./progress.js";
import {
  CLAIM_SCRIPT,
  SNAPSHOTS_SCRIPT,
  SOURCE_PREPARE_SCRIPT,
  spaceArgs,
  STAGE_SCRIPT,
  parseSnapshotsNow,
  parseSourcePrepared,
  parseSpace,
  parseStagedSize,
  parseRecordedHash,
  parseBadFiles,
  finishArgs,
  RECORD_HASH_SCRIPT,
} from "../../drivers/sh/export-scripts.js";
import { formatBytes } from "../../domain/bytes.js";
import { cleanStaging, type CleanResult } from "./staging.js";

export const SNAPKEEP_VERSION = "0.1.0";

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
  /** Overrides the target's keep setting for this run. */
  readonly keep?: number | undefined;
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
  /** Bytes that crossed the network per disk (rsync's total sent); 0 for a local folder. */
  readonly bytesSent: number;
  /** New data rsync had to send (the rest matched the basis or a resumed partial). */
  readonly literalBytes: number;
  readonly pruned: readonly string[];
}

export interface VerifyResult {
  readonly target: string;
  readonly id: string;
  readonly ok: boolean;
  readonly badFiles: readonly string[];
  readonly checkedAt: string;
}

export interface PruneResult {
  readonly removed: readonly string[];
  readonly kept: readonly string[];
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

const ATTEMPTS = 3;
const BACKOFF_MS = [2000, 8000];
const QUICK_MS = 60_000;
const CONVERT_MS = 6 * 60 * 60_000;
const HASH_MS = 6 * 60 * 60_000;

export class Exports {
  readonly #deps: ExportsDeps;

  #key: Uint8Array | undefined;

  constructor(deps: ExportsDeps) {
    this.#deps = deps;
  }

  #sealKey(): Uint8Array {
    this.#key ??= this.#deps.sealKey();
    return this.#key;
  }

  // ---- export ----------------------------------------------------------------------------------

  async export(request: ExportRequest): Promise<ExportResult> {
    const { hosts, vms, annotations } = this.#deps;
    const target = this.#deps.targets.get(request.target);
    const vm = await vms.get(request.host, request.vm);
    const snapshot = resolveSnapshot(vm, request.snapshot);
    if (snapshot.incomplete) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `Snapshot "${snapshot.name}" was made by a job that was interrupted; it is not exported as a good copy.`,
        { hint: "Export another snapshot, or take a new one." },
      );
    }
    const targets = chooseExportDisks(snapshot, request.disks);
    const disks = targets.map((t) => {
      const disk = vm.disks.find((d) => d.target === t);
      const image = snapshot.disks.find((d) => d.target === t);
      if (disk === undefined || disk.source === null || image === undefined) {
        throw new SnapkeepError("NOT_FOUND", `Disk ${t} of ${vm.name} has no image to export any more.`);
      }
      if (image.lv?.invalid === true) {
        throw new SnapkeepError(
          "INVALID_INPUT",
          `Snapshot "${snapshot.name}" is invalid on ${t}: its LVM COW space ran out, so it no longer holds the past content; it is not exported.`,
          { hint: "Delete it and export another snapshot." },
        );
      }
      return {
        ...disk,
        source: disk.source,
        file: diskFileName(t),
        imageSnapshotId: image.imageSnapshotId,
        lv: image.lv,
      };
    });
    const libvirt = hosts.libvirt(request.host);
    const source = new RemoteFs(libvirt.runner);
    const dest = this.#deps.targets.fsOf(target);
    const progress = new ProgressMeter(request.onProgress, this.#deps.clock ?? (() => performance.now()));
    progress.phase("prepare", null, 0, 0);

    // The target (its folder for this VM made, and what is there already) and the source
    // (versions, definition, staging folder, earlier conversions): one command each, at once.
    const vmFolder = posix.join(target.path, vmFolderName(vm.name, vm.uuid));
    const direct = libvirt.runner.isLocal === true && target.kind === "dir";
    const stagingRoot = posix.join(
      this.#deps.stagingRoot ?? DEFAULT_STAGING_ROOT,
      stagingKey(
        vm.uuid,
        snapshot.tag,
        disks.map((d) => d.imageSnapshotId),
        target.name,
      ),
    );
    const stagedPathsIn = (dir: string): string[] => disks.map((d) => posix.join(dir, d.file));
    const [existing, preparedOutput] = await Promise.all([
      this.#scan(target, vmFolder),
      runChecked(
        libvirt.runner,
        [
          "sh",
          "-c",
          SOURCE_PREPARE_SCRIPT,
          "snapkeep-prepare",
          libvirt.uri,
          vm.uuid,
          direct ? vmFolder : stagingRoot,
          ...(direct ? [] : stagedPathsIn(stagingRoot)),
        ],
        "Preparing the export",
        { timeoutMs: QUICK_MS },
      ),
    ]);
    const prepared = parseSourcePrepared(preparedOutput.stdout, direct ? 0 : disks.length);
    const resumable = existing.find(
      (e) =>
        e.state === "partial" &&
        e.job !== null &&
        e.job.snapshotTag === snapshot.tag &&
        e.job.host === request.host &&
        e.job.vmUuid === vm.uuid &&
        sameList(e.job.disks, targets),
    );
    const basis = existing.filter((e) => e.state === "verified").at(-1);
    const now = this.#deps.now();
    const id = resumable?.id ?? exportId(now, snapshot.name);
    if (resumable === undefined && existing.some((e) => e.id === id)) {
      throw new SnapkeepError(
        "ALREADY_EXISTS",
        `An export ${id} already exists on ${target.name}; try again in a second.`,
      );
    }
    const partial = posix.join(vmFolder, `${id}${PARTIAL_SUFFIX}`);
    const staging = direct ? partial : stagingRoot;
    const stagedPaths = stagedPathsIn(staging);
    const version = parseQemuImgVersion(prepared.qemuImg);
    const compression =
      version !== undefined && (version[0] > 5 || (version[0] === 5 && version[1] >= 1)) ? "zstd" : "zlib";
    const definition = prepared.definition;
    const definitionSha = createHash("sha256").update(definition).digest("hex");
    if (!direct && prepared.rsync === null) {
      throw new SnapkeepError("TOOL_MISSING", `rsync is not installed on ${source.label}.`, {
        hint: "Install it there with: apt-get install rsync",
        details: { tool: "rsync" },
      });
    }
    const job: ExportJob = {
      format: BUNDLE_FORMAT,
      id,
      startedAt: now.toISOString(),
      host: request.host,
      vmUuid: vm.uuid,
      vmName: vm.name,
      snapshotTag: snapshot.tag,
      disks: targets,
    };
    // The job record (and the definition) go first; for an SSH target that happens together with
    // the space check once the images are ready, written straight into a folder it must be now.
    const smallFiles = [
      ...(resumable === undefined
        ? [{ path: posix.join(partial, "job.json"), content: `${JSON.stringify(job, null, 2)}\n` }]
        : []),
      { path: posix.join(partial, "domain.xml"), content: definition },
    ];
    if (direct) {
      if (resumable === undefined) {
        await this.#claim(dest, vmFolder, `${id}${PARTIAL_SUFFIX}`);
      }
      await dest.writeFiles(smallFiles);
    }
    if (prepared.stagingError !== null) {
      throw writeFailure(source.label, staging, prepared.stagingError);
    }

    // 1. Every disk converted (or found converted by an earlier attempt) on the source host.
    const staged: StagedDisk[] = [];
    const virtualTotal = disks.reduce((sum, d) => sum + (d.virtualSize ?? 0), 0);
    let convertedBytes = 0;
    for (const [i, disk] of disks.entries()) {
      const path = stagedPaths[i] ?? "";
      progress.phase("convert", disk.target, convertedBytes, virtualTotal);
      let sha256 = direct ? undefined : prepared.staged[i];
      let size = 0;
      if (sha256 === undefined) {
        const output = { output: direct ? path : `${path}.tmp`, shared: vm.active, compression } as const;
        const onFraction = (fraction: number): void =>
          progress.update(convertedBytes + fraction * (disk.virtualSize ?? 0));
        if (disk.lv === undefined) {
          const from = { source: disk.source, snapshotId: disk.imageSnapshotId, snapshotTag: snapshot.tag };
          await this.#convert(source, { ...from, ...output }, request.signal, onFraction);
        } else {
          await withLvSnapshotReadable(libvirt.runner, disk.target, disk.imageSnapshotId, (device) =>
            this.#convert(source, { device, ...output }, request.signal, onFraction),
          );
        }
        if (!direct) {
          size = parseStagedSize(
            (
              await runChecked(
                source.runner,
                ["sh", "-c", STAGE_SCRIPT, "snapkeep-stage", `${path}.tmp`, path],
                "Staging the converted image",
                { timeoutMs: QUICK_MS },
              )
            ).stdout,
          );
        }
        sha256 = undefined;
      }
      convertedBytes += disk.virtualSize ?? 0;
      staged.push({
        target: disk.target,
        role: disk.role,
        path,
        file: disk.file,
        size,
        sha256: sha256 ?? "",
        virtualSize: disk.virtualSize,
        sourcePath: disk.source,
      });
    }
    // The image was read shared while the VM ran: had the snapshot been deleted meanwhile, its
    // clusters could have been reused and the copy would be garbage. It must still be there; when
    // the image is sent, that is checked while it travels (see below).
    const landedPaths = staged.map((d) => posix.join(partial, d.file));
    const stillThere = (): Promise<void> =>
      this.#requireSnapshotStill(source, vm.name, snapshot, disks).catch(async (error: unknown) => {
        // What was staged is not the snapshot's content: it must never be reused by a retry.
        if (!direct) {
          await source.removeTree(staging).catch(() => undefined);
        }
        throw error;
      });
    if (direct) {
      await stillThere();
    }
    if (!direct && resumable === undefined) {
      await this.#claim(dest, vmFolder, `${id}${PARTIAL_SUFFIX}`);
    }
    const spaceOutput = direct
      ? undefined
      : await runChecked(
          dest.runner,
          spaceArgs(partial, landedPaths, smallFiles),
          `Preparing ${target.name}`,
          {
            timeoutMs: QUICK_MS,
          },
        ).catch((error: unknown) => {
          throw isSnapkeepError(error, "COMMAND_FAILED")
            ? writeFailure(dest.label, partial, String(error.details["stderr"] ?? error.message))
            : error;
        });

    // 2. Onto the target, unless it was written there directly. The source hash of each image is
    // taken while rsync sends it: both read the same file, which is in the page cache by then.
    let bytesSent = 0;
    let literalBytes = 0;
    if (!direct && spaceOutput !== undefined) {
      if (staged.some((d) => d.size === 0)) {
        // Converted by an earlier attempt: its size was not printed this time.
        const sizes = await source.sizes(staged.map((d) => d.path));
        staged.forEach((d, i) => (d.size = sizes[i] ?? 0));
      }
      const space = parseSpace(spaceOutput.stdout, staged.length);
      // --inplace writes over what a resumed attempt left, so only the missing part needs room.
      const needed = staged.reduce((sum, d, i) => sum + Math.max(0, d.size - (space.sizes[i] ?? 0)), 0);
      if (space.freeBytes < needed) {
        throw new SnapkeepError(
          "TARGET_FULL",
          `${target.name} has ${formatBytes(space.freeBytes)} free at ${vmFolder}, but this export needs ${formatBytes(needed)}.`,
          {
            hint: "Free space there (snapkeep exports prune), or export to another target.",
            details: { free: space.freeBytes, needed },
          },
        );
      }
      const total = staged.reduce((sum, d) => sum + d.size, 0);
      let sentBefore = 0;
      for (const disk of staged) {
        progress.phase("transfer", disk.target, sentBefore, total);
        const hashing =
          disk.sha256 === ""
            ? runChecked(
                source.runner,
                ["sh", "-c", RECORD_HASH_SCRIPT, "snapkeep-hash", disk.path],
                "Hashing the converted image",
                {
                  timeoutMs: HASH_MS,
                  ...(request.signal === undefined ? {} : { signal: request.signal }),
                },
              )
            : undefined;
        const [sent, hashed, checked] = await Promise.allSettled([
          this.#transfer(
            libvirt.runner,
            dest.runner,
            {
              source: disk.path,
              destination: posix.join(partial, disk.file),
              basisDir: basis === undefined ? undefined : posix.join(target.path, basis.folder),
              bwlimitKiB: request.bwlimitKiB,
            },
            request.signal,
            (bytes) => progress.update(sentBefore + Math.min(bytes, disk.size)),
          ),
          hashing,
          disk === staged[0] ? stillThere() : undefined,
        ]);
        if (checked.status === "rejected") {
          throw checked.reason;
        }
        if (sent.status === "rejected") {
          throw sent.reason;
        }
        if (hashed.status === "rejected") {
          throw hashed.reason;
        }
        if (hashed.value !== undefined) {
          disk.sha256 = parseRecordedHash(hashed.value.stdout);
        }
        bytesSent += sent.value?.bytesSent ?? 0;
        literalBytes += sent.value?.literalBytes ?? 0;
        sentBefore += disk.size;
      }
    }

    // 3. Written straight into the folder: hashed there, and that hash goes in the manifest.
    progress.phase("verify", null, 0, 1);
    if (direct) {
      const sums = await dest.sha256(landedPaths, request.signal);
      const sizes = await dest.sizes(landedPaths);
      staged.forEach((d, i) => {
        d.sha256 = sums[i] ?? "";
        d.size = sizes[i] ?? 0;
      });
    }
    const manifest: Manifest = {
      format: BUNDLE_FORMAT,
      formatVersion: BUNDLE_VERSION,
      id,
      createdAt: resumable?.job?.startedAt ?? now.toISOString(),
      source: {
        host: request.host,
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
      definition: { name: "domain.xml", size: Buffer.byteLength(definition), sha256: definitionSha },
      disks: staged.map((d): ManifestDisk => ({
        name: d.file,
        size: d.size,
        sha256: d.sha256,
        target: d.target,
        role: d.role,
        format: "qcow2",
        compression,
        virtualSize: d.virtualSize,
        sourcePath: d.sourcePath,
      })),
      tools: {
        snapkeep: SNAPKEEP_VERSION,
        "qemu-img": prepared.qemuImg,
        ...(direct || prepared.rsync === null ? {} : { rsync: prepared.rsync }),
      },
    };

    // 4. One command on the target: every file hashed where it landed and compared with the hash
    // taken where it was made, then the bundle's own files, then the final name.
    const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
    const final = posix.join(vmFolder, id);
    const checked = { state: "verified" as const, checkedAt: this.#deps.now().toISOString(), badFiles: [] };
    const status: ExportStatus = {
      ...checked,
      badFiles: [],
      seal: sealVerification(
        this.#sealKey(),
        posix.relative(target.path, final),
        createHash("sha256").update(manifestText).digest("hex"),
        checked,
      ),
    };
    const finished = await dest.run(
      finishArgs(
        partial,
        final,
        [
          ...staged.map((d) => ({ name: d.file, sha256: d.sha256 })),
          { name: "domain.xml", sha256: definitionSha },
        ],
        [
          { path: posix.join(partial, "manifest.json"), content: manifestText },
          { path: posix.join(partial, "SHA256SUMS"), content: sha256sums(manifest) },
          { path: posix.join(partial, "RESTORE.md"), content: restoreNotes(manifest) },
          { path: posix.join(partial, "status.json"), content: `${JSON.stringify(status, null, 2)}\n` },
        ],
      ),
      { timeoutMs: HASH_MS, ...(request.signal === undefined ? {} : { signal: request.signal }) },
    );
    progress.phase("finish", null, 0, 0);
    if (finished.code === 2) {
      const bad = parseBadFiles(finished.stdout);
      // Delete the bad copies so that the next attempt sends them again rather than resuming.
      await dest.removeFiles(bad.filter((f) => f !== "domain.xml").map((f) => posix.join(partial, f)));
      throw new SnapkeepError(
        "VERIFY_FAILED",
        `${bad.join(", ")} on ${target.name} does not match what was sent.`,
        {
          hint: "Run the export again; if it happens again, check the target's disk and memory.",
          details: { files: bad },
        },
      );
    }
    if (finished.code !== 0) {
      throw writeFailure(dest.label, partial, finished.stderr);
    }
    // The staged images are not needed any more; older exports beyond `keep` go at the same time.
    const keep = request.keep ?? target.keep;
    const [, pruned] = await Promise.all([
      direct ? undefined : source.removeTree(staging).catch(() => undefined),
      keep === undefined
        ? []
        : this.prune(target.name, { vmUuid: vm.uuid, keep, dryRun: false }).then((r) => r.removed),
    ]);
    annotations.recordExport(request.host, vm.uuid, snapshot.tag, `${target.name}/${id}`);
    return {
      target: target.name,
      id,
      folder: final,
      manifest,
      resumed: resumable !== undefined,
      basis: basis?.id ?? null,
      bytesSent,
      literalBytes,
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
    const entries = await this.#scan(target);
    const exact = entries.filter((e) => e.id === ref || e.folder === ref);
    if (exact.length === 1) {
      return { target, entry: exact[0] as ExportEntry, byPrefix: false };
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
        { hint: `See them with: ${commandLine`snapkeep exports list --target ${targetName}`}` },
      );
    }
    return { target, entry: matches[0] as ExportEntry, byPrefix: true };
  }

  /** Hashes every file of an export again on the target and records the result in status.json. */
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
    const files = [entry.manifest.definition, ...entry.manifest.disks];
    // Only regular files count: a link in a bundle could point anywhere on the target's host.
    const sums = await fs.sha256Regular(
      files.map((f) => posix.join(dir, f.name)),
      signal,
    );
    const badFiles = files.filter((f, i) => sums[i] !== f.sha256).map((f) => f.name);
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
      checkedAt: status.checkedAt,
    };
  }

  /**
   * Keeps the newest `keep` verified exports per VM and removes older ones. The newest verified
   * export of a VM is never removed, whatever `keep` says, and neither is anything that is not
   * verified (a partial one may be resumed; a corrupt one is evidence the person should see).
   */
  async prune(
    targetName: string,
    options: { vmUuid?: string | undefined; keep?: number | undefined; dryRun: boolean },
  ): Promise<PruneResult> {
    const target = this.#deps.targets.get(targetName);
    const keep = options.keep ?? target.keep;
    if (keep === undefined || keep < 1) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `Say how many exports per VM to keep (--keep N, at least 1) or set it on ${targetName}.`,
      );
    }
    const entries = (await this.#scan(target)).filter(
      (e) => e.state === "verified" && (options.vmUuid === undefined || e.vmUuid === options.vmUuid),
    );
    const byVm = new Map<string, ExportEntry[]>();
    for (const entry of entries) {
      byVm.set(entry.vmFolder, [...(byVm.get(entry.vmFolder) ?? []), entry]);
    }
    const removed: ExportEntry[] = [];
    const kept: string[] = [];
    for (const list of byVm.values()) {
      // A VM's newest verified export always stays, whatever `keep` says.
      const decided = keepNewest(list, Math.max(1, keep));
      kept.push(...decided.keep.map((k) => k.item.folder));
      removed.push(...decided.remove);
    }
    if (!options.dryRun) {
      const fs = this.#deps.targets.fsOf(target);
      for (const entry of removed) {
        await removeExportFolder(
          fs,
          target.path,
          entry.vmFolder,
          entry.folder.slice(entry.vmFolder.length + 1),
        );
      }
      this.#deps.annotations.forgetExports(removed.map((e) => `${target.name}/${e.id}`));
    }
    return { removed: removed.map((e) => e.folder), kept, dryRun: options.dryRun };
  }

  // ---- internals ---------------------------------------------------------------------------------

  /** Every export on the target; with `create`, that folder is made first (an export starts). */
  async #scan(target: Target, create?: string): Promise<ExportEntry[]> {
    const fs = this.#deps.targets.fsOf(target);
    const result = await fs.run(["sh", "-c", SCAN_SCRIPT, "snapkeep-scan", target.path, create ?? ""], {
      timeoutMs: QUICK_MS,
    });
    if (result.code === 4) {
      throw new SnapkeepError(
        "TARGET_UNWRITABLE",
        `${create ?? target.path} on ${fs.label} is a link, not a folder: Snapkeep does not export through links it did not make; nothing was written.`,
        { hint: "Remove the link on the target (or choose another target), then export again." },
      );
    }
    if (result.code !== 0) {
      throw writeFailure(fs.label, create ?? target.path, result.stderr);
    }
    return parseScan(result.stdout, this.#sealKey()).filter(
      (e) => create === undefined || e.vmFolder === posix.basename(create),
    );
  }

  /**
   * Makes a new export's folder, refusing a name that anything on the target already has: a folder
   * planted there (with links inside) is not one Snapkeep made, and nothing is written into it.
   */
  async #claim(dest: RemoteFs, vmFolder: string, name: string): Promise<void> {
    const result = await dest.run(["sh", "-c", CLAIM_SCRIPT, "snapkeep-claim", vmFolder, name], {
      timeoutMs: QUICK_MS,
    });
    if (result.code === 3) {
      throw new SnapkeepError(
        "ALREADY_EXISTS",
        `${posix.join(vmFolder, name)} already exists on ${dest.label} but is not an export Snapkeep can resume; nothing was written.`,
        { hint: "Look at it on the target and remove it if nobody needs it, then export again." },
      );
    }
    if (result.code !== 0) {
      throw writeFailure(dest.label, posix.join(vmFolder, name), result.stderr);
    }
  }

  async #convert(
    fs: RemoteFs,
    options: Parameters<typeof convertSnapshotArgs>[0],
    signal: AbortSignal | undefined,
    onFraction: (fraction: number) => void,
  ): Promise<void> {
    let tail = "";
    // Owner-only, like everything Snapkeep writes on a target: the image is a whole VM disk.
    const argv = ["sh", "-c", 'umask 077 && exec "$@"', "snapkeep-convert", ...convertSnapshotArgs(options)];
    const result = await fs.run(argv, {
      timeoutMs: CONVERT_MS,
      ...(signal === undefined ? {} : { signal }),
      onStdout: (chunk) => {
        tail = (tail + chunk.toString("latin1")).slice(-64);
        const fraction = parseConvertProgress(tail);
        if (fraction !== undefined) {
          onFraction(fraction);
        }
      },
    });
    if (result.code !== 0) {
      await fs.removeFiles([options.output]).catch(() => undefined);
      if (/No space left|Permission denied|Read-only file system|Disk quota/i.test(result.stderr)) {
        throw writeFailure(fs.label, options.output, result.stderr);
      }
      throw new SnapkeepError(
        "COMMAND_FAILED",
        `Converting ${"device" in options ? options.device : options.source} on ${fs.label} failed: ${result.stderr.trim().split("\n").at(-1) ?? `exit ${result.code}`}`,
        {
          details: { stderr: result.stderr.slice(0, 2000) },
        },
      );
    }
  }

  async #transfer(
    sender: CommandRunner,
    receiver: CommandRunner,
    send: Parameters<typeof relayRsync>[0]["send"],
    signal: AbortSignal | undefined,
    onBytes: (bytes: number) => void,
  ): Promise<{ bytesSent: number; literalBytes: number } | undefined> {
    const sleep = this.#deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    for (let attempt = 1; ; attempt++) {
      try {
        const { stats } = await relayRsync({
          sender,
          receiver,
          send,
          signal,
          onProgress: (p) => onBytes(p.bytes),
        });
        return stats;
      } catch (error) {
        if (signal?.aborted === true || attempt >= ATTEMPTS || !isRetryable(error)) {
          throw error;
        }
        // A cancel during the wait ends it at once; the relay then refuses to start.
        await Promise.race([
          sleep(BACKOFF_MS[attempt - 1] ?? 8000),
          new Promise<void>((resolve) => signal?.addEventListener("abort", () => resolve(), { once: true })),
        ]);
      }
    }
  }

  async #requireSnapshotStill(
    source: RemoteFs,
    vmName: string,
    snapshot: Snapshot,
    disks: readonly {
      readonly target: string;
      readonly source: string;
      readonly imageSnapshotId: string;
      readonly lv: LvSnapshot | undefined;
    }[],
  ): Promise<void> {
    const images = disks.filter((d) => d.lv === undefined);
    const result =
      images.length === 0
        ? null
        : await source.run(
            [
              "sh",
              "-c",
              SNAPSHOTS_SCRIPT,
              "snapkeep-snapshots",
              ...images.map((d) => qcow2ImageOpts(d.source)),
            ],
            { timeoutMs: QUICK_MS },
          );
    const found = result?.code === 0 ? parseSnapshotsNow(result.stdout) : [];
    const lvsStill = await Promise.all(
      disks
        .filter((d) => d.lv !== undefined)
        .map((d) =>
          requireLvSnapshot(source.runner, d.target, d.imageSnapshotId).then(
            () => true,
            () => false,
          ),
        ),
    );
    const same =
      lvsStill.every(Boolean) &&
      (result === null ||
        (found.length === images.length &&
          images.every((d, i) =>
            (found[i]?.snapshots ?? []).some((s) => s.id === d.imageSnapshotId && s.name === snapshot.tag),
          )));
    if (!same) {
      throw new SnapkeepError(
        "NOT_FOUND",
        `Snapshot "${snapshot.name}" of ${vmName} was deleted or replaced while it was being exported; the copy was not kept.`,
        { hint: "Export it again, or pin snapshots you export so retention leaves them alone." },
      );
    }
  }
}

interface StagedDisk {
  readonly target: string;
  readonly role: "root" | "additional";
  readonly path: string;
  readonly file: string;
  /** Known once converted here, or read back later for an image converted by an earlier attempt. */
  size: number;
  /** Taken on the source while the image is sent (or read from an earlier attempt's record). */
  sha256: string;
  readonly virtualSize: number | null;
  readonly sourcePath: string | null;
}

/** The disks to export: the chosen ones (each must be in the snapshot), else all of the snapshot's. */
export function chooseExportDisks(snapshot: Snapshot, chosen: readonly string[] | undefined): string[] {
  const inSnapshot = snapshot.disks.map((d) => d.target);
  if (chosen === undefined || chosen.length === 0) {
    return inSnapshot;
  }
  for (const target of chosen) {
    if (!inSnapshot.includes(target)) {
      throw new SnapkeepError("INVALID_INPUT", `Snapshot "${snapshot.name}" has no disk ${target}.`, {
        hint: `It has: ${inSnapshot.join(", ")}`,
      });
    }
  }
  return inSnapshot.filter((t) => chosen.includes(t));
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
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

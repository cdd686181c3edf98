/**
 * The one contract between the core and every UI, whatever carries it (Electron IPC, the
 * WebSocket of `snapkeep serve`): for each method the schema its parameters must pass and the type
 * of its result, the events pushed to every UI, the jobs they watch, and the closed set of error
 * codes. A method not listed here does not exist.
 *
 * api.ts's handlers are typed by it, so a handler that answers another shape fails the type check;
 * the renderer imports it with `import type` only (lint refuses anything else), so no zod and no
 * Node code reach the page, and its `call("vms.get", {host, vm})` infers both sides from the name.
 *
 * Names: plural namespaces and a verb (`snapshots.revert`); a method whose dry run answers another
 * shape than the real call is two methods, `planX` (nothing changes) and `X`. The words are the
 * README's ("Words"): templates and volumes are the *library*, an export brought back is a
 * *restore*.
 *
 * Each parameter is described in the words a sentence about it uses ("The target name ... may
 * contain only ..."): the API parses with explain.ts's sentenceErrorMap, which reads them.
 */
import { z } from "zod";

import type { ErrorCode, HintAction } from "../errors.js";
import {
  MAX_BWLIMIT_KIB,
  MAX_EXPORTS_KEPT,
  MAX_RUNS_PER_COPY,
  MAX_SAFETY_KEPT,
  MAX_WAIT_SECONDS,
} from "../domain/limits.js";
import { NAME_PATTERN, NO_CONTROL_CHARACTERS, UUID_PATTERN } from "../domain/names.js";
import { isEmptyPolicy, type RetentionResult } from "../domain/retention/gfs.js";
import type { RetentionForecast } from "../domain/retention/forecast.js";
import type { CopyForecast } from "../domain/copy/forecast.js";
import type { RpoStatus } from "../domain/schedule/due.js";
import type { OffHostCopies, OffHostRpo } from "../domain/copy/rpo.js";
import type { FilesOpened, GuestEntry } from "../domain/files.js";
import type { DrillRecord, DrillSummary } from "../domain/drill.js";
import { retentionSchema, whenSchema } from "../domain/schedule/spec.js";
import type {
  NotificationSettings,
  Schedule,
  SchedulePause,
  ScheduleState,
  Target,
  TargetTest,
} from "../domain/settings.js";
import type { HostConfig, RevertProgress, RevertResult, Snapshot, VmWithSnapshots } from "../domain/types.js";
import type { VmSpace } from "../domain/space.js";

export type { HintAction } from "../errors.js";
export type { DiskSpace, SnapshotSpace, VmSpace } from "../domain/space.js";
export type {
  DefinitionChange,
  Disk,
  DiskRole,
  DiskSnapshot,
  HostConfig,
  RevertProgress,
  RevertResult,
  Snapshot,
  SnapshotKind,
  VmState,
  VmWithSnapshots,
} from "../domain/types.js";
export type {
  NotificationSettings,
  Schedule,
  SchedulePause,
  ScheduleState,
  Target,
  TargetTest,
} from "../domain/settings.js";
export type { KeptSnapshot, RetentionPolicy, RetentionResult } from "../domain/retention/gfs.js";
export type { RetentionForecast } from "../domain/retention/forecast.js";
export type { CopyCadence } from "../domain/copy/policy.js";
export type { CopyForecast } from "../domain/copy/forecast.js";
export type { RpoStatus } from "../domain/schedule/due.js";
export type { OffHostCopies, OffHostRpo } from "../domain/copy/rpo.js";
export type { DrillRecord, DrillSummary } from "../domain/drill.js";
export type { FilesOpened, GuestEntry, GuestMount } from "../domain/files.js";
export type { When, Weekday } from "../domain/schedule/spec.js";

// ---- parameters ---------------------------------------------------------------------------------

/** A host, target, template or volume name, in the words `what` ("target name"). */
const nameOf = (what: string) => z.string().regex(NAME_PATTERN).describe(what);
/** A path or address a person types. */
const typed = (what: string, max: number) =>
  z.string().min(1).max(max).regex(NO_CONTROL_CHARACTERS).describe(what);
const flag = (what: string) => z.boolean().describe(what);

const hostName = nameOf("host name");
const targetName = nameOf("target name");
const vmName = z.string().min(1).max(300).describe("VM name");

/** The kinds of job the journal keeps (a schedule's snapshot and copy, and what a UI or CLI ran). */
// The journal's kinds (infra/journal.ts, JobKind), written out: the page's type check must not
// reach the journal's file code. journal-jobs.ts assigns one to the other, so they cannot drift.
export const HISTORY_KINDS = [
  "scheduled-snapshot",
  "copy",
  "export",
  "verify",
  "restore",
  "template",
  "volume",
  "vm-create",
  "lab",
  "drill",
] as const;
export type HistoryKind = (typeof HISTORY_KINDS)[number];
const newVmName = z.string().min(1).max(200).describe("name of the new VM");
const hostVm = { host: hostName, vm: vmName };
/** The VM on screen by its UUID: an action never lands on a VM renamed or replaced meanwhile. */
const hostVmUuid = { host: hostName, vmUuid: z.string().regex(UUID_PATTERN).describe("VM UUID") };
const snapshot = z.string().min(1).max(70_000).describe("snapshot");
const snapshotOfVmUuid = { ...hostVmUuid, snapshot };
const disk = z.string().min(1).max(32).describe("disk target");
const disks = z.array(disk).min(1).max(64).describe("list of disks");
const fingerprint = z.string().min(1).max(200).describe("host key fingerprint");
const stopOptions = {
  stopRunning: flag("choice to stop a running VM").default(false),
  force: flag("choice to power the VM off").default(false),
  powerOffNow: flag("choice to power the VM off at once, without a shutdown request").default(false),
  shutdownTimeoutSeconds: z
    .number()
    .int()
    .min(1)
    .max(MAX_WAIT_SECONDS)
    .describe("shutdown timeout in seconds")
    .default(120),
};
const note = z.string().max(2000).describe("note");
const scheduleDraft = z.object({
  ...hostVm,
  when: whenSchema,
  // The settings file takes a schedule that keeps everything; a person setting one up says how many.
  retention: retentionSchema.refine(
    (policy) => !isEmptyPolicy(policy),
    "Say how many snapshots to keep: the latest N, or how many daily, weekly or monthly ones",
  ),
  disks: disks.optional(),
  note: note.optional(),
  /** Absent: the schedule's snapshots stay on the host. The core checks the counts and the target. */
  copy: z
    .object({
      target: z.string().min(1).max(63).describe("target name"),
      cadence: z
        .discriminatedUnion("every", [
          z.object({ every: z.literal("runs"), n: z.number().int().min(1).max(MAX_RUNS_PER_COPY) }),
          z.object({ every: z.literal("day") }),
          z.object({ every: z.literal("week") }),
        ])
        .optional(),
      retention: retentionSchema,
      holdLocalUntilCopied: z.boolean().optional(),
      /** Restore drills of the landed copies, at most every this many days (and after a failed one). */
      drill: z.object({ everyDays: z.number().int().min(1).max(366) }).optional(),
    })
    .optional(),
});
const scheduleId = z
  .string()
  .regex(/^[a-z0-9]{8}$/)
  .describe("schedule ID");
const exportId = z.string().min(1).max(300).describe("export ID");
const browseSession = z
  .string()
  .regex(/^[0-9a-f]{24}$/)
  .describe("file browser");
const guestPath = z.string().min(1).max(4096).describe("path in the guest");
const libraryKind = z.enum(["template", "volume"]).describe("kind");
const libraryName = z.string().min(1).max(128).describe("template or volume name");

const revert = z.object({ ...snapshotOfVmUuid, disks: disks.optional(), ...stopOptions });
const undoRevert = z.object({ ...hostVmUuid, ...stopOptions });
const restore = z
  .object({
    target: targetName,
    export: exportId,
    host: hostName,
    name: newVmName.optional(),
    into: vmName.optional(),
    disks: disks.optional(),
    start: flag("choice to start the VM").default(false),
  })
  .refine((p) => (p.name === undefined) !== (p.into === undefined), "Choose a new VM name or a VM");
const libraryCreate = z.object({
  ...hostVm,
  snapshot,
  kind: libraryKind,
  name: libraryName,
  disk: disk.optional(),
});
const libraryItem = z.object({ kind: libraryKind, host: hostName, name: libraryName });
const vmFromTemplate = z.object({
  host: hostName,
  name: newVmName,
  template: z.string().min(1).max(128).describe("template name"),
  full: flag("full-copy choice").default(false),
  start: flag("choice to start the VM").default(false),
});

/** Every method of the API and the schema its parameters must pass, checked before anything runs. */
export const methods = {
  "hosts.list": z.object({}),
  "hosts.add": z
    .object({
      name: hostName,
      local: flag("choice of this computer").default(false),
      ssh: typed("SSH address", 300).optional(),
      identityFile: typed("key file", 4096).optional(),
      uri: typed("libvirt URI", 300).optional(),
    })
    .refine((p) => p.local !== (p.ssh !== undefined), "Choose this computer or an SSH address"),
  "hosts.fingerprint": z.object({ name: hostName }),
  "hosts.trust": z.object({ name: hostName, fingerprint }),
  "hosts.remove": z.object({ name: hostName }),

  "vms.list": z.object({ host: hostName.optional() }),
  "vms.get": z.object(hostVm),
  "vms.space": z.object(hostVm),
  "vms.planCreate": vmFromTemplate,
  "vms.create": vmFromTemplate,

  "snapshots.create": z.object({
    ...hostVmUuid,
    name: z.string().min(1).max(128).describe("snapshot name").optional(),
    note: note.optional(),
    disks: disks.optional(),
  }),
  "snapshots.planDelete": z.object(snapshotOfVmUuid),
  "snapshots.delete": z.object(snapshotOfVmUuid),
  "snapshots.pin": z.object({ ...snapshotOfVmUuid, pinned: flag("pin choice") }),
  "snapshots.planRevert": revert,
  "snapshots.revert": revert,
  "snapshots.planUndoRevert": undoRevert,
  "snapshots.undoRevert": undoRevert,

  "schedules.list": z.object({}),
  "schedules.add": scheduleDraft,
  "schedules.update": scheduleDraft.extend({ id: scheduleId }),
  "schedules.remove": z.object({ id: scheduleId }),
  "schedules.setEnabled": z.object({ id: scheduleId, enabled: flag("choice to run the schedule") }),
  "schedules.preview": z.object({ draft: scheduleDraft, editing: scheduleId.optional() }),
  /** Without minutes: until resumed. */
  "schedules.pauseAll": z.object({
    minutes: z.number().int().min(1).max(527_040).describe("pause in minutes").optional(),
  }),
  "schedules.resumeAll": z.object({}),
  "schedules.pauseState": z.object({}),
  "schedules.runner": z.object({}),

  "targets.list": z.object({}),
  "targets.add": z
    .object({
      name: targetName,
      dir: typed("folder", 4096).optional(),
      ssh: typed("SSH address", 4096).optional(),
      identityFile: typed("key file", 4096).optional(),
      keep: z
        .number()
        .int()
        .min(1, "Keep at least 1 export per VM, or leave it empty to keep all")
        .max(MAX_EXPORTS_KEPT, `Keep at most ${MAX_EXPORTS_KEPT.toLocaleString("en-US")} exports per VM`)
        .describe("number of exports to keep")
        .optional(),
      bwlimitKiB: z
        .number()
        .int()
        .min(1)
        .max(MAX_BWLIMIT_KIB)
        .describe("bandwidth limit in KiB/s")
        .optional(),
    })
    .refine((p) => (p.dir === undefined) !== (p.ssh === undefined), "Give a folder or an SSH address"),
  "targets.fingerprint": z.object({ name: targetName }),
  "targets.trust": z.object({ name: targetName, fingerprint }),
  "targets.remove": z.object({ name: targetName }),
  "targets.test": z.object({
    name: targetName,
    create: z.boolean().describe("make the folder when it is missing").optional(),
  }),

  "exports.list": z.object({ target: targetName.optional() }),
  "exports.start": z.object({
    ...hostVm,
    snapshot,
    target: targetName,
    disks: disks.optional(),
    bwlimitKiB: z
      .number()
      .int()
      .min(1, "A bandwidth limit must be above 0")
      .max(MAX_BWLIMIT_KIB)
      .describe("bandwidth limit in KiB/s")
      .optional(),
  }),
  "exports.verify": z.object({ target: targetName, export: exportId }),
  /** Removes exports; an export built on one takes its data first. With dryRun: what it would do. */
  "exports.remove": z.object({
    target: targetName,
    exports: z.array(exportId).min(1, "Name at least one export").max(200),
    dryRun: z.boolean(),
  }),
  /** Keeps the newest `keep` verified exports of each VM made by hand (schedules' copies follow their own rules). */
  "exports.prune": z.object({
    target: targetName,
    keep: z.number().int().min(1, "Keep at least 1 export per VM").max(1000),
    dryRun: z.boolean(),
  }),
  "exports.planRestore": restore,
  "exports.restore": restore,

  "files.open": z
    .object({
      /** The VM's host: needed for a snapshot; an export is read on its target, not on a host. */
      host: hostName.optional(),
      vm: hostVm.vm,
      snapshot: snapshot.optional(),
      /** An export of the VM on a target, read where it is. */
      export: z.object({ target: targetName, id: exportId }).optional(),
      disk: disk.optional(),
      fs: z
        .string()
        .regex(/^\/dev\/[\w./+-]{1,200}$/)
        .describe("file system device")
        .optional(),
    })
    .refine((p) => (p.snapshot === undefined) !== (p.export === undefined), {
      message: "Browse a snapshot or an export, one of them",
    })
    .refine((p) => p.export !== undefined || p.host !== undefined, {
      message: "A snapshot is browsed on its VM's host: say which",
    }),
  "files.list": z.object({ session: browseSession, path: guestPath }),
  "files.download": z.object({ session: browseSession, path: guestPath }),
  "files.close": z.object({ session: browseSession }),

  /** A drill's console screenshot (PNG, base64), or null when it has none. */
  "drills.screenshot": z.object({
    id: z
      .string()
      .regex(/^[0-9a-f]{12}$/)
      .describe("drill ID"),
  }),
  /** A VM's restore drills, newest first. */
  "drills.list": z.object({ host: hostName.optional(), vm: vmName.optional() }),
  /** Boots a snapshot (or an export) of the VM in a throwaway VM on an isolated network: a job. */
  "drills.run": z
    .object({
      ...hostVm,
      snapshot: snapshot.optional(),
      export: z.object({ target: targetName, id: exportId }).optional(),
      to: hostName.optional(),
    })
    .refine((p) => (p.snapshot === undefined) !== (p.export === undefined), {
      message: "Drill a snapshot or an export, one of them",
    }),

  "library.list": z.object({ kind: libraryKind, host: hostName }),
  "library.planCreate": libraryCreate,
  "library.create": libraryCreate,
  "library.planDelete": libraryItem,
  "library.delete": libraryItem,
  "library.attach": z.object({
    host: hostName,
    volume: z.string().min(1).max(128).describe("volume name"),
    vm: vmName,
    writable: flag("read-write choice").default(false),
  }),

  "jobs.list": z.object({}),
  /** The job journal, newest first, filtered (the History view). */
  "jobs.history": z.object({
    host: hostName.optional(),
    vm: vmName.optional(),
    kind: z.enum(HISTORY_KINDS).optional(),
    result: z.enum(["running", "succeeded", "failed", "cancelled", "interrupted"]).optional(),
    limit: z.number().int().min(1).max(2000).default(300),
  }),
  "jobs.cancel": z.object({
    id: z
      .string()
      .regex(/^[0-9a-f]{12}$/)
      .describe("job ID"),
  }),
  "lab.up": z.object({}),
  "settings.get": z.object({}),
  "settings.set": z.object({
    safetyKeep: z
      .number()
      .int(`Keep a whole number of safety snapshots, 1 to ${MAX_SAFETY_KEPT}`)
      .min(1, "Keep at least 1 safety snapshot per VM")
      .max(MAX_SAFETY_KEPT, `Keep at most ${MAX_SAFETY_KEPT} safety snapshots per VM`)
      .describe("number of safety snapshots to keep")
      .optional(),
  }),
} as const;

export type Method = keyof typeof methods;
/** The parameters as a handler sees them, defaults filled in. */
export type Params<M extends Method> = z.output<(typeof methods)[M]>;
/** The parameters as a caller writes them: what has a default may be left out. */
export type ParamsIn<M extends Method> = z.input<(typeof methods)[M]>;

/**
 * Methods only the desktop app answers, in its main process (electron/lib/desktop.ts): they change
 * this computer's login items and keyring. A browser on `snapkeep serve` has none of them.
 */
export const desktopMethods = {
  /** Who runs the schedules (this app, another process, or nobody and why), and the like. */
  "desktop.status": z.object({}),
  /** Without `enabled`: reads the choice. */
  "desktop.autostart": z.object({ enabled: z.boolean().optional() }).strict(),
  /** Changes the kinds given, answers all of them. */
  "desktop.notifications": z
    .object({
      jobFailed: z.boolean().optional(),
      vmOverdue: z.boolean().optional(),
      exportVerified: z.boolean().optional(),
    })
    .strict(),
  "desktop.secrets": z.object({}),
  "desktop.storeKeyPassphrase": z.object({ passphrase: z.string().min(1).max(1024) }).strict(),
  "desktop.forgetKeyPassphrase": z.object({}),
} as const;

export type DesktopMethod = keyof typeof desktopMethods;
export type DesktopParams<M extends DesktopMethod> = z.output<(typeof desktopMethods)[M]>;
export type DesktopParamsIn<M extends DesktopMethod> = z.input<(typeof desktopMethods)[M]>;

// ---- errors -------------------------------------------------------------------------------------

/**
 * Every code an error may carry: the core's (errors.ts), INTERNAL for a bug, and two the jobs list
 * gives a scheduled job (failed, or cut off by a crash).
 */
export type ApiErrorCode = ErrorCode | "INTERNAL" | "JOB_FAILED" | "INTERRUPTED";

/**
 * An error as a UI shows it: the sentence the CLI prints too, the hint in the UI's words, and the
 * code (and the hint's action, for a button that does it) to branch on.
 */
export interface ApiError {
  readonly code: ApiErrorCode;
  readonly message: string;
  readonly hint: string | null;
  readonly action: HintAction | null;
}

// ---- jobs ---------------------------------------------------------------------------------------

export type JobState = "running" | "succeeded" | "failed" | "cancelled" | "interrupted";

/** One job of the journal, with all it recorded: its steps, what it pruned, what it sent. */
export interface HistoryEntry {
  readonly id: string;
  readonly kind: HistoryKind;
  readonly title: string;
  readonly host: string | null;
  readonly vm: string | null;
  readonly state: JobState;
  readonly startedAt: string;
  readonly endedAt: string | null;
  /** The error, or why it was interrupted; null when it went well. */
  readonly message: string | null;
  readonly steps: readonly { readonly at: string; readonly step: string }[];
  /** Snapshots its retention removed, and those kept because their copy has not landed. */
  readonly pruned: readonly string[];
  readonly held: readonly string[];
  readonly pruneError: string | null;
  /** What it sent off the host: where, the export's id, bytes, and copies its retention removed. */
  readonly sent: {
    readonly target: string;
    readonly exportId: string | null;
    readonly bytes: number;
    readonly prunedCopies: readonly string[];
  } | null;
}

export interface History {
  /** Newest first, at most the limit asked. */
  readonly entries: readonly HistoryEntry[];
  /** How many match the filter in all. */
  readonly matching: number;
  /** What the filters can choose from: every VM with jobs in the journal. */
  readonly vms: readonly { readonly host: string; readonly vm: string }[];
}

export interface JobProgress {
  /** What the job is doing now, in a few words ("transfer", "convert vda"). */
  readonly phase: string;
  /** 0..1, or null while the total is not known. */
  readonly fraction: number | null;
  readonly bytesDone: number | null;
  readonly bytesTotal: number | null;
  readonly bytesPerSecond: number | null;
  readonly etaSeconds: number | null;
}

/** What each kind of job made, once it succeeded. */
export interface JobResults {
  readonly export: ExportDone;
  readonly verify: Verified;
  readonly restore: Restored;
  readonly template: LibraryItem;
  readonly volume: LibraryItem;
  readonly "vm-create": VmFromTemplate;
  /** The demo VMs' names. */
  readonly lab: readonly string[];
  /** The drill's record: passed or failed (a drill that ran and failed is a job that succeeded). */
  readonly drill: DrillRecord;
  /** Snapshots its retention removed, when any (the scheduler's journal keeps no more). */
  readonly "scheduled-snapshot": { readonly pruned: readonly string[] } | null;
  /** A schedule's off-host copy: the export it made there (null when nothing was owed). */
  readonly "scheduled-copy": {
    readonly target: string;
    readonly exportId: string | null;
    readonly bytesSent: number;
    readonly resumed: boolean;
    readonly pruned: readonly string[];
  } | null;
}

export type JobKind = keyof JobResults;
/** The jobs a UI starts; the scheduler's come from its journal. */
export type UiJobKind = Exclude<JobKind, "scheduled-snapshot" | "scheduled-copy">;

/** A job of one kind as every UI sees it, whether a UI started it or a schedule did. */
export interface JobViewOf<K extends JobKind> {
  readonly id: string;
  readonly kind: K;
  /** One line a person reads: "Export web01 “before upgrade” to nas". */
  readonly title: string;
  readonly host: string | null;
  readonly vm: string | null;
  /** The export the job is about (a verify), when it is about one. */
  readonly export?: { readonly target: string; readonly id: string };
  readonly state: JobState;
  readonly startedAt: string;
  readonly endedAt: string | null;
  readonly progress: JobProgress | null;
  readonly error: ApiError | null;
  /** What a succeeded job made; null until then. */
  readonly result: JobResults[K] | null;
  readonly cancellable: boolean;
}

/** Any job; `kind` tells what its result is. */
export type JobView = { [K in JobKind]: JobViewOf<K> }[JobKind];

// ---- events -------------------------------------------------------------------------------------

/** Pushed to every UI: something changed on a host (reload what shows it), or a job moved. */
export type ApiEvent =
  /** `vm` as the call that changed it named it: its name, or its UUID. */
  | { readonly event: "changed"; readonly data: { readonly host: string; readonly vm?: string } }
  | { readonly event: "job"; readonly data: JobView }
  /** A revert of a running VM moved on: the wizard counts down the wait for its shutdown. */
  | {
      readonly event: "revert";
      readonly data: { readonly host: string; readonly vmUuid: string; readonly progress: RevertProgress };
    };

// ---- results ------------------------------------------------------------------------------------

/** What adding a host answers: an SSH one is saved untrusted until its key is confirmed. */
export interface AddedHost {
  readonly host: HostConfig;
  readonly offeredFingerprint: string | null;
  readonly trusted: boolean;
}

export interface AddedTarget {
  readonly target: Target;
  readonly offeredFingerprint: string | null;
  readonly trusted: boolean;
  /** Set when the folder is on the system disk, where an unmounted disk leaves its mount point. */
  readonly warning: string | null;
}

/** A VM as the list shows it: its snapshots counted, not sent (vms.get brings them). */
export interface ListedVm extends Omit<VmWithSnapshots, "snapshots"> {
  readonly snapshotCount: number;
  readonly lastSnapshotAt: string | null;
  /** Bytes its disks take on the host, snapshots included (domain/space.ts spaceUsed); null: unknown. */
  readonly spaceUsedBytes: number | null;
  /** The oldest snapshot it can go back to (complete, not invalidated); null: none. */
  readonly oldestSnapshotAt: string | null;
  readonly rpo?: RpoStatus | undefined;
  /** Its newest copy off this host against its schedules' copy interval; null: nothing to judge. */
  readonly offHost?: OffHostRpo | null | undefined;
  /** Its verified copies off the host (for the overview's 3-2-1 view). */
  readonly offHostCopies?: OffHostCopies | undefined;
  /** Its restore drills: when one last proved it boots, and a newer one that failed. */
  readonly drill?: DrillSummary | undefined;
}

export interface ListedHost {
  readonly host: string;
  readonly vms: readonly ListedVm[];
  /** Set when this host could not be listed; the other hosts are still listed. */
  readonly error: string | null;
  /** What to do about the error, in the UI's words, when Snapkeep knows. */
  readonly hint: string | null;
  /** The hint's action, for a button that does it (trust the key). */
  readonly action: HintAction | null;
}

export interface ListedSchedule {
  readonly schedule: Schedule;
  readonly state: ScheduleState | null;
  readonly nextRun: string | null;
  /** False when no scheduler runs on this state folder: the schedule will not fire. */
  readonly schedulerRunning: boolean;
}

/**
 * Who runs the schedules: this process (`snapkeep serve`, the desktop app), another one (named by
 * its lock: `snapkeep daemon`, pid), or nobody, and then no schedule fires.
 */
export interface SchedulerRunner {
  readonly kind: "here" | "elsewhere" | "none";
  /** "snapkeep daemon", "snapkeep serve", "Snapkeep desktop"; null when none runs. */
  readonly app: string | null;
  readonly pid: number | null;
  readonly hostname: string | null;
  readonly since: string | null;
}

/** A schedule as the editor sends it (add, update and the live preview). */
export type ScheduleDraft = ParamsIn<"schedules.add">;

/** The schedule editor's live preview: nothing is saved. */
export interface DraftPreview {
  readonly description: string;
  readonly nextRuns: readonly string[];
  /** With the id of a schedule being edited: what its new retention would remove today. */
  readonly retention: RetentionResult | null;
  readonly forecast: RetentionForecast;
  /** With a copy off the host: what the target keeps of it after a year. */
  readonly copyForecast: CopyForecast | null;
}

/** An export's manifest.json: what it holds and where it came from. */
export interface ExportManifest {
  readonly format: "snapkeep-export";
  readonly formatVersion: 1;
  readonly id: string;
  readonly createdAt: string;
  readonly source: {
    readonly host: string;
    readonly vm: { readonly name: string; readonly uuid: string };
    readonly snapshot: {
      readonly name: string;
      readonly tag: string;
      readonly kind: string;
      readonly createdAt: string;
      readonly consistency: string | null;
      readonly note: string | null;
    };
  };
  readonly definition: ExportFile;
  readonly disks: readonly (ExportFile & {
    readonly target: string;
    readonly role: "root" | "additional";
    readonly format: "qcow2";
    readonly compression: "zstd" | "zlib" | "none";
    readonly virtualSize: number | null;
    readonly sourcePath: string | null;
    /** An incremental image's backing file, `../<basis>/<disk>.qcow2`. */
    readonly backing?: string | undefined;
    readonly snapshotId?: string | undefined;
    /** Full or incremental, and why. */
    readonly why?: string | undefined;
  })[];
  readonly tools: Readonly<Record<string, string>>;
  /** The export the incremental disks are built on. */
  readonly basis?: string | undefined;
}

export interface ExportFile {
  readonly name: string;
  readonly size: number;
  readonly sha256: string;
}

/** Only a verified export is good; the others say why not. */
export type ExportState = "verified" | "unverified" | "partial" | "corrupt";

export interface ExportEntry {
  readonly id: string;
  /** The VM folder on the target, e.g. web01-1b2c3d4e, and the export's folder under the root. */
  readonly vmFolder: string;
  readonly folder: string;
  readonly state: ExportState;
  /** Why it is not good, in words; null for a verified export. */
  readonly reason: string | null;
  readonly manifest: ExportManifest | null;
  readonly vmName: string;
  readonly vmUuid: string;
  readonly snapshotName: string;
  readonly createdAt: string;
}

/** What removing exports did, or would do (dryRun): merges first, then removals, then what stays. */
export interface ExportRemoval {
  /** Export folders removed (or that would be). */
  readonly removed: readonly string[];
  /** Kept for now: an unverified or unfinished export is built on them. */
  readonly held: readonly { readonly folder: string; readonly reason: string }[];
  /** Kept exports that took in the data of removed ones they were built on. */
  readonly merged: readonly {
    readonly into: string;
    readonly from: readonly string[];
    readonly bytesWritten: number | null;
  }[];
  readonly dryRun: boolean;
}

/** What a prune did, or would do: an ExportRemoval, and the abandoned attempts it cleared. */
export interface ExportPrune extends ExportRemoval {
  readonly kept: readonly string[];
  /**
   * Unfinished exports that a newer verified export of the VM superseded and that nothing wrote to
   * for a day: they would never be resumed, so they go too (with why, in words).
   */
  readonly abandoned: readonly { readonly folder: string; readonly reason: string }[];
  /** Such exports the target could not check or remove: they stay, with why. */
  readonly abandonedKept: readonly { readonly folder: string; readonly reason: string }[];
}

export interface TargetExports {
  readonly target: string;
  readonly exports: readonly ExportEntry[];
  /** Set when the target could not be read; the other targets are still listed. */
  readonly error: string | null;
}

export interface ExportDone {
  readonly target: string;
  readonly id: string;
  readonly folder: string;
  readonly manifest: ExportManifest;
  readonly resumed: boolean;
  /** The earlier export it is built on (streamed) or rsync compared against (--compressed). */
  readonly basis: string | null;
  readonly bytesSent: number;
  /** New data rsync had to send (the rest matched the basis or a resumed partial). */
  readonly literalBytes: number;
  /** Streamed: bytes read from the source images; null for the convert engine. */
  readonly bytesRead: number | null;
  readonly engine: "stream" | "convert";
  /** Each disk full or incremental and why, and why it was not streamed: the job's log. */
  readonly notes: readonly string[];
  /** Older exports the target's keep setting removed. */
  readonly pruned: readonly string[];
}

export interface Verified {
  readonly target: string;
  readonly id: string;
  readonly ok: boolean;
  readonly badFiles: readonly string[];
  /** Where the damaged images differ (byte ranges), for images with chunk hashes. */
  readonly badRanges: readonly { file: string; start: number; end: number }[];
  readonly checkedAt: string;
}

/** What a restored VM's definition keeps from the export, or leaves out, and why. */
export interface DefinitionNote {
  readonly what: string;
  readonly why: string;
}

/** What restoring an export does, checked against its manifest before anything is copied. */
export interface RestorePlan {
  readonly export: string;
  /** True when the export was named by a unique prefix of its id rather than the whole id. */
  readonly byPrefix: boolean;
  readonly host: string;
  readonly mode: "new-vm" | "attach";
  readonly vm: string;
  /** Each disk of the export: where its image goes and the guest target it gets. */
  readonly disks: readonly { readonly from: string; readonly file: string; readonly target: string }[];
  readonly start: boolean;
  /** Bytes the images take on the host, and what is free in their folder. */
  readonly bytes: number;
  readonly freeBytes: number;
  /** A new VM's definition as rebuilt from the export's; null when disks go into a VM that exists. */
  readonly definition: {
    readonly kept: readonly DefinitionNote[];
    readonly dropped: readonly DefinitionNote[];
  } | null;
}

export interface Restored extends RestorePlan {
  /** The new VM's UUID; null when the disks went into a VM that exists. */
  readonly vmUuid: string | null;
}

/** A template or a volume: a standalone image copied from a snapshot's disk, on its host. */
export interface LibraryItem {
  readonly name: string;
  readonly kind: "template" | "volume";
  readonly image: string;
  readonly virtualSize: number | null;
  readonly size: number;
  readonly createdAt: string;
  readonly source: {
    readonly host: string;
    readonly vmName: string;
    readonly vmUuid: string;
    readonly snapshotName: string;
    readonly snapshotTag: string;
    readonly disk: string;
  };
  /** libosinfo's id from the source's definition, e.g. http://debian.org/debian/12. */
  readonly os: string | null;
  /** VMs that use it (cloned from the template, or the volume attached); null: could not be read. */
  readonly usedBy?: readonly string[] | null;
}

export interface Attached {
  readonly vm: string;
  /** The disk target the volume got, e.g. vdb. */
  readonly target: string;
  readonly readonly: boolean;
}

/** A VM made from a template (or, planned, what it would be). */
export interface VmFromTemplate {
  readonly vm: string;
  readonly uuid: string | null;
  readonly disk: string;
  /** A linked clone (an overlay on the template) rather than a full copy. */
  readonly linked: boolean;
  readonly started: boolean;
}

export interface SafetySettings {
  readonly safetyKeep: number;
}

/** The result of each method. */
export interface Results {
  "hosts.list": readonly HostConfig[];
  "hosts.add": AddedHost;
  /** The fingerprint an SSH host offers now, for the person to compare. */
  "hosts.fingerprint": string;
  "hosts.trust": HostConfig;
  "hosts.remove": null;

  "vms.list": readonly ListedHost[];
  "vms.get": VmWithSnapshots;
  /**
   * What deleting each snapshot would free (bytes, summed over its disks and per disk; null where
   * the storage cannot say), each disk's virtual size and size on disk, the VM's total and its
   * oldest restore point. Its own method, not part of vms.get: it reads every qcow2 image's
   * metadata on the host (about a second for 1,000 snapshots on a busy 2-core host, several when
   * hundreds of L2 tables each belong to one snapshot: bench/space.ts), and vms.get runs again
   * after every change; so the snapshot list paints first and the UI fills the sizes in after.
   */
  "vms.space": VmSpace;
  "vms.planCreate": VmFromTemplate;
  "vms.create": JobViewOf<"vm-create">;

  "snapshots.create": Snapshot;
  "snapshots.planDelete": Snapshot;
  "snapshots.delete": Snapshot;
  "snapshots.pin": Snapshot;
  "snapshots.planRevert": RevertResult;
  "snapshots.revert": RevertResult;
  "snapshots.planUndoRevert": RevertResult;
  "snapshots.undoRevert": RevertResult;

  "schedules.list": readonly ListedSchedule[];
  "schedules.add": Schedule;
  "schedules.update": Schedule;
  "schedules.remove": Schedule;
  "schedules.setEnabled": Schedule;
  "schedules.preview": DraftPreview;
  "schedules.pauseAll": SchedulePause;
  "schedules.resumeAll": null;
  /** "Pause all" while it holds, else null. */
  "schedules.pauseState": SchedulePause | null;
  "schedules.runner": SchedulerRunner;

  "targets.list": readonly Target[];
  "targets.add": AddedTarget;
  "targets.fingerprint": string;
  "targets.trust": Target;
  "targets.remove": null;
  "targets.test": TargetTest;

  "exports.list": readonly TargetExports[];
  "exports.start": JobViewOf<"export">;
  "exports.verify": JobViewOf<"verify">;
  "exports.remove": ExportRemoval;
  "exports.prune": ExportPrune;
  "exports.planRestore": RestorePlan;
  "exports.restore": JobViewOf<"restore">;

  /** Takes the appliance's start: seconds under KVM, about 15 s emulated. */
  "files.open": FilesOpened & { readonly session: string };
  "files.list": { readonly path: string; readonly entries: readonly GuestEntry[] };
  /** `url` (on the page's own origin) answers once, within two minutes, with the bytes. */
  "files.download": {
    readonly url: string;
    readonly name: string;
    readonly kind: "file" | "archive";
    readonly size: number | null;
  };
  "files.close": null;
  "drills.list": readonly DrillRecord[];
  "drills.screenshot": { readonly png: string } | null;
  "drills.run": JobViewOf<"drill">;

  "library.list": readonly LibraryItem[];
  "library.planCreate": LibraryItem;
  "library.create": JobViewOf<"template" | "volume">;
  /** The item that would go; refused while a VM uses it. */
  "library.planDelete": LibraryItem;
  "library.delete": LibraryItem;
  "library.attach": Attached;

  "jobs.list": readonly JobView[];
  "jobs.history": History;
  "jobs.cancel": JobView;
  "lab.up": JobViewOf<"lab">;
  "settings.get": SafetySettings;
  "settings.set": SafetySettings;
}

export type Result<M extends Method> = Results[M];

/** The methods that start a job and answer with it at once. */
export type JobMethod = { [M in Method]: Results[M] extends JobView ? M : never }[Method];

/** Who runs the schedules, as the desktop app sees it. */
export type DesktopScheduling =
  | { readonly kind: "here" }
  /** Another process holds the scheduler lock: usually `snapkeep daemon`. */
  | {
      readonly kind: "elsewhere";
      readonly owner: { readonly pid: number; readonly hostname: string; readonly app: string };
    }
  | { readonly kind: "failed"; readonly message: string };

/** A settings file that could not be read, moved aside: where to, why, and the sentence saying so. */
export interface RecoveredFile {
  readonly movedTo: string;
  readonly reason: string;
  readonly message: string;
}

export interface DesktopResults {
  "desktop.status": {
    readonly scheduling: DesktopScheduling;
    /** Set when the settings file was unreadable and moved aside at start. */
    readonly settingsRecovered: RecoveredFile | null;
    /** The same for the desktop app's own settings file. */
    readonly desktopSettingsRecovered: RecoveredFile | null;
    readonly pause: SchedulePause | null;
    readonly autostart: boolean;
  };
  "desktop.autostart": { readonly enabled: boolean };
  "desktop.notifications": NotificationSettings;
  "desktop.secrets": {
    /** An ssh-agent is running (the preferred way to unlock keys). */
    readonly agent: boolean;
    readonly stored: boolean;
    readonly canStore: { readonly allowed: boolean; readonly reason: string | null };
  };
  /** What "desktop.secrets" answers, now that it is stored. */
  "desktop.storeKeyPassphrase": DesktopResults["desktop.secrets"];
  /** What "desktop.secrets" answers, now that it is forgotten. */
  "desktop.forgetKeyPassphrase": DesktopResults["desktop.secrets"];
}

export type DesktopResult<M extends DesktopMethod> = DesktopResults[M];

/** Any method a UI may call: the API's everywhere, the desktop's in the desktop app. */
export type AnyMethod = Method | DesktopMethod;
type AllParamsIn = { [M in Method]: ParamsIn<M> } & { [M in DesktopMethod]: DesktopParamsIn<M> };
type AllResults = Results & DesktopResults;
export type AnyParamsIn<M extends AnyMethod> = AllParamsIn[M];
export type AnyResult<M extends AnyMethod> = AllResults[M];

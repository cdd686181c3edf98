import { z } from "zod";
import { validateLibvirtUri } from "./selection.js";
import { retentionSchema, whenSchema } from "./schedule/spec.js";
import { definitionSummarySchema } from "./definition-summary.js";
import { MAX_BWLIMIT_KIB, MAX_RUNS_PER_COPY } from "./limits.js";
import { drillRecordSchema, MAX_DRILL_RECORDS } from "./drill.js";
import {
  alertChannelSchema,
  heldAlertSchema,
  httpUrl,
  MAX_HELD_ALERTS,
  openProblemSchema,
} from "./alerts.js";

/**
 * The settings file, in one schema: it types the settings and validates every write and everything
 * read back.
 */
export const SETTINGS_VERSION = 1;

const hostName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/,
    "letters, digits, dot, - and _, starting with a letter or digit",
  );

// Checked with the rules `host add` uses: a hand-edited `qemu+ext:///…?command=…` would otherwise
// run a program of the file's choosing at the next `vm list`.
const libvirtUri = z.string().refine(
  (uri) => {
    try {
      validateLibvirtUri(uri);
      return true;
    } catch {
      return false;
    }
  },
  { message: "not a libvirt URI Snapkeep uses (qemu:///system or qemu:///session)" },
);

export const localHostSchema = z.object({
  name: hostName,
  kind: z.literal("local"),
  uri: libvirtUri,
});

/** How an SSH machine is reached and pinned: the same for hypervisor hosts and export targets. */
const sshEndpoint = {
  name: hostName,
  kind: z.literal("ssh"),
  alias: z.string().min(1).optional(),
  host: z.string().min(1).optional(),
  user: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  identityFile: z.string().min(1).optional(),
  hostKey: z
    .string()
    .regex(/^SHA256:[A-Za-z0-9+/]{43}$/)
    .optional(),
};

export const sshHostSchema = z.object({ ...sshEndpoint, uri: libvirtUri });

export const hostSchema = z.discriminatedUnion("kind", [localHostSchema, sshHostSchema]);

/** App-side facts about a snapshot that the qcow2 tag cannot carry. Keyed by snapshotKey(). */
export const annotationSchema = z.object({
  note: z.string().max(2000).nullable(),
  pinned: z.boolean(),
  /** How consistent the snapshot is: crash-consistent, frozen, hooked, frozen+hooked, or vm-off. */
  consistency: z.string().optional(),
  /** The scheduler's job that made it is known to have been interrupted (see the journal). */
  incomplete: z.boolean().optional(),
  /** The VM's definition when the snapshot was taken, to show what a revert does not undo. */
  definition: definitionSummarySchema.optional(),
  /** Verified exports of this snapshot, as "TARGET/EXPORT-ID", newest last (for the timeline). */
  exportedTo: z.array(z.string()).max(100).optional(),
});

const hookSchema = z.object({
  /** Where the command runs: on the hypervisor host, or inside the guest through its agent. */
  where: z.enum(["host", "guest"]),
  argv: z.array(z.string()).min(1),
  timeoutSeconds: z.number().int().min(1).max(3600),
});

export const consistencySchema = z.object({
  /** Freeze the guest's filesystems for the snapshot when its agent answers. */
  freeze: z.boolean(),
  pre: hookSchema.optional(),
  post: hookSchema.optional(),
});

/** A run's snapshot, as a schedule's copy history remembers it (copy/due.ts, SnapshotRef). */
const snapshotRefSchema = z.object({ tag: z.string().max(512), createdAt: z.string() });

/**
 * A schedule's off-host copy (copy/policy.ts): to which target, which runs, what the target keeps
 * of this schedule's copies, and whether local snapshots owed a copy are held until it lands. The
 * file is checked as the CLI checks it (validateCopyPolicy) when a schedule is added or edited.
 */
export const copyPolicySchema = z.object({
  target: hostName,
  cadence: z.discriminatedUnion("every", [
    z.object({ every: z.literal("runs"), n: z.number().int().min(1).max(MAX_RUNS_PER_COPY) }),
    z.object({ every: z.literal("day") }),
    z.object({ every: z.literal("week") }),
  ]),
  retention: retentionSchema,
  holdLocalUntilCopied: z.boolean(),
  /**
   * Restore drills of the copies (issue 19): after a copy lands, it is booted in a throwaway VM
   * when the VM's newest drill is older than this many days, or failed.
   */
  drill: z.object({ everyDays: z.number().int().min(1).max(366) }).optional(),
});

export const scheduleSchema = z.object({
  id: z.string().regex(/^[a-z0-9]{8}$/),
  host: hostName,
  /** The VM by UUID, so a rename does not break the schedule; the name is for display. */
  vmUuid: z.string(),
  vmName: z.string(),
  // A hand-edited "25:00" is reported as a bad settings file, in the sentences the API and the
  // CLI use, instead of failing inside the scheduler.
  when: whenSchema,
  /** Disk targets; absent means every hard disk of the VM at run time. */
  disks: z.array(z.string()).min(1).optional(),
  retention: retentionSchema,
  enabled: z.boolean(),
  note: z.string().max(2000).optional(),
  createdAt: z.string(),
  /** Absent: the schedule's snapshots stay on the host only. */
  copy: copyPolicySchema.optional(),
  /** A monitor's ping address (healthchecks.io, Uptime Kuma): /start, itself, /fail per run. */
  ping: httpUrl.optional(),
});

/** What the scheduler remembers between runs; written by the scheduler only. */
export const scheduleStateSchema = z.object({
  /** The latest scheduled instant that has been served (ISO). Due-ness compares slots, not run times. */
  lastSlot: z.string().optional(),
  lastRunAt: z.string().optional(),
  lastResult: z.enum(["ok", "failed", "cancelled"]).optional(),
  lastError: z.string().optional(),
  failures: z.number().int().min(0),
  nextRetryAt: z.string().optional(),
});

/**
 * What a schedule remembers about its copies (copy/due.ts, CopyHistory) and how the last one went.
 * Kept apart from scheduleState, which the scheduler rewrites after each run: the copy step writes
 * this, so neither writer can undo the other's record.
 */
export const copyStateSchema = z.object({
  lastChosen: snapshotRefSchema.nullable(),
  runsSinceChosen: z.number().int().min(0),
  newestLanded: snapshotRefSchema.nullable(),
  owedSince: snapshotRefSchema.nullable(),
  /** The last copy attempt: when, and how it failed (null when it landed). */
  lastAttempt: z
    .object({
      at: z.string(),
      exportId: z.string().max(128).nullable(),
      failure: z
        .object({
          kind: z.enum(["target-offline", "copy-failed", "verify-failed"]),
          detail: z.string().max(4000).nullable(),
        })
        .nullable(),
    })
    .nullable(),
});

const absolutePath = z
  .string()
  .min(2)
  .max(4096)
  .regex(/^\/[^\0\n]*$/, "an absolute path");

/** Where exports go: a folder on this computer (a disk, a mounted NAS) or a folder on an SSH host. */
export const dirTargetSchema = z.object({
  name: hostName,
  kind: z.literal("dir"),
  path: absolutePath,
  /** Verified exports to keep per VM; absent keeps all. */
  keep: z.number().int().min(1).max(1000).optional(),
  /** KiB/s for scheduled copies to this target (rsync --bwlimit); absent: no limit. */
  bwlimitKiB: z.number().int().min(1).max(MAX_BWLIMIT_KIB).optional(),
});

export const sshTargetSchema = z.object({
  ...sshEndpoint,
  path: absolutePath,
  keep: z.number().int().min(1).max(1000).optional(),
  bwlimitKiB: z.number().int().min(1).max(MAX_BWLIMIT_KIB).optional(),
});

export const targetSchema = z.discriminatedUnion("kind", [dirTargetSchema, sshTargetSchema]);

/**
 * What testing a target found. A missing folder is its own answer, not an error to catch: it is
 * made only when the person asks (a missing folder is usually a disk that is not mounted).
 */
export type TargetTest =
  | {
      readonly target: string;
      readonly state: "missing";
      readonly path: string;
      /** "The folder … does not exist on …; nothing was created." */
      readonly message: string;
      /** What the nearest folder above it is on: the system disk is the sign of a disk not mounted. */
      readonly detail: string;
    }
  | {
      readonly target: string;
      readonly state: "ok";
      readonly path: string;
      /** Made by this test, as asked. */
      readonly created: boolean;
      readonly freeBytes: number;
      readonly rsync: string | null;
      /** Where the file system holding the folder is mounted. */
      readonly mountPoint: string;
      readonly onRootFileSystem: boolean;
      /** Set when the folder is on the file system of `/`, where an unmounted disk leaves its mount point. */
      readonly warning: string | null;
    };

export const managedVmSchema = z.object({
  host: hostName,
  uuid: z.string(),
  name: z.string(),
  createdAt: z.string(),
  /** "template:NAME" or "export:TARGET/ID". */
  from: z.string(),
  /** The image files Snapkeep made for it: the only files deleting the VM removes. */
  files: z.array(z.string()),
});

const instant = z.string().refine((text) => !Number.isNaN(Date.parse(text)), "an ISO date and time");

/**
 * "Pause all schedules": while it holds, no scheduled job starts; `until` null means until resumed.
 * Runs missed meanwhile are not replayed one by one: each schedule's latest missed slot runs once.
 */
export const schedulePauseSchema = z.object({ since: instant, until: instant.nullable() });

/** What the desktop app tells the admin about; each kind can be switched off. */
export const notificationSettingsSchema = z.object({
  jobFailed: z.boolean().default(true),
  vmOverdue: z.boolean().default(true),
  exportVerified: z.boolean().default(true),
});

/**
 * Settings only the desktop app acts on. The app keeps them in a file of its own
 * (electron/lib/desktop-settings.ts builds that file's schema on this one); settings files written
 * before it had one hold them here, under `desktop`, until the app's first start moves them out.
 */
export const desktopSettingsSchema = z.object({
  /** Start (hidden, in the tray) when the user logs in. Off until the user turns it on. */
  autostart: z.boolean().default(false),
  notifications: notificationSettingsSchema.default({
    jobFailed: true,
    vmOverdue: true,
    exportVerified: true,
  }),
  /**
   * An SSH key passphrase encrypted by the OS keyring (Electron safeStorage), base64; never stored
   * in plain text (see electron/lib/secrets.ts for when storing is refused).
   */
  keyPassphrase: z
    .object({
      ciphertext: z
        .string()
        .regex(/^[A-Za-z0-9+/]+={0,2}$/, "base64")
        .max(8192),
      backend: z.string().min(1).max(32),
    })
    .optional(),
});

/** Per-VM consistency settings for manual and scheduled snapshots, keyed by "host/vmUuid". */
export const vmSettingsSchema = z.object({ consistency: consistencySchema });

export const settingsSchema = z.object({
  version: z.literal(SETTINGS_VERSION),
  hosts: z.array(hostSchema),
  annotations: z.record(z.string(), annotationSchema),
  // Added after the first files were written: absent in those, so they default to empty.
  schedules: z.array(scheduleSchema).default([]),
  scheduleState: z.record(z.string(), scheduleStateSchema).default({}),
  copyState: z.record(z.string(), copyStateSchema).default({}),
  vmSettings: z.record(z.string(), vmSettingsSchema).default({}),
  targets: z.array(targetSchema).default([]),
  /** Safety snapshots (taken before each revert) kept per VM; older ones are deleted. */
  safetyKeep: z.number().int().min(1).max(100).default(5),
  /** VMs Snapkeep created (from a template or an export), the only ones `vm delete` removes. */
  managedVms: z.array(managedVmSchema).default([]),
  schedulePause: schedulePauseSchema.nullable().default(null),
  /** Where alerts go (webhook, ntfy); the file is 0600, as these addresses carry tokens. */
  alertChannels: z.array(alertChannelSchema).default([]),
  /** Problems alerted and not recovered yet, by subject: a restart does not alert them again. */
  alertOpen: z.record(z.string(), openProblemSchema).default({}),
  /** Alerts held through a channel's quiet hours, oldest first, sent when they end. */
  alertHeld: z.array(heldAlertSchema).max(MAX_HELD_ALERTS).default([]),
  /** Scheduled jobs since the last weekly digest. */
  alertTally: z
    .object({ since: z.string(), succeeded: z.number().int().min(0), failed: z.number().int().min(0) })
    .nullable()
    .default(null),
  /** Restore drills, newest last (domain/drill.ts); their screenshots are files beside settings. */
  drills: z.array(drillRecordSchema).max(MAX_DRILL_RECORDS).default([]),
  /**
   * Only in files written before the desktop app had its own settings file: still accepted, so
   * those files load, and carried along untouched until the app moves the slice out.
   */
  desktop: desktopSettingsSchema.optional(),
});

export type Settings = z.infer<typeof settingsSchema>;
export type Schedule = z.infer<typeof scheduleSchema>;
export type ScheduleState = z.infer<typeof scheduleStateSchema>;
export type ScheduleCopyState = z.infer<typeof copyStateSchema>;
export type Hook = z.infer<typeof hookSchema>;
export type Consistency = z.infer<typeof consistencySchema>;
export type Annotation = z.infer<typeof annotationSchema>;
export type Target = z.infer<typeof targetSchema>;
export type SshTarget = z.infer<typeof sshTargetSchema>;
export type ManagedVm = z.infer<typeof managedVmSchema>;
export type SchedulePause = z.infer<typeof schedulePauseSchema>;
export type NotificationSettings = z.infer<typeof notificationSettingsSchema>;
export type DesktopSettings = z.infer<typeof desktopSettingsSchema>;

export function emptySettings(): Settings {
  return {
    version: SETTINGS_VERSION,
    hosts: [],
    annotations: {},
    schedules: [],
    scheduleState: {},
    copyState: {},
    vmSettings: {},
    targets: [],
    safetyKeep: 5,
    managedVms: [],
    schedulePause: null,
    alertChannels: [],
    alertOpen: {},
    alertHeld: [],
    alertTally: null,
    drills: [],
  };
}

export function snapshotKey(host: string, vmUuid: string, tag: string): string {
  return `${host}/${vmUuid}/${tag}`;
}

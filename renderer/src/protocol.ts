/**
 * What the API sends, as the renderer sees it. Only plain types from the core's domain module are
 * shared: the renderer never loads Node code.
 */
import type {
  DefinitionChange,
  HostConfig,
  JobProgress,
  JobView,
  RevertResult,
  Snapshot,
  VmWithSnapshots,
} from "../../core/domain/types.js";

export type { DefinitionChange, HostConfig, JobProgress, JobView, RevertResult, Snapshot, VmWithSnapshots };

export interface Rpo {
  readonly level: "unscheduled" | "ok" | "due" | "overdue";
  readonly ageMs: number | null;
  readonly reason: string | null;
}

/** A VM as the list shows it: its snapshots counted, not sent (vm.get brings them). */
export interface ListedVm extends Omit<VmWithSnapshots, "snapshots"> {
  readonly snapshotCount: number;
  readonly lastSnapshotAt: string | null;
  readonly rpo?: Rpo | undefined;
}

export interface HostVms {
  readonly host: string;
  readonly vms: readonly ListedVm[];
  readonly error: string | null;
  readonly hint: string | null;
}

export interface ApiError {
  readonly code: string;
  readonly message: string;
  readonly hint: string | null;
}

export type ApiEvent =
  | { readonly event: "changed"; readonly data: { readonly host: string; readonly vm?: string } }
  | { readonly event: "job"; readonly data: JobView };

export type Weekday = "sunday" | "monday" | "tuesday" | "wednesday" | "thursday" | "friday" | "saturday";

export type When =
  | { readonly every: "daily"; readonly at: string }
  | { readonly every: "weekly"; readonly at: string; readonly weekday: Weekday }
  | { readonly every: "monthly"; readonly at: string; readonly day: number }
  | { readonly every: "cron"; readonly cron: string };

export interface Retention {
  readonly keepLast?: number;
  readonly daily?: number;
  readonly weekly?: number;
  readonly monthly?: number;
}

export interface Schedule {
  readonly id: string;
  readonly host: string;
  readonly vmUuid: string;
  readonly vmName: string;
  readonly when: When;
  readonly disks?: readonly string[];
  readonly retention: Retention;
  readonly enabled: boolean;
  readonly note?: string;
}

export interface ScheduleState {
  readonly lastRunAt?: string;
  readonly lastResult?: "ok" | "failed" | "cancelled";
  readonly lastError?: string;
  readonly failures: number;
}

/** "Pause all schedules" while it holds: since when, and until when (null: until resumed). */
export interface SchedulePause {
  readonly since: string;
  readonly until: string | null;
}

export interface ListedSchedule {
  readonly schedule: Schedule;
  readonly state: ScheduleState | null;
  readonly nextRun: string | null;
}

/** A schedule as the editor sends it (add, update and the live preview). */
export interface ScheduleDraft {
  readonly host: string;
  readonly vm: string;
  readonly when: When;
  readonly retention: Retention;
  readonly disks?: string[];
  readonly note?: string;
}

export interface DraftPreview {
  readonly description: string;
  readonly nextRuns: readonly string[];
  readonly retention: {
    readonly keep: readonly { readonly snapshot: Snapshot; readonly reasons: readonly string[] }[];
    readonly remove: readonly Snapshot[];
  } | null;
  readonly forecast: {
    readonly horizonDays: number;
    readonly runs: number;
    readonly lastRunAt: string | null;
    readonly cutShort: boolean;
    readonly kept: number;
    readonly oldestKeptAt: string | null;
    readonly byRule: Readonly<Record<"latest" | "daily" | "weekly" | "monthly", number>>;
  };
}

export interface Target {
  readonly name: string;
  readonly kind: "dir" | "ssh";
  readonly path: string;
  readonly host?: string;
  readonly user?: string;
  readonly port?: number;
  readonly hostKey?: string;
  readonly keep?: number;
}

export type ExportState = "verified" | "unverified" | "partial" | "corrupt";

export interface ExportEntry {
  readonly id: string;
  readonly state: ExportState;
  readonly reason: string | null;
  readonly vmName: string;
  readonly vmUuid: string;
  readonly snapshotName: string;
  readonly createdAt: string;
  readonly manifest: {
    readonly disks: readonly {
      readonly name: string;
      readonly target: string;
      readonly role: "root" | "additional";
      readonly virtualSize: number | null;
      readonly size: number;
    }[];
  } | null;
}

export interface TargetExports {
  readonly target: string;
  readonly exports: readonly ExportEntry[];
  readonly error: string | null;
}

export interface Artifact {
  readonly name: string;
  readonly kind: "template" | "volume";
  readonly image: string;
  readonly virtualSize: number | null;
  readonly size: number;
  readonly createdAt: string;
  readonly source: {
    readonly host: string;
    readonly vmName: string;
    readonly snapshotName: string;
    readonly disk: string;
  };
  readonly os: string | null;
}

export interface DefinitionNote {
  readonly what: string;
  readonly why: string;
}

export interface ImportPlan {
  readonly export: string;
  readonly byPrefix: boolean;
  readonly host: string;
  readonly mode: "new-vm" | "attach";
  readonly vm: string;
  readonly disks: readonly { readonly from: string; readonly file: string; readonly target: string }[];
  readonly start: boolean;
  readonly bytes: number;
  readonly freeBytes: number;
  readonly definition: {
    readonly kept: readonly DefinitionNote[];
    readonly dropped: readonly DefinitionNote[];
  } | null;
}

export interface RevertOptions {
  readonly disks?: string[];
  readonly stopRunning: boolean;
  readonly force: boolean;
  readonly shutdownTimeoutSeconds: number;
}

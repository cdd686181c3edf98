/**
 * What the API sends, as the renderer sees it. Only plain types from the core's domain module are
 * shared: the renderer never loads Node code.
 */
import type {
  DefinitionChange,
  HostConfig,
  RevertResult,
  Snapshot,
  VmWithSnapshots,
} from "../../core/domain/types.js";

export type { DefinitionChange, HostConfig, RevertResult, Snapshot, VmWithSnapshots };

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

export interface ChangedEvent {
  readonly event: "changed";
  readonly data: { readonly host: string; readonly vm?: string };
}

export interface RevertOptions {
  readonly disks?: string[];
  readonly stopRunning: boolean;
  readonly force: boolean;
  readonly shutdownTimeoutSeconds: number;
}

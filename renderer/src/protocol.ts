/**
 * What the API sends, as the renderer sees it. Only plain types from the core's domain module are
 * shared: the renderer never loads Node code.
 */
import type { HostConfig, Snapshot, VmWithSnapshots } from "../../core/domain/types.js";

export type { HostConfig, Snapshot, VmWithSnapshots };

export interface Rpo {
  readonly level: "unscheduled" | "ok" | "due" | "overdue";
  readonly ageMs: number | null;
  readonly reason: string | null;
}

export interface ListedVm extends VmWithSnapshots {
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

export interface DefinitionChange {
  readonly what: string;
  readonly description: string;
}

/** The answer to a revert or undo, planned (dryRun) or done. */
export interface RevertResult {
  readonly vm: string;
  readonly snapshot: Snapshot;
  readonly disks: readonly string[];
  readonly restarted: boolean;
  readonly needsConsent: boolean;
  readonly dryRun: boolean;
  readonly safety: { readonly name: string; readonly tag: string };
  readonly definitionChanges: readonly DefinitionChange[] | null;
  readonly prunedSafety: readonly string[];
}

export interface RevertOptions {
  readonly disks?: string[];
  readonly stopRunning: boolean;
  readonly force: boolean;
  readonly shutdownTimeoutSeconds: number;
}

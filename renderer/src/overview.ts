/**
 * The overview's rows and the VM list's search: pure, so they are unit-tested and cost little
 * for hundreds of VMs. Problems first: what a person should look at is at the top.
 */
import type { ListedHost, ListedVm, TargetExports } from "../../core/api/contract.js";

/** Whether the newest export of the VM on any target checked out; "unknown" before exports load. */
export type Verified = "yes" | "corrupt" | "unfinished" | "none" | "unknown";

export interface OverviewRow {
  readonly host: string;
  readonly vm: ListedVm;
  /** Space the VM's disk images take on the host now (bytes), beside what the guest sees. */
  /** Null when a disk's size on its storage is not known (an inactive thin LV). */
  readonly usedBytes: number | null;
  readonly virtualBytes: number;
  readonly targets: readonly string[];
  readonly verified: Verified;
  /** The 3-2-1 view: snapshots on the host, a copy off it, that copy verified. */
  readonly onHost: boolean;
  readonly offHost: boolean;
  /** What needs a look, worst first, in words; empty when all is well. */
  readonly problems: readonly string[];
  /** 3 act now, 2 soon, 1 worth knowing, 0 fine. */
  readonly severity: 0 | 1 | 2 | 3;
  /**
   * What "needs attention" means on the overview, for its count and its filter alike: what the VM
   * list's filter says (a point due or overdue, nothing off the host) or a damaged or unfinished
   * newest export (which only the overview knows, from the targets).
   */
  readonly attention: boolean;
  /** When a restore drill last proved it boots (null: never). */
  readonly proven: string | null;
  /** Its newest restore drill failed. */
  readonly drillFailed: boolean;
}

export interface HostProblem {
  readonly host: string;
  readonly error: string;
}

/** The newest export of each VM (by UUID) across targets, once the targets have been read. */
function newestExports(exports: readonly TargetExports[] | null): Map<string, Verified> | null {
  if (exports === null) {
    return null;
  }
  const newest = new Map<string, { at: number; verified: Verified }>();
  for (const target of exports) {
    for (const e of target.exports) {
      const at = Date.parse(e.createdAt);
      const known = newest.get(e.vmUuid);
      if (known === undefined || at > known.at) {
        const verified: Verified =
          e.state === "verified" ? "yes" : e.state === "corrupt" ? "corrupt" : "unfinished";
        newest.set(e.vmUuid, { at, verified });
      }
    }
  }
  return new Map([...newest].map(([uuid, v]) => [uuid, v.verified]));
}

export function overviewRow(
  host: string,
  vm: ListedVm,
  verifiedByUuid: Map<string, Verified> | null,
): OverviewRow {
  const disks = vm.disks.filter((d) => d.device === "disk");
  const targets = vm.offHostCopies?.targets ?? [];
  const verified = verifiedByUuid === null ? "unknown" : (verifiedByUuid.get(vm.uuid) ?? "none");
  const problems: [number, string][] = [];
  if (vm.rpo?.level === "overdue") {
    problems.push([3, `Snapshots overdue${vm.rpo.reason === null ? "" : `: ${vm.rpo.reason}`}`]);
  } else if (vm.rpo?.level === "due") {
    problems.push([2, `Snapshot due${vm.rpo.reason === null ? "" : `: ${vm.rpo.reason}`}`]);
  }
  if (vm.offHost?.level === "overdue") {
    problems.push([
      3,
      `Copy off the host overdue${vm.offHost.reason === null ? "" : `: ${vm.offHost.reason}`}`,
    ]);
  } else if (vm.offHost?.level === "due") {
    problems.push([2, "Copy off the host due"]);
  }
  if (verified === "corrupt") {
    problems.push([3, "Its newest export is damaged: verify it, then export again"]);
  } else if (verified === "unfinished") {
    problems.push([2, "Its newest export is unfinished or not verified yet"]);
  }
  const drillFailed = vm.drill?.failedAt !== null && vm.drill?.failedAt !== undefined;
  if (drillFailed) {
    problems.push([3, `Its last restore drill failed: ${vm.drill?.failure ?? "see the VM's drills"}`]);
  }
  if (vm.snapshotCount === 0) {
    problems.push([1, "No snapshots: nothing to go back to"]);
  } else if (targets.length === 0 && vm.offHost?.level !== "overdue") {
    problems.push([1, "No copy off this host"]);
  }
  problems.sort((a, b) => b[0] - a[0]);
  return {
    host,
    vm,
    // The listing's measure (LVM snapshots' space included) when it has one.
    usedBytes:
      vm.spaceUsedBytes ??
      (disks.some((d) => d.allocatedSize === null)
        ? null
        : disks.reduce((n, d) => n + (d.allocatedSize ?? 0), 0)),
    virtualBytes: disks.reduce((n, d) => n + (d.virtualSize ?? 0), 0),
    targets,
    verified,
    onHost: vm.snapshotCount > 0,
    offHost: targets.length > 0,
    problems: problems.map(([, words]) => words),
    severity: (problems[0]?.[0] ?? 0) as OverviewRow["severity"],
    attention: needsAttention(vm) || verified === "corrupt" || verified === "unfinished" || drillFailed,
    proven: vm.drill?.lastPassedAt ?? null,
    drillFailed,
  };
}

/**
 * Names in a person's order ("web-2" before "web-10"), with one collator: `localeCompare` without
 * one compared the 200-VM overview's names through the locale's rules call by call.
 */
let collator: Intl.Collator | undefined;
export function compareNames(a: string, b: string): number {
  collator ??= new Intl.Collator(undefined, { numeric: true });
  return collator.compare(a, b);
}

/** Every VM of every host that answered, problems first, then by host and name. */
export function overviewRows(
  hosts: readonly ListedHost[],
  exports: readonly TargetExports[] | null,
): { rows: OverviewRow[]; offline: HostProblem[] } {
  const verified = newestExports(exports);
  const rows = hosts.flatMap((h) => h.vms.map((vm) => overviewRow(h.host, vm, verified)));
  rows.sort(
    (a, b) => b.severity - a.severity || compareNames(a.host, b.host) || compareNames(a.vm.name, b.vm.name),
  );
  const offline = hosts.flatMap((h) => (h.error === null ? [] : [{ host: h.host, error: h.error }]));
  return { rows, offline };
}

/** The VM list's and overview's filter: a search text and what to show. */
export interface VmFilter {
  /** Matched against the VM's name and its host, case-insensitively; words must all match. */
  readonly text: string;
  readonly show: "all" | "attention" | "running" | "shut off";
}

/** A VM needs attention when a recovery point is due or overdue, or nothing copies it off the host. */
export function needsAttention(vm: ListedVm): boolean {
  return (
    vm.rpo?.level === "due" ||
    vm.rpo?.level === "overdue" ||
    vm.offHost?.level === "due" ||
    vm.offHost?.level === "overdue" ||
    vm.offHost?.level === "on-host-only"
  );
}

/** The overview's filter: the VM list's, with the row's own idea of attention (see OverviewRow). */
export function rowMatches(row: OverviewRow, filter: VmFilter): boolean {
  if (filter.show === "attention") {
    return row.attention && vmMatches(row.host, row.vm, { ...filter, show: "all" });
  }
  return vmMatches(row.host, row.vm, filter);
}

export function vmMatches(host: string, vm: ListedVm, filter: VmFilter): boolean {
  if (filter.show === "attention" && !needsAttention(vm)) {
    return false;
  }
  if (filter.show === "running" && vm.state !== "running") {
    return false;
  }
  if (filter.show === "shut off" && vm.state === "running") {
    return false;
  }
  const haystack = `${host}/${vm.name}`.toLowerCase();
  return filter.text
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w !== "")
    .every((word) => haystack.includes(word));
}

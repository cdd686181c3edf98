import type { HostConfig, Snapshot, VmWithSnapshots } from "../domain/types.js";
import { spaceUsed, type VmSpace } from "../domain/space.js";
import type { RpoStatus } from "../domain/schedule/due.js";
import type { OffHostRpo } from "../domain/copy/rpo.js";
import { formatBytes } from "../domain/bytes.js";
export { formatBytes };

/** Plain-text tables for people; `--json` output bypasses all of this. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max([...h].length, ...rows.map((r) => [...(r[i] ?? "")].length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + " ".repeat((widths[i] ?? 0) - [...c].length)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

/** Local time to the second: what a person compares with their clock. */
export function formatTime(iso: string): string {
  const d = new Date(iso);
  const pad = (n: number): string => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Names are shown as JSON strings when they hold characters that would garble a table. */
export function displayName(name: string): string {
  return /^[\p{L}\p{N}\p{P}\p{S} ]*$/u.test(name) && name.trim() === name ? name : JSON.stringify(name);
}

export function formatHosts(hosts: readonly HostConfig[]): string {
  return table(
    ["NAME", "KIND", "ADDRESS", "HOST KEY"],
    hosts.map((h) =>
      h.kind === "local"
        ? [h.name, "local", h.uri, "-"]
        : [
            h.name,
            "ssh",
            h.alias ?? `${h.user ?? ""}${h.user ? "@" : ""}${h.host ?? ""}${h.port ? `:${h.port}` : ""}`,
            h.hostKey ?? "NOT TRUSTED",
          ],
    ),
  );
}

export function formatVms(
  vms: readonly (VmWithSnapshots & { readonly rpo: RpoStatus; readonly offHost: OffHostRpo | null })[],
): string {
  return table(
    ["HOST", "VM", "STATE", "DISKS", "ON DISK", "SNAPSHOTS", "NEWEST", "RPO", "OFF-HOST"],
    vms.map((vm) => {
      const newest = vm.snapshots.at(-1);
      return [
        vm.host,
        displayName(vm.name),
        vm.state,
        vm.disks
          .map(
            (d) =>
              `${d.target}${d.role === "root" ? "(root)" : ""}${d.device === "disk" ? ` ${formatBytes(d.virtualSize)}` : ` ${d.device}`}`,
          )
          .join(", "),
        formatBytes(spaceUsed(vm.disks)),
        String(vm.snapshots.length),
        newest === undefined ? "-" : formatTime(newest.createdAt),
        formatRpo(vm.rpo),
        formatOffHost(vm.offHost),
      ];
    }),
  );
}

/**
 * The snapshot table; with a FREES column when what each would free was measured (`snapshot
 * list`), "-" where the storage cannot say.
 */
export function formatSnapshots(snapshots: readonly Snapshot[]): string {
  const measured = snapshots.some((s) => s.freesBytes !== undefined);
  return table(
    ["CREATED", "NAME", "KIND", "DISKS", ...(measured ? ["FREES"] : []), "PINNED", "NOTE"],
    snapshots.map((s) => [
      formatTime(s.createdAt),
      displayName(s.name),
      s.kind + (s.origin === null ? "" : `@${s.origin}`),
      s.disks.map((d) => d.target).join(","),
      ...(measured ? [formatBytes(s.freesBytes ?? null)] : []),
      s.pinned ? "yes" : "",
      s.note === null ? "" : displayName(s.note),
    ]),
  );
}

/** Under the snapshot table: how far back the VM can go, what its disks take, and why a size is unknown. */
export function formatSpace(space: VmSpace): string {
  const disks = space.disks
    .map((d) => `${d.target} ${formatBytes(d.allocatedSize)} of ${formatBytes(d.virtualSize)}`)
    .join(", ");
  const lines = [
    `Oldest restore point: ${space.oldestRestorePoint === null ? "none" : formatTime(space.oldestRestorePoint)}. On disk: ${formatBytes(space.usedBytes)}${disks === "" ? "" : ` (${disks})`}.`,
  ];
  const unknown = space.disks.filter((d) => d.freesUnknownReason !== null);
  if (space.snapshots.length > 0) {
    lines.push(
      `FREES: what deleting that snapshot alone would free${unknown.length === 0 ? "." : `; "-" where the storage cannot say (${unknown.map((d) => `${d.target}: ${d.freesUnknownReason ?? ""}`).join("; ")}).`}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** "ok", "due", "OVERDUE: reason", "this host only"; "-" when nothing is promised. */
export function formatOffHost(rpo: OffHostRpo | null): string {
  switch (rpo?.level) {
    case undefined:
      return "-";
    case "on-host-only":
      return "this host only";
    case "ok":
      return "ok";
    case "due":
      return "due";
    case "overdue":
      return `OVERDUE: ${rpo.reason ?? ""}`;
  }
}

/** "ok", "due", or "OVERDUE: reason"; "-" for a VM without schedules. */
export function formatRpo(rpo: RpoStatus): string {
  switch (rpo.level) {
    case "unscheduled":
      return "-";
    case "ok":
      return "ok";
    case "due":
      return "due";
    case "overdue":
      return `OVERDUE: ${rpo.reason ?? ""}`;
  }
}

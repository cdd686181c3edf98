import { useMemo, useState, type ReactNode } from "react";

import type {
  DrillRecord,
  OffHostRpo,
  RpoStatus,
  Snapshot,
  VmSpace,
  VmWithSnapshots,
} from "../../core/api/contract.js";
import { Timeline } from "./Timeline.js";
import { ZOOMS, type ZoomId } from "./timeline.js";
import { diskRole, formatBytes } from "./format.js";
import { SnapshotTable } from "./SnapshotTable.js";
import { dateTime } from "./when.js";

export function VmDetail({
  vm,
  selectedSnapshot,
  busy,
  onSelectSnapshot,
  onTakeSnapshot,
  onDelete,
  onPin,
  onRevert,
  onExport,
  onAddToLibrary,
  onBrowseFiles,
  onDrill,
  schedules,
  drills,
  drilled,
  rpo,
  offHost,
  space,
}: {
  vm: VmWithSnapshots;
  /** Space on disk and what deleting each snapshot frees; null while it is read. */
  space: VmSpace | null;
  /** The VM's recovery-point status from the list (ok / due / overdue and why). */
  rpo?: RpoStatus | undefined;
  /** Its newest copy off this host against what its schedules promise; null: nothing to judge. */
  offHost?: OffHostRpo | null | undefined;
  selectedSnapshot: string | null;
  busy: string | null;
  onSelectSnapshot: (tag: string | null) => void;
  onTakeSnapshot: () => void;
  onDelete: (tag: string) => void;
  onPin: (tag: string, pinned: boolean) => void;
  /** Opens the revert wizard; null: undo the last revert. */
  onRevert: (snapshot: Snapshot | null) => void;
  onExport: (snapshot: Snapshot) => void;
  /** Opens the wizard that makes a template (root disk) or a volume (data disk) from a snapshot. */
  onAddToLibrary: (snapshot: Snapshot) => void;
  onBrowseFiles: (snapshot: Snapshot) => void;
  onDrill: (snapshot: Snapshot) => void;
  /** The VM's restore drills section (VmDrills), which reads its own records. */
  drills: ReactNode;
  /** The newest drill of each snapshot, by name: its mark in the snapshot list. */
  drilled: ReadonlyMap<string, DrillRecord>;
  /** The VM's schedules section (VmSchedules), which owns its data and editor. */
  schedules: ReactNode;
}) {
  const [zoom, setZoom] = useState<ZoomId>("all");
  const disks = vm.disks.filter((d) => d.device === "disk");
  // One array while the VM's disks are the same: the timeline's layout of a thousand snapshots is
  // computed again only when its inputs change, not on every busy label or job event.
  const lanes = useMemo(() => vm.disks.filter((d) => d.device === "disk").map((d) => d.target), [vm.disks]);
  return (
    <article className="vm-detail" aria-labelledby="vm-title">
      <header className="vm-head">
        <h2 id="vm-title">{vm.name}</h2>
        <span className={`state state-${vm.state.replace(/\s+/g, "-")}`}>{vm.state}</span>
        {rpo !== undefined && rpo.level !== "unscheduled" && (
          <span
            className={`badge rpo-${rpo.level}`}
            role="status"
            title="Recovery point: how old the newest good snapshot is"
          >
            {rpo.level}
            {rpo.reason !== null && <span className="rpo-reason"> — {rpo.reason}</span>}
          </span>
        )}
        {offHost !== undefined && offHost !== null && (
          <span
            className={`badge rpo-${offHost.level === "on-host-only" ? "due" : offHost.level}`}
            role="status"
            aria-label="Off this host"
            title="Off-host recovery point: how old the newest verified copy off this host is"
          >
            {offHostWords(offHost)}
            {offHost.reason !== null && <span className="rpo-reason"> — {offHost.reason}</span>}
          </span>
        )}
        {vm.snapshots.some((s) => s.kind === "safety") && (
          <button
            type="button"
            className="push-right"
            onClick={() => onRevert(null)}
            disabled={busy !== null}
          >
            Undo last revert…
          </button>
        )}
        <button type="button" className="primary" onClick={onTakeSnapshot} disabled={busy !== null}>
          Take snapshot…
        </button>
        {busy !== null && (
          <span className="busy" role="status">
            {busy}…
          </span>
        )}
      </header>
      <SpaceLine vm={vm} space={space} />
      <table className="disks">
        <caption>Disks</caption>
        <thead>
          <tr>
            <th scope="col">Disk</th>
            <th scope="col">Role</th>
            <th scope="col">Size</th>
            <th scope="col">On disk</th>
            <th scope="col">Image</th>
          </tr>
        </thead>
        <tbody>
          {disks.map((d) => {
            // The measured size, once vms.space answers (LVM's COW space included), else the listing's.
            const onDisk = space?.disks.find((x) => x.target === d.target)?.allocatedSize ?? d.allocatedSize;
            return (
              <tr key={d.target}>
                <td>{d.target}</td>
                <td>{diskRole(d.role)}</td>
                <td className="nowrap">{formatBytes(d.virtualSize)}</td>
                <td className="nowrap" title="What the image and its snapshots take on the host now">
                  {onDisk === null ? "unknown" : formatBytes(onDisk)}
                </td>
                <td className="path">{d.source ?? "-"}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {schedules}
      <section aria-labelledby="timeline-title">
        <div className="section-head">
          <h3 id="timeline-title">Snapshots</h3>
          <div className="zoom" role="group" aria-label="Time range">
            {ZOOMS.map((z) => (
              <button key={z.id} type="button" aria-pressed={zoom === z.id} onClick={() => setZoom(z.id)}>
                {z.label}
              </button>
            ))}
          </div>
        </div>
        <Timeline
          disks={lanes}
          snapshots={vm.snapshots}
          zoom={zoom}
          selected={selectedSnapshot}
          onSelect={onSelectSnapshot}
        />
        {vm.snapshots.length === 0 ? (
          <p className="empty">No snapshots yet.</p>
        ) : (
          <SnapshotTable
            snapshots={vm.snapshots}
            selected={selectedSnapshot}
            busy={busy !== null}
            onSelect={onSelectSnapshot}
            onRevert={onRevert}
            onExport={onExport}
            onAddToLibrary={onAddToLibrary}
            onBrowseFiles={onBrowseFiles}
            onDrill={onDrill}
            drilled={drilled}
            onPin={onPin}
            onDelete={onDelete}
            space={space}
          />
        )}
      </section>
      {drills}
    </article>
  );
}

/** "Space used 3.2 GiB on disk · You can go back to Sun, 29 Nov 2026, 02:30 (14 snapshots)". */
function SpaceLine({ vm, space }: { vm: VmWithSnapshots; space: VmSpace | null }) {
  const oldest = space?.oldestRestorePoint ?? vm.snapshots.find((s) => !s.incomplete)?.createdAt ?? null;
  const used = space?.usedBytes ?? null;
  return (
    <p className="space-line" aria-label="Space and restore points">
      {used !== null && <span>Space used {formatBytes(used)} on disk</span>}
      <span>
        {oldest === null
          ? "No restore point yet: take a snapshot to be able to go back."
          : `You can go back to ${dateTime(oldest)} (${vm.snapshots.length} ${vm.snapshots.length === 1 ? "snapshot" : "snapshots"})`}
      </span>
    </p>
  );
}

/** "on this host only", "off-host copy ok (3 h old)", "off-host copy overdue (2 days old)". */
function offHostWords(rpo: OffHostRpo): string {
  if (rpo.level === "on-host-only" || rpo.ageMs === null) {
    return "on this host only";
  }
  const hours = rpo.ageMs / 3_600_000;
  const age =
    hours < 1 ? "under an hour" : hours < 48 ? `${Math.floor(hours)} h` : `${Math.floor(hours / 24)} days`;
  return `off-host copy ${rpo.level} (${age} old)`;
}

import { useMemo, useState, type MouseEvent } from "react";

import type { Snapshot, VmWithSnapshots } from "./protocol.js";
import { Timeline } from "./Timeline.js";
import { ZOOMS, type ZoomId } from "./timeline.js";
import { formatBytes } from "./format.js";
import type { ArtifactKind } from "./ArtifactWizards.js";

const PAGE = 100;

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
  onCopyOut,
}: {
  vm: VmWithSnapshots;
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
  onCopyOut: (snapshot: Snapshot, kind: ArtifactKind) => void;
}) {
  const [zoom, setZoom] = useState<ZoomId>("all");
  // The newest first, a page at a time: a VM with a thousand snapshots stays quick to show.
  const [shown, setShown] = useState(PAGE);
  const newestFirst = useMemo(() => [...vm.snapshots].reverse(), [vm.snapshots]);
  const disks = vm.disks.filter((d) => d.device === "disk");
  // A menu item closes its menu: the next visit to the row starts with the menu shut.
  const choose = (event: MouseEvent<HTMLButtonElement>, action: () => void): void => {
    event.currentTarget.closest("details")?.removeAttribute("open");
    action();
  };
  const roleOf = (s: Snapshot, role: "root" | "additional"): boolean =>
    s.disks.some((d) => disks.find((x) => x.target === d.target)?.role === role);
  return (
    <article className="vm-detail" aria-labelledby="vm-title">
      <header className="vm-head">
        <h2 id="vm-title">{vm.name}</h2>
        <span className={`state state-${vm.state.replace(/\s+/g, "-")}`}>{vm.state}</span>
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
      <table className="disks">
        <caption>Disks</caption>
        <thead>
          <tr>
            <th scope="col">Disk</th>
            <th scope="col">Role</th>
            <th scope="col">Size</th>
            <th scope="col">Image</th>
          </tr>
        </thead>
        <tbody>
          {disks.map((d) => (
            <tr key={d.target}>
              <td>{d.target}</td>
              <td>{d.role}</td>
              <td>{formatBytes(d.virtualSize)}</td>
              <td className="path">{d.source ?? "-"}</td>
            </tr>
          ))}
        </tbody>
      </table>
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
          disks={disks.map((d) => d.target)}
          snapshots={vm.snapshots}
          zoom={zoom}
          selected={selectedSnapshot}
          onSelect={onSelectSnapshot}
        />
        {vm.snapshots.length === 0 ? (
          <p className="empty">No snapshots yet.</p>
        ) : (
          <table className="snapshots">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Kind</th>
                <th scope="col">Taken</th>
                <th scope="col">Disks</th>
                <th scope="col">Note</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {newestFirst.slice(0, shown).map((s) => (
                <tr
                  key={s.tag}
                  className={s.tag === selectedSnapshot ? "selected" : undefined}
                  onClick={() => onSelectSnapshot(s.tag)}
                >
                  <td>
                    {s.name}
                    {s.pinned && <span className="badge pinned-badge">pinned</span>}
                  </td>
                  <td>
                    <span className={`kind kind-${s.kind}`}>{s.kind}</span>
                  </td>
                  <td>{new Date(s.createdAt).toLocaleString()}</td>
                  <td>{s.disks.map((d) => d.target).join(", ")}</td>
                  <td>{s.note ?? ""}</td>
                  <td className="actions">
                    <button type="button" onClick={() => onRevert(s)} disabled={busy !== null}>
                      Revert…
                    </button>
                    <button
                      type="button"
                      onClick={() => onExport(s)}
                      disabled={busy !== null || s.incomplete}
                    >
                      Export…
                    </button>
                    <details className="menu">
                      <summary aria-label={`Copy out ${s.name}`}>Copy out…</summary>
                      <div className="menu-items">
                        {roleOf(s, "root") && (
                          <button
                            type="button"
                            onClick={(e) => choose(e, () => onCopyOut(s, "template"))}
                            disabled={busy !== null}
                          >
                            Make a template (for new VMs)…
                          </button>
                        )}
                        {roleOf(s, "additional") && (
                          <button
                            type="button"
                            onClick={(e) => choose(e, () => onCopyOut(s, "volume"))}
                            disabled={busy !== null}
                          >
                            Make a volume (to attach)…
                          </button>
                        )}
                      </div>
                    </details>
                    <button
                      type="button"
                      onClick={() => onPin(s.tag, !s.pinned)}
                      disabled={busy !== null || s.kind === "foreign"}
                    >
                      {s.pinned ? "Unpin" : "Pin"}
                    </button>
                    <button
                      type="button"
                      className="danger"
                      onClick={() => {
                        if (window.confirm(`Delete snapshot "${s.name}"? Its data is gone afterwards.`)) {
                          onDelete(s.tag);
                        }
                      }}
                      disabled={busy !== null || s.pinned || s.kind === "foreign"}
                    >
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {newestFirst.length > shown && (
          <button type="button" className="more" onClick={() => setShown(shown + PAGE)}>
            Show {Math.min(PAGE, newestFirst.length - shown)} older of {newestFirst.length - shown}
          </button>
        )}
      </section>
    </article>
  );
}

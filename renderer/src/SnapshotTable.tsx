import { useEffect, useMemo } from "react";

import type { Snapshot } from "../../core/api/contract.js";
import { useVirtualRows } from "./virtual.js";
import { TableHead } from "./TableHead.js";

/** One row's height in pixels: fixed, so the table can be windowed (see virtual.ts). */
const ROW = 44;

/**
 * A VM's snapshots, newest first, with what can be done to each. Only the rows in view are
 * rendered: a VM with thousands of snapshots scrolls as lightly as one with ten. Choosing a marker
 * on the timeline scrolls its row into view.
 */
export function SnapshotTable({
  snapshots,
  selected,
  busy,
  onSelect,
  onRevert,
  onExport,
  onAddToLibrary,
  onPin,
  onDelete,
}: {
  snapshots: readonly Snapshot[];
  selected: string | null;
  busy: boolean;
  onSelect: (tag: string) => void;
  onRevert: (snapshot: Snapshot) => void;
  onExport: (snapshot: Snapshot) => void;
  onAddToLibrary: (snapshot: Snapshot) => void;
  onPin: (tag: string, pinned: boolean) => void;
  onDelete: (tag: string) => void;
}) {
  const newestFirst = useMemo(() => [...snapshots].reverse(), [snapshots]);
  const { ref, element, onScroll, range } = useVirtualRows<HTMLDivElement>(newestFirst.length, ROW, 480);
  useEffect(() => {
    const index = newestFirst.findIndex((s) => s.tag === selected);
    const el = element.current;
    if (index === -1 || el === null) {
      return;
    }
    const top = index * ROW;
    // Below the sticky header, and only when the row is not in view already.
    if (top < el.scrollTop || top + ROW > el.scrollTop + el.clientHeight - ROW) {
      el.scrollTop = Math.max(0, top - ROW * 2);
    }
  }, [selected]);
  return (
    <div className="snapshot-scroll" ref={ref} onScroll={onScroll}>
      <table className="snapshots" aria-rowcount={newestFirst.length + 1}>
        <TableHead columns={["Name", "Kind", "Taken", "Disks", "Note"]} />
        <tbody>
          {range.padTop > 0 && <tr aria-hidden="true" style={{ height: range.padTop }} />}
          {newestFirst.slice(range.start, range.end).map((s, i) => (
            <tr
              key={s.tag}
              aria-rowindex={range.start + i + 2}
              className={s.tag === selected ? "selected" : undefined}
              onClick={() => onSelect(s.tag)}
            >
              <td className="clip" title={s.name}>
                {s.name}
                {s.pinned && <span className="badge pinned-badge">pinned</span>}
              </td>
              <td>
                <span className={`kind kind-${s.kind}`}>{s.kind}</span>
              </td>
              <td>{new Date(s.createdAt).toLocaleString()}</td>
              <td>{s.disks.map((d) => d.target).join(", ")}</td>
              <td className="clip" title={s.note ?? undefined}>
                {s.note ?? ""}
              </td>
              <td className="actions">
                <button type="button" onClick={() => onRevert(s)} disabled={busy}>
                  Revert…
                </button>
                <button type="button" onClick={() => onExport(s)} disabled={busy || s.incomplete}>
                  Export…
                </button>
                <button
                  type="button"
                  onClick={() => onAddToLibrary(s)}
                  disabled={busy || s.incomplete}
                  title="Make a template for new VMs or a volume to attach"
                >
                  Add to library…
                </button>
                <button
                  type="button"
                  onClick={() => onPin(s.tag, !s.pinned)}
                  disabled={busy || s.kind === "foreign"}
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
                  disabled={busy || s.pinned || s.kind === "foreign"}
                >
                  Delete
                </button>
              </td>
            </tr>
          ))}
          {range.padBottom > 0 && <tr aria-hidden="true" style={{ height: range.padBottom }} />}
        </tbody>
      </table>
    </div>
  );
}

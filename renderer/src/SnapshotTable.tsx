import { useEffect, useMemo } from "react";

import type { DrillRecord, Snapshot, VmSpace } from "../../core/api/contract.js";
import { useVirtualRows } from "./virtual.js";
import { TableHead } from "./TableHead.js";
import { useConfirm } from "./Confirm.js";
import { RowMenu } from "./RowMenu.js";
import { dateTime } from "./when.js";
import { formatBytes } from "./format.js";

/** "12 MiB"; "…" while it is read; "?" when the storage cannot say (LVM thin). */
function freesText(bytes: number | null | undefined, read: boolean): string {
  if (!read) {
    return "…";
  }
  return bytes === null || bytes === undefined ? "?" : formatBytes(bytes);
}

const INCOMPLETE = "Incomplete: a disk is missing from it";

/** "booted" or "drill failed" beside a snapshot a restore drill booted (or could not). */
function DrillMark({ record }: { record: DrillRecord | undefined }) {
  if (record === undefined) {
    return null;
  }
  const when = dateTime(record.finishedAt);
  return record.passed ? (
    <span
      className="badge drill-ok"
      title={`A restore drill booted it ${when} (${record.bootSeconds ?? "?"} s)`}
    >
      booted
    </span>
  ) : (
    <span className="badge drill-bad" title={`A restore drill failed ${when}: ${record.reason ?? ""}`}>
      drill failed
    </span>
  );
}
const FOREIGN = "Made by another tool: Snapkeep leaves it alone";

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
  onBrowseFiles,
  onDrill,
  drilled,
  onPin,
  onDelete,
  space,
}: {
  snapshots: readonly Snapshot[];
  /** What deleting each snapshot frees, by tag; null while it is read. */
  space: VmSpace | null;
  selected: string | null;
  busy: boolean;
  onSelect: (tag: string) => void;
  onRevert: (snapshot: Snapshot) => void;
  onExport: (snapshot: Snapshot) => void;
  onAddToLibrary: (snapshot: Snapshot) => void;
  onBrowseFiles: (snapshot: Snapshot) => void;
  /** Starts a restore drill of the snapshot (asked first). */
  onDrill: (snapshot: Snapshot) => void;
  /** The newest drill of each snapshot, by name. */
  drilled: ReadonlyMap<string, DrillRecord>;
  onPin: (tag: string, pinned: boolean) => void;
  onDelete: (tag: string) => void;
}) {
  const { dialog, ask } = useConfirm();
  const confirmDelete = async (s: Snapshot): Promise<void> => {
    const yes = await ask({
      title: `Delete snapshot ${s.name}?`,
      body: (
        <p>
          Taken {dateTime(s.createdAt)} on {s.disks.map((d) => d.target).join(", ")}. The VM can no longer go
          back to it; exports already made of it stay where they are.
        </p>
      ),
      action: "Delete snapshot",
      danger: true,
    });
    if (yes) {
      onDelete(s.tag);
    }
  };
  const confirmDrill = async (s: Snapshot): Promise<void> => {
    const yes = await ask({
      title: `Restore drill of snapshot ${s.name}?`,
      body: (
        <p>
          Its disks are copied into a throwaway VM on this host, on a network of its own with no way out, and
          booted. It passes when the guest agent answers (within 10 minutes). A console screenshot is kept;
          the throwaway VM, its network and its copies are removed after. The VM itself is not touched.
        </p>
      ),
      action: "Start the drill",
    });
    if (yes) {
      onDrill(s);
    }
  };
  const frees = useMemo(() => new Map((space?.snapshots ?? []).map((x) => [x.tag, x.freesBytes])), [space]);
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
      {dialog}
      <table className="snapshots" aria-rowcount={newestFirst.length + 1}>
        <TableHead columns={["Name", "Kind", "Taken", "Disks", "Frees", "Note"]} />
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
                <DrillMark record={drilled.get(s.name)} />
              </td>
              <td>
                <span className={`kind kind-${s.kind}`}>{s.kind}</span>
              </td>
              <td className="nowrap">{dateTime(s.createdAt)}</td>
              <td>{s.disks.map((d) => d.target).join(", ")}</td>
              <td className="nowrap frees" title="What deleting this snapshot alone would free on the host">
                {freesText(frees.get(s.tag), space !== null)}
              </td>
              <td className="clip" title={s.note ?? undefined}>
                {s.note ?? ""}
              </td>
              <td className="actions">
                <button type="button" onClick={() => onRevert(s)} disabled={busy}>
                  Revert…
                </button>
                <RowMenu
                  label={`Actions for ${s.name}`}
                  items={[
                    {
                      label: "Export…",
                      onSelect: () => onExport(s),
                      disabled: busy || s.incomplete,
                      why: INCOMPLETE,
                    },
                    {
                      label: "Browse files…",
                      onSelect: () => onBrowseFiles(s),
                      disabled: s.incomplete,
                      why: INCOMPLETE,
                    },
                    {
                      label: "Restore drill…",
                      onSelect: () => void confirmDrill(s),
                      disabled: busy || s.incomplete,
                      why: INCOMPLETE,
                    },
                    {
                      label: "Add to library…",
                      onSelect: () => onAddToLibrary(s),
                      disabled: busy || s.incomplete,
                      why: INCOMPLETE,
                    },
                    {
                      label: s.pinned ? "Unpin" : "Pin",
                      onSelect: () => onPin(s.tag, !s.pinned),
                      disabled: busy || s.kind === "foreign",
                      why: FOREIGN,
                    },
                    {
                      label: "Delete…",
                      danger: true,
                      onSelect: () => void confirmDelete(s),
                      disabled: busy || s.pinned || s.kind === "foreign",
                      why: s.pinned ? "Pinned: unpin it first" : FOREIGN,
                    },
                  ]}
                />
              </td>
            </tr>
          ))}
          {range.padBottom > 0 && <tr aria-hidden="true" style={{ height: range.padBottom }} />}
        </tbody>
      </table>
    </div>
  );
}

import { useEffect, useMemo } from "react";
import { useStore } from "zustand";

import type { AppStore } from "./store.js";
import { formatBytes } from "./format.js";
import { FirstRun } from "./FirstRun.js";
import { overviewRows, rowMatches, type OverviewRow } from "./overview.js";
import { VmFilterBar } from "./VmFilterBar.js";
import { useVirtualRows } from "./virtual.js";
import { ago, dateTime } from "./when.js";

/**
 * The first page: every VM on every host, problems first, with what a person asks of a backup
 * tool at a glance: how old the newest restore point is, here and off the host, how much space the
 * VM takes, and whether the 3-2-1 idea holds (copies on the host, off it, and verified).
 */
/** One row's height in pixels (two lines of name, one of problem): fixed, for the windowing. */
const ROW = 68;

export function OverviewView({ store }: { store: AppStore }) {
  const state = useStore(store);
  const filter = state.vmFilter;
  const setFilter = state.setVmFilter;
  // The exports on the targets tell whether each VM's newest copy checked out; reading them can
  // take a while (SSH targets), so the page shows at once and fills that column in when they come.
  useEffect(() => {
    void store.getState().loadExportsQuietly();
  }, [store]);
  const { rows, offline } = useMemo(
    () => overviewRows(state.hosts, state.exportsLoaded ? state.exports : null),
    [state.hosts, state.exports, state.exportsLoaded],
  );
  const shown = rows.filter((r) => rowMatches(r, filter));
  // Windowed, as the VM list: 200 VMs cost what a screenful costs (rendering every row took the
  // first page a second); rows have one height so the scrollbar is true.
  const { ref, onScroll, range } = useVirtualRows<HTMLDivElement>(shown.length, ROW, 640);
  const attention = rows.filter((r) => r.attention).length;
  const protectedCount = rows.filter((r) => r.onHost && r.offHost).length;
  const used = rows.reduce((n, r) => n + (r.usedBytes ?? 0), 0);
  // A disk whose size its storage does not say makes the total a lower bound, said so.
  const usedUnknown = rows.some((r) => r.usedBytes === null);
  const now = Date.now();
  // Nothing to list yet (no hosts, or hosts without VMs): the first-run panel says how to start,
  // as the VM list does; a page of zeros would not.
  if (rows.length === 0 && offline.length === 0) {
    return (
      <section className="page overview" aria-labelledby="overview-title">
        <h2 id="overview-title" className="sr-only">
          Overview
        </h2>
        {state.loading || !state.connected ? <p className="empty">Loading…</p> : <FirstRun store={store} />}
      </section>
    );
  }
  const open = (row: OverviewRow): void => {
    state.show("vms");
    void state.select({ host: row.host, vm: row.vm.name });
  };
  return (
    <section className="page overview" aria-labelledby="overview-title">
      <div className="page-head">
        <h2 id="overview-title">Overview</h2>
      </div>
      <ul className="summary-cards" aria-label="Summary">
        <li>
          <strong>{rows.length}</strong> VMs on {state.hosts.length}{" "}
          {state.hosts.length === 1 ? "host" : "hosts"}
        </li>
        <li className={attention > 0 ? "bad" : "good"}>
          <strong>{attention}</strong> {attention === 1 ? "needs" : "need"} attention
        </li>
        <li className={protectedCount === rows.length ? "good" : undefined}>
          <strong>{protectedCount}</strong> with a copy off the host
        </li>
        <li>
          <strong>
            {usedUnknown ? "at least " : ""}
            {formatBytes(used)}
          </strong>{" "}
          of disk images
        </li>
      </ul>
      {offline.map((h) => (
        <p key={h.host} className="host-down" role="alert">
          Host {h.host} did not answer: {h.error}
        </p>
      ))}
      <VmFilterBar filter={filter} onChange={setFilter} count={shown.length} total={rows.length} />
      {rows.length === 0 ? (
        <p className="empty">
          {state.loading
            ? "Loading…"
            : "No VMs yet. Add a host in Settings, or see Virtual machines to start."}
        </p>
      ) : (
        <div className="overview-scroll" ref={ref} onScroll={onScroll} data-rows={shown.length}>
          <table className="overview-table" aria-rowcount={shown.length + 1}>
            <colgroup>
              <col className="c-vm" />
              <col className="c-state" />
              <col className="c-snap" />
              <col className="c-copy" />
              <col className="c-space" />
              <col className="c-trio" />
            </colgroup>
            <thead>
              <tr>
                <th scope="col">VM</th>
                <th scope="col">State</th>
                <th scope="col">Newest snapshot</th>
                <th scope="col">Newest copy off the host</th>
                <th scope="col">Space used</th>
                <th scope="col">3-2-1</th>
              </tr>
            </thead>
            <tbody>
              {range.padTop > 0 && <tr aria-hidden="true" style={{ height: range.padTop }} />}
              {shown.slice(range.start, range.end).map((r) => (
                <OverviewLine key={`${r.host}/${r.vm.uuid}`} row={r} now={now} onOpen={() => open(r)} />
              ))}
              {range.padBottom > 0 && <tr aria-hidden="true" style={{ height: range.padBottom }} />}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function OverviewLine({ row, now, onOpen }: { row: OverviewRow; now: number; onOpen: () => void }) {
  const { vm } = row;
  const copyAt = vm.offHostCopies?.newestAt ?? null;
  const offHostLate = vm.offHost?.level === "due" || vm.offHost?.level === "overdue";
  return (
    <tr className={`severity-${row.severity}`} data-vm={vm.name} data-host={row.host}>
      <td className="vm-cell">
        <button type="button" className="vm-link" onClick={onOpen}>
          {vm.name}
        </button>
        <span className="sub" title={row.problems.length > 0 ? row.problems.join("\n") : undefined}>
          <span className="muted">on {row.host}</span>
          {row.problems.length > 0 && (
            <span className="problem">
              {" · "}
              {row.problems[0]}
              {row.problems.length > 1 && ` (+${row.problems.length - 1})`}
            </span>
          )}
        </span>
      </td>
      <td>
        <span className={`state state-${vm.state.replace(/\s+/g, "-")}`}>{vm.state}</span>
      </td>
      <td className="nowrap" title={vm.lastSnapshotAt === null ? undefined : dateTime(vm.lastSnapshotAt)}>
        {vm.lastSnapshotAt === null ? "none" : ago(vm.lastSnapshotAt, now)}
        {vm.rpo !== undefined && vm.rpo.level !== "unscheduled" && vm.rpo.level !== "ok" && (
          <span className={`badge rpo-${vm.rpo.level}`}>{vm.rpo.level}</span>
        )}
        <span
          className="sub muted"
          title={
            vm.oldestSnapshotAt === null ? undefined : `You can go back to ${dateTime(vm.oldestSnapshotAt)}`
          }
        >
          {vm.snapshotCount} {vm.snapshotCount === 1 ? "snapshot" : "snapshots"}
          {vm.oldestSnapshotAt !== null &&
            vm.snapshotCount > 1 &&
            `, oldest ${ago(vm.oldestSnapshotAt, now)}`}
        </span>
      </td>
      <td className="nowrap" title={copyAt === null ? undefined : dateTime(copyAt)}>
        {copyAt === null ? "none" : ago(copyAt, now)}
        {offHostLate && <span className={`badge rpo-${vm.offHost?.level ?? ""}`}>{vm.offHost?.level}</span>}
        {row.targets.length > 0 && <span className="sub muted">on {row.targets.join(", ")}</span>}
      </td>
      <td
        className="nowrap"
        title={
          row.usedBytes === null
            ? "The storage does not say how much these disks take (an inactive thin LV)"
            : `Disk images take ${formatBytes(row.usedBytes)} of ${formatBytes(row.virtualBytes)}`
        }
      >
        {row.usedBytes === null ? "?" : formatBytes(row.usedBytes)}{" "}
        <span className="muted">of {formatBytes(row.virtualBytes)}</span>
      </td>
      <td>
        <Trio row={row} />
        <span className="sub muted" title={row.proven === null ? undefined : dateTime(row.proven)}>
          {row.drillFailed
            ? "last drill failed"
            : row.proven === null
              ? "never drilled"
              : `proven restorable ${ago(row.proven, now)}`}
        </span>
      </td>
    </tr>
  );
}

/** Four marks: snapshots on the host, a copy off it, that copy verified, a drill that booted it. */
function Trio({ row }: { row: OverviewRow }) {
  const verified =
    row.verified === "yes"
      ? { mark: "ok", words: "its newest export is verified" }
      : row.verified === "corrupt"
        ? { mark: "bad", words: "its newest export is damaged" }
        : row.verified === "unknown"
          ? { mark: "wait", words: "the targets are still being read" }
          : row.verified === "unfinished"
            ? { mark: "bad", words: "its newest export is unfinished or unverified" }
            : { mark: "no", words: "no export found on the targets" };
  const boots = row.drillFailed
    ? { mark: "bad", words: "its last restore drill failed" }
    : row.proven !== null
      ? { mark: "ok", words: "a restore drill proved it boots" }
      : { mark: "no", words: "no restore drill yet" };
  const label = [
    row.onHost ? `${row.vm.snapshotCount} snapshots on the host` : "no snapshots on the host",
    row.offHost ? `copies on ${row.targets.join(", ")}` : "no copy off the host",
    verified.words,
    boots.words,
  ].join("; ");
  return (
    <span className="trio" role="img" aria-label={label} title={label}>
      <span className={`seg ${row.onHost ? "ok" : "no"}`}>host</span>
      <span className={`seg ${row.offHost ? "ok" : "no"}`}>off-host</span>
      <span className={`seg ${verified.mark}`}>verified</span>
      <span className={`seg ${boots.mark}`}>boots</span>
    </span>
  );
}

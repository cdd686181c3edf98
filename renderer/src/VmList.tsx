import { useMemo, type KeyboardEvent, type ReactNode } from "react";

import type { ListedHost, ListedVm } from "../../core/api/contract.js";
import type { Selected } from "./store.js";
import { useVirtualRows } from "./virtual.js";
import { vmMatches, type VmFilter } from "./overview.js";
import { VmFilterBar } from "./VmFilterBar.js";

function rpoBadge(vm: ListedVm) {
  const rpo = vm.rpo;
  // Only what needs a look: an "ok" on every row is noise, and room the name and facts need.
  if (rpo === undefined || rpo.level === "unscheduled" || rpo.level === "ok") {
    return null;
  }
  return (
    <span className={`badge rpo-${rpo.level}`} title={rpo.reason ?? undefined}>
      {rpo.level === "overdue" ? "overdue" : rpo.level}
    </span>
  );
}

/** Only what needs a look: nothing copies the VM off the host, or its copy is overdue. */
function offHostBadge(vm: ListedVm) {
  const offHost = vm.offHost;
  if (offHost === undefined || offHost === null) {
    return null;
  }
  if (offHost.level === "on-host-only") {
    return (
      <span className="badge rpo-due" title={offHost.reason ?? "no copy off this host"}>
        host only
      </span>
    );
  }
  return offHost.level === "overdue" ? (
    <span className="badge rpo-overdue" title={offHost.reason ?? undefined}>
      copy overdue
    </span>
  ) : null;
}

export function VmList({
  hosts,
  selected,
  onSelect,
  firstRun,
  filter,
  onFilter,
}: {
  /** The search and filter, kept by the store across views. */
  filter: VmFilter;
  onFilter: (filter: VmFilter) => void;
  hosts: readonly ListedHost[];
  selected: Selected | null;
  onSelect: (selected: Selected) => void;
  /** Shown when there is no VM to list (no hosts, or hosts without VMs): how to get some. */
  firstRun: ReactNode;
}) {
  const rows = useMemo(() => listRows(hosts, filter), [hosts, filter]);
  const { ref, element, onScroll, range } = useVirtualRows<HTMLDivElement>(rows.length, ROW, 720);
  if (hosts.length === 0) {
    return firstRun;
  }
  const vmCount = rows.filter((r) => r.kind === "vm").length;
  const total = hosts.reduce((n, h) => n + h.vms.length, 0);
  const focusVm = (from: Element | null, by: number): void => {
    const buttons = [...(element.current?.querySelectorAll<HTMLButtonElement>("button.vm") ?? [])];
    const index = from === null ? -1 : buttons.indexOf(from as HTMLButtonElement);
    const next = buttons[Math.min(buttons.length - 1, Math.max(0, index + by))];
    next?.focus();
    next?.scrollIntoView({ block: "nearest" });
  };
  const arrows = (e: KeyboardEvent<HTMLUListElement>): void => {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      focusVm(document.activeElement, e.key === "ArrowDown" ? 1 : -1);
    }
  };
  return (
    <>
      <VmFilterBar
        filter={filter}
        onChange={onFilter}
        count={vmCount}
        total={total}
        compact
        onFirst={() => focusVm(null, 0)}
      />
      <div className="vm-scroll" ref={ref} onScroll={onScroll} data-vms={vmCount}>
        <ul className="vm-rows" onKeyDown={arrows}>
          {range.padTop > 0 && <li aria-hidden="true" style={{ height: range.padTop }} />}
          {rows.slice(range.start, range.end).map((row) => {
            if (row.kind === "host") {
              return (
                <li key={`host/${row.host.host}`} className="row host-row" data-host={row.host.host}>
                  <h2>
                    {row.host.host}{" "}
                    <span
                      className={row.host.error === null ? "dot online" : "dot offline"}
                      aria-label={row.host.error === null ? "online" : "offline"}
                    />
                  </h2>
                </li>
              );
            }
            if (row.kind === "error") {
              return (
                <li
                  key={`error/${row.host.host}`}
                  data-host={row.host.host}
                  className="row host-error"
                  title={row.host.error ?? undefined}
                >
                  {row.host.error}
                </li>
              );
            }
            const { host, vm } = row;
            const current = selected?.host === host && selected.vm === vm.name;
            return (
              <li key={`${host}/${vm.uuid}`} className="row" data-host={host}>
                <button
                  type="button"
                  className={current ? "vm current" : "vm"}
                  aria-current={current ? "true" : undefined}
                  onClick={() => onSelect({ host, vm: vm.name })}
                >
                  {/* The name has a line of its own: badges never cut it short. */}
                  <span className="vm-name" title={vm.name}>
                    {vm.name}
                  </span>
                  <span className="vm-facts">
                    <span className={`state state-${vm.state.replace(/\s+/g, "-")}`}>{vm.state}</span>
                    <span className="count" title="snapshots">
                      {vm.snapshotCount} {vm.snapshotCount === 1 ? "snapshot" : "snapshots"}
                    </span>
                    {rpoBadge(vm)}
                    {offHostBadge(vm)}
                  </span>
                </button>
              </li>
            );
          })}
          {range.padBottom > 0 && <li aria-hidden="true" style={{ height: range.padBottom }} />}
        </ul>
        {vmCount === 0 && total > 0 && <p className="empty">No VM matches.</p>}
        {hosts.every((h) => h.vms.length === 0 && h.error === null) && firstRun}
      </div>
    </>
  );
}

/** One row's height: host headings, errors and VMs share it, so the list can be windowed. */
const ROW = 52;

type Row =
  | { readonly kind: "host"; readonly host: ListedHost }
  | { readonly kind: "error"; readonly host: ListedHost }
  | { readonly kind: "vm"; readonly host: string; readonly vm: ListedVm };

/**
 * Hosts and their VMs as one flat list of rows, in the order they show. With a filter, a host
 * without a matching VM is left out unless it has an error to show.
 */
function listRows(hosts: readonly ListedHost[], filter: VmFilter): Row[] {
  const filtering = filter.text.trim() !== "" || filter.show !== "all";
  return hosts.flatMap((host): Row[] => {
    const vms = host.vms.filter((vm) => vmMatches(host.host, vm, filter));
    if (filtering && vms.length === 0 && host.error === null) {
      return [];
    }
    return [
      { kind: "host", host },
      ...(host.error === null ? [] : [{ kind: "error" as const, host }]),
      ...vms.map((vm) => ({ kind: "vm" as const, host: host.host, vm })),
    ];
  });
}

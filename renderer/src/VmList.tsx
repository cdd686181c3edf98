import type { ReactNode } from "react";

import type { HostVms, ListedVm } from "./protocol.js";
import type { Selected } from "./store.js";

function rpoBadge(vm: ListedVm) {
  const rpo = vm.rpo;
  if (rpo === undefined || rpo.level === "unscheduled") {
    return null;
  }
  return (
    <span className={`badge rpo-${rpo.level}`} title={rpo.reason ?? undefined}>
      {rpo.level === "overdue" ? "overdue" : rpo.level}
    </span>
  );
}

export function VmList({
  hosts,
  selected,
  onSelect,
  firstRun,
}: {
  hosts: readonly HostVms[];
  selected: Selected | null;
  onSelect: (selected: Selected) => void;
  /** Shown when there is no VM to list (no hosts, or hosts without VMs): how to get some. */
  firstRun: ReactNode;
}) {
  if (hosts.length === 0) {
    return firstRun;
  }
  return (
    <ul className="hosts">
      {hosts.map((host) => (
        <li key={host.host}>
          <h2>
            {host.host}{" "}
            <span
              className={host.error === null ? "dot online" : "dot offline"}
              aria-label={host.error === null ? "online" : "offline"}
            />
          </h2>
          {host.error !== null && <p className="host-error">{host.error}</p>}
          <ul className="vms">
            {host.vms.map((vm) => {
              const current = selected?.host === host.host && selected.vm === vm.name;
              return (
                <li key={vm.uuid}>
                  <button
                    type="button"
                    className={current ? "vm current" : "vm"}
                    aria-current={current ? "true" : undefined}
                    onClick={() => onSelect({ host: host.host, vm: vm.name })}
                  >
                    <span className={`state state-${vm.state.replace(/\s+/g, "-")}`}>{vm.state}</span>
                    <span className="vm-name">{vm.name}</span>
                    <span className="count" title="snapshots">
                      {vm.snapshotCount}
                    </span>
                    {rpoBadge(vm)}
                  </button>
                </li>
              );
            })}
          </ul>
        </li>
      ))}
      {hosts.every((h) => h.vms.length === 0 && h.error === null) && <li>{firstRun}</li>}
    </ul>
  );
}

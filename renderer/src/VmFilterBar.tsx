import { useId, type KeyboardEvent } from "react";

import type { VmFilter } from "./overview.js";

/**
 * Search by name or host, and what to show (all, needs attention, running, not running): the VM
 * list and the overview share it. "/" anywhere on the page jumps to the search (the key other
 * admin tools use); Escape clears it; ArrowDown or Enter go to the first VM shown (`onFirst`).
 */
export function VmFilterBar({
  filter,
  onChange,
  count,
  total,
  onFirst,
  compact = false,
}: {
  filter: VmFilter;
  onChange: (filter: VmFilter) => void;
  count: number;
  total: number;
  onFirst?: () => void;
  /** In the sidebar: the two controls stacked, the count below. */
  compact?: boolean;
}) {
  const id = useId();
  const keys = (e: KeyboardEvent<HTMLInputElement>): void => {
    if (e.key === "Escape" && filter.text !== "") {
      e.preventDefault();
      onChange({ ...filter, text: "" });
    } else if ((e.key === "ArrowDown" || e.key === "Enter") && onFirst !== undefined) {
      e.preventDefault();
      onFirst();
    }
  };
  return (
    <div className={compact ? "vm-filter compact" : "vm-filter"} role="search">
      <label htmlFor={`${id}-q`} className="sr-only">
        Search VMs
      </label>
      <input
        id={`${id}-q`}
        type="search"
        className="vm-search"
        placeholder="Search VMs or hosts  ( / )"
        value={filter.text}
        onChange={(e) => onChange({ ...filter, text: e.target.value })}
        onKeyDown={keys}
        autoComplete="off"
        spellCheck={false}
      />
      <label htmlFor={`${id}-show`} className="sr-only">
        Show
      </label>
      <select
        id={`${id}-show`}
        value={filter.show}
        onChange={(e) => onChange({ ...filter, show: e.target.value as VmFilter["show"] })}
      >
        <option value="all">All VMs</option>
        <option value="attention">Needs attention</option>
        <option value="running">Running</option>
        <option value="shut off">Not running</option>
      </select>
      <span className="muted filter-count" role="status">
        {count === total ? `${total} VMs` : `${count} of ${total} VMs`}
      </span>
    </div>
  );
}

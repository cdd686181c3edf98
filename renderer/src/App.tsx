import { useEffect, useState } from "react";
import { useStore } from "zustand";

import type { AppStore, View } from "./store.js";
import type { Snapshot } from "./protocol.js";
import { RevertWizard } from "./RevertWizard.js";
import { SnapshotDialog } from "./SnapshotDialog.js";
import { VmDetail } from "./VmDetail.js";
import { VmList } from "./VmList.js";
import { ErrorBox } from "./ErrorBox.js";
import { FirstRun } from "./FirstRun.js";
import { SchedulesView } from "./SchedulesView.js";
import { SettingsView } from "./SettingsView.js";
import { VmSchedules } from "./VmSchedules.js";

/** The views in the top bar, in order. */
const NAV: readonly { view: View; label: string }[] = [
  { view: "vms", label: "Virtual machines" },
  { view: "schedules", label: "Schedules" },
  { view: "settings", label: "Settings" },
];

export function App({ store }: { store: AppStore }) {
  const state = useStore(store);
  const [dialog, setDialog] = useState(false);
  // The revert wizard: a snapshot to revert to, "undo" for the last revert, or closed.
  const [revert, setRevert] = useState<{ snapshot: Snapshot | null; key: number } | null>(null);
  useEffect(() => {
    void store.getState().refresh();
  }, [store]);

  return (
    <div className="app">
      <header className="topbar">
        <h1>Snapkeep</h1>
        <nav className="views" aria-label="Views">
          {NAV.map((n) => (
            <button
              key={n.view}
              type="button"
              aria-current={state.view === n.view ? "page" : undefined}
              onClick={() => state.show(n.view)}
            >
              {n.label}
            </button>
          ))}
        </nav>
        <span className={state.connected ? "link ok" : "link down"} role="status">
          {state.connected ? "connected" : "not connected"}
        </span>
        <button type="button" onClick={() => void state.refresh()} disabled={state.loading}>
          {state.loading ? "Refreshing…" : "Refresh"}
        </button>
      </header>
      {state.error !== null && !dialog && revert === null && (
        <ErrorBox error={state.error} onDismiss={() => state.dismissError()} />
      )}
      {state.view === "vms" && (
        <div className="panes">
          <nav className="sidebar" aria-label="Hosts and VMs">
            <VmList
              hosts={state.hosts}
              selected={state.selected}
              onSelect={(s) => void state.select(s)}
              firstRun={state.loading || !state.connected ? null : <FirstRun store={store} />}
            />
          </nav>
          <main className="detail">
            {state.vm === null ? (
              <p className="empty">
                {state.selected !== null
                  ? "Loading…"
                  : state.hosts.some((h) => h.vms.length > 0)
                    ? "Choose a VM on the left."
                    : ""}
              </p>
            ) : (
              <VmDetail
                vm={state.vm}
                selectedSnapshot={state.selectedSnapshot}
                busy={state.busy}
                onSelectSnapshot={(tag) => state.selectSnapshot(tag)}
                onTakeSnapshot={() => setDialog(true)}
                onDelete={(tag) => void state.deleteSnapshot(tag)}
                onPin={(tag, pinned) => void state.setPinned(tag, pinned)}
                onRevert={(snapshot) => {
                  state.dismissError();
                  setRevert({ snapshot, key: Date.now() });
                }}
                schedules={<VmSchedules store={store} vm={state.vm} />}
              />
            )}
          </main>
        </div>
      )}
      {state.view === "schedules" && <SchedulesView store={store} />}
      {state.view === "settings" && <SettingsView store={store} />}
      {revert !== null && state.vm !== null && (
        <RevertWizard
          key={revert.key}
          vm={state.vm}
          snapshot={revert.snapshot}
          busy={state.busy}
          error={state.error}
          onPlan={(options, dryRun) => state.revert(revert.snapshot?.tag ?? null, options, dryRun)}
          onClose={() => {
            state.dismissError();
            setRevert(null);
          }}
          onUndo={() => setRevert({ snapshot: null, key: Date.now() })}
        />
      )}
      {dialog && state.vm !== null && (
        <SnapshotDialog
          vm={state.vm}
          busy={state.busy !== null}
          error={state.error}
          onCancel={() => setDialog(false)}
          onCreate={async (request) => {
            if (await state.createSnapshot(request)) {
              setDialog(false);
            }
          }}
        />
      )}
    </div>
  );
}

import { useEffect, useState } from "react";
import { useStore } from "zustand";

import type { DrillRecord, ExportEntry, LibraryItem, Snapshot } from "../../core/api/contract.js";
import type { AppState, AppStore, View } from "./store.js";
import { AddToLibraryWizard, AttachVolumeWizard, NewVmWizard } from "./LibraryWizards.js";
import { ErrorBox } from "./ErrorBox.js";
import { useConfirm } from "./Confirm.js";
import { ExportsView, RestoreWizard } from "./ExportsView.js";
import { ExportWizard } from "./ExportWizard.js";
import { FilesBrowser, type BrowseSource } from "./FilesBrowser.js";
import { FirstRun } from "./FirstRun.js";
import { JobsPanel } from "./JobsPanel.js";
import { LibraryView } from "./LibraryView.js";
import { RevertWizard } from "./RevertWizard.js";
import { SchedulesView } from "./SchedulesView.js";
import { SettingsView } from "./SettingsView.js";
import { SnapshotDialog } from "./SnapshotDialog.js";
import { VmDetail } from "./VmDetail.js";
import { drillsBySnapshot, useDrillRecords, VmDrills } from "./VmDrills.js";
import { VmList } from "./VmList.js";
import { VmSchedules } from "./VmSchedules.js";
import { signOut, webSession } from "./web-session.js";
import { HistoryView } from "./HistoryView.js";
import { OverviewView } from "./OverviewView.js";

/** The views in the top bar, in order. */
const NAV: readonly { view: View; label: string }[] = [
  { view: "overview", label: "Overview" },
  { view: "vms", label: "Virtual machines" },
  { view: "exports", label: "Exports" },
  { view: "library", label: "Library" },
  { view: "schedules", label: "Schedules" },
  { view: "history", label: "History" },
  { view: "settings", label: "Settings" },
];

/** The one dialog or wizard open at a time; `key` starts a wizard afresh when reopened. */
type Open =
  | { kind: "snapshot" }
  | { kind: "revert"; snapshot: Snapshot | null; key: number }
  | { kind: "export"; snapshot: Snapshot }
  | { kind: "add-to-library"; snapshot: Snapshot }
  | { kind: "files"; snapshot: Snapshot }
  | { kind: "new-vm"; host: string; template: string }
  | { kind: "attach"; host: string; volume: string }
  | { kind: "restore"; target: string; entry: ExportEntry }
  | { kind: "export-files"; target: string; entry: ExportEntry };

/** Removing and pruning exports, each asked first as a dry run (the dialog shows the plan). */
function removals(state: ReturnType<AppStore["getState"]>) {
  return {
    onPrune: (target: string, keep: number, dryRun: boolean) =>
      state.call(dryRun ? "Checking what stays" : "Pruning the exports", "exports.prune", {
        target,
        keep,
        dryRun,
      }),
    onRemove: (target: string, ids: readonly string[], dryRun: boolean) =>
      state.call(dryRun ? "Checking what stays" : "Removing the export", "exports.remove", {
        target,
        exports: [...ids],
        dryRun,
      }),
  };
}

export function App({ store }: { store: AppStore }) {
  const state = useStore(store);
  const [open, setOpen] = useState<Open | null>(null);
  const confirm = useConfirm();
  const drillRecords = useDrillRecords(store, state.vm);
  useEffect(() => {
    // "/" jumps to the VM search from anywhere but a text field.
    const slash = (e: KeyboardEvent): void => {
      const typing = e.target instanceof HTMLElement && e.target.closest("input, textarea, select") !== null;
      if (e.key === "/" && !typing && document.querySelector(".modal") === null) {
        const search = document.querySelector<HTMLInputElement>(".vm-search");
        if (search !== null) {
          e.preventDefault();
          search.focus();
        }
      }
    };
    document.addEventListener("keydown", slash);
    return () => document.removeEventListener("keydown", slash);
  }, []);

  const close = (): void => {
    state.dismissError();
    setOpen(null);
  };
  const wizardActions = {
    jobs: state.jobs,
    busy: state.busy !== null,
    error: state.error,
    call: state.call,
    startJob: state.startJob,
    cancelJob: (id: string) => void state.cancelJob(id),
    onClose: close,
  };
  const running = Object.values(state.jobs).filter((j) => j.state === "running").length;
  const deleteFromLibrary = async (host: string, item: LibraryItem): Promise<void> => {
    const params = { kind: item.kind, host, name: item.name };
    // The plan first: it refuses while a VM uses it, before anyone is asked to confirm.
    if ((await state.call("Checking", "library.planDelete", params)) === null) {
      return;
    }
    const yes = await confirm.ask({
      title: `Delete ${item.kind} ${item.name}?`,
      body: (
        <p>
          Its image {item.image} is deleted from {host}. No VM uses it now: Snapkeep checked before asking.
        </p>
      ),
      action: `Delete ${item.kind}`,
      danger: true,
    });
    if (yes) {
      await state.call(`Deleting ${item.name}`, "library.delete", params);
      await state.loadLibrary(host);
    }
  };

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
        <button
          type="button"
          aria-expanded={state.jobsOpen}
          onClick={() => {
            state.setJobsOpen(!state.jobsOpen);
            void state.loadJobs();
          }}
        >
          Jobs{running > 0 && <span className="badge running-count">{running} running</span>}
        </button>
        <button type="button" onClick={() => void state.refresh()} disabled={state.loading}>
          {state.loading ? "Refreshing…" : "Refresh"}
        </button>
        {webSession() !== null && (
          <button type="button" onClick={() => void signOut()}>
            Sign out
          </button>
        )}
      </header>
      {state.error !== null && open === null && (
        <ErrorBox error={state.error} onDismiss={() => state.dismissError()} />
      )}
      <div className="body">
        {state.view === "vms" && (
          <div className="panes">
            <nav className="sidebar" aria-label="Hosts and VMs">
              <VmList
                hosts={state.hosts}
                selected={state.selected}
                onSelect={(s) => void state.select(s)}
                filter={state.vmFilter}
                onFilter={state.setVmFilter}
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
                      : state.loading
                        ? ""
                        : "Your VMs, their snapshots and schedules show here once a host has some: start on the left."}
                </p>
              ) : (
                <VmDetail
                  vm={state.vm}
                  selectedSnapshot={state.selectedSnapshot}
                  busy={state.busy}
                  onSelectSnapshot={state.selectSnapshot}
                  onTakeSnapshot={() => setOpen({ kind: "snapshot" })}
                  onDelete={(tag) => void state.deleteSnapshot(tag)}
                  onPin={(tag, pinned) => void state.setPinned(tag, pinned)}
                  onRevert={(snapshot) => {
                    state.dismissError();
                    setOpen({ kind: "revert", snapshot, key: Date.now() });
                  }}
                  onExport={(snapshot) => {
                    void state.loadTargets();
                    setOpen({ kind: "export", snapshot });
                  }}
                  onAddToLibrary={(snapshot) => setOpen({ kind: "add-to-library", snapshot })}
                  onBrowseFiles={(snapshot) => setOpen({ kind: "files", snapshot })}
                  onDrill={(snapshot) => void startDrill(state, snapshot)}
                  drills={<VmDrills store={store} records={drillRecords} />}
                  drilled={drillsBySnapshot(drillRecords)}
                  schedules={<VmSchedules store={store} vm={state.vm} />}
                  rpo={
                    state.hosts
                      .find((h) => h.host === state.vm?.host)
                      ?.vms.find((v) => v.uuid === state.vm?.uuid)?.rpo
                  }
                  space={state.space?.uuid === state.vm.uuid ? state.space : null}
                  offHost={
                    state.hosts
                      .find((h) => h.host === state.vm?.host)
                      ?.vms.find((v) => v.uuid === state.vm?.uuid)?.offHost
                  }
                />
              )}
            </main>
          </div>
        )}
        {state.view === "overview" && (
          <main className="detail">
            <OverviewView store={store} />
          </main>
        )}
        {state.view === "exports" && (
          <main className="detail">
            <ExportsView
              exports={state.exports}
              loading={state.exportsLoading}
              busy={state.busy !== null}
              onLoad={() => void state.loadExports()}
              onVerify={(target, exportId) =>
                void state.startJob("Starting the check", "exports.verify", { target, export: exportId })
              }
              onRestore={(target, entry) => setOpen({ kind: "restore", target, entry })}
              onBrowseFiles={(target, entry) => setOpen({ kind: "export-files", target, entry })}
              {...removals(state)}
              {...exportDrills(state)}
              jobs={state.jobs}
              onAddTarget={() => state.show("settings")}
            />
          </main>
        )}
        {state.view === "library" && (
          <main className="detail">
            <LibraryView
              hosts={state.hosts}
              library={state.library}
              busy={state.busy !== null}
              onLoad={(host) => void state.loadLibrary(host)}
              onNewVm={(host, template) => setOpen({ kind: "new-vm", host, template })}
              onAttach={(host, volume) => setOpen({ kind: "attach", host, volume })}
              onDelete={(host, item) => void deleteFromLibrary(host, item)}
            />
          </main>
        )}
        {state.view === "schedules" && (
          <main className="detail">
            <SchedulesView store={store} />
          </main>
        )}
        {state.view === "history" && (
          <main className="detail">
            <HistoryView store={store} />
          </main>
        )}
        {state.view === "settings" && (
          <main className="detail">
            <SettingsView store={store} />
          </main>
        )}
        {state.jobsOpen && (
          <JobsPanel
            jobs={state.jobs}
            onCancel={(id) => void state.cancelJob(id)}
            onClose={() => state.setJobsOpen(false)}
          />
        )}
      </div>
      {confirm.dialog}
      {open?.kind === "revert" && state.vm !== null && (
        <RevertWizard
          key={open.key}
          vm={state.vm}
          snapshot={open.snapshot}
          busy={state.busy}
          error={state.error}
          onPlan={(options, planOnly) => state.revert(open.snapshot?.tag ?? null, options, planOnly)}
          onClose={close}
          onUndo={() => setOpen({ kind: "revert", snapshot: null, key: Date.now() })}
        />
      )}
      {open?.kind === "snapshot" && state.vm !== null && (
        <SnapshotDialog
          vm={state.vm}
          busy={state.busy !== null}
          error={state.error}
          onCancel={close}
          onCreate={async (request) => {
            if (await state.createSnapshot(request)) {
              setOpen(null);
            }
          }}
        />
      )}
      {open?.kind === "export" && state.vm !== null && (
        <ExportWizard
          vm={state.vm}
          snapshot={open.snapshot}
          targets={state.targets}
          jobs={state.jobs}
          busy={state.busy !== null}
          error={state.error}
          onStart={(params) => state.startJob("Starting the export", "exports.start", params)}
          onCancelJob={(id) => void state.cancelJob(id)}
          onClose={close}
          onAddTarget={() => {
            close();
            state.show("settings");
          }}
        />
      )}
      {open?.kind === "add-to-library" && state.vm !== null && (
        <AddToLibraryWizard
          {...wizardActions}
          vm={state.vm}
          snapshot={open.snapshot}
          onNext={(kind, name) => {
            const host = state.vm?.host ?? "";
            state.dismissError();
            setOpen(
              kind === "template"
                ? { kind: "new-vm", host, template: name }
                : { kind: "attach", host, volume: name },
            );
          }}
        />
      )}
      {filesDialog(open, state, close)}
      {open?.kind === "new-vm" && (
        <NewVmWizard {...wizardActions} host={open.host} template={open.template} />
      )}
      {open?.kind === "attach" && (
        <AttachVolumeWizard
          {...wizardActions}
          host={open.host}
          volume={open.volume}
          hosts={state.hosts}
          onAttached={() => void state.refresh()}
        />
      )}
      {open?.kind === "restore" && (
        <RestoreWizard {...wizardActions} target={open.target} entry={open.entry} hosts={state.hosts} />
      )}
    </div>
  );
}

/** The Exports view's drills: every drill, and a drill of an export on the host its VM was on. */
function exportDrills(state: AppState): {
  drillsOf: () => Promise<readonly DrillRecord[]>;
  onDrill: (target: string, entry: ExportEntry) => void;
} {
  return {
    drillsOf: () => state.request("drills.list", {}),
    onDrill: (target, entry) => {
      const host = entry.manifest?.source.host;
      if (host !== undefined) {
        void state.startJob("Starting the drill", "drills.run", {
          host,
          vm: entry.vmName,
          export: { target, id: entry.id },
        });
      }
    },
  };
}

/** A restore drill of a snapshot of the VM that is open (SnapshotTable asked first). */
function startDrill(state: AppState, snapshot: Snapshot): Promise<unknown> {
  const vm = state.vm;
  return vm === null
    ? Promise.resolve(null)
    : state.startJob("Starting the drill", "drills.run", {
        host: vm.host,
        vm: vm.name,
        snapshot: snapshot.tag,
      });
}

/** The file browser, when one is open: on a snapshot of the VM shown, or on an export. */
function filesDialog(open: Open | null, state: AppState, close: () => void) {
  const source: BrowseSource | null =
    open?.kind === "files" && state.vm !== null
      ? { kind: "snapshot", vm: state.vm, snapshot: open.snapshot }
      : open?.kind === "export-files"
        ? { kind: "export", target: open.target, entry: open.entry }
        : null;
  return source === null ? null : <FilesBrowser source={source} request={state.request} onClose={close} />;
}

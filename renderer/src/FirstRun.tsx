import { useEffect } from "react";
import { useStore } from "zustand";

import type { JobView } from "../../core/api/contract.js";
import type { AppStore } from "./store.js";

/** The newest demo-lab job, which the first-run panel follows until the VMs appear. */
function latestLabJob(jobs: Readonly<Record<string, JobView>>): JobView | null {
  return (
    Object.values(jobs)
      .filter((j) => j.kind === "lab")
      .sort((a, b) => a.startedAt.localeCompare(b.startedAt))
      .at(-1) ?? null
  );
}

/**
 * What the VM list shows before there is anything to list: no hosts, or hosts without VMs. It
 * offers the two ways forward: add an SSH host, or create two demo VMs on this computer.
 */
export function FirstRun({ store }: { store: AppStore }) {
  const state = useStore(store);
  // Host kinds come with the settings: "this computer" reads better than its host name.
  useEffect(() => {
    void store.getState().loadSettings();
  }, [store]);

  const onlyLocal = state.hostConfigs.length > 0 && state.hostConfigs.every((h) => h.kind === "local");
  const lab = latestLabJob(state.jobs);
  const creating = lab?.state === "running";
  return (
    <section className="first-run" aria-labelledby="first-run-title">
      <h2 id="first-run-title">
        {state.hosts.length === 0
          ? "No hosts yet"
          : onlyLocal
            ? "This computer has no VMs yet"
            : "No VMs yet"}
      </h2>
      <p>
        Snapkeep keeps snapshots of the KVM/QEMU machines on this computer’s libvirt and on hosts you reach
        over SSH.
      </p>
      <div className="first-run-actions">
        <button type="button" onClick={() => state.show("settings")}>
          Add an SSH host…
        </button>
        <button
          type="button"
          className="primary"
          disabled={creating || state.busy !== null}
          onClick={() => void state.labUp()}
        >
          Try it with two demo VMs
        </button>
      </div>
      <p className="hint">
        The demo makes two small VMs with no OS inside on this computer, one running and one shut off.{" "}
        <code>snapkeep lab down</code> removes exactly those again.
      </p>
      {creating && (
        <p role="status" className="busy">
          Creating the demo VMs{lab?.progress?.phase === undefined ? "" : ` (${lab.progress.phase})`}… they
          appear here when it is done.
        </p>
      )}
      {lab?.state === "failed" && lab.error !== null && (
        <div className="error" role="alert">
          <p>The demo VMs could not be made: {lab.error.message}</p>
          {lab.error.hint !== null && <p className="hint">{lab.error.hint}</p>}
        </div>
      )}
    </section>
  );
}

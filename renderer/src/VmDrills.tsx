import { useEffect, useId, useState } from "react";
import { useStore } from "zustand";

import type { DrillRecord, VmWithSnapshots } from "../../core/api/contract.js";
import { Modal } from "./Modal.js";
import { TableHead } from "./TableHead.js";
import type { AppStore } from "./store.js";
import { dateTime } from "./when.js";

/** What a drill booted: "snapshot nightly" or "export 20261207T… on nas". */
export function drillSource(record: Pick<DrillRecord, "source">): string {
  return record.source.kind === "snapshot"
    ? `snapshot ${record.source.snapshot}`
    : `export ${record.source.export} on ${record.source.target}`;
}

/** The open VM's restore drills, newest first; read again when a drill job of this VM ends. */
export function useDrillRecords(store: AppStore, vm: VmWithSnapshots | null): readonly DrillRecord[] | null {
  const jobs = useStore(store, (s) => s.jobs);
  const [records, setRecords] = useState<readonly DrillRecord[] | null>(null);
  const finished = Object.values(jobs).filter(
    (j) => j.kind === "drill" && j.host === vm?.host && j.vm === vm.name && j.state !== "running",
  ).length;
  useEffect(() => {
    if (vm === null) {
      setRecords(null);
      return;
    }
    let live = true;
    store
      .getState()
      .request("drills.list", { host: vm.host, vm: vm.name })
      .then((list) => live && setRecords(list))
      .catch(() => live && setRecords([]));
    return () => {
      live = false;
    };
  }, [store, vm?.host, vm?.name, finished]);
  return records;
}

/** The newest drill of each snapshot (by name), for the snapshot list's mark. */
export function drillsBySnapshot(records: readonly DrillRecord[] | null): ReadonlyMap<string, DrillRecord> {
  const by = new Map<string, DrillRecord>();
  for (const r of records ?? []) {
    if (r.source.kind === "snapshot" && !by.has(r.source.snapshot)) {
      by.set(r.source.snapshot, r);
    }
  }
  return by;
}

/**
 * The VM's restore drills, newest first: whether each backup came back, how long it took to boot
 * (the measured time to recover) and the console screenshot kept as evidence.
 */
export function VmDrills({ store, records }: { store: AppStore; records: readonly DrillRecord[] | null }) {
  const [shown, setShown] = useState<DrillRecord | null>(null);
  if (records === null || records.length === 0) {
    return null;
  }
  return (
    <section aria-labelledby="vm-drills-title">
      <div className="section-head">
        <h3 id="vm-drills-title">Restore drills</h3>
      </div>
      <table className="drills">
        <TableHead columns={["When", "From", "Result", "Boot", "Evidence"]} />
        <tbody>
          {records.slice(0, 10).map((r) => (
            <tr key={r.id} data-drill={r.id}>
              <td className="nowrap">{dateTime(r.finishedAt)}</td>
              <td className="clip" title={drillSource(r)}>
                {drillSource(r)}
                {r.on !== r.host && <span className="muted"> on {r.on}</span>}
              </td>
              <td className={r.passed ? "drill-passed" : "drill-failed"} title={r.reason ?? undefined}>
                {r.passed ? "Booted, guest agent answered" : `Failed: ${r.reason ?? ""}`}
                {r.check !== null && (
                  <span className="sub muted">
                    {r.check.argv.join(" ")} → exit {r.check.exitCode ?? "none"}
                  </span>
                )}
              </td>
              <td className="nowrap">{r.bootSeconds === null ? "–" : `${r.bootSeconds} s`}</td>
              <td>
                {r.screenshot ? (
                  <button type="button" onClick={() => setShown(r)}>
                    Screenshot
                  </button>
                ) : (
                  <span className="muted">none</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {shown !== null && <Screenshot store={store} record={shown} onClose={() => setShown(null)} />}
    </section>
  );
}

function Screenshot({
  store,
  record,
  onClose,
}: {
  store: AppStore;
  record: DrillRecord;
  onClose: () => void;
}) {
  const id = useId();
  const [png, setPng] = useState<string | null | undefined>(undefined);
  useEffect(() => {
    let live = true;
    store
      .getState()
      .request("drills.screenshot", { id: record.id })
      .then((answer) => live && setPng(answer?.png ?? null))
      .catch(() => live && setPng(null));
    return () => {
      live = false;
    };
  }, [store, record.id]);
  return (
    <Modal labelledBy={id} onClose={onClose} className="screenshot-dialog">
      <h2 id={id}>
        Console of the drill of {drillSource(record)}, {dateTime(record.finishedAt)}
      </h2>
      {png === undefined ? (
        <p>Loading…</p>
      ) : png === null ? (
        <p>The screenshot is not there any more.</p>
      ) : (
        <img src={`data:image/png;base64,${png}`} alt={`The throwaway VM's screen at the end of the drill`} />
      )}
      <div className="buttons">
        <button type="button" className="primary" onClick={onClose}>
          Close
        </button>
      </div>
    </Modal>
  );
}

import { Fragment, useEffect, useState } from "react";
import { useStore } from "zustand";

import type { Schedule, VmWithSnapshots } from "../../core/api/contract.js";
import { ScheduleEditor } from "./ScheduleEditor.js";
import { CopyLine, FailureRow, StatusBadge, WhenText, lastRunText } from "./SchedulesView.js";
import { disksInWords, retentionInWords } from "./schedule-words.js";
import type { AppStore } from "./store.js";
import { dateTime } from "./when.js";
import { TableHead } from "./TableHead.js";

/** The schedules of the VM that is open, with "Add schedule…": the VM detail's schedules section. */
export function VmSchedules({ store, vm }: { store: AppStore; vm: VmWithSnapshots }) {
  const state = useStore(store);
  const [editor, setEditor] = useState<{ editing: Schedule | null } | null>(null);
  useEffect(() => {
    void store.getState().loadSchedules();
  }, [store, vm]);
  // The editor offers the export targets for a copy off the host.
  useEffect(() => {
    if (editor !== null) {
      void store.getState().loadTargets();
    }
  }, [store, editor]);

  const mine = state.schedules.filter((l) => l.schedule.host === vm.host && l.schedule.vmUuid === vm.uuid);
  return (
    <section aria-labelledby="vm-schedules-title">
      <div className="section-head">
        <h3 id="vm-schedules-title">Schedules</h3>
        <button type="button" onClick={() => state.show("schedules")}>
          All schedules
        </button>
        <button type="button" disabled={state.busy !== null} onClick={() => setEditor({ editing: null })}>
          Add schedule…
        </button>
      </div>
      {mine.length === 0 ? (
        <p className="empty">No schedule: snapshots of {vm.name} are only taken by hand.</p>
      ) : (
        <table className="schedules">
          <TableHead columns={["When", "Disks", "Retention", "Status", "Last run", "Next run"]} />
          <tbody>
            {mine.map((listed) => (
              <Fragment key={listed.schedule.id}>
                <tr>
                  <td>
                    <WhenText when={listed.schedule.when} />
                  </td>
                  <td>{disksInWords(listed.schedule.disks)}</td>
                  <td>
                    {retentionInWords(listed.schedule.retention)}
                    <CopyLine copy={listed.schedule.copy} />
                  </td>
                  <td>
                    <StatusBadge listed={listed} />
                  </td>
                  <td className="nowrap">{lastRunText(listed)}</td>
                  <td className="nowrap">{listed.nextRun === null ? "—" : dateTime(listed.nextRun)}</td>
                  <td className="actions">
                    <button
                      type="button"
                      disabled={state.busy !== null}
                      onClick={() => setEditor({ editing: listed.schedule })}
                    >
                      Edit…
                    </button>
                  </td>
                </tr>
                <FailureRow listed={listed} columns={7} />
              </Fragment>
            ))}
          </tbody>
        </table>
      )}
      {editor !== null && (
        <ScheduleEditor
          vms={[{ host: vm.host, name: vm.name, uuid: vm.uuid, disks: vm.disks }]}
          targets={state.targets.map((t) => t.name)}
          editing={editor.editing}
          busy={state.busy !== null}
          onPreview={(draft, id) => state.previewSchedule(draft, id)}
          onSave={(draft, id) => state.saveSchedule(draft, id)}
          onClose={() => setEditor(null)}
        />
      )}
    </section>
  );
}

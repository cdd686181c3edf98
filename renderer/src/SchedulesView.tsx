import { Fragment, useEffect, useState } from "react";
import { useStore } from "zustand";

import type { ListedHost, ListedSchedule, Schedule, SchedulerRunner, When } from "../../core/api/contract.js";
import { ScheduleEditor, type EditorVm } from "./ScheduleEditor.js";
import {
  copyInWords,
  disksInWords,
  retentionInWords,
  scheduleStatus,
  whenInWords,
} from "./schedule-words.js";
import type { AppStore } from "./store.js";
import { dateTime } from "./when.js";
import { TableHead } from "./TableHead.js";
import { useConfirm } from "./Confirm.js";
import { cronInWords } from "./cron-words.js";

/** Every VM the editor can choose, from the VM list the store already holds. */
export function editorVms(hosts: readonly ListedHost[]): EditorVm[] {
  return hosts.flatMap((h) =>
    h.vms.map((vm) => ({ host: h.host, name: vm.name, uuid: vm.uuid, disks: vm.disks })),
  );
}

/** The VM of a schedule as the editor needs it; its disks are unknown while its host is offline. */
export function vmOfSchedule(hosts: readonly ListedHost[], schedule: Schedule): EditorVm {
  const found = editorVms(hosts).find((v) => v.host === schedule.host && v.uuid === schedule.vmUuid);
  return found ?? { host: schedule.host, name: schedule.vmName, uuid: schedule.vmUuid, disks: [] };
}

/** When in words; a cron expression in words where it can be, and as typed beside them. */
export function WhenText({ when }: { when: When }) {
  if (when.every !== "cron") {
    return <>{whenInWords(when)}</>;
  }
  const words = cronInWords(when.cron);
  return words === null ? (
    <>
      Cron <code className="nowrap">{when.cron}</code>
    </>
  ) : (
    <>
      {words} <code className="nowrap muted">{when.cron}</code>
    </>
  );
}

export function StatusBadge({ listed }: { listed: ListedSchedule }) {
  const level = scheduleStatus(listed).level;
  return <span className={`badge status-${level}`}>{level === "stopped" ? "not running" : level}</span>;
}

/**
 * A failing schedule's error on its own row under it, across the table: an error is a sentence or
 * two, unreadable squeezed into a status column.
 */
export function FailureRow({ listed, columns }: { listed: ListedSchedule; columns: number }) {
  const status = scheduleStatus(listed);
  if (status.level !== "failing") {
    return null;
  }
  return (
    <tr className="failure-row">
      <td colSpan={columns}>
        <p className="status-error">
          {status.failures > 1 ? `The last ${status.failures} runs failed: ` : "The last run failed: "}
          {status.error}
        </p>
      </td>
    </tr>
  );
}

export function lastRunText(listed: ListedSchedule): string {
  const state = listed.state;
  if (state?.lastRunAt === undefined) {
    return "never";
  }
  return state.lastResult === undefined || state.lastResult === "ok"
    ? dateTime(state.lastRunAt)
    : `${dateTime(state.lastRunAt)} (${state.lastResult})`;
}

/**
 * Every schedule on every host: when it runs, what it keeps, whether it works, and the last and
 * next run. Pause, edit and remove are here; a new one is added for any VM.
 */
export function SchedulesView({ store }: { store: AppStore }) {
  const state = useStore(store);
  const confirm = useConfirm();
  const [editor, setEditor] = useState<{ vms: EditorVm[]; editing: Schedule | null } | null>(null);
  // The VM list reloads on every change event; the schedules' last runs change with it.
  useEffect(() => {
    void store.getState().loadSchedules();
  }, [store, state.hosts]);
  // The editor offers the export targets for a copy off the host.
  useEffect(() => {
    if (editor !== null) {
      void store.getState().loadTargets();
    }
  }, [store, editor]);

  const choices = editorVms(state.hosts);
  return (
    <section className="page" aria-labelledby="schedules-title">
      {confirm.dialog}
      <header className="page-head">
        <h2 id="schedules-title">Schedules</h2>
        {state.busy !== null && (
          <span className="busy" role="status">
            {state.busy}…
          </span>
        )}
        <button
          type="button"
          className="primary"
          disabled={choices.length === 0}
          onClick={() => setEditor({ vms: choices, editing: null })}
        >
          Add schedule…
        </button>
      </header>
      <RunnerLine runner={state.schedulerRunner} />
      {state.schedulePause === null && state.schedules.length > 0 && (
        <div className="pause-all" role="group" aria-label="Pause all schedules">
          <button
            type="button"
            disabled={state.busy !== null}
            onClick={() => void state.pauseAllSchedules(60)}
          >
            Pause all for 1 hour
          </button>
          <button
            type="button"
            disabled={state.busy !== null}
            onClick={() => void state.pauseAllSchedules(null)}
          >
            Pause all until resumed
          </button>
        </div>
      )}
      {state.schedulePause !== null && (
        <div className="pause-banner" role="status">
          <p>
            All schedules are paused{" "}
            {state.schedulePause.until === null
              ? "until resumed"
              : `until ${dateTime(state.schedulePause.until)}`}
            . Nothing is taken or pruned meanwhile; afterwards each schedule catches up once.
          </p>
          <button
            type="button"
            disabled={state.busy !== null}
            onClick={() => void state.resumeAllSchedules()}
          >
            Resume all now
          </button>
        </div>
      )}
      {state.schedules.length === 0 ? (
        <p className="empty">
          No schedules yet. A schedule takes snapshots of a VM daily, weekly or monthly and removes the old
          ones it made. {choices.length === 0 ? "Add a host with VMs first (Settings)." : "Add one to start."}
        </p>
      ) : (
        <table className="schedules">
          <TableHead columns={["VM", "When", "Disks", "Retention", "Status", "Last run", "Next run"]} />
          <tbody>
            {state.schedules.map((listed) => {
              const s = listed.schedule;
              return (
                <Fragment key={s.id}>
                  <tr aria-label={`${s.vmName}: ${whenInWords(s.when)}`}>
                    <td>
                      <span className="vm-ref">
                        <span className="muted">{s.host}/</span>
                        {s.vmName}
                      </span>
                      {s.note !== undefined && <p className="hint">{s.note}</p>}
                    </td>
                    <td>
                      <WhenText when={s.when} />
                    </td>
                    <td>{disksInWords(s.disks)}</td>
                    <td>
                      {retentionInWords(s.retention)}
                      <CopyLine copy={s.copy} />
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
                        onClick={() => void state.setScheduleEnabled(s.id, !s.enabled)}
                      >
                        {s.enabled ? "Pause" : "Resume"}
                      </button>
                      <button
                        type="button"
                        disabled={state.busy !== null}
                        onClick={() => setEditor({ vms: [vmOfSchedule(state.hosts, s)], editing: s })}
                      >
                        Edit…
                      </button>
                      <button
                        type="button"
                        className="danger"
                        disabled={state.busy !== null}
                        onClick={() =>
                          void confirm
                            .ask({
                              title: `Remove the schedule of ${s.vmName}?`,
                              body: (
                                <p>
                                  {whenInWords(s.when)}. No more snapshots are taken or pruned by it. The
                                  snapshots it made stay on {s.host}; delete them from the VM when you no
                                  longer need them.
                                </p>
                              ),
                              action: "Remove schedule",
                              danger: true,
                            })
                            .then(async (yes) => {
                              if (yes) {
                                await state.removeSchedule(s.id);
                              }
                            })
                        }
                      >
                        Remove
                      </button>
                    </td>
                  </tr>
                  <FailureRow listed={listed} columns={8} />
                </Fragment>
              );
            })}
          </tbody>
        </table>
      )}
      {editor !== null && (
        <ScheduleEditor
          vms={editor.vms}
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

/** A schedule's copy off the host, under its retention; nothing for a schedule that does not copy. */
export function CopyLine({ copy }: { copy: Schedule["copy"] }) {
  const words = copyInWords(copy);
  return words === null ? null : <span className="copy-line">{words}</span>;
}

/**
 * Who runs the schedules, always said: this server or window, another process by name and pid, or,
 * loudly, nobody — then no schedule fires, however "enabled" it is.
 */
function RunnerLine({ runner }: { runner: SchedulerRunner | null }) {
  if (runner === null) {
    return null;
  }
  if (runner.kind === "none") {
    return (
      <p className="runner runner-none" role="alert">
        No scheduler is running: schedules will not fire and nothing is copied off the host. Start{" "}
        <code>snapkeep daemon</code>, the desktop app, or <code>snapkeep serve</code> without{" "}
        <code>--no-scheduler</code>.
      </p>
    );
  }
  const who = `${runner.app ?? "a Snapkeep process"}, pid ${runner.pid ?? "?"}${runner.hostname === null ? "" : ` on ${runner.hostname}`}`;
  return (
    <p className="runner" role="status">
      {runner.kind === "here" ? `Schedules run here (${who}).` : `Schedules are run by ${who}.`}
    </p>
  );
}

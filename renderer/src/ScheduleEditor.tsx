import { useEffect, useId, useMemo, useRef, useState, type FormEvent } from "react";

import { ErrorBox } from "./ErrorBox.js";
import type {
  ApiError,
  DraftPreview,
  Schedule,
  ScheduleDraft,
  VmWithSnapshots,
} from "../../core/api/contract.js";
import {
  WEEKDAYS,
  capitalize,
  copyForecastInWords,
  draftOf,
  forecastInWords,
  newScheduleForm,
  scheduleForm,
  whenInWords,
  type Every,
  type ScheduleForm,
} from "./schedule-words.js";
import { dateTime, shortDate } from "./when.js";
import { keepFocusInside } from "./Modal.js";
import { CopyFields } from "./CopyFields.js";
import { diskLabel } from "./format.js";

/** A VM a schedule can be made for. */
export interface EditorVm {
  readonly host: string;
  readonly name: string;
  readonly uuid: string;
  readonly disks: VmWithSnapshots["disks"];
}

type Preview = DraftPreview | { readonly error: ApiError };

const PRESETS: readonly { every: Every; label: string }[] = [
  { every: "daily", label: "Daily" },
  { every: "weekly", label: "Weekly" },
  { every: "monthly", label: "Monthly" },
  { every: "cron", label: "Cron (experts)" },
];

const COUNTS: readonly { key: "keepLast" | "daily" | "weekly" | "monthly"; label: string }[] = [
  { key: "keepLast", label: "Latest" },
  { key: "daily", label: "Days" },
  { key: "weekly", label: "Weeks" },
  { key: "monthly", label: "Months" },
];

/** The preview waits this long after the last keystroke, so typing "12" asks once, not twice. */
const PREVIEW_DELAY_MS = 200;

/**
 * Adds or edits a schedule. Every change is previewed by the API (the same checks as saving): the
 * next runs, what the retention settles into after a year and, when editing, what the new
 * retention would delete today. Nothing is saved until Save.
 */
export function ScheduleEditor({
  vms,
  targets,
  editing,
  busy,
  onPreview,
  onSave,
  onClose,
}: {
  /** The VMs to choose from; one when the VM is given (its detail view, or an edit). */
  vms: readonly EditorVm[];
  /** The export targets' names, for the copy off the host. */
  targets: readonly string[];
  editing: Schedule | null;
  busy: boolean;
  onPreview: (draft: ScheduleDraft, editing?: string) => Promise<Preview>;
  onSave: (draft: ScheduleDraft, id?: string) => Promise<ApiError | null>;
  onClose: () => void;
}) {
  const id = useId();
  const [vmKey, setVmKey] = useState(vms[0] === undefined ? "" : keyOf(vms[0]));
  const vm = vms.find((v) => keyOf(v) === vmKey) ?? vms[0];
  const diskTargets = useMemo(
    () => (vm?.disks ?? []).filter((d) => d.device === "disk").map((d) => d.target),
    [vm],
  );
  const snapshottable = (vm?.disks ?? [])
    .filter((d) => d.device === "disk" && d.snapshotBlocker === null)
    .map((d) => d.target);
  const [form, setForm] = useState<ScheduleForm>(() =>
    editing === null ? newScheduleForm(snapshottable) : scheduleForm(editing, diskTargets),
  );
  const [preview, setPreview] = useState<Preview | null>(null);
  const [saveError, setSaveError] = useState<ApiError | null>(null);
  const update = (change: Partial<ScheduleForm>): void => {
    setForm((f) => ({ ...f, ...change }));
    setSaveError(null);
  };
  const draft = vm === undefined ? null : draftOf(form, vm.host, vm.name, diskTargets);
  const noDisks = diskTargets.length > 0 && form.disks.length === 0;
  const draftKey = JSON.stringify(draft);

  useEffect(() => {
    if (draft === null || noDisks) {
      return;
    }
    let current = true;
    const timer = setTimeout(() => {
      void onPreview(draft, editing?.id).then((p) => {
        if (current) {
          setPreview(p);
        }
      });
    }, PREVIEW_DELAY_MS);
    return () => {
      current = false;
      clearTimeout(timer);
    };
    // The draft's JSON is its identity: a new object with the same content needs no new preview.
  }, [draftKey]);

  // Focus goes back to what opened the editor, so a keyboard user is not dropped at the page top.
  // Done on close rather than on unmount: StrictMode's trial unmount would steal the focus back.
  const opener = useRef<Element | null>(document.activeElement);
  const close = (): void => {
    onClose();
    if (opener.current instanceof HTMLElement && opener.current.isConnected) {
      opener.current.focus();
    }
  };

  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    if (draft === null) {
      return;
    }
    const error = await onSave(draft, editing?.id);
    if (error === null) {
      close();
    } else {
      setSaveError(error);
    }
  };

  const title =
    editing !== null
      ? `Edit the schedule of ${editing.vmName}`
      : vms.length === 1 && vm !== undefined
        ? `Add a schedule for ${vm.name}`
        : "Add a schedule";
  return (
    <div className="modal" role="dialog" aria-modal="true" aria-labelledby={`${id}-title`}>
      <form
        className="schedule-editor"
        onSubmit={(e) => void submit(e)}
        onKeyDown={(e) => {
          if (e.key === "Escape") {
            e.preventDefault();
            close();
          } else if (e.key === "Tab") {
            keepFocusInside(e.currentTarget, e);
          }
        }}
      >
        <h2 id={`${id}-title`}>{title}</h2>
        <div className="editor-fields">
          {vms.length > 1 && (
            <>
              <label htmlFor={`${id}-vm`}>Virtual machine</label>
              <select
                id={`${id}-vm`}
                value={vmKey}
                autoFocus
                onChange={(e) => {
                  const chosen = vms.find((v) => keyOf(v) === e.target.value);
                  setVmKey(e.target.value);
                  update({
                    disks: (chosen?.disks ?? [])
                      .filter((d) => d.device === "disk" && d.snapshotBlocker === null)
                      .map((d) => d.target),
                  });
                }}
              >
                {vms.map((v) => (
                  <option key={keyOf(v)} value={keyOf(v)}>
                    {v.host}/{v.name}
                  </option>
                ))}
              </select>
            </>
          )}
          <fieldset>
            <legend>When</legend>
            <div className="presets" role="radiogroup" aria-label="Repeats">
              {PRESETS.map((p, i) => (
                <label key={p.every} className="preset">
                  <input
                    type="radio"
                    name={`${id}-every`}
                    value={p.every}
                    checked={form.every === p.every}
                    autoFocus={vms.length <= 1 && i === PRESETS.findIndex((x) => x.every === form.every)}
                    onChange={() => update({ every: p.every })}
                  />
                  {p.label}
                </label>
              ))}
            </div>
            {form.every === "cron" ? (
              <>
                <label htmlFor={`${id}-cron`}>Cron expression</label>
                <input
                  id={`${id}-cron`}
                  value={form.cron}
                  onChange={(e) => update({ cron: e.target.value })}
                  aria-describedby={`${id}-cron-hint`}
                  spellCheck={false}
                  maxLength={200}
                />
                <p className="hint" id={`${id}-cron-hint`}>
                  Five fields: minute hour day-of-month month weekday, in this computer’s time. “0 */6 * * *”
                  runs every six hours.
                </p>
              </>
            ) : (
              <div className="when-row">
                {form.every === "weekly" && (
                  <span className="field">
                    <label htmlFor={`${id}-weekday`}>Weekday</label>
                    <select
                      id={`${id}-weekday`}
                      value={form.weekday}
                      onChange={(e) =>
                        update({ weekday: WEEKDAYS.find((d) => d === e.target.value) ?? "sunday" })
                      }
                    >
                      {WEEKDAYS.map((d) => (
                        <option key={d} value={d}>
                          {capitalize(d)}
                        </option>
                      ))}
                    </select>
                  </span>
                )}
                {form.every === "monthly" && (
                  <span className="field">
                    <label htmlFor={`${id}-day`}>Day of the month</label>
                    <input
                      id={`${id}-day`}
                      type="number"
                      min={1}
                      max={31}
                      value={form.day}
                      onChange={(e) => update({ day: e.target.value })}
                      aria-describedby={`${id}-day-hint`}
                    />
                  </span>
                )}
                <span className="field">
                  <label htmlFor={`${id}-at`}>Time</label>
                  <input
                    id={`${id}-at`}
                    type="time"
                    required
                    value={form.at}
                    onChange={(e) => update({ at: e.target.value })}
                  />
                </span>
              </div>
            )}
            {form.every === "monthly" && (
              <p className="hint" id={`${id}-day-hint`}>
                {Number(form.day) >= 29
                  ? `Runs on the last day of shorter months (February, and months of 30 days).`
                  : "Times are this computer’s local time."}
              </p>
            )}
          </fieldset>
          <fieldset>
            <legend>Disks</legend>
            {diskTargets.length === 0 ? (
              <p className="hint">
                The VM’s disks cannot be read now; the schedule keeps{" "}
                {editing?.disks === undefined ? "all its disks" : editing.disks.join(", ")}.
              </p>
            ) : (
              (vm?.disks ?? [])
                .filter((d) => d.device === "disk")
                .map((d) => (
                  <label key={d.target} className="check">
                    <input
                      type="checkbox"
                      checked={form.disks.includes(d.target)}
                      disabled={d.snapshotBlocker !== null}
                      onChange={(e) =>
                        update({
                          disks: e.target.checked
                            ? [...form.disks, d.target]
                            : form.disks.filter((t) => t !== d.target),
                        })
                      }
                    />
                    {diskLabel(d.target, d.role)}
                    {d.snapshotBlocker !== null && <span className="hint"> — {d.snapshotBlocker}</span>}
                  </label>
                ))
            )}
            {noDisks && <p className="field-error">Choose at least one disk.</p>}
          </fieldset>
          <fieldset>
            <legend>Keep</legend>
            <div className="counts">
              {COUNTS.map((c) => (
                <span className="field" key={c.key}>
                  <label htmlFor={`${id}-${c.key}`}>{c.label}</label>
                  <input
                    id={`${id}-${c.key}`}
                    type="number"
                    min={1}
                    max={10000}
                    value={form[c.key]}
                    placeholder="–"
                    onChange={(e) => update({ [c.key]: e.target.value })}
                    aria-describedby={`${id}-keep-hint`}
                  />
                </span>
              ))}
            </div>
            <p className="hint" id={`${id}-keep-hint`}>
              The latest N snapshots, plus the newest one of each of the last N days, weeks and months (GFS).
              Leave a field empty for no such rule. Only this schedule’s own snapshots are ever removed;
              manual, pinned and safety snapshots stay.
            </p>
          </fieldset>
          <CopyFields
            id={id}
            form={form.copy}
            targets={targets}
            onChange={(change) => update({ copy: { ...form.copy, ...change } })}
          />
          <label htmlFor={`${id}-note`}>Note</label>
          <textarea
            id={`${id}-note`}
            rows={2}
            maxLength={2000}
            value={form.note}
            onChange={(e) => update({ note: e.target.value })}
          />
        </div>
        <PreviewPanel
          id={id}
          preview={noDisks ? null : preview}
          pending={draft !== null && !noDisks}
          editing={editing !== null}
          words={draft === null ? "" : whenInWords(draft.when)}
        />
        {saveError !== null && <ErrorBox error={saveError} />}
        <div className="buttons">
          <button type="button" onClick={close}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy || draft === null || noDisks}>
            {busy ? "Saving…" : editing === null ? "Add schedule" : "Save changes"}
          </button>
        </div>
      </form>
    </div>
  );
}

function PreviewPanel({
  id,
  preview,
  pending,
  editing,
  words,
}: {
  id: string;
  preview: Preview | null;
  pending: boolean;
  editing: boolean;
  words: string;
}) {
  return (
    <section className="editor-preview" aria-labelledby={`${id}-preview`} aria-live="polite">
      <h3 id={`${id}-preview`}>Preview</h3>
      {preview === null ? (
        <p className="hint">{pending ? "Working it out…" : "Nothing to preview yet."}</p>
      ) : "error" in preview ? (
        <div className="field-error" role="alert">
          <p>{preview.error.message}</p>
          {preview.error.hint !== null && <p className="hint">{preview.error.hint}</p>}
        </div>
      ) : (
        <>
          <p className="preview-when">{words}</p>
          <h4>Next runs</h4>
          <ol className="next-runs" aria-label="Next runs">
            {preview.nextRuns.map((run) => (
              <li key={run}>{dateTime(run)}</li>
            ))}
          </ol>
          <h4>After a year</h4>
          <p aria-label="Forecast">{forecastInWords(preview.forecast, shortDate)}</p>
          {preview.copyForecast !== null && (
            <>
              <h4>Off this host</h4>
              <p aria-label="What the target keeps">{copyForecastInWords(preview.copyForecast, shortDate)}</p>
            </>
          )}
          {editing && preview.retention !== null && (
            <>
              <h4>Applied today</h4>
              {preview.retention.remove.length === 0 ? (
                <p aria-label="Deleted today">Applied to the snapshots there now, it would delete none.</p>
              ) : (
                <div aria-label="Deleted today">
                  <p>
                    Applied to the snapshots there now, it would delete {preview.retention.remove.length} made
                    by this schedule:
                  </p>
                  <ul className="removed">
                    {preview.retention.remove.map((s) => (
                      <li key={s.tag}>{s.name}</li>
                    ))}
                  </ul>
                </div>
              )}
            </>
          )}
        </>
      )}
    </section>
  );
}

function keyOf(vm: EditorVm): string {
  return `${vm.host}/${vm.uuid}`;
}

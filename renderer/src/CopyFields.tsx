import type { CopyForm } from "./schedule-words.js";

const COUNTS: readonly { key: "keepLast" | "daily" | "weekly" | "monthly"; label: string }[] = [
  // Not the snapshot counts' words ("Latest", "Days"…): one label names one field in the editor.
  { key: "keepLast", label: "Newest" },
  { key: "daily", label: "Daily" },
  { key: "weekly", label: "Weekly" },
  { key: "monthly", label: "Monthly" },
];

/**
 * The schedule editor's "Copy off this host" fields: the target, which runs are copied, what the
 * target keeps of this schedule's copies, and copy before prune. The API checks the values (the
 * preview shows its sentence), so nothing is validated here.
 */
export function CopyFields({
  id,
  form,
  targets,
  onChange,
}: {
  id: string;
  form: CopyForm;
  /** The export targets' names. */
  targets: readonly string[];
  onChange: (change: Partial<CopyForm>) => void;
}) {
  const noTargets = targets.length === 0 && form.target === "";
  return (
    <fieldset className="copy-fields">
      <legend>Copy off this host</legend>
      <label className="check">
        <input
          type="checkbox"
          checked={form.on}
          disabled={noTargets && !form.on}
          onChange={(e) =>
            onChange({ on: e.target.checked, ...(form.target === "" ? { target: targets[0] ?? "" } : {}) })
          }
        />
        After the snapshot, export it to a target (verified there; over SSH, after the first copy only the
        changed blocks travel)
      </label>
      {noTargets && (
        <p className="hint">
          Add an export target in Settings first: a folder, a mounted disk or an SSH host.
        </p>
      )}
      {form.on && (
        <>
          <div className="when-row">
            <span className="field">
              <label htmlFor={`${id}-copy-target`}>Target</label>
              <select
                id={`${id}-copy-target`}
                value={form.target}
                onChange={(e) => onChange({ target: e.target.value })}
              >
                {[...new Set([...targets, form.target])]
                  .filter((t) => t !== "")
                  .map((t) => (
                    <option key={t} value={t}>
                      {t}
                    </option>
                  ))}
              </select>
            </span>
            <span className="field">
              <label htmlFor={`${id}-copy-every`}>Which runs</label>
              <select
                id={`${id}-copy-every`}
                value={form.every === "runs" && form.n === "1" ? "every" : form.every}
                onChange={(e) => {
                  const value = e.target.value;
                  onChange(
                    value === "every"
                      ? { every: "runs", n: "1" }
                      : value === "runs"
                        ? { every: "runs", n: form.n === "1" ? "2" : form.n }
                        : { every: value === "day" ? "day" : "week" },
                  );
                }}
              >
                <option value="every">Every run</option>
                <option value="runs">Every Nth run</option>
                <option value="day">First run of each day</option>
                <option value="week">First run of each week</option>
              </select>
            </span>
            {form.every === "runs" && form.n !== "1" && (
              <span className="field">
                <label htmlFor={`${id}-copy-n`}>N</label>
                <input
                  id={`${id}-copy-n`}
                  type="number"
                  min={2}
                  max={1000}
                  value={form.n}
                  onChange={(e) => onChange({ n: e.target.value })}
                />
              </span>
            )}
          </div>
          <div className="counts" role="group" aria-label="Copies the target keeps">
            {COUNTS.map((c) => (
              <span className="field" key={c.key}>
                <label htmlFor={`${id}-copy-${c.key}`}>{c.label}</label>
                <input
                  id={`${id}-copy-${c.key}`}
                  type="number"
                  min={1}
                  max={1000}
                  value={form[c.key]}
                  placeholder="–"
                  onChange={(e) => onChange({ [c.key]: e.target.value })}
                  aria-describedby={`${id}-copy-hint`}
                />
              </span>
            ))}
          </div>
          <p className="hint" id={`${id}-copy-hint`}>
            What the target keeps of this schedule’s copies, as above for snapshots. Its newest verified copy
            always stays; exports made by hand and other schedules’ copies are never removed.
          </p>
          <label className="check">
            <input
              type="checkbox"
              checked={form.hold}
              onChange={(e) => onChange({ hold: e.target.checked })}
            />
            Keep snapshots on this host until their copy has landed (a target offline for a while costs room
            here, not the copy)
          </label>
          <span className="field">
            <label htmlFor={`${id}-copy-drill`}>Restore drill</label>
            <select
              id={`${id}-copy-drill`}
              value={form.drill}
              onChange={(e) => onChange({ drill: e.target.value })}
              aria-describedby={`${id}-drill-hint`}
            >
              <option value="">None</option>
              <option value="1">Daily</option>
              <option value="7">Weekly</option>
              <option value="30">Monthly</option>
              {!["", "1", "7", "30"].includes(form.drill) && (
                <option value={form.drill}>Every {form.drill} days</option>
              )}
            </select>
          </span>
          <p className="hint" id={`${id}-drill-hint`}>
            Boots a copy that just landed in a throwaway VM on an isolated network and waits for its guest
            agent: proof that it restores. After a failed drill every new copy is drilled until one boots.
          </p>
        </>
      )}
    </fieldset>
  );
}

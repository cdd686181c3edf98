import { useId, useState, type FormEvent } from "react";

import type { ApiError, VmWithSnapshots } from "../../core/api/contract.js";
import { ErrorBox } from "./ErrorBox.js";
import { Modal } from "./Modal.js";

export function SnapshotDialog({
  vm,
  busy,
  error,
  onCancel,
  onCreate,
}: {
  vm: VmWithSnapshots;
  busy: boolean;
  error: ApiError | null;
  onCancel: () => void;
  onCreate: (request: { name?: string; note?: string; disks?: string[] }) => Promise<void>;
}) {
  const disks = vm.disks.filter((d) => d.device === "disk");
  const [name, setName] = useState("");
  const [note, setNote] = useState("");
  const [chosen, setChosen] = useState<string[]>(
    disks.filter((d) => d.snapshotBlocker === null).map((d) => d.target),
  );
  const id = useId();
  const submit = (event: FormEvent): void => {
    event.preventDefault();
    void onCreate({
      ...(name.trim() === "" ? {} : { name: name.trim() }),
      ...(note.trim() === "" ? {} : { note: note.trim() }),
      ...(chosen.length === disks.length ? {} : { disks: chosen }),
    });
  };
  return (
    <Modal labelledBy={`${id}-title`} onClose={onCancel} onSubmit={submit}>
      <h2 id={`${id}-title`}>Take a snapshot of {vm.name}</h2>
      <label htmlFor={`${id}-name`}>Name</label>
      <input
        id={`${id}-name`}
        value={name}
        onChange={(e) => setName(e.target.value)}
        placeholder="manual-<date>-<time>"
        autoFocus
        maxLength={128}
      />
      <label htmlFor={`${id}-note`}>Note</label>
      <textarea
        id={`${id}-note`}
        value={note}
        onChange={(e) => setNote(e.target.value)}
        rows={2}
        maxLength={2000}
      />
      <fieldset>
        <legend>Disks</legend>
        {disks.map((d) => (
          <label key={d.target} className="check">
            <input
              type="checkbox"
              checked={chosen.includes(d.target)}
              disabled={d.snapshotBlocker !== null}
              onChange={(e) =>
                setChosen(e.target.checked ? [...chosen, d.target] : chosen.filter((t) => t !== d.target))
              }
            />
            {d.target} ({d.role})
            {d.snapshotBlocker !== null && <span className="hint"> — {d.snapshotBlocker}</span>}
          </label>
        ))}
      </fieldset>
      <p className="hint">
        {vm.active ? "The VM keeps running; its disks are captured in one instant." : "The VM is shut off."}
      </p>
      {error !== null && <ErrorBox error={error} />}
      <div className="buttons">
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="primary" disabled={busy || chosen.length === 0}>
          {busy ? "Taking…" : "Take snapshot"}
        </button>
      </div>
    </Modal>
  );
}

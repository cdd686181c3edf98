import { useId, useState, type FormEvent } from "react";

import type { ApiError, VmWithSnapshots } from "../../core/api/contract.js";
import { diskLabel } from "./format.js";
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
            {diskLabel(d.target, d.role)}
            {d.snapshotBlocker !== null && <span className="hint"> — {d.snapshotBlocker}</span>}
          </label>
        ))}
      </fieldset>
      <SnapshotHolds vm={vm} />
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

/**
 * What the snapshot will hold, as core takes it: internal disk snapshots (one QMP transaction
 * while the VM runs), never its memory; the guest's file systems frozen for it when the guest
 * agent answers and the VM's freeze setting is on (the default), else crash-consistent.
 */
function SnapshotHolds({ vm }: { vm: VmWithSnapshots }) {
  if (!vm.active) {
    return <p className="hint">The VM is shut off: the snapshot holds its disks as they were left.</p>;
  }
  const last = vm.snapshots.findLast((s) => s.consistency !== null && s.consistency !== "vm-off");
  const lastWords =
    last?.consistency === undefined || last.consistency === null ? null : consistencyWords(last.consistency);
  return (
    <div className="hint snapshot-holds">
      <p>
        The VM keeps running. The snapshot holds its disks at one instant, not its memory: a revert starts the
        VM afresh from them.
      </p>
      <p>
        Its file systems are frozen for that instant when the QEMU guest agent answers in the VM (unless
        freezing is turned off for it); otherwise the snapshot is crash-consistent, like disks after a power
        cut.
        {lastWords !== null && ` Its last snapshot taken while running was ${lastWords}.`}
      </p>
    </div>
  );
}

/** A recorded consistency (consistency.ts's labels) in a few words. */
function consistencyWords(consistency: string): string {
  if (consistency.startsWith("frozen")) {
    return "frozen";
  }
  return consistency === "hooked" ? "taken between its hooks, not frozen" : "crash-consistent";
}

import { useEffect, useId, useState } from "react";

import type { ApiError, RevertResult, Snapshot, VmWithSnapshots } from "../../core/api/contract.js";
import { dateTime } from "./when.js";
import type { RevertOptions } from "./slices/vms.js";
import { ErrorBox } from "./ErrorBox.js";
import { Modal } from "./Modal.js";

type Step = "choose" | "summary" | "done";

/**
 * Revert, step by step: choose the disks and how a running VM is stopped; read the summary (what
 * is stopped, the safety snapshot that keeps today's data, what the definition changed since);
 * then revert; afterwards, undo is one button away. `snapshot` null means undoing the last revert.
 */
export function RevertWizard({
  vm,
  snapshot,
  busy,
  error,
  onPlan,
  onClose,
  onUndo,
}: {
  vm: VmWithSnapshots;
  snapshot: Snapshot | null;
  busy: string | null;
  error: ApiError | null;
  onPlan: (options: RevertOptions, planOnly: boolean) => Promise<RevertResult | null>;
  onClose: () => void;
  onUndo: () => void;
}) {
  const id = useId();
  const disks = snapshot === null ? [] : snapshot.disks.map((d) => d.target);
  const [chosen, setChosen] = useState<string[]>(disks);
  const [force, setForce] = useState(false);
  const [powerOffNow, setPowerOffNow] = useState(false);
  const [timeout, setTimeoutSeconds] = useState(120);
  // A running VM is stopped for an undo too: how is chosen first, as for a revert.
  const [step, setStep] = useState<Step>(vm.active ? "choose" : "summary");
  const [plan, setPlan] = useState<RevertResult | null>(null);
  /** The first plan of a running VM: whether its guest agent answers, before the stop is chosen. */
  const [agent, setAgent] = useState<boolean | null | undefined>(undefined);
  const [reverting, setReverting] = useState(false);
  const [done, setDone] = useState<RevertResult | null>(null);
  const options = (): RevertOptions => ({
    ...(snapshot === null || chosen.length === disks.length ? {} : { disks: chosen }),
    stopRunning: true,
    force: force && !powerOffNow,
    powerOffNow,
    shutdownTimeoutSeconds: timeout,
  });

  useEffect(() => {
    if (step === "summary" && plan === null) {
      void onPlan(options(), true).then((p) => setPlan(p));
    }
    // Planned once per visit to the summary (the options are fixed by then).
  }, [step]);

  useEffect(() => {
    if (vm.active) {
      void onPlan(options(), true).then((p) => setAgent(p?.guestAgent ?? null));
    }
    // Asked once, when the wizard opens on a running VM.
  }, []);

  const title =
    snapshot === null ? `Undo the last revert of ${vm.name}` : `Revert ${vm.name} to “${snapshot.name}”`;
  return (
    <Modal labelledBy={`${id}-title`} onClose={onClose}>
      <h2 id={`${id}-title`}>{title}</h2>
      <ol className="steps" aria-label="Steps">
        <li aria-current={step === "choose" ? "step" : undefined}>Choose</li>
        <li aria-current={step === "summary" ? "step" : undefined}>Check</li>
        <li aria-current={step === "done" ? "step" : undefined}>Done</li>
      </ol>

      {step === "choose" && (
        <>
          {snapshot !== null && (
            <fieldset>
              <legend>Disks to revert</legend>
              {disks.map((d) => (
                <label key={d} className="check">
                  <input
                    type="checkbox"
                    checked={chosen.includes(d)}
                    onChange={(e) =>
                      setChosen(e.target.checked ? [...chosen, d] : chosen.filter((t) => t !== d))
                    }
                  />
                  {d}
                </label>
              ))}
            </fieldset>
          )}
          {vm.active && (
            <StopChoice
              vmName={vm.name}
              agent={agent}
              timeout={timeout}
              onTimeout={setTimeoutSeconds}
              force={force}
              onForce={setForce}
              powerOffNow={powerOffNow}
              onPowerOffNow={setPowerOffNow}
            />
          )}
          <div className="buttons">
            <button type="button" onClick={onClose}>
              Cancel
            </button>
            <button
              type="button"
              className="primary"
              disabled={chosen.length === 0}
              onClick={() => setStep("summary")}
            >
              Next
            </button>
          </div>
        </>
      )}

      {step === "summary" && (
        <>
          {plan === null ? (
            <p className="busy" role="status">
              {busy ?? "Checking"}…
            </p>
          ) : (
            <div className="summary" aria-label="What will happen">
              <ul>
                {plan.restarted &&
                  (powerOffNow ? (
                    <li>
                      {plan.vm} is powered off at once (what the guest had not written to disk is lost), and
                      started again afterwards.
                    </li>
                  ) : (
                    <li>
                      {plan.vm} is asked to shut down and given {timeout} s;{" "}
                      {force
                        ? "if it is still running then, it is powered off"
                        : "if it is still running then, the revert stops and nothing is changed"}
                      . It is started again afterwards.
                    </li>
                  ))}
                <li>
                  A safety snapshot <strong>{plan.safety.name}</strong> keeps what is on{" "}
                  {plan.disks.join(", ")} now.
                </li>
                <li>
                  {plan.disks.join(", ")} {plan.disks.length === 1 ? "is" : "are"} reverted to{" "}
                  <strong>{plan.snapshot.name}</strong> ({dateTime(plan.snapshot.createdAt)}
                  ).
                </li>
                {plan.prunedSafety.length > 0 && (
                  <li>Older safety snapshots are deleted: {plan.prunedSafety.join(", ")}.</li>
                )}
              </ul>
              {plan.definitionChanges === null ? (
                <p className="hint">
                  The VM's settings at snapshot time were not recorded, so changes to them cannot be shown.
                </p>
              ) : plan.definitionChanges.length > 0 ? (
                <div className="changes">
                  <p>
                    The VM's settings changed since the snapshot; reverting disks does not change them back:
                  </p>
                  <ul>
                    {plan.definitionChanges.map((c) => (
                      <li key={c.description}>{c.description}</li>
                    ))}
                  </ul>
                </div>
              ) : (
                <p className="hint">The VM's settings are as they were at the snapshot.</p>
              )}
            </div>
          )}
          {reverting && busy !== null && (
            <p className="revert-status" role="status" aria-live="polite">
              {busy}…
            </p>
          )}
          {error !== null && <ErrorBox error={error} />}
          <div className="buttons">
            <button type="button" onClick={onClose}>
              Cancel
            </button>
            {vm.active && (
              <button type="button" disabled={reverting} onClick={() => (setPlan(null), setStep("choose"))}>
                Back
              </button>
            )}
            <button
              type="button"
              className="primary"
              disabled={plan === null || busy !== null}
              onClick={() => {
                setReverting(true);
                void onPlan(options(), false).then((result) => {
                  setReverting(false);
                  if (result !== null) {
                    setDone(result);
                    setStep("done");
                  }
                });
              }}
            >
              {reverting
                ? snapshot === null
                  ? "Undoing…"
                  : "Reverting…"
                : busy !== null && plan !== null
                  ? `${busy}…`
                  : snapshot === null
                    ? "Undo"
                    : "Revert"}
            </button>
          </div>
        </>
      )}

      {step === "done" && done !== null && (
        <>
          <p role="status">
            {done.disks.join(", ")} {done.disks.length === 1 ? "is" : "are"} back at{" "}
            <strong>{done.snapshot.name}</strong>
            {done.restarted ? ", and the VM is running again." : "."}
          </p>
          <p className="hint">What was there before is kept in the safety snapshot “{done.safety.name}”.</p>
          <div className="buttons">
            <button type="button" onClick={onUndo}>
              Undo this revert
            </button>
            <button type="button" className="primary" onClick={onClose}>
              Close
            </button>
          </div>
        </>
      )}
    </Modal>
  );
}

/**
 * How a running VM is stopped. A guest whose agent does not answer may also ignore the shutdown
 * request (a guest with no OS, or without ACPI support, always does): the wait would run out and
 * the revert fail, so powering it off at once is offered up front, with what that costs.
 */
function StopChoice({
  vmName,
  agent,
  timeout,
  onTimeout,
  force,
  onForce,
  powerOffNow,
  onPowerOffNow,
}: {
  vmName: string;
  /** undefined while asking; null when it could not be asked. */
  agent: boolean | null | undefined;
  timeout: number;
  onTimeout: (seconds: number) => void;
  force: boolean;
  onForce: (force: boolean) => void;
  powerOffNow: boolean;
  onPowerOffNow: (now: boolean) => void;
}) {
  const id = useId();
  return (
    <fieldset>
      <legend>{vmName} is running</legend>
      <p className="hint">It is stopped for the revert and started again afterwards.</p>
      {agent === undefined && (
        <p className="hint" role="status">
          Asking its guest agent…
        </p>
      )}
      {agent === false && (
        <p className="stop-advice" role="note">
          No guest agent answers in {vmName}. If the guest also ignores a shutdown request (one with no OS, or
          without ACPI support, does), a clean shutdown would keep the revert waiting {timeout} s for nothing:
          power it off now instead.
        </p>
      )}
      <label className="check">
        <input
          type="radio"
          name={`${id}-stop`}
          checked={!powerOffNow}
          onChange={() => onPowerOffNow(false)}
        />
        Shut it down cleanly
      </label>
      {!powerOffNow && (
        <div className="stop-wait">
          <label htmlFor={`${id}-timeout`}>Wait for the shutdown (seconds)</label>
          <input
            id={`${id}-timeout`}
            type="number"
            min={1}
            max={3600}
            value={timeout}
            onChange={(e) => onTimeout(Math.max(1, Number(e.target.value) || 1))}
          />
          <label className="check">
            <input type="checkbox" checked={force} onChange={(e) => onForce(e.target.checked)} />
            Power it off if it is still running then
          </label>
        </div>
      )}
      <label className="check">
        <input type="radio" name={`${id}-stop`} checked={powerOffNow} onChange={() => onPowerOffNow(true)} />
        Power it off now, without asking the guest (like pulling the plug: what it had not written to disk is
        lost)
      </label>
    </fieldset>
  );
}

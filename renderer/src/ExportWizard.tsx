import { useId, useState } from "react";

import type {
  ApiError,
  JobView,
  ParamsIn,
  Snapshot,
  Target,
  VmWithSnapshots,
} from "../../core/api/contract.js";
import { dateTime } from "./when.js";
import { diskLabel, formatBytes } from "./format.js";
import { StepButtons, Summary, Wizard, WizardJob } from "./Wizard.js";

export function describeTarget(target: Target): string {
  return target.kind === "dir"
    ? `folder ${target.path} on this computer`
    : `${target.user === undefined ? "" : `${target.user}@`}${target.host ?? "?"}${target.port === undefined ? "" : `:${target.port}`}:${target.path}`;
}

/**
 * Export a snapshot off the host: choose the target and disks, read what will happen, then watch
 * the transfer. The export is listed as good only once every file is verified on the target.
 */
export function ExportWizard({
  vm,
  snapshot,
  targets,
  jobs,
  busy,
  error,
  onStart,
  onCancelJob,
  onClose,
  onAddTarget,
}: {
  vm: VmWithSnapshots;
  snapshot: Snapshot;
  targets: readonly Target[];
  jobs: Readonly<Record<string, JobView>>;
  busy: boolean;
  error: ApiError | null;
  onStart: (params: ParamsIn<"exports.start">) => Promise<JobView | null>;
  onCancelJob: (id: string) => void;
  onClose: () => void;
  onAddTarget: () => void;
}) {
  const id = useId();
  const disks = snapshot.disks.map((d) => d.target);
  const [step, setStep] = useState(0);
  // The targets may still be loading when the wizard opens: until one is chosen, the first one.
  const [picked, setTarget] = useState<string | null>(null);
  const target = picked ?? targets[0]?.name ?? "";
  const [chosen, setChosen] = useState<string[]>(disks);
  const [limit, setLimit] = useState("");
  const [jobId, setJobId] = useState<string | null>(null);
  const job = jobId === null ? undefined : jobs[jobId];
  const limitMiB = limit.trim() === "" ? null : Number(limit);
  const limitValid = limitMiB === null || (Number.isFinite(limitMiB) && limitMiB > 0);
  const size = vm.disks
    .filter((d) => chosen.includes(d.target))
    .reduce((sum, d) => sum + (d.virtualSize ?? 0), 0);
  const chosenTarget = targets.find((t) => t.name === target);

  const start = async (): Promise<void> => {
    const started = await onStart({
      host: vm.host,
      vm: vm.name,
      snapshot: snapshot.tag,
      target,
      ...(chosen.length === disks.length ? {} : { disks: chosen }),
      ...(limitMiB === null ? {} : { bwlimitKiB: Math.round(limitMiB * 1024) }),
    });
    if (started !== null) {
      setJobId(started.id);
      setStep(2);
    }
  };

  return (
    <Wizard
      title={`Export “${snapshot.name}” of ${vm.name}`}
      steps={["Choose", "Check", "Export"]}
      current={step}
      error={error}
      onClose={onClose}
      buttons={
        <StepButtons
          step={step}
          busy={busy}
          canGoOn={chosenTarget !== undefined && chosen.length > 0 && limitValid}
          action="Export"
          job={job}
          onNext={() => setStep(1)}
          onBack={() => setStep(0)}
          onAct={() => void start()}
          onClose={onClose}
        />
      }
    >
      {step === 0 &&
        (targets.length === 0 ? (
          <p className="empty">
            There is no export target yet.{" "}
            <button type="button" className="link-button" onClick={onAddTarget}>
              Add a folder or an SSH target in Settings
            </button>
            .
          </p>
        ) : (
          <>
            <label htmlFor={`${id}-target`}>Target</label>
            <select id={`${id}-target`} value={target} onChange={(e) => setTarget(e.target.value)}>
              {targets.map((t) => (
                <option key={t.name} value={t.name}>
                  {t.name} — {describeTarget(t)}
                </option>
              ))}
            </select>
            <fieldset>
              <legend>Disks</legend>
              {disks.map((d) => (
                <label key={d} className="check">
                  <input
                    type="checkbox"
                    checked={chosen.includes(d)}
                    onChange={(e) =>
                      setChosen(e.target.checked ? [...chosen, d] : chosen.filter((t) => t !== d))
                    }
                  />
                  {diskLabel(d, vm.disks.find((x) => x.target === d)?.role)}
                </label>
              ))}
            </fieldset>
            <label htmlFor={`${id}-limit`}>Bandwidth limit in MiB/s (empty: no limit)</label>
            <input
              id={`${id}-limit`}
              inputMode="decimal"
              value={limit}
              onChange={(e) => setLimit(e.target.value)}
              aria-invalid={!limitValid}
            />
            {!limitValid && <p className="field-error">Give a number above 0, or leave it empty.</p>}
          </>
        ))}
      {step === 1 && chosenTarget !== undefined && (
        <>
          <Summary
            rows={[
              ["Snapshot", `${snapshot.name} (${dateTime(snapshot.createdAt)})`],
              ["Disks", `${chosen.join(", ")} — up to ${formatBytes(size)} before compression`],
              ["Target", `${chosenTarget.name}: ${describeTarget(chosenTarget)}`],
              ["Bandwidth", limitMiB === null ? "no limit" : `${limitMiB} MiB/s`],
            ]}
          />
          <p className="hint">
            {vm.active ? "The VM keeps running: " : ""}the snapshot is read, never written, and streamed
            straight to the target: no copy is staged on the host. The first export of this VM on the target
            holds every disk in full; later ones hold only what changed since the previous one, which they are
            built on. The export counts as good only once every file is verified on the target.
          </p>
        </>
      )}
      {step === 2 && job !== undefined && (
        <>
          <WizardJob job={job} onCancel={onCancelJob} />
          {job.state === "succeeded" && (
            <p className="done" role="status">
              Exported and verified on {target} as{" "}
              {(job.kind === "export" ? job.result?.id : undefined) ?? "a new export"}.
            </p>
          )}
          {job.state === "succeeded" &&
            job.kind === "export" &&
            job.result !== undefined &&
            job.result !== null && (
              <ul className="hint">
                {job.result.notes.map((note) => (
                  <li key={note}>{note.charAt(0).toUpperCase() + note.slice(1)}</li>
                ))}
              </ul>
            )}
          {job.state === "cancelled" && (
            <p className="hint">
              Cancelled. What arrived stays as a partial export; exporting again resumes it.
            </p>
          )}
        </>
      )}
    </Wizard>
  );
}

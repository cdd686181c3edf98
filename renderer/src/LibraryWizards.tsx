/**
 * The wizards of the library (templates and volumes), each step with a summary (the plan method's
 * answer) before anything happens:
 *   snapshot → template (root disk) → new VM, and snapshot → volume (additional disk) → attached.
 * Templates and volumes stay on the VM's host; the source snapshot is only read.
 */
import { useId, useState } from "react";

import type { LibraryItem, ListedHost, Snapshot, VmWithSnapshots } from "../../core/api/contract.js";
import { formatBytes } from "./format.js";
import { StepButtons, Summary, Wizard, WizardJob, usePlannedJob, type WizardActions } from "./Wizard.js";

export type LibraryKind = LibraryItem["kind"];

/** Which disks of a snapshot can become a template (root) or a volume (additional). */
export function disksFor(vm: VmWithSnapshots, snapshot: Snapshot, kind: LibraryKind): string[] {
  const role = kind === "template" ? "root" : "additional";
  return snapshot.disks
    .map((d) => d.target)
    .filter((t) => vm.disks.find((d) => d.target === t)?.role === role);
}

function validName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name);
}

/** Snapshot → template or volume in the library; at the end it offers the next wizard (new VM, attach). */
export function AddToLibraryWizard({
  vm,
  snapshot,
  onNext,
  ...actions
}: WizardActions & {
  vm: VmWithSnapshots;
  snapshot: Snapshot;
  /** Opens the follow-up wizard for what was made. */
  onNext: (kind: LibraryKind, name: string) => void;
}) {
  const id = useId();
  const kinds = (["template", "volume"] as const).filter((k) => disksFor(vm, snapshot, k).length > 0);
  const [kind, setKind] = useState<LibraryKind>(kinds[0] ?? "template");
  const disks = disksFor(vm, snapshot, kind);
  const [name, setName] = useState(
    `${vm.name}-${snapshot.name}`
      .replace(/[^A-Za-z0-9._-]+/g, "-")
      .replace(/^[^A-Za-z0-9]+/, "")
      .slice(0, 60),
  );
  const [pickedDisk, setDisk] = useState<string | null>(null);
  const disk = pickedDisk !== null && disks.includes(pickedDisk) ? pickedDisk : (disks[0] ?? "");
  const noun = kind === "template" ? "template" : "volume";
  const { step, setStep, plan, job, check, start } = usePlannedJob(
    actions,
    { plan: "library.planCreate", start: "library.create" },
    { checking: "Checking", starting: `Making the ${noun}` },
  );
  const params = { host: vm.host, vm: vm.name, snapshot: snapshot.tag, kind, name, disk };

  return (
    <Wizard
      title={`Add “${snapshot.name}” of ${vm.name} to the library`}
      steps={[kind === "template" ? "Template" : "Volume", "Check", "Copy"]}
      current={step}
      error={actions.error}
      onClose={actions.onClose}
      buttons={
        <StepButtons
          step={step}
          busy={actions.busy}
          canGoOn={validName(name) && disk !== ""}
          action={`Make ${noun}`}
          job={job}
          onNext={() => void check(params)}
          onBack={() => setStep(0)}
          onAct={() => void start(params)}
          onClose={actions.onClose}
          then={
            <button type="button" className="primary" onClick={() => onNext(kind, name)}>
              {kind === "template" ? "Create a VM from it…" : "Attach it to a VM…"}
            </button>
          }
        />
      }
    >
      {step === 0 &&
        (kinds.length === 0 ? (
          <p className="empty">This snapshot has no disk with a known role to add to the library.</p>
        ) : (
          <>
            <fieldset>
              <legend>Make</legend>
              {kinds.map((k) => (
                <label key={k} className="check">
                  <input type="radio" name={`${id}-kind`} checked={kind === k} onChange={() => setKind(k)} />
                  {k === "template"
                    ? `a template for new VMs, from the root disk ${disksFor(vm, snapshot, k).join(", ")}`
                    : `a volume to attach to a VM, from the data disk ${disksFor(vm, snapshot, k).join(" or ")}`}
                </label>
              ))}
            </fieldset>
            <label htmlFor={`${id}-name`}>Name of the {noun}</label>
            <input
              id={`${id}-name`}
              value={name}
              maxLength={63}
              onChange={(e) => setName(e.target.value)}
              aria-invalid={!validName(name)}
              autoFocus
            />
            {!validName(name) && (
              <p className="field-error">
                Letters, digits, dot, dash and underscore; start with a letter or digit.
              </p>
            )}
            {disks.length > 1 && (
              <>
                <label htmlFor={`${id}-disk`}>Disk</label>
                <select id={`${id}-disk`} value={disk} onChange={(e) => setDisk(e.target.value)}>
                  {disks.map((d) => (
                    <option key={d}>{d}</option>
                  ))}
                </select>
              </>
            )}
          </>
        ))}
      {step === 1 && plan !== null && (
        <>
          <Summary
            rows={[
              ["From", `${vm.name}, snapshot “${snapshot.name}”, disk ${disk}`],
              ["New image", plan.image],
              ["Size", `${formatBytes(plan.virtualSize)} virtual`],
              ["Host", vm.host],
            ]}
          />
          <p className="hint">
            {kind === "template"
              ? "The template is a read-only standalone copy of the disk as it was; new VMs start from it as linked clones or full copies."
              : "The volume is a standalone copy of the disk as it was; attach it to any VM on this host, read-only unless you say otherwise."}{" "}
            The snapshot and the VM are not changed.
          </p>
        </>
      )}
      {step === 2 && job !== undefined && (
        <>
          <WizardJob job={job} onCancel={actions.cancelJob} />
          {job.state === "succeeded" && (
            <p className="done" role="status">
              {kind === "template" ? "Template" : "Volume"} {name} is ready on {vm.host}.
            </p>
          )}
        </>
      )}
    </Wizard>
  );
}

/** Template → new VM: a linked clone (fast, small) or a full copy, with its own identity. */
export function NewVmWizard({
  host,
  template,
  ...actions
}: WizardActions & { host: string; template: string }) {
  const id = useId();
  const [name, setName] = useState(`${template}-vm`.slice(0, 60));
  const [full, setFull] = useState(false);
  const [start, setStart] = useState(false);
  const {
    step,
    setStep,
    plan,
    job,
    check,
    start: create,
  } = usePlannedJob(
    actions,
    { plan: "vms.planCreate", start: "vms.create" },
    { checking: "Checking", starting: "Creating the VM" },
  );
  const params = { host, template, name, full, start };
  const nameValid = /^[^/\0\n]{1,200}$/.test(name) && name.trim() === name;

  return (
    <Wizard
      title={`New VM from template ${template}`}
      steps={["VM", "Check", "Create"]}
      current={step}
      error={actions.error}
      onClose={actions.onClose}
      buttons={
        <StepButtons
          step={step}
          busy={actions.busy}
          canGoOn={nameValid}
          action="Create VM"
          job={job}
          onNext={() => void check(params)}
          onBack={() => setStep(0)}
          onAct={() => void create(params)}
          onClose={actions.onClose}
        />
      }
    >
      {step === 0 && (
        <>
          <label htmlFor={`${id}-name`}>Name of the new VM</label>
          <input id={`${id}-name`} value={name} onChange={(e) => setName(e.target.value)} autoFocus />
          {!nameValid && <p className="field-error">Give a name without slashes or spaces at either end.</p>}
          <label className="check">
            <input type="checkbox" checked={full} onChange={(e) => setFull(e.target.checked)} />
            Full copy (independent of the template; slower and as big as the disk)
          </label>
          <label className="check">
            <input type="checkbox" checked={start} onChange={(e) => setStart(e.target.checked)} />
            Start it when it is created
          </label>
        </>
      )}
      {step === 1 && plan !== null && (
        <>
          <Summary
            rows={[
              ["VM", `${plan.vm} on ${host}`],
              ["Disk", `${plan.disk} (${plan.linked ? "linked clone of the template" : "full copy"})`],
              ["Then", start ? "started" : "left shut off"],
            ]}
          />
          <p className="hint">
            The new VM gets its own name, UUID and MAC addresses. Snapkeep records that it made it, so it can
            delete it later; the template stays.
          </p>
        </>
      )}
      {step === 2 && job !== undefined && (
        <>
          <WizardJob job={job} onCancel={actions.cancelJob} />
          {job.state === "succeeded" && (
            <p className="done" role="status">
              VM {name} is there on {host}.
            </p>
          )}
        </>
      )}
    </Wizard>
  );
}

/** Volume → a VM on the same host, read-only unless asked; hot-plugged when the VM runs. */
export function AttachVolumeWizard({
  host,
  volume,
  hosts,
  onAttached,
  ...actions
}: WizardActions & {
  host: string;
  volume: string;
  hosts: readonly ListedHost[];
  onAttached: () => void;
}) {
  const id = useId();
  const vms = hosts.find((h) => h.host === host)?.vms ?? [];
  const [step, setStep] = useState(0);
  const [vm, setVm] = useState(vms[0]?.name ?? "");
  const [writable, setWritable] = useState(false);
  const [attached, setAttached] = useState<string | null>(null);
  const running = vms.find((v) => v.name === vm)?.active === true;

  const attach = async (): Promise<void> => {
    const result = await actions.call("Attaching the volume", "library.attach", {
      host,
      volume,
      vm,
      writable,
    });
    if (result !== null) {
      setAttached(result.target);
      setStep(2);
      onAttached();
    }
  };
  return (
    <Wizard
      title={`Attach volume ${volume}`}
      steps={["VM", "Check", "Done"]}
      current={step}
      error={actions.error}
      onClose={actions.onClose}
      buttons={
        step === 0 ? (
          <>
            <button type="button" onClick={actions.onClose}>
              Cancel
            </button>
            <button type="button" className="primary" disabled={vm === ""} onClick={() => setStep(1)}>
              Next
            </button>
          </>
        ) : step === 1 ? (
          <>
            <button type="button" onClick={() => setStep(0)}>
              Back
            </button>
            <button type="button" className="primary" disabled={actions.busy} onClick={() => void attach()}>
              {actions.busy ? "Attaching…" : "Attach"}
            </button>
          </>
        ) : (
          <button type="button" className="primary" onClick={actions.onClose}>
            Close
          </button>
        )
      }
    >
      {step === 0 &&
        (vms.length === 0 ? (
          <p className="empty">There are no VMs on {host} to attach it to.</p>
        ) : (
          <>
            <label htmlFor={`${id}-vm`}>VM on {host}</label>
            <select id={`${id}-vm`} value={vm} onChange={(e) => setVm(e.target.value)}>
              {vms.map((v) => (
                <option key={v.uuid} value={v.name}>
                  {v.name} ({v.state})
                </option>
              ))}
            </select>
            <label className="check">
              <input type="checkbox" checked={writable} onChange={(e) => setWritable(e.target.checked)} />
              Writable (only one VM may write to a volume)
            </label>
          </>
        ))}
      {step === 1 && (
        <>
          <Summary
            rows={[
              ["Volume", volume],
              ["VM", `${vm} on ${host}`],
              ["Access", writable ? "read and write" : "read-only"],
              ["When", running ? "now, while it runs (and in its saved definition)" : "in its definition"],
            ]}
          />
          <p className="hint">
            It gets the next free disk name (vdb, vdc, …). Nothing on the VM&apos;s other disks changes.
          </p>
        </>
      )}
      {step === 2 && attached !== null && (
        <p className="done" role="status">
          Attached to {vm} as {attached}.
        </p>
      )}
    </Wizard>
  );
}

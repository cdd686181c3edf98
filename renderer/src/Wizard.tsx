import { useId, useState, type ReactNode } from "react";

import type {
  AnyParamsIn,
  AnyResult,
  ApiError,
  JobMethod,
  JobView,
  Method,
} from "../../core/api/contract.js";
import type { UiSlice } from "./store.js";
import { ErrorBox } from "./ErrorBox.js";
import { JobRow } from "./JobsPanel.js";
import { Modal } from "./Modal.js";

/**
 * The frame every wizard shares: a modal dialog with its title, the steps with the current one
 * marked, the step's content, the error of the last action, and the buttons. Escape closes it; a
 * job a wizard started goes on in the jobs panel.
 */
export function Wizard({
  title,
  steps,
  current,
  error,
  onClose,
  children,
  buttons,
}: {
  title: string;
  steps: readonly string[];
  current: number;
  error: ApiError | null;
  onClose: () => void;
  children: ReactNode;
  buttons: ReactNode;
}) {
  const id = useId();
  return (
    <Modal labelledBy={`${id}-title`} onClose={onClose}>
      <h2 id={`${id}-title`}>{title}</h2>
      <ol className="steps" aria-label="Steps">
        {steps.map((step, i) => (
          <li key={step} aria-current={i === current ? "step" : undefined}>
            {step}
          </li>
        ))}
      </ol>
      {children}
      {error !== null && <ErrorBox error={error} />}
      <div className="buttons">{buttons}</div>
    </Modal>
  );
}

/** A job started by a wizard, as it runs and once it ended. */
export function WizardJob({ job, onCancel }: { job: JobView; onCancel: (id: string) => void }) {
  return (
    <ul className="jobs wizard-job">
      <JobRow job={job} onCancel={onCancel} />
    </ul>
  );
}

/** A labelled row of the summary a wizard shows before anything happens. */
export function Summary({ rows }: { rows: readonly (readonly [string, ReactNode])[] }) {
  return (
    <dl className="summary">
      {rows.map(([label, value]) => (
        <div key={label}>
          <dt>{label}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

/** What a wizard needs from the app to plan and start its work. */
export interface WizardActions {
  readonly jobs: Readonly<Record<string, JobView>>;
  readonly busy: boolean;
  readonly error: ApiError | null;
  call: UiSlice["call"];
  startJob<M extends JobMethod>(busy: string, method: M, params: AnyParamsIn<M>): Promise<JobView | null>;
  cancelJob(id: string): void;
  onClose(): void;
}

/**
 * The three steps most wizards share: choose (0), check the plan (1), watch the job (2). The plan
 * is the plan method's answer (`library.planCreate`: nothing changes); the job is its start method
 * (`library.create`) with the same parameters, so what the summary showed is what runs.
 */
export function usePlannedJob<P extends Method, S extends JobMethod>(
  actions: WizardActions,
  methods: { readonly plan: P; readonly start: S },
  labels: { readonly checking: string; readonly starting: string },
) {
  const [step, setStep] = useState(0);
  const [plan, setPlan] = useState<AnyResult<P> | null>(null);
  const [jobId, setJobId] = useState<string | null>(null);
  return {
    step,
    setStep,
    plan,
    job: jobId === null ? undefined : actions.jobs[jobId],
    check: async (params: AnyParamsIn<P>): Promise<void> => {
      const planned = await actions.call(labels.checking, methods.plan, params);
      if (planned !== null) {
        setPlan(() => planned);
        setStep(1);
      }
    },
    start: async (params: AnyParamsIn<S>): Promise<void> => {
      const started = await actions.startJob(labels.starting, methods.start, params);
      if (started !== null) {
        setJobId(started.id);
        setStep(2);
      }
    },
  };
}

/**
 * The buttons of a three-step wizard: Cancel / Next, Back / the action, then Close (or what the
 * finished step offers next).
 */
export function StepButtons({
  step,
  busy,
  canGoOn,
  action,
  job,
  onNext,
  onBack,
  onAct,
  onClose,
  then,
}: {
  step: number;
  busy: boolean;
  /** Whether the first step's choices are complete. */
  canGoOn: boolean;
  /** The label of the step that does the work ("Export", "Make template"). */
  action: string;
  job: JobView | undefined;
  onNext: () => void;
  onBack: () => void;
  onAct: () => void;
  onClose: () => void;
  /** Offered beside Close once the job succeeded, e.g. the next wizard. */
  then?: ReactNode;
}) {
  if (step === 0) {
    return (
      <>
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="primary" disabled={busy || !canGoOn} onClick={onNext}>
          {busy ? "Checking…" : "Next"}
        </button>
      </>
    );
  }
  if (step === 1) {
    return (
      <>
        <button type="button" onClick={onBack}>
          Back
        </button>
        <button type="button" className="primary" disabled={busy} onClick={onAct}>
          {busy ? "Starting…" : action}
        </button>
      </>
    );
  }
  const offer = job?.state === "succeeded" ? then : undefined;
  return (
    <>
      <button type="button" className={offer === undefined ? "primary" : undefined} onClick={onClose}>
        {job?.state === "running" ? "Close (it keeps running)" : "Close"}
      </button>
      {offer}
    </>
  );
}

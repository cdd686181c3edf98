import { useEffect, useId, useRef, type ReactNode } from "react";

import type { ApiError, JobView } from "./protocol.js";
import { ErrorBox } from "./ErrorBox.js";
import { JobRow } from "./JobsPanel.js";

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
  const form = useRef<HTMLFormElement>(null);
  // Keyboard users land in the dialog when it opens and back where they were when it closes.
  useEffect(() => {
    const before = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    if (!form.current?.contains(document.activeElement)) {
      form.current?.querySelector<HTMLElement>("input, select, textarea, button.primary, button")?.focus();
    }
    return () => before?.focus();
  }, []);
  return (
    <div className="modal" role="dialog" aria-modal="true" aria-labelledby={`${id}-title`}>
      <form
        ref={form}
        onSubmit={(e) => e.preventDefault()}
        onKeyDown={(e) => {
          if (e.key === "Escape") {
            onClose();
          }
        }}
      >
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
      </form>
    </div>
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

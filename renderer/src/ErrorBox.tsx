import type { ApiError } from "../../core/api/contract.js";

/** An error as a person reads it: the sentence, then what to do, announced to screen readers. */
export function ErrorBox({ error, onDismiss }: { error: ApiError; onDismiss?: () => void }) {
  return (
    <div className="error" role="alert">
      <p>{error.message}</p>
      {error.hint !== null && <p className="hint">{error.hint}</p>}
      {onDismiss !== undefined && (
        <button type="button" onClick={onDismiss}>
          Dismiss
        </button>
      )}
    </div>
  );
}

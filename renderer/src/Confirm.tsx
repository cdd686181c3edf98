import { useId, useRef, useState, type ReactNode } from "react";

import { Modal } from "./Modal.js";

/** What a confirmation asks: a title, what happens in a sentence or two, and the button's verb. */
export interface ConfirmRequest {
  readonly title: string;
  readonly body: ReactNode;
  /** The button that does it, named for what it does ("Delete snapshot"), never "OK". */
  readonly action: string;
  /** Red button for what cannot be undone. */
  readonly danger?: boolean;
}

/**
 * The app's own confirmation dialog, in place of the browser's `confirm()`: that one blocks the
 * page, cannot say what a button does, looks like a different program in each browser, and shows
 * the page's address as its title in web mode. `ask` resolves true when the person chose the
 * action, false on Cancel or Escape; render `dialog` where the component renders.
 */
export function useConfirm(): { dialog: ReactNode; ask: (request: ConfirmRequest) => Promise<boolean> } {
  const [open, setOpen] = useState<ConfirmRequest | null>(null);
  const answer = useRef<((yes: boolean) => void) | null>(null);
  const id = useId();
  const settle = (yes: boolean): void => {
    answer.current?.(yes);
    answer.current = null;
    setOpen(null);
  };
  const ask = (request: ConfirmRequest): Promise<boolean> => {
    // A second question while one is open answers the first with "no": one dialog at a time.
    answer.current?.(false);
    setOpen(request);
    return new Promise((resolve) => {
      answer.current = resolve;
    });
  };
  const dialog =
    open === null ? null : (
      <Modal
        labelledBy={`${id}-title`}
        onClose={() => settle(false)}
        onSubmit={(e) => {
          e.preventDefault();
          settle(true);
        }}
        className="confirm"
      >
        <h2 id={`${id}-title`}>{open.title}</h2>
        <div className="confirm-body">{open.body}</div>
        <div className="buttons">
          {/* Cancel first in the tab order and focused: Enter on a stray key press changes nothing. */}
          <button type="button" onClick={() => settle(false)} autoFocus>
            Cancel
          </button>
          <button type="submit" className={open.danger === true ? "danger" : "primary"}>
            {open.action}
          </button>
        </div>
      </Modal>
    );
  return { dialog, ask };
}

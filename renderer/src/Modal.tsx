import { useEffect, useRef, useState, type FormEvent, type ReactNode } from "react";

/**
 * A modal dialog around a form: it takes the focus when it opens and gives it back when it closes,
 * keeps Tab inside itself (the page behind is out of reach), and Escape closes it.
 */
export function Modal({
  labelledBy,
  onClose,
  onSubmit,
  className,
  children,
}: {
  labelledBy: string;
  onClose: () => void;
  onSubmit?: (event: FormEvent<HTMLFormElement>) => void;
  className?: string;
  children: ReactNode;
}) {
  const form = useRef<HTMLFormElement>(null);
  // Read while rendering the first time, before a child's autoFocus takes the focus at commit:
  // read in the effect, it would be the dialog's own field, and closing gave the focus to nothing.
  const [before] = useState(() =>
    document.activeElement instanceof HTMLElement ? document.activeElement : null,
  );
  useEffect(() => {
    if (!form.current?.contains(document.activeElement)) {
      form.current?.querySelector<HTMLElement>("input, select, textarea, button.primary, button")?.focus();
    }
    return () => before?.focus();
  }, [before]);
  return (
    <div className="modal" role="dialog" aria-modal="true" aria-labelledby={labelledBy}>
      <form
        ref={form}
        className={className}
        onSubmit={onSubmit ?? ((e) => e.preventDefault())}
        onKeyDown={(e) => {
          if (e.key === "Escape") {
            e.preventDefault();
            onClose();
          } else if (e.key === "Tab") {
            keepFocusInside(e.currentTarget, e);
          }
        }}
      >
        {children}
      </form>
    </div>
  );
}

/** Tab from the last control goes to the first and back. */
export function keepFocusInside(
  form: HTMLFormElement,
  event: { shiftKey: boolean; preventDefault(): void },
): void {
  // Of a radio group only the checked radio takes the Tab stop.
  const tabbable = [...form.querySelectorAll<HTMLElement>("input, select, textarea, button, summary")].filter(
    (el) => !el.matches(":disabled") && !el.matches("input[type=radio]:not(:checked)"),
  );
  const first = tabbable[0];
  const last = tabbable.at(-1);
  if (event.shiftKey && document.activeElement === first) {
    event.preventDefault();
    last?.focus();
  } else if (!event.shiftKey && document.activeElement === last) {
    event.preventDefault();
    first?.focus();
  }
}

import { useEffect, useRef, useState } from "react";

export interface MenuItem {
  readonly label: string;
  readonly onSelect: () => void;
  readonly disabled?: boolean;
  /** Why it is disabled, shown as the item's tooltip. */
  readonly why?: string;
  readonly danger?: boolean;
}

/**
 * A row's actions behind one button: a table keeps its width at any window size, and the row's
 * name stays in view beside the menu that acts on it. The menu is fixed to the viewport, not the
 * table, so a scrolling (windowed) table never clips it. Keyboard: Enter/Space/ArrowDown open it
 * on the first item, arrows move, Escape closes and gives the focus back, Tab leaves it.
 */
export function RowMenu({ label, items }: { label: string; items: readonly MenuItem[] }) {
  const [at, setAt] = useState<{ top: number; right: number; up: boolean } | null>(null);
  const button = useRef<HTMLButtonElement>(null);
  const menu = useRef<HTMLUListElement>(null);
  const close = (focusButton: boolean): void => {
    setAt(null);
    if (focusButton) {
      button.current?.focus();
    }
  };
  const isOpen = at !== null;
  // The first item takes the focus when the menu opens (not again when it follows a scroll).
  useEffect(() => {
    if (isOpen) {
      menu.current?.querySelector<HTMLButtonElement>("button:not(:disabled)")?.focus();
    }
  }, [isOpen]);
  useEffect(() => {
    if (at === null) {
      return;
    }
    const outside = (e: Event): void => {
      if (!(e.target instanceof Node) || !menu.current?.contains(e.target)) {
        if (e.target !== button.current) {
          setAt(null);
        }
      }
    };
    // Scrolling moves the row: the menu follows its button, and closes once the button is out of
    // view. (Closing on any scroll closed it at once when the click had first scrolled the button
    // into view: that scroll event comes a frame after the click.)
    const away = (e: Event): void => {
      if (e.target instanceof Node && menu.current?.contains(e.target)) {
        return;
      }
      const placed = place();
      if (placed === null) {
        setAt(null);
      } else if (placed.top !== at.top || placed.right !== at.right || placed.up !== at.up) {
        setAt(placed);
      }
    };
    document.addEventListener("mousedown", outside);
    window.addEventListener("scroll", away, true);
    window.addEventListener("resize", away);
    return () => {
      document.removeEventListener("mousedown", outside);
      window.removeEventListener("scroll", away, true);
      window.removeEventListener("resize", away);
    };
  }, [at]);
  /** Where the menu goes for the button as it is now; null when the button is out of view. */
  const place = (): { top: number; right: number; up: boolean } | null => {
    const rect = button.current?.getBoundingClientRect();
    if (rect === undefined || rect.bottom < 0 || rect.top > window.innerHeight) {
      return null;
    }
    // Below the button, or above it when the row is near the bottom of the window.
    const up = rect.bottom + items.length * 34 + 16 > window.innerHeight;
    return { top: up ? rect.top : rect.bottom, right: window.innerWidth - rect.right, up };
  };
  const open = (): void => {
    setAt(place());
  };
  const move = (by: number): void => {
    const enabled = [...(menu.current?.querySelectorAll<HTMLButtonElement>("button:not(:disabled)") ?? [])];
    const index = enabled.findIndex((b) => b === document.activeElement);
    enabled[(index + by + enabled.length) % enabled.length]?.focus();
  };
  return (
    <>
      <button
        ref={button}
        type="button"
        className="row-menu-button"
        aria-label={label}
        title={label}
        aria-haspopup="menu"
        aria-expanded={at !== null}
        onClick={(e) => {
          e.stopPropagation();
          if (at === null) {
            open();
          } else {
            close(false);
          }
        }}
        onKeyDown={(e) => {
          if (e.key === "ArrowDown" && at === null) {
            e.preventDefault();
            open();
          }
        }}
      >
        ⋯
      </button>
      {at !== null && (
        <ul
          ref={menu}
          role="menu"
          aria-label={label}
          className="row-menu"
          style={
            at.up
              ? { bottom: window.innerHeight - at.top + 4, right: at.right }
              : { top: at.top + 4, right: at.right }
          }
          onClick={(e) => e.stopPropagation()}
          onKeyDown={(e) => {
            if (e.key === "Escape") {
              e.preventDefault();
              e.stopPropagation();
              close(true);
            } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
              e.preventDefault();
              move(e.key === "ArrowDown" ? 1 : -1);
            } else if (e.key === "Tab") {
              close(false);
            }
          }}
        >
          {items.map((item) => (
            <li key={item.label} role="none">
              <button
                type="button"
                role="menuitem"
                className={item.danger === true ? "danger" : undefined}
                disabled={item.disabled === true}
                title={item.disabled === true ? item.why : undefined}
                onClick={() => {
                  close(true);
                  item.onSelect();
                }}
              >
                {item.label}
              </button>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

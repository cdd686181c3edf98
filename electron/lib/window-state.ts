/**
 * The window opens where the user left it, without Electron: what is remembered (the window's size
 * and place in its normal state, and whether it was maximized), where it may open given the
 * displays there are now, and when a change is written. electron/main.ts reads the window and the
 * displays and hands them in.
 */
import { z } from "zod";

import { describeError } from "../../core/errors.js";
import type { TimerPort } from "../../core/infra/timers.js";

/** Screen coordinates are whole pixels; a size or place beyond these is no real screen's. */
const COORDINATE = z.number().int().min(-1_000_000).max(1_000_000);
const LENGTH = z.number().int().min(1).max(1_000_000);

/** As stored: the bounds the window has when neither maximized nor minimized, and whether it was maximized. */
export const windowStateSchema = z.object({
  x: COORDINATE,
  y: COORDINATE,
  width: LENGTH,
  height: LENGTH,
  maximized: z.boolean(),
});

export type WindowState = z.infer<typeof windowStateSchema>;

export interface Rectangle {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** The displays there are now, by their work areas (without panels and docks); `primary` is one of them. */
export interface Displays {
  readonly workAreas: readonly Rectangle[];
  readonly primary: Rectangle;
}

/** What BrowserWindow is created with: no x and y means centred by Electron. */
export interface WindowPlacement {
  readonly bounds: {
    readonly width: number;
    readonly height: number;
    readonly x?: number;
    readonly y?: number;
  };
  readonly maximized: boolean;
}

export const DEFAULT_WINDOW_SIZE = { width: 1200, height: 800 } as const;
/** Smaller than this, the UI is not usable; a remembered size below it is grown. */
export const MIN_WINDOW_SIZE = { width: 480, height: 360 } as const;
/** The band at the top of the window that must be on a display, so that it can be grabbed. */
const TITLE_BAR_HEIGHT = 32;
/** How much of that band's width must be on the display. */
const GRABBABLE_WIDTH = 120;

/**
 * Where the window opens. A remembered place is kept only while the top of the window (its title
 * bar) lies on one of today's displays: a window left on a monitor that has since been unplugged,
 * or moved above the top of the screen, opens centred instead of out of reach. Its size is kept
 * but never larger than the display it opens on.
 */
export function windowPlacement(saved: WindowState | undefined, displays: Displays): WindowPlacement {
  if (saved === undefined) {
    return { bounds: fitted(DEFAULT_WINDOW_SIZE, displays.primary), maximized: false };
  }
  // Judged at the size it will open with: a remembered size below the minimum grows first.
  const grown = {
    ...saved,
    width: Math.max(saved.width, MIN_WINDOW_SIZE.width),
    height: Math.max(saved.height, MIN_WINDOW_SIZE.height),
  };
  const home = displays.workAreas.find((area) => titleBarOn(grown, area));
  if (home === undefined) {
    return { bounds: fitted(saved, displays.primary), maximized: saved.maximized };
  }
  return { bounds: { x: saved.x, y: saved.y, ...fitted(saved, home) }, maximized: saved.maximized };
}

function titleBarOn(window: Rectangle, area: Rectangle): boolean {
  const top = window.y >= area.y && window.y + TITLE_BAR_HEIGHT <= area.y + area.height;
  const overlap = Math.min(window.x + window.width, area.x + area.width) - Math.max(window.x, area.x);
  return top && overlap >= GRABBABLE_WIDTH;
}

function fitted(size: { width: number; height: number }, area: Rectangle): { width: number; height: number } {
  const clamp = (wanted: number, least: number, most: number): number =>
    Math.max(Math.min(wanted, most), Math.min(least, most));
  return {
    width: clamp(size.width, MIN_WINDOW_SIZE.width, area.width),
    height: clamp(size.height, MIN_WINDOW_SIZE.height, area.height),
  };
}

/** Where window states are kept: the desktop settings (see desktop-settings.ts). */
export interface WindowStateHolder {
  read(): WindowState | undefined;
  write(state: WindowState): void;
}

/** A move or resize is written once the window has kept still this long: dragging fires many. */
export const WINDOW_SETTLE_MS = 1500;

/**
 * Remembers the window's state as it changes. Changes are written after the window has settled
 * and at once when it is hidden or the app quits (`flush`); a state equal to the stored one is not
 * written again. A failed write is logged: the window's place is not worth an error dialog.
 */
export class WindowMemory {
  readonly #holder: WindowStateHolder;
  readonly #timers: TimerPort;
  readonly #now: () => Date;
  readonly #log: (line: string) => void;
  #pending: WindowState | undefined;
  #timer: { cancel(): void } | undefined;

  constructor(options: {
    holder: WindowStateHolder;
    timers: TimerPort;
    now: () => Date;
    log: (line: string) => void;
  }) {
    this.#holder = options.holder;
    this.#timers = options.timers;
    this.#now = options.now;
    this.#log = options.log;
  }

  placement(displays: Displays): WindowPlacement {
    return windowPlacement(this.#pending ?? this.#holder.read(), displays);
  }

  /** The window moved, was resized, maximized or restored: `bounds` are its normal-state bounds. */
  changed(bounds: Rectangle, maximized: boolean): void {
    const state = windowStateSchema.safeParse({
      x: Math.round(bounds.x),
      y: Math.round(bounds.y),
      width: Math.round(bounds.width),
      height: Math.round(bounds.height),
      maximized,
    });
    if (!state.success) {
      return;
    }
    this.#pending = state.data;
    this.#timer?.cancel();
    this.#timer = this.#timers.at(new Date(this.#now().getTime() + WINDOW_SETTLE_MS), () => this.flush());
  }

  /** Writes a pending change now. */
  flush(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending === undefined || sameState(pending, this.#holder.read())) {
      return;
    }
    try {
      this.#holder.write(pending);
    } catch (error) {
      this.#log(`The window's size and place could not be remembered: ${describeError(error)}`);
    }
  }
}

function sameState(a: WindowState, b: WindowState | undefined): boolean {
  return (
    b !== undefined &&
    a.x === b.x &&
    a.y === b.y &&
    a.width === b.width &&
    a.height === b.height &&
    a.maximized === b.maximized
  );
}

import { describe, expect, it } from "vitest";

import type { TimerPort } from "../../core/infra/timers.js";
import {
  DEFAULT_WINDOW_SIZE,
  WINDOW_SETTLE_MS,
  WindowMemory,
  windowPlacement,
  type Displays,
  type WindowState,
} from "../../electron/lib/window-state.js";

const laptop = { x: 0, y: 0, width: 1920, height: 1050 };
/** A second monitor to the right of the laptop's screen. */
const external = { x: 1920, y: 0, width: 2560, height: 1400 };
const oneScreen: Displays = { workAreas: [laptop], primary: laptop };
const twoScreens: Displays = { workAreas: [laptop, external], primary: laptop };
const state = (over: Partial<WindowState> = {}): WindowState => ({
  x: 100,
  y: 80,
  width: 1300,
  height: 900,
  maximized: false,
  ...over,
});

describe("where the window opens", () => {
  it("centred at the default size the first time", () => {
    expect(windowPlacement(undefined, oneScreen)).toEqual({ bounds: DEFAULT_WINDOW_SIZE, maximized: false });
  });

  it("where it was left, with the size it had, maximized again if it was", () => {
    expect(windowPlacement(state({ maximized: true }), oneScreen)).toEqual({
      bounds: { x: 100, y: 80, width: 1300, height: 900 },
      maximized: true,
    });
    expect(windowPlacement(state({ x: 2200, y: 100, width: 2000 }), twoScreens).bounds).toEqual({
      x: 2200,
      y: 100,
      width: 2000,
      height: 900,
    });
  });

  it("centred on the primary display when it was left on a monitor that is gone", () => {
    expect(windowPlacement(state({ x: 2200, y: 100, width: 2000, height: 1300 }), oneScreen)).toEqual({
      bounds: { width: 1920, height: 1050 },
      maximized: false,
    });
  });

  it("centred when its title bar is out of reach: above the screen, or only a sliver on it", () => {
    expect(windowPlacement(state({ y: -20 }), oneScreen).bounds).not.toHaveProperty("x");
    expect(windowPlacement(state({ y: 1040 }), oneScreen).bounds).not.toHaveProperty("x");
    expect(windowPlacement(state({ x: 1850 }), oneScreen).bounds).not.toHaveProperty("x");
    expect(windowPlacement(state({ x: -1250 }), oneScreen).bounds).not.toHaveProperty("x");
    // Partly off the right edge, but with enough of the title bar on the screen to grab it.
    expect(windowPlacement(state({ x: 1700 }), oneScreen).bounds).toMatchObject({ x: 1700, y: 80 });
  });

  it("never larger than the display it opens on, nor smaller than usable", () => {
    const small = { x: 0, y: 0, width: 1280, height: 720 };
    expect(windowPlacement(state(), { workAreas: [small], primary: small }).bounds).toEqual({
      x: 100,
      y: 80,
      width: 1280,
      height: 720,
    });
    expect(windowPlacement(state({ width: 50, height: 20 }), oneScreen).bounds).toEqual({
      x: 100,
      y: 80,
      width: 480,
      height: 360,
    });
    expect(windowPlacement(undefined, { workAreas: [small], primary: small }).bounds).toEqual({
      width: 1200,
      height: 720,
    });
  });
});

/** Virtual timers: `at` callbacks run when the test advances the clock past them. */
function virtualClock() {
  let time = new Date("2026-11-26T10:00:00Z").getTime();
  const pending: { when: number; fn: () => void; cancelled: boolean }[] = [];
  const timers: TimerPort = {
    at(when, fn) {
      const entry = { when: when.getTime(), fn, cancelled: false };
      pending.push(entry);
      return { cancel: () => void (entry.cancelled = true) };
    },
    every: () => ({ cancel: () => undefined }),
  };
  return {
    timers,
    now: () => new Date(time),
    advance(ms: number) {
      time += ms;
      for (const entry of pending.splice(0)) {
        if (entry.cancelled) {
          continue;
        }
        if (entry.when <= time) {
          entry.fn();
        } else {
          pending.push(entry);
        }
      }
    },
  };
}

function memory(stored: WindowState | undefined = undefined, failing = false) {
  const clock = virtualClock();
  const writes: WindowState[] = [];
  const log: string[] = [];
  let current = stored;
  const remembered = new WindowMemory({
    holder: {
      read: () => current,
      write: (next) => {
        if (failing) {
          throw new Error("The disk that holds /home/me/.config/Snapkeep is full");
        }
        writes.push(next);
        current = next;
      },
    },
    timers: clock.timers,
    now: clock.now,
    log: (line) => log.push(line),
  });
  return { remembered, clock, writes, log };
}

describe("remembering the window", () => {
  it("writes once the window has kept still, not at each step of a drag", () => {
    const { remembered, clock, writes } = memory();
    for (let step = 0; step < 20; step += 1) {
      remembered.changed({ x: 100 + step, y: 80, width: 1300, height: 900 }, false);
      clock.advance(50);
    }
    expect(writes).toEqual([]);
    clock.advance(WINDOW_SETTLE_MS);
    expect(writes).toEqual([state({ x: 119 })]);
  });

  it("writes at once when the window hides or the app quits, and not what is already stored", () => {
    const { remembered, clock, writes } = memory(state());
    remembered.changed({ x: 100, y: 80, width: 1300, height: 900 }, false);
    remembered.flush();
    expect(writes).toEqual([]);
    remembered.changed({ x: 100.4, y: 79.6, width: 1300, height: 900 }, true);
    remembered.flush();
    expect(writes).toEqual([state({ maximized: true })]);
    clock.advance(WINDOW_SETTLE_MS);
    expect(writes).toHaveLength(1);
  });

  it("opens where a change not yet written says", () => {
    const { remembered } = memory(state());
    remembered.changed({ x: 300, y: 200, width: 1000, height: 700 }, false);
    expect(remembered.placement(oneScreen).bounds).toEqual({ x: 300, y: 200, width: 1000, height: 700 });
  });

  it("ignores bounds no screen has, and logs a write that failed instead of throwing", () => {
    const { remembered, writes, log } = memory(undefined, true);
    remembered.changed({ x: Number.NaN, y: 0, width: 10, height: 10 }, false);
    remembered.flush();
    expect(log).toEqual([]);
    remembered.changed({ x: 0, y: 0, width: 800, height: 600 }, false);
    expect(() => remembered.flush()).not.toThrow();
    expect(writes).toEqual([]);
    expect(log).toEqual([
      "The window's size and place could not be remembered: The disk that holds /home/me/.config/Snapkeep is full",
    ]);
  });
});

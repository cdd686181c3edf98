import { describe, expect, it } from "vitest";

import type { ExportProgress } from "../../core/app/exports/exports.js";
import { ProgressMeter } from "../../core/app/exports/progress.js";

describe("export progress", () => {
  it("weights the check on the target by its cost and moves it while it runs, from the sending's rate", async () => {
    const events: ExportProgress[] = [];
    let now = 0;
    const meter = new ProgressMeter(
      (p) => events.push(p),
      () => now,
    );
    meter.streamed = true;
    // 100 MiB sent in 10 s: 10 MiB/s.
    meter.phase("transfer", "vda", 0, 100 * 2 ** 20);
    for (let i = 1; i <= 10; i++) {
      now = i * 1000;
      meter.update(i * 10 * 2 ** 20);
    }
    const sent = events.at(-1);
    expect(sent?.fraction).toBeCloseTo(0.6);
    // All bytes of the phase done: no "0 s left" while the rest is not known.
    expect(sent?.etaSeconds).toBeNull();
    // The target checks 100 MiB: at 10 MiB/s about 10 s; after 4 s about 40 % of the check.
    meter.verifying(100 * 2 ** 20, 5);
    now = 14_000;
    await new Promise((r) => setTimeout(r, 30));
    const checking = events.at(-1);
    expect(checking?.phase).toBe("verify");
    expect(checking?.fraction).toBeCloseTo(0.6 + 0.38 * 0.4, 2);
    expect(checking?.etaSeconds).toBeCloseTo(6, 5);
    // Longer than estimated: it stops short of the phase's end, and says nothing of time left.
    now = 60_000;
    await new Promise((r) => setTimeout(r, 30));
    expect(events.at(-1)?.fraction).toBeCloseTo(0.6 + 0.38 * 0.95, 5);
    expect(events.at(-1)?.etaSeconds).toBeNull();
    meter.stop();
    const count = events.length;
    await new Promise((r) => setTimeout(r, 30));
    expect(events.length).toBe(count);
    // Never backwards.
    const fractions = events.map((e) => e.fraction);
    expect(fractions).toEqual([...fractions].sort((a, b) => a - b));
  });

  it("gives convert, sending and the check their shares when the image is converted first", () => {
    const events: ExportProgress[] = [];
    const meter = new ProgressMeter(
      (p) => events.push(p),
      () => 0,
    );
    meter.phase("convert", "vda", 100, 100);
    meter.phase("transfer", "vda", 50, 100);
    meter.verifying(0);
    meter.phase("finish", null, 0, 0);
    expect(events.map((e) => [e.phase, Number(e.fraction.toFixed(2))])).toEqual([
      ["convert", 0.4],
      ["transfer", 0.55],
      ["verify", 0.7],
      ["finish", 0.98],
    ]);
  });
});

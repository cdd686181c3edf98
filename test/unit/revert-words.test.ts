import { describe, expect, it } from "vitest";

import { revertProgressWords } from "../../renderer/src/revert-words.js";

describe("the revert wizard's status line", () => {
  it("counts the shutdown down and says what happens when the time is up", () => {
    const wait = { phase: "shutting-down", deadline: "2026-12-06T22:00:00.000Z", secondsLeft: 87 } as const;
    expect(revertProgressWords("web01", { ...wait, then: "power-off" })).toBe(
      "Waiting for web01 to shut down: 87 s left, then it is powered off",
    );
    expect(revertProgressWords("web01", { ...wait, then: "give-up" })).toBe(
      "Waiting for web01 to shut down: 87 s left, then the revert stops and nothing is changed",
    );
  });

  it("names the steps after the wait", () => {
    expect(revertProgressWords("web01", { phase: "powering-off" })).toBe("Powering web01 off");
    expect(revertProgressWords("web01", { phase: "reverting" })).toBe("Reverting the disks");
    expect(revertProgressWords("web01", { phase: "starting" })).toBe("Starting web01 again");
  });
});

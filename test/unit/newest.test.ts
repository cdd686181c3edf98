import { describe, expect, it } from "vitest";

import { keepNewest } from "../../core/domain/retention/newest.js";

describe("keep the newest N", () => {
  const made = ["a", "b", "c", "d", "e"]; // oldest first

  it("keeps the newest with their rank and removes the rest oldest first", () => {
    expect(keepNewest(made, 2)).toEqual({
      keep: [
        { item: "e", reason: "newest-1" },
        { item: "d", reason: "newest-2" },
      ],
      remove: ["a", "b", "c"],
    });
  });

  it("removes nothing more when applied to what it kept", () => {
    for (let keep = 0; keep <= 6; keep += 1) {
      const first = keepNewest(made, keep);
      const kept = first.keep.map((k) => k.item).reverse();
      expect(keepNewest(kept, keep).remove).toEqual([]);
      expect(first.keep.length + first.remove.length).toBe(made.length);
    }
  });

  it("keeps everything when there are no more than N, and nothing for N = 0 or less", () => {
    expect(keepNewest(made, 9).remove).toEqual([]);
    expect(keepNewest(made, 0).keep).toEqual([]);
    expect(keepNewest(made, -3).remove).toEqual(made);
    expect(keepNewest([], 3)).toEqual({ keep: [], remove: [] });
  });
});

import { describe, expect, it } from "vitest";

import { bwlimitOption } from "../../core/cli/options.js";

describe("--bwlimit", () => {
  it("takes MiB/s, as the app shows them, and gives the KiB/s rsync takes", () => {
    expect(bwlimitOption("8")).toBe(8192);
    expect(bwlimitOption("0.5")).toBe(512);
    expect(bwlimitOption("0.01")).toBe(10);
  });

  it("refuses what is not a rate in MiB/s", () => {
    for (const text of ["0", "-1", "1e3", "8MiB", "", "97657"]) {
      expect(() => bwlimitOption(text)).toThrow(/--bwlimit \(MiB\/s\)/);
    }
  });
});

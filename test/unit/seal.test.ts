import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

import { SEAL_KEY_FILE, openSealKey } from "../../core/infra/seal-key.js";

describe("the export seal key", () => {
  const homes: string[] = [];
  const home = (): string => {
    const dir = mkdtempSync(join(tmpdir(), "snapkeep-seal-"));
    homes.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of homes.splice(0)) {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("is made once, owner-only, and read back the same", () => {
    const dir = home();
    const key = openSealKey(dir);
    expect(key).toHaveLength(32);
    expect(statSync(join(dir, SEAL_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(openSealKey(dir).equals(key)).toBe(true);
    // No temporary file is left beside it.
    expect(readdirSync(dir)).toEqual([SEAL_KEY_FILE]);
  });

  it("refuses a file it did not write rather than replace it", () => {
    const dir = home();
    writeFileSync(join(dir, SEAL_KEY_FILE), "not a key\n");
    expect(() => openSealKey(dir)).toThrow(/is not a key Snapkeep wrote/);
  });
});

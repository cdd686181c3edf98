import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { createNewFile } from "../../core/infra/new-file.js";

describe("a fetched file written new", () => {
  let dir = "";
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "snapkeep-newfile-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("gets its name only when complete, with the mode asked", async () => {
    const file = await createNewFile(join(dir, "nginx.conf"), 0o640);
    file.stream.write("server {}\n");
    expect(readdirSync(dir)).toEqual([expect.stringMatching(/^\.nginx\.conf\.[0-9a-f]{8}\.partial$/)]);
    await file.finish();
    expect(readdirSync(dir)).toEqual(["nginx.conf"]);
    expect(readFileSync(join(dir, "nginx.conf"), "utf8")).toBe("server {}\n");
    expect(statSync(join(dir, "nginx.conf")).mode & 0o777).toBe(0o640 & ~process.umask());
  });

  it("leaves nothing when the copy stops", async () => {
    const file = await createNewFile(join(dir, "big.bin"), 0o600);
    file.stream.write(Buffer.alloc(1000));
    await file.discard();
    expect(readdirSync(dir)).toEqual([]);
  });

  it("never writes over a file or through a link, before or after the copy", async () => {
    writeFileSync(join(dir, "mine"), "mine");
    await expect(createNewFile(join(dir, "mine"), 0o600)).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
    symlinkSync(join(dir, "mine"), join(dir, "link"));
    await expect(createNewFile(join(dir, "link"), 0o600)).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
    // A file that appears under the name during the copy is kept; the copy is dropped.
    const late = await createNewFile(join(dir, "late"), 0o600);
    late.stream.write("fetched");
    writeFileSync(join(dir, "late"), "someone else's");
    await expect(late.finish()).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
    expect(readFileSync(join(dir, "late"), "utf8")).toBe("someone else's");
    expect(readFileSync(join(dir, "mine"), "utf8")).toBe("mine");
    expect(readdirSync(dir).sort()).toEqual(["late", "link", "mine"]);
  });

  it("says when the folder is not there", async () => {
    await expect(createNewFile(join(dir, "missing", "x"), 0o600)).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
  });
});

describe("a fetched file on a full disk", () => {
  it("says so and leaves nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "snapkeep-newfile-"));
    try {
      const file = await createNewFile(join(dir, "x"), 0o600);
      // The stream fails as fs.write does when the disk is full.
      file.stream.destroy(
        Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" }),
      );
      await expect(file.finish()).rejects.toMatchObject({ code: "NO_SPACE" });
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * The merge script's steps run by a real `sh` on temporary folders: each step inside the export's
 * folder only, a link where a folder should be refused at every level (a target swapping one in
 * after the scan), strict commits refusing a missing image, and the copy's bytes and hash.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  existsSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import {
  mergeArgs,
  mergeCopyInput,
  parseMergeCopy,
  type MergePlace,
} from "../../core/drivers/sh/merge-scripts.js";

let root = "";
const place: MergePlace = { root: "", vmFolder: "web01-1b2c3d4e", name: "20260102T000000Z-b" };

function run(step: string, args: string[], input?: string | Buffer): { code: number | null; stdout: string } {
  const [cmd, ...rest] = mergeArgs({ ...place, root }, step, args);
  const result = spawnSync(cmd ?? "sh", rest, { input: Buffer.from(input ?? "") });
  return { code: result.status, stdout: result.stdout.toString("utf8") };
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "snapkeep-merge-script-"));
  for (const name of [place.name, "20260101T000000Z-a"]) {
    mkdirSync(join(root, place.vmFolder, name), { recursive: true });
  }
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe("the merge script", () => {
  it("writes the metadata, appends the layers' runs in order, and prints the size and hash", () => {
    const lower = Buffer.alloc(4096, 1);
    const upper = Buffer.alloc(4096, 2);
    writeFileSync(join(root, place.vmFolder, "20260101T000000Z-a", "vda.qcow2"), lower);
    writeFileSync(join(root, place.vmFolder, place.name, "vda.qcow2"), upper);
    expect(run("meta", ["vda.qcow2.merge"], Buffer.from("META")).code).toBe(0);
    const copied = run(
      "copy",
      ["vda.qcow2.merge", "../20260101T000000Z-a/vda.qcow2", "vda.qcow2"],
      mergeCopyInput([[{ offset: 0, length: 10 }], [{ offset: 100, length: 5 }]]),
    );
    expect(copied.code).toBe(0);
    const expected = Buffer.concat([Buffer.from("META"), lower.subarray(0, 10), upper.subarray(100, 105)]);
    expect(readFileSync(join(root, place.vmFolder, place.name, "vda.qcow2.merge"))).toEqual(expected);
    expect(parseMergeCopy(copied.stdout)).toEqual({
      size: expected.length,
      sha256: createHash("sha256").update(expected).digest("hex"),
    });
  });

  it("commits by renaming, manifest last; strict refuses a missing image, finish renames what is there", () => {
    const dir = join(root, place.vmFolder, place.name);
    writeFileSync(join(dir, "manifest.json"), "old");
    expect(run("files", ["manifest.json.merge", "new", "SHA256SUMS.merge", "sums"]).code).toBe(0);
    expect(run("commit", ["strict", "vda.qcow2", "SHA256SUMS", "manifest.json"]).code).toBe(6);
    expect(readFileSync(join(dir, "manifest.json"), "utf8")).toBe("old");
    expect(run("commit", ["finish", "vda.qcow2", "SHA256SUMS", "manifest.json"]).code).toBe(0);
    expect(readFileSync(join(dir, "manifest.json"), "utf8")).toBe("new");
    expect(readFileSync(join(dir, "SHA256SUMS"), "utf8")).toBe("sums");
    expect(existsSync(join(dir, "manifest.json.merge"))).toBe(false);
    expect(run("clean", ["vda.qcow2"]).code).toBe(0);
  });

  it("refuses a link where the VM's or the export's folder should be, and writes nothing through it", () => {
    const elsewhere = mkdtempSync(join(tmpdir(), "snapkeep-elsewhere-"));
    try {
      const dir = join(root, place.vmFolder, place.name);
      rmSync(dir, { recursive: true });
      symlinkSync(elsewhere, dir);
      expect(run("files", ["manifest.json.merge", "x"]).code).toBe(7);
      expect(run("meta", ["vda.qcow2.merge"], "x").code).toBe(7);
      rmSync(join(root, place.vmFolder), { recursive: true });
      symlinkSync(elsewhere, join(root, place.vmFolder));
      expect(run("files", ["manifest.json.merge", "x"]).code).toBe(7);
      expect(execFileSync("ls", ["-A", elsewhere], { encoding: "utf8" })).toBe("");
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it("refuses an input in a linked folder, and a link where the output goes", () => {
    const dir = join(root, place.vmFolder);
    writeFileSync(join(root, "secret"), "host data");
    mkdirSync(join(root, "other"));
    writeFileSync(join(root, "other", "vda.qcow2"), "host data");
    rmSync(join(dir, "20260101T000000Z-a"), { recursive: true });
    symlinkSync(join(root, "other"), join(dir, "20260101T000000Z-a"));
    expect(run("copy", ["out", "../20260101T000000Z-a/vda.qcow2"], "0 4\n").code).toBe(4);
    symlinkSync(join(root, "secret"), join(dir, place.name, "vda.qcow2.merge"));
    expect(run("meta", ["vda.qcow2.merge"], "x").code).toBe(5);
    expect(readFileSync(join(root, "secret"), "utf8")).toBe("host data");
  });
});

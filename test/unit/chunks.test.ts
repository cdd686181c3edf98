/**
 * Per-chunk hashes of an export's images: the chunk size rule, the hasher against plain hashes of
 * the slices, where damage is reported, the manifest's refusals, and the verify script on real sh
 * (the same script a target runs), a link and a damaged chunk included.
 */
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

import {
  ChunkHasher,
  MAX_CHUNKS,
  MIN_CHUNK_BYTES,
  checkFile,
  chunkBytesFor,
  chunkCount,
  damagedRanges,
  describeDamage,
} from "../../core/drivers/bundle/chunks.js";
import { manifestSchema } from "../../core/drivers/bundle/bundle.js";
import { parseVerify, verifyArgs, type VerifyEntry } from "../../core/drivers/sh/verify-script.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const sha = (data: Buffer): string => createHash("sha256").update(data).digest("hex");

describe("chunk hashes", () => {
  const dir = mkdtempSync(join(tmpdir(), "snapkeep-chunks-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("uses 64 MiB chunks, doubled until an image has at most 128", () => {
    expect(chunkBytesFor(0)).toBe(MIN_CHUNK_BYTES);
    expect(chunkBytesFor(40 * MiB)).toBe(64 * MiB);
    expect(chunkBytesFor(8 * GiB)).toBe(64 * MiB);
    expect(chunkBytesFor(8 * GiB + 1)).toBe(128 * MiB);
    expect(chunkBytesFor(1024 * GiB)).toBe(8 * GiB);
    for (const size of [1, 8 * GiB + 1, 3000 * GiB, 2 ** 50]) {
      expect(chunkCount(size, chunkBytesFor(size))).toBeLessThanOrEqual(MAX_CHUNKS);
    }
    expect(chunkCount(0, MIN_CHUNK_BYTES)).toBe(0);
  });

  it("hashes each chunk as the bytes go by, in pieces of any size", () => {
    const data = randomBytes(5 * MiB + 12345);
    const hasher = new ChunkHasher(data.length, MiB);
    let at = 0;
    for (const piece of [1, 65536, MiB - 3, 7, 2 * MiB + 11]) {
      hasher.update(data.subarray(at, at + piece));
      at += piece;
    }
    hasher.update(data.subarray(at));
    const sums = hasher.digest();
    expect(sums.bytes).toBe(MiB);
    expect(sums.sha256).toEqual(
      Array.from({ length: 6 }, (_, i) => sha(data.subarray(i * MiB, Math.min(data.length, (i + 1) * MiB)))),
    );
    // An image of whole chunks has no empty last one.
    const whole = new ChunkHasher(2 * MiB, MiB);
    whole.update(Buffer.alloc(2 * MiB));
    expect(whole.digest().sha256).toHaveLength(2);
  });

  it("reports the ranges of the chunks that differ, neighbours joined, the last one short", () => {
    const expected = { bytes: MiB, sha256: ["a", "b", "c", "d", "e"].map((c) => c.repeat(64)) };
    const size = 4 * MiB + 10;
    expect(damagedRanges(expected, expected.sha256, size)).toEqual([]);
    const found = ["a", "x", "x", "d", "x"].map((c) => c.repeat(64));
    expect(damagedRanges(expected, found, size)).toEqual([
      { start: MiB, end: 3 * MiB },
      { start: 4 * MiB, end: size },
    ]);
    expect(damagedRanges(expected, found.slice(0, 1), size)).toEqual([{ start: MiB, end: size }]);
    expect(describeDamage([{ file: "vda.qcow2", start: MiB, end: 3 * MiB }])).toMatch(
      /^vda\.qcow2 from 1(\.0)? MiB to 3(\.0)? MiB$/,
    );
  });

  it("judges a file by its size and every chunk, or by its whole hash without chunks", () => {
    const expected = {
      size: 2 * MiB,
      sha256: "f".repeat(64),
      chunks: { bytes: MiB, sha256: ["a".repeat(64), "b".repeat(64)] },
    };
    const good = { size: 2 * MiB, whole: null, chunks: ["a".repeat(64), "b".repeat(64)] };
    expect(checkFile(expected, good)).toEqual({ ok: true, ranges: [] });
    expect(checkFile(expected, undefined)).toEqual({ ok: false, ranges: [] });
    // Grown by a byte: the chunks below still match, the rest differs.
    expect(checkFile(expected, { ...good, size: 2 * MiB + 1 })).toEqual({
      ok: false,
      ranges: [{ start: 2 * MiB, end: 2 * MiB + 1 }],
    });
    // Cut short inside the second chunk: from that chunk on.
    expect(
      checkFile(expected, { size: MiB + 5, whole: null, chunks: ["a".repeat(64), "c".repeat(64)] }),
    ).toEqual({
      ok: false,
      ranges: [{ start: MiB, end: 2 * MiB }],
    });
    const plain = { size: 10, sha256: "f".repeat(64) };
    expect(checkFile(plain, { size: 10, whole: "f".repeat(64), chunks: [] }).ok).toBe(true);
    expect(checkFile(plain, { size: 11, whole: "f".repeat(64), chunks: [] }).ok).toBe(false);
  });

  it("accepts in a manifest only the chunk size and count that follow from the image's size", () => {
    const manifest = (chunks: unknown): unknown => ({
      format: "snapkeep-export",
      formatVersion: 1,
      id: "20261207T030000Z-nightly",
      createdAt: "2026-12-07T03:00:00.000Z",
      source: {
        host: "local",
        vm: { name: "db", uuid: "1b2c3d4e-0000-4000-8000-000000000000" },
        snapshot: {
          name: "nightly",
          tag: "t",
          kind: "manual",
          createdAt: "x",
          consistency: null,
          note: null,
        },
      },
      definition: { name: "domain.xml", size: 1, sha256: "0".repeat(64) },
      disks: [
        {
          name: "vda.qcow2",
          size: 100 * MiB,
          sha256: "0".repeat(64),
          target: "vda",
          role: "root",
          format: "qcow2",
          compression: "none",
          virtualSize: GiB,
          sourcePath: null,
          ...(chunks === undefined ? {} : { chunks }),
        },
      ],
      tools: {},
    });
    const two = ["1".repeat(64), "2".repeat(64)];
    expect(manifestSchema.safeParse(manifest(undefined)).success).toBe(true);
    expect(manifestSchema.safeParse(manifest({ bytes: 64 * MiB, sha256: two })).success).toBe(true);
    // Another chunk size would make a verify read other ranges than were hashed; too few or too
    // many hashes would leave part of the image unchecked.
    expect(manifestSchema.safeParse(manifest({ bytes: 32 * MiB, sha256: two })).success).toBe(false);
    expect(manifestSchema.safeParse(manifest({ bytes: 64 * MiB, sha256: two.slice(1) })).success).toBe(false);
    expect(manifestSchema.safeParse(manifest({ bytes: 64 * MiB, sha256: [...two, two[0]] })).success).toBe(
      false,
    );
    expect(manifestSchema.safeParse(manifest({ bytes: 64 * MiB, sha256: ["x", "y"] })).success).toBe(false);
    // A size no shell or dd could count to is not a size Snapkeep wrote.
    const huge = manifest(undefined) as { disks: { size: number }[] };
    huge.disks[0] = { ...(huge.disks[0] as { size: number }), size: 1e30 };
    expect(manifestSchema.safeParse(huge).success).toBe(false);
  });

  it("hashes files on a target whole or chunk by chunk, finds the damaged chunk, and never reads a link", () => {
    const data = randomBytes(3 * MiB + 100);
    const image = join(dir, "vda.qcow2");
    writeFileSync(image, data);
    const definition = join(dir, "domain.xml");
    writeFileSync(definition, "<domain/>");
    const link = join(dir, "vdb.qcow2");
    symlinkSync(image, link);
    const hasher = new ChunkHasher(data.length, MiB);
    hasher.update(data);
    const expected = hasher.digest();
    const entries: VerifyEntry[] = [
      { path: definition, chunkBytes: 0, chunks: 0 },
      { path: image, chunkBytes: MiB, chunks: 4 },
      { path: link, chunkBytes: MiB, chunks: 4 },
    ];
    const run = (): ReturnType<typeof parseVerify> => {
      const [command, ...args] = verifyArgs(entries);
      const result = spawnSync(command as string, args, { encoding: "utf8" });
      expect(result.status).toBe(0);
      return parseVerify(result.stdout, entries);
    };
    const [def, img, linked] = run();
    expect(def).toEqual({ size: 9, whole: sha(Buffer.from("<domain/>")), chunks: [] });
    expect(img).toEqual({ size: data.length, whole: null, chunks: expected.sha256 });
    expect(linked).toBeUndefined();
    // One byte flipped in the third chunk: that chunk, and only it.
    data[2 * MiB + 7] = (data[2 * MiB + 7] ?? 0) ^ 0xff;
    writeFileSync(image, data);
    // A dd that cannot read byte ranges: the verify stops with why, rather than calling every
    // chunk damaged.
    const bin = join(dir, "bin");
    mkdirSync(bin);
    writeFileSync(join(bin, "dd"), '#!/bin/sh\necho "dd: invalid input flag" >&2\nexit 1\n', { mode: 0o755 });
    const [command, ...args] = verifyArgs(entries);
    const oldDd = spawnSync(command as string, args, {
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env["PATH"] ?? ""}` },
    });
    expect(oldDd.status).toBe(2);
    expect(oldDd.stderr).toMatch(/cannot read byte ranges/);
    const damaged = run()[1];
    const want = { size: data.length, sha256: sha(data), chunks: expected };
    expect(checkFile(want, damaged)).toEqual({ ok: false, ranges: [{ start: 2 * MiB, end: 3 * MiB }] });
  });

  it("refuses output it does not understand and chunk sizes that are not whole MiB", () => {
    const entries: VerifyEntry[] = [{ path: "/t/vda.qcow2", chunkBytes: MiB, chunks: 2 }];
    const sum = "a".repeat(64);
    expect(parseVerify(`S 5\nC ${sum}\nC ${sum}\n`, entries)).toEqual([
      { size: 5, whole: null, chunks: [sum, sum] },
    ]);
    for (const bad of [
      `S 5\nC ${sum}\n`,
      `S 5\nC ${sum}\nC ${sum}\nC ${sum}\n`,
      `S 5\nW ${sum}\nC ${sum}\n`,
      `S -1\nC ${sum}\nC ${sum}\n`,
      `C ${sum}\nC ${sum}\n`,
      `S 5\nC ${sum.toUpperCase()}\nC ${sum}\n`,
    ]) {
      expect(() => parseVerify(bad, entries)).toThrow(/Verifying printed/);
    }
    expect(() => verifyArgs([{ path: "/t/x", chunkBytes: MiB + 1, chunks: 1 }])).toThrow(/not whole MiB/);
    expect(verifyArgs([{ path: "/t/x", chunkBytes: 64 * MiB, chunks: 3 }]).slice(4)).toEqual([
      "/t/x",
      String(64 * MiB),
      "3",
    ]);
    expect(() => verifyArgs([{ path: "/t/x", chunkBytes: 2 ** 50, chunks: 128 }])).toThrow(/not whole MiB/);
  });
});

/**
 * Per-chunk hashes of an export's image (issue 16): the manifest keeps, beside each image's
 * SHA-256, the SHA-256 of each consecutive chunk of it. A verify on the target then hashes the
 * chunks, and a damaged image is reported with the byte ranges that differ, not only its name
 * (what a person needs to judge a damaged copy, and what a repair would re-send). A file whose size
 * and every chunk match is the file that was written, as surely as by its whole hash; the whole
 * hash stays in the manifest and SHA256SUMS for stock tools (`sha256sum -c`).
 *
 * The chunk is 64 MiB, doubled until an image has at most MAX_CHUNKS: every listing of a target
 * reads each manifest whole, so the list must stay small for multi-terabyte images.
 */
import { createHash, type Hash } from "node:crypto";

import { formatBytes } from "../../domain/bytes.js";
import type { VerifyFound } from "../sh/verify-script.js";

const MiB = 1024 * 1024;
export const MIN_CHUNK_BYTES = 64 * MiB;
export const MAX_CHUNKS = 128;

/** The chunk size for an image of `size` bytes: the only one a manifest may name for it. */
export function chunkBytesFor(size: number): number {
  let bytes = MIN_CHUNK_BYTES;
  while (Math.ceil(size / bytes) > MAX_CHUNKS) {
    bytes *= 2;
  }
  return bytes;
}

export function chunkCount(size: number, chunkBytes: number): number {
  return Math.ceil(size / chunkBytes);
}

/** An image's chunk hashes, as the manifest keeps them. */
export interface ChunkSums {
  /** Bytes per chunk (the last one is shorter); chunkBytesFor the image's size. */
  readonly bytes: number;
  readonly sha256: readonly string[];
}

/** Hashes an image's chunks as its bytes go by, in order; `size` is the whole image's. */
export class ChunkHasher {
  readonly #bytes: number;
  readonly #sums: string[] = [];
  #hash: Hash = createHash("sha256");
  #inChunk = 0;

  /** `chunkBytes`: chunkBytesFor(size) unless a test asks for smaller chunks. */
  constructor(size: number, chunkBytes = chunkBytesFor(size)) {
    this.#bytes = chunkBytes;
  }

  update(data: Buffer): void {
    let at = 0;
    while (at < data.length) {
      const take = Math.min(this.#bytes - this.#inChunk, data.length - at);
      this.#hash.update(data.subarray(at, at + take));
      this.#inChunk += take;
      at += take;
      if (this.#inChunk === this.#bytes) {
        this.#sums.push(this.#hash.digest("hex"));
        this.#hash = createHash("sha256");
        this.#inChunk = 0;
      }
    }
  }

  digest(): ChunkSums {
    if (this.#inChunk > 0) {
      this.#sums.push(this.#hash.digest("hex"));
      this.#inChunk = 0;
    }
    return { bytes: this.#bytes, sha256: [...this.#sums] };
  }
}

/** A byte range of an image that does not match its manifest: [start, end). */
export interface DamagedRange {
  readonly start: number;
  readonly end: number;
}

/**
 * The ranges of an image whose chunks differ from the manifest's, adjacent chunks joined. A
 * chunk missing from `found` (the file is shorter) counts as differing.
 */
export function damagedRanges(expected: ChunkSums, found: readonly string[], size: number): DamagedRange[] {
  const ranges: DamagedRange[] = [];
  expected.sha256.forEach((sum, i) => {
    if (found[i] === sum) {
      return;
    }
    const start = i * expected.bytes;
    const end = Math.min(size, start + expected.bytes);
    const last = ranges.at(-1);
    if (last?.end === start) {
      ranges[ranges.length - 1] = { start: last.start, end };
    } else {
      ranges.push({ start, end });
    }
  });
  return ranges;
}

/** "vda.qcow2 from 64.0 MiB to 128 MiB, …": where an export's images differ, in words. */
export function describeDamage(ranges: readonly { file: string; start: number; end: number }[]): string {
  return ranges.map((r) => `${r.file} from ${formatBytes(r.start)} to ${formatBytes(r.end)}`).join(", ");
}

/** One file of an export against its manifest entry, and where it differs when that is known. */
export function checkFile(
  expected: { size: number; sha256: string; chunks?: ChunkSums | undefined },
  found: VerifyFound,
): { ok: boolean; ranges: DamagedRange[] } {
  if (found === undefined) {
    return { ok: false, ranges: [] };
  }
  if (expected.chunks === undefined) {
    return { ok: found.size === expected.size && found.whole === expected.sha256, ranges: [] };
  }
  const ranges = damagedRanges(expected.chunks, found.chunks, expected.size);
  if (found.size !== expected.size) {
    const start = Math.min(found.size, expected.size);
    const end = Math.max(found.size, expected.size);
    // The chunks below `start` may still match; everything from there on differs.
    const kept = ranges.filter((r) => r.end <= start);
    const from = Math.min(start, ...ranges.filter((r) => r.end > start).map((r) => r.start));
    const last = kept.at(-1);
    // Joined to a damaged chunk just below it, as damagedRanges joins neighbours.
    return last?.end === from
      ? { ok: false, ranges: [...kept.slice(0, -1), { start: last.start, end }] }
      : { ok: false, ranges: [...kept, { start: from, end }] };
  }
  return { ok: ranges.length === 0, ranges };
}

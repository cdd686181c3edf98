/**
 * Byte ranges of an export's images where they are, for the NBD server an export browse reads
 * through (issue 19): a file on this computer read through a descriptor opened once (a link put
 * there later is never followed), or files on an SSH target read by drivers/sh/block-reader.ts
 * over one channel of its connection.
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { lstat, open, type FileHandle } from "node:fs/promises";
import { PassThrough, Writable } from "node:stream";

import { blockReaderArgs, blockReaderProblem, readerRequest } from "../drivers/sh/block-reader.js";
import { describeError, SnapkeepError } from "../errors.js";
import type { CommandRunner, RunResult } from "./runner/types.js";

export interface BlockSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Buffer>;
}

/** How long a target may take to answer one read before the browse gives up on it. */
const ANSWER_MS = 2 * 60_000;

/**
 * A file here, opened once, read-only, not through a link, never a FIFO or device (looked at
 * before it is opened, and the opened one must be the same file); it must be a regular file of
 * `size` bytes.
 */
export async function openLocalBlocks(
  path: string,
  size: number,
): Promise<BlockSource & { close(): Promise<void> }> {
  const refuse = (why: string): SnapkeepError =>
    new SnapkeepError("VERIFY_FAILED", `${path} is not the image its manifest describes (${why}).`);
  let seen;
  try {
    seen = await lstat(path);
  } catch (error) {
    throw new SnapkeepError("VERIFY_FAILED", `Cannot open ${path}: ${describeError(error)}.`);
  }
  if (!seen.isFile()) {
    throw refuse("not a regular file");
  }
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    throw new SnapkeepError("VERIFY_FAILED", `Cannot open ${path}: ${describeError(error)}.`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile() || stat.dev !== seen.dev || stat.ino !== seen.ino) {
      throw refuse("it changed while it was opened");
    }
    if (stat.size !== size) {
      throw refuse(`${stat.size} bytes, the manifest says ${size}`);
    }
  } catch (error) {
    await handle.close();
    throw error;
  }
  return {
    size,
    read: async (offset, length) => {
      const buffer = Buffer.alloc(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buffer, done, length - done, offset + done);
        if (bytesRead === 0) {
          throw new SnapkeepError("VERIFY_FAILED", `${path} became shorter while it was read.`);
        }
        done += bytesRead;
      }
      return buffer;
    },
    close: () => handle.close(),
  };
}

/**
 * `source` with its first `head.length` bytes always answered from `head`: the header that was
 * checked is the header QEMU reads, whatever the target sends the second time (a clean header
 * for the check and one naming an external data file for QEMU would otherwise pass).
 */
export function withPinnedHead(source: BlockSource, head: Buffer): BlockSource {
  return {
    size: source.size,
    read: async (offset, length) => {
      const data = await source.read(offset, length);
      if (offset >= head.length) {
        return data;
      }
      const pinned = Buffer.from(data);
      head.copy(pinned, 0, offset, Math.min(head.length, offset + length));
      return pinned;
    },
  };
}

interface Pending {
  readonly expected: number;
  readonly resolve: (bytes: Buffer) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Files on a target read through one long-running reader (see drivers/sh/block-reader.ts).
 * Requests go out as they come and are answered in order; the first answer that does not fit its
 * frame ends the reader, and every read after fails with why.
 */
export class RemoteBlockReader {
  readonly #marker = Buffer.from(`SNAPKEEP_${randomBytes(16).toString("hex")}\n`);
  readonly #input = new PassThrough();
  readonly #queue: Pending[] = [];
  readonly #ready: Promise<void>;
  #chunks: Buffer[] = [];
  #bytes = 0;
  #stderr = "";
  #started = false;
  #error: SnapkeepError | null = null;
  #timer: NodeJS.Timeout | undefined;
  #ended: Promise<RunResult>;
  /** Ends the reader when it fails, is closed, or the caller cancels. */
  readonly #stop = new AbortController();
  #markReady: () => void = () => undefined;
  /** Bytes the target sent for reads so far. */
  bytesRead = 0;

  constructor(
    private readonly runner: CommandRunner,
    private readonly files: readonly { readonly path: string; readonly size: number }[],
    signal?: AbortSignal,
  ) {
    this.#ready = new Promise<void>((resolve) => {
      this.#markReady = resolve;
    });
    const stop = signal === undefined ? this.#stop.signal : AbortSignal.any([signal, this.#stop.signal]);
    this.#ended = runner.run(
      blockReaderArgs(
        this.#marker.subarray(0, -1).toString(),
        files.map((f) => f.path),
      ),
      {
        stdin: this.#input,
        // Fed through, never collected: a browse may read gigabytes.
        stdoutTo: new Writable({
          write: (chunk: Buffer, _encoding, done) => {
            this.#feed(chunk);
            if (this.#started) {
              this.#markReady();
            }
            done();
          },
        }),
        onStderr: (chunk) => {
          this.#stderr = (this.#stderr + chunk.toString()).slice(-4000);
        },
        signal: stop,
      },
    );
    this.#ended.then(
      (result) => {
        const why = blockReaderProblem(result.code);
        this.#fail(
          new SnapkeepError(
            "COMMAND_FAILED",
            why === null
              ? `The reader on ${runner.label} ended (exit ${result.code ?? result.signal}).`
              : `Reading the export on ${runner.label} stopped: ${why}.`,
          ),
        );
      },
      (error: unknown) => {
        this.#fail(
          error instanceof SnapkeepError
            ? error
            : new SnapkeepError(
                "COMMAND_FAILED",
                `Reading the export on ${runner.label} failed: ${describeError(error)}`,
              ),
        );
      },
    );
    // A target that never says it is ready fails the browse, not hangs it.
    this.#timer = setTimeout(
      () =>
        this.#fail(new SnapkeepError("TIMEOUT", `The reader on ${runner.label} did not start in 2 minutes.`)),
      ANSWER_MS,
    );
    this.#timer.unref();
  }

  /** Resolves once the script has checked its files; rejects with why it could not. */
  async ready(): Promise<void> {
    await this.#ready;
    if (this.#error !== null) {
      throw this.#error;
    }
  }

  /** File `index` as a block source. */
  source(index: number): BlockSource {
    const file = this.files[index];
    if (file === undefined) {
      throw new RangeError(`no file ${index}`);
    }
    return { size: file.size, read: (offset, length) => this.#read(index, offset, length) };
  }

  /** Ends the reader: stdin closed, and the process stopped if it has not ended in 5 seconds. */
  async close(): Promise<void> {
    this.#fail(new SnapkeepError("CANCELLED", "The export's reader was closed."));
    const grace = setTimeout(() => this.#stop.abort(), 5_000);
    try {
      await this.#ended;
    } catch {
      // Its error went to whatever was waiting.
    } finally {
      clearTimeout(grace);
    }
  }

  async #read(index: number, offset: number, length: number): Promise<Buffer> {
    const size = this.files[index]?.size ?? 0;
    const request = readerRequest(index, offset, length, size);
    const bytes = await new Promise<Buffer>((resolve, reject) => {
      if (this.#error !== null) {
        reject(this.#error);
        return;
      }
      this.#queue.push({ expected: request.expected, resolve, reject });
      this.#arm(false);
      this.#input.write(request.line);
    });
    const at = offset - request.from;
    return bytes.subarray(at, at + length);
  }

  /**
   * A target that stops answering fails the reads waiting on it, not the browse forever: the
   * request at the head of the line has two minutes (the clock starts again only when it is
   * answered, so a stream of new requests never postpones it).
   */
  #arm(restart: boolean): void {
    if (restart || this.#queue.length === 0) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#queue.length > 0 && this.#timer === undefined) {
      this.#timer = setTimeout(
        () =>
          this.#fail(
            new SnapkeepError("TIMEOUT", `${this.runner.label} did not answer a read in 2 minutes.`),
          ),
        ANSWER_MS,
      );
      this.#timer.unref();
    }
  }

  #feed(chunk: Buffer): void {
    if (this.#error !== null) {
      return;
    }
    const marker = this.#marker;
    // Chunks are kept as they come and joined once a frame is complete: a 32 MiB answer is
    // copied once, not once per 64 KiB chunk. The new bytes (with the few before them that a
    // marker could straddle) are searched for an early marker: an answer shorter than the file
    // promised means the file changed there.
    const overlap = this.#tail(marker.length - 1);
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    const head = this.#queue[0];
    if (this.#started && head !== undefined) {
      const at = Buffer.concat([overlap, chunk]).indexOf(marker);
      const position = at < 0 ? -1 : this.#bytes - chunk.length - overlap.length + at;
      if (position >= 0 && position < head.expected) {
        this.#fail(this.#shorter());
        return;
      }
      if (this.#bytes < head.expected + marker.length) {
        return;
      }
    }
    let buffer = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks);
    this.#chunks = [];
    this.#bytes = 0;
    if (!this.#started) {
      if (buffer.length < marker.length) {
        this.#keep(buffer);
        return;
      }
      if (!buffer.subarray(0, marker.length).equals(marker)) {
        this.#fail(
          new SnapkeepError(
            "UNEXPECTED_OUTPUT",
            `The reader on ${this.runner.label} printed something else.`,
          ),
        );
        return;
      }
      buffer = buffer.subarray(marker.length);
      this.#started = true;
      // Started: from here on the clock is the reads' (#arm).
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#frames(buffer);
  }

  /** Answers taken off `buffer` in order; what is left waits for more bytes. */
  #frames(start: Buffer): void {
    const marker = this.#marker;
    let buffer = start;
    for (;;) {
      const next = this.#queue[0];
      if (next === undefined) {
        if (buffer.length > 0) {
          this.#fail(
            new SnapkeepError("UNEXPECTED_OUTPUT", `${this.runner.label} sent bytes nobody asked for.`),
          );
        }
        return;
      }
      const end = next.expected + marker.length;
      const early = buffer.subarray(0, Math.min(buffer.length, end - 1)).indexOf(marker);
      if (early >= 0 && early < next.expected) {
        this.#fail(this.#shorter());
        return;
      }
      if (buffer.length < end) {
        this.#keep(buffer);
        return;
      }
      if (!buffer.subarray(next.expected, end).equals(marker)) {
        this.#fail(
          new SnapkeepError(
            "VERIFY_FAILED",
            `An image of the export on ${this.runner.label} is longer than its manifest says, or changed while it was read.`,
          ),
        );
        return;
      }
      const data = Buffer.from(buffer.subarray(0, next.expected));
      buffer = buffer.subarray(end);
      this.#queue.shift();
      this.bytesRead += data.length;
      this.#arm(true);
      next.resolve(data);
    }
  }

  #shorter(): SnapkeepError {
    return new SnapkeepError(
      "VERIFY_FAILED",
      `An image of the export became shorter on ${this.runner.label} while it was read.`,
    );
  }

  /** The last `n` bytes received and not yet framed. */
  #tail(n: number): Buffer {
    const last = this.#chunks.at(-1);
    if (last === undefined) {
      return Buffer.alloc(0);
    }
    if (last.length >= n || this.#chunks.length === 1) {
      return last.subarray(Math.max(0, last.length - n));
    }
    const joined = Buffer.concat(this.#chunks.slice(-Math.min(this.#chunks.length, n)));
    return joined.subarray(Math.max(0, joined.length - n));
  }

  #keep(rest: Buffer): void {
    if (rest.length > 0) {
      this.#chunks = [rest];
      this.#bytes = rest.length;
    }
  }

  #fail(error: SnapkeepError): void {
    this.#error ??= error;
    clearTimeout(this.#timer);
    for (const pending of this.#queue.splice(0)) {
      pending.reject(this.#error);
    }
    this.#input.end();
    this.#markReady();
    // A failed reader is done: its process too, whether or not the target lets it end.
    if (error.code !== "CANCELLED") {
      this.#stop.abort();
    }
  }
}

/**
 * A file on this computer written new, for bytes that come from elsewhere (a file fetched out of a
 * snapshot). The bytes go to a hidden partial file beside it, created exclusively; only a complete
 * copy gets the real name, by a hard link that fails rather than replace anything there. So an
 * existing file is never written over or through a link, and a copy that stops (an error, or the
 * process killed) never leaves a file under the real name that looks whole.
 */
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { link, lstat, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import type { Writable } from "node:stream";

import { describeError, SnapkeepError } from "../errors.js";

export interface NewFile {
  readonly stream: Writable;
  /** Flushes and closes it, then gives it its name: the copy is complete. */
  finish(): Promise<void>;
  /** Closes and removes it: the copy failed. */
  discard(): Promise<void>;
}

function cannotWrite(path: string, error: unknown): SnapkeepError {
  const code = (error as NodeJS.ErrnoException).code;
  return new SnapkeepError(
    code === "EEXIST" ? "ALREADY_EXISTS" : code === "ENOENT" ? "NOT_FOUND" : "PERMISSION_DENIED",
    code === "EEXIST" ? `${path} is there already.` : `Cannot write ${path}: ${describeError(error)}`,
    {
      hint:
        code === "EEXIST"
          ? "Choose another folder, or move that file away first: Snapkeep never writes over a file."
          : "Choose a folder that exists and that you can write to.",
    },
  );
}

export async function createNewFile(path: string, mode: number): Promise<NewFile> {
  // Said before any byte is fetched; the link at the end checks again.
  const there = await lstat(path).then(
    () => true,
    (error: NodeJS.ErrnoException) => (error.code === "ENOENT" ? false : Promise.reject(error)),
  );
  if (there) {
    throw cannotWrite(path, Object.assign(new Error("exists"), { code: "EEXIST" }));
  }
  const partial = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString("hex")}.partial`);
  const stream = createWriteStream(partial, { flags: "wx", mode });
  try {
    await once(stream, "open");
  } catch (error) {
    throw cannotWrite(path, error);
  }
  // A write that fails (the disk here full) is said by finish(); writes after it are dropped.
  let failed: unknown = null;
  stream.on("error", (error) => {
    failed ??= error;
  });
  return {
    stream,
    async finish() {
      if (!stream.destroyed) {
        stream.end();
      }
      if (!stream.closed) {
        // Not events.once: it rejects on the error event, which `failed` says below.
        await new Promise<void>((resolve) => stream.once("close", () => resolve()));
      }
      if (failed !== null) {
        await rm(partial, { force: true });
        const full = (failed as NodeJS.ErrnoException).code === "ENOSPC";
        throw new SnapkeepError(
          full ? "NO_SPACE" : "PERMISSION_DENIED",
          `Writing ${path} failed: ${describeError(failed)}`,
          {
            hint: full ? "Free space there, or fetch into another folder." : undefined,
          },
        );
      }
      try {
        await link(partial, path);
      } catch (error) {
        await rm(partial, { force: true });
        throw cannotWrite(path, error);
      }
      await rm(partial, { force: true });
    },
    async discard() {
      stream.destroy();
      await rm(partial, { force: true });
    },
  };
}

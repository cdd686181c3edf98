/**
 * A file on this computer written new, for bytes that come from elsewhere (a file fetched out of a
 * snapshot): created exclusively (never over an existing file, never through a link at that
 * name), and removed again when the copy does not finish, so a half file is never left looking
 * like the whole one.
 */
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import type { Writable } from "node:stream";

import { describeError, SnapkeepError } from "../errors.js";

export interface NewFile {
  readonly stream: Writable;
  /** Flushes and closes it: the copy is complete. */
  finish(): Promise<void>;
  /** Closes and removes it: the copy failed. */
  discard(): Promise<void>;
}

export async function createNewFile(path: string, mode: number): Promise<NewFile> {
  const stream = createWriteStream(path, { flags: "wx", mode });
  try {
    await once(stream, "open");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new SnapkeepError(
      code === "EEXIST" ? "ALREADY_EXISTS" : code === "ENOENT" ? "NOT_FOUND" : "PERMISSION_DENIED",
      `Cannot write ${path}: ${describeError(error)}`,
      {
        hint:
          code === "EEXIST"
            ? "Choose another folder, or move that file away first: Snapkeep never writes over a file."
            : "Choose a folder that exists and that you can write to.",
      },
    );
  }
  return {
    stream,
    async finish() {
      stream.end();
      await once(stream, "close");
    },
    async discard() {
      stream.destroy();
      await rm(path, { force: true });
    },
  };
}

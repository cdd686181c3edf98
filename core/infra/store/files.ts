/**
 * Writing the settings folder so that a write that cannot complete changes nothing.
 *
 * This replaces the writer of the conf package (atomically): it wrote the temporary file with one
 * write(2) and never looked at how many bytes it took, so on a nearly full disk a short write was
 * flushed and renamed over the good file (issue 13). Here every byte is checked, the file is flushed, renamed, and the
 * folder flushed, so the rename survives a power cut too.
 */
import { randomBytes } from "node:crypto";
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { dirname } from "node:path";

import { SnapkeepError, describeError } from "../../errors.js";

export interface Replacement {
  readonly path: string;
  readonly content: Uint8Array;
}

/** What temporary files are called: `<target>.tmp-<hex>`, so a sweep can find the ones left behind. */
export const TEMP_INFIX = ".tmp-";

/**
 * Replaces each file with its new content. Every content is written in full and flushed to a
 * temporary file beside its target first, and only then are the files renamed into place, in the
 * order given: a full disk stops the write before any file is touched, and removes what it staged.
 */
export function replaceFiles(replacements: readonly Replacement[], mode: number): void {
  const staged: { readonly temp: string; readonly path: string }[] = [];
  let renamed = 0;
  try {
    for (const { path, content } of replacements) {
      const temp = `${path}${TEMP_INFIX}${randomBytes(6).toString("hex")}`;
      staged.push({ temp, path });
      writeNewFile(temp, content, mode);
    }
    for (const { temp, path } of staged) {
      renameSync(temp, path);
      renamed += 1;
    }
  } finally {
    for (const { temp } of staged.slice(renamed)) {
      removeIfThere(temp);
    }
  }
  const folders = new Set(replacements.map(({ path }) => dirname(path)));
  for (const folder of folders) {
    fsyncFolder(folder);
  }
}

/** Writes all of `content` at the file's current offset: write(2) may take fewer bytes than given. */
export function writeAll(fd: number, content: Uint8Array): void {
  let written = 0;
  while (written < content.length) {
    written += writeSync(fd, content, written, content.length - written);
  }
}

export function removeIfThere(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw error;
    }
  }
}

/**
 * A failed write in the settings folder as the sentence a person acts on. Only errors from the
 * file system are turned into one; anything else is a bug and is returned as it is.
 */
export function settingsWriteError(error: unknown, folder: string): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== "string") {
    return error;
  }
  const unchanged = "so the settings could not be saved; they are as they were before";
  const options = { details: { folder, errno: code }, cause: error };
  switch (code) {
    case "ENOSPC":
      return new SnapkeepError("NO_SPACE", `The disk that holds ${folder} is full, ${unchanged}.`, {
        ...options,
        hint: "Free some space on it, then run the command again.",
      });
    case "EDQUOT":
      return new SnapkeepError("NO_SPACE", `The disk quota for ${folder} is used up, ${unchanged}.`, {
        ...options,
        hint: "Free some space within the quota, then run the command again.",
      });
    case "EROFS":
      return new SnapkeepError("STORE_CORRUPT", `${folder} is on a read-only file system, ${unchanged}.`, {
        ...options,
        hint: "Remount it read-write, or set SNAPKEEP_HOME to a writable folder.",
      });
    default:
      return new SnapkeepError(
        "STORE_CORRUPT",
        `Cannot write in ${folder} (${describeError(error)}), ${unchanged}.`,
        { ...options, hint: "Check that the folder and the files in it are writable by this user." },
      );
  }
}

/** Creates `path` (it must not exist) with all of `content`, flushed, at exactly `mode`. */
export function writeNewFile(path: string, content: Uint8Array, mode: number): void {
  const fd = openSync(path, "wx", mode);
  let failed = true;
  try {
    // The umask may have taken bits away; the settings' mode must be exact.
    fchmodSync(fd, mode);
    writeAll(fd, content);
    fsyncSync(fd);
    failed = false;
  } finally {
    closeOnce(fd, failed);
  }
}

function fsyncFolder(folder: string): void {
  const fd = openSync(folder, "r");
  let failed = true;
  try {
    fsyncSync(fd);
    failed = false;
  } finally {
    closeOnce(fd, failed);
  }
}

/** Closes `fd`; when an error is already on its way out, a second one from close must not hide it. */
function closeOnce(fd: number, failed: boolean): void {
  try {
    closeSync(fd);
  } catch (error) {
    if (!failed) {
      throw error;
    }
  }
}

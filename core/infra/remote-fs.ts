/**
 * File operations on a host or export target, through its command runner, so the same code works
 * on this computer and over SSH. Every script here is a constant; paths reach it only as
 * positional arguments, which the local runner passes as argv and the SSH runner quotes one by one.
 */
import { SnapkeepError } from "../errors.js";
import { checkResult, runChecked } from "./runner/checked.js";
import type { CommandRunner, RunOptions } from "./runner/types.js";
import { HASH_FUNCTION, WRITE_FILES_SCRIPT, fileArgs } from "../drivers/sh/export-scripts.js";
import { parseVerify, verifyArgs, type VerifyEntry, type VerifyFound } from "../drivers/sh/verify-script.js";

/** Hashing a large image takes a while; everything else here is quick. */
const QUICK_MS = 60_000;
const HASH_MS = 6 * 60 * 60_000;

export class RemoteFs {
  constructor(readonly runner: CommandRunner) {}

  get label(): string {
    return this.runner.label;
  }

  /**
   * Makes a folder and its parents. Owner-only by default: what Snapkeep keeps for itself (exports,
   * staging) is nobody else's to read. A folder of images that QEMU opens is for "hypervisor": QEMU
   * runs as its own user (libvirt-qemu), which must be able to pass through it.
   */
  async mkdirs(path: string, readableBy: "owner" | "hypervisor" = "owner"): Promise<void> {
    const umask = readableBy === "owner" ? "077" : "022";
    const result = await this.runner.run(
      ["sh", "-c", `umask ${umask} && mkdir -p -- "$1"`, "snapkeep-mkdir", path],
      {
        timeoutMs: QUICK_MS,
      },
    );
    if (result.code !== 0) {
      throw writeFailure(this.label, path, result.stderr);
    }
  }

  /** Writes a small file whole: to a temporary name first, then renamed over the final one. */
  async writeFile(path: string, content: string): Promise<void> {
    const result = await this.runner.run(
      [
        "sh",
        "-c",
        // rm removes a link planted at the temporary name; noclobber never writes through one.
        'umask 077 && rm -f -- "$1.tmp" && (set -C && cat > "$1.tmp") && mv -f -- "$1.tmp" "$1"',
        "snapkeep-write",
        path,
      ],
      { stdin: content, timeoutMs: QUICK_MS },
    );
    if (result.code !== 0) {
      throw writeFailure(this.label, path, result.stderr);
    }
  }

  /** Several small files in one command, each written whole (see WRITE_FILES_SCRIPT). */
  async writeFiles(files: readonly { path: string; content: string }[]): Promise<void> {
    const result = await this.runner.run(
      ["sh", "-c", WRITE_FILES_SCRIPT, "snapkeep-write", ...fileArgs(files)],
      {
        timeoutMs: QUICK_MS,
      },
    );
    if (result.code !== 0) {
      throw writeFailure(this.label, files[0]?.path ?? "", result.stderr);
    }
  }

  async readFile(path: string): Promise<string> {
    const result = await runChecked(this.runner, ["cat", "--", path], `Reading ${path}`, {
      timeoutMs: QUICK_MS,
    });
    return result.stdout;
  }

  /** SHA-256 of each file (lowercase hex), in order; a missing file is an error naming it. */
  async sha256(paths: readonly string[], signal?: AbortSignal): Promise<string[]> {
    if (paths.length === 0) {
      return [];
    }
    const argv = ["sh", "-c", `${HASH_FUNCTION}\nh "$@"`, "snapkeep-hash", ...paths];
    const result = await this.runner.run(argv, { timeoutMs: HASH_MS, ...(signal ? { signal } : {}) });
    checkResult(this.label, argv, result, "Hashing");
    const sums = result.stdout
      .split("\n")
      .filter((l) => l.length > 0)
      .map((line) => /^\\?([0-9a-f]{64}) [ *]/.exec(line)?.[1]);
    if (sums.length !== paths.length || sums.some((s) => s === undefined)) {
      throw new SnapkeepError("UNEXPECTED_OUTPUT", `Hashing on ${this.label} printed something unexpected.`);
    }
    return sums as string[];
  }

  /**
   * Each file hashed for a verify, whole or chunk by chunk (drivers/sh/verify-script.ts), in one
   * command; undefined for anything that is not a regular file.
   */
  async verifyFiles(entries: readonly VerifyEntry[], signal?: AbortSignal): Promise<VerifyFound[]> {
    if (entries.length === 0) {
      return [];
    }
    const argv = verifyArgs(entries);
    const result = await this.runner.run(argv, { timeoutMs: HASH_MS, ...(signal ? { signal } : {}) });
    checkResult(this.label, argv, result, "Hashing");
    return parseVerify(result.stdout, entries);
  }

  /** Bytes of each file; undefined where there is none. */
  async sizes(paths: readonly string[]): Promise<(number | undefined)[]> {
    const result = await this.runner.run(
      [
        "sh",
        "-c",
        'for f in "$@"; do if [ -f "$f" ]; then wc -c < "$f"; else echo -; fi; done',
        "snapkeep-size",
        ...paths,
      ],
      { timeoutMs: QUICK_MS },
    );
    checkResult(this.label, ["sh"], result, "Reading file sizes");
    const lines = result.stdout.split("\n").filter((l) => l.length > 0);
    return paths.map((_, i) => {
      const line = lines[i]?.trim();
      return line === undefined || line === "-" ? undefined : Number(line);
    });
  }

  /** Free bytes for an unprivileged writer on the filesystem holding `path` (which must exist). */
  async freeBytes(path: string): Promise<number> {
    const result = await runChecked(
      this.runner,
      ["df", "-Pk", "--", path],
      `Checking free space on ${path}`,
      {
        timeoutMs: QUICK_MS,
      },
    );
    const fields = result.stdout.trim().split("\n").at(-1)?.split(/\s+/) ?? [];
    const available = Number(fields[3]);
    if (!Number.isFinite(available)) {
      throw new SnapkeepError("UNEXPECTED_OUTPUT", `df on ${this.label} printed something unexpected.`);
    }
    return available * 1024;
  }

  /** Renames a folder; fails rather than moving it inside `to` when `to` exists (mv -T). */
  async renameDir(from: string, to: string): Promise<void> {
    await runChecked(this.runner, ["mv", "-T", "--", from, to], `Renaming ${from}`, { timeoutMs: QUICK_MS });
  }

  async rename(from: string, to: string): Promise<void> {
    await runChecked(this.runner, ["mv", "-f", "--", from, to], `Renaming ${from}`, { timeoutMs: QUICK_MS });
  }

  /** Removes files (not folders); missing ones are fine. */
  async removeFiles(paths: readonly string[]): Promise<void> {
    if (paths.length > 0) {
      await runChecked(this.runner, ["rm", "-f", "--", ...paths], "Removing files", { timeoutMs: QUICK_MS });
    }
  }

  /**
   * Removes a folder and what is in it. Callers only pass folders Snapkeep made and recognised
   * (an export's manifest or job file, a staging folder named by Snapkeep).
   */
  async removeTree(path: string): Promise<void> {
    await runChecked(this.runner, ["rm", "-rf", "--", path], `Removing ${path}`, { timeoutMs: QUICK_MS * 5 });
  }

  /** Runs a command whose failure is described by the caller; for tools with their own errors. */
  run(argv: readonly string[], options?: RunOptions): ReturnType<CommandRunner["run"]> {
    return this.runner.run(argv, options);
  }
}

/**
 * Removes one export folder from a target: `<root>/<vmFolder>/<name>`, where both names are ones
 * Snapkeep makes. Checked where the files are, not here: the script enters the real root, refuses
 * a VM folder or export folder that is a link (or not a folder), and removes the export folder by
 * its plain name from inside its real parent, so no link on the target can send the removal
 * anywhere else (rm -r never follows links inside what it removes).
 */
export async function removeExportFolder(
  fs: RemoteFs,
  root: string,
  vmFolder: string,
  name: string,
): Promise<void> {
  if (!/^[a-z0-9-]{1,60}$/.test(vmFolder) || !/^[A-Za-z0-9-]{1,80}(\.partial)?$/.test(name)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `Snapkeep removes only export folders it names itself, not "${vmFolder}/${name}".`,
    );
  }
  const result = await fs.run(["sh", "-c", REMOVE_EXPORT_SCRIPT, "snapkeep-remove", root, vmFolder, name], {
    timeoutMs: QUICK_MS * 5,
  });
  if (result.code === 4) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `${vmFolder}/${name} on ${fs.label} is not a plain folder (a link, or gone); Snapkeep left it alone.`,
    );
  }
  if (result.code !== 0) {
    throw writeFailure(fs.label, `${root}/${vmFolder}/${name}`, result.stderr);
  }
}

/** Arguments: ROOT VM-FOLDER NAME (see removeExportFolder). Exit 4: not a plain folder. */
const REMOVE_EXPORT_SCRIPT = [
  'cd -P -- "$1" || exit 1',
  '{ [ -d "$2" ] && [ ! -L "$2" ]; } || exit 4',
  'cd -P -- "$2" || exit 1',
  '{ [ -d "$3" ] && [ ! -L "$3" ]; } || exit 4',
  'rm -rf -- "$3"',
].join("\n");

/** A write that failed: full, read-only and permission problems get their own codes. */
export function writeFailure(label: string, path: string, stderr: string): SnapkeepError {
  const reason = stderr.trim().split("\n").at(-1) ?? "";
  if (/No space left on device|Disk quota exceeded/i.test(stderr)) {
    return new SnapkeepError("TARGET_FULL", `${path} on ${label} is full: ${reason}`, {
      hint: "Free space there, or export to another target.",
    });
  }
  if (/Permission denied|Read-only file system|Operation not permitted/i.test(stderr)) {
    return new SnapkeepError(
      "TARGET_UNWRITABLE",
      `Snapkeep may not write to ${path} on ${label}: ${reason}`,
      {
        hint: "Give the SSH user (or you, for a folder) write access there, or choose another path.",
      },
    );
  }
  return new SnapkeepError(
    "COMMAND_FAILED",
    `Writing ${path} on ${label} failed: ${reason || "unknown error"}`,
  );
}

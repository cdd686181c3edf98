/**
 * Looking at a target's folder before anything is written there: whether it exists, and which
 * file system holds it (or, when it is missing, the nearest folder above it that exists). A
 * folder on the same file system as `/` is where an unmounted USB disk or share leaves an empty
 * mount point, and exports written there fill the system disk.
 */
import { SnapkeepError } from "../../errors.js";

/**
 * Argument: PATH (absolute). Prints "present", "missing" or "notdir"; then the folder that was
 * measured (PATH, or its nearest existing parent); then "dev FOLDER-DEVICE ROOT-DEVICE"; then
 * df's line for it. `stat -c` and `df -P` exist in GNU coreutils and BusyBox alike.
 */
export const FOLDER_PROBE_SCRIPT = [
  "export LC_ALL=C",
  'd=$1; state=present; [ -e "$d" ] || state=missing',
  '[ "$state" = present ] && [ ! -d "$d" ] && state=notdir',
  'while [ ! -e "$d" ]; do d=$(dirname -- "$d"); done',
  'printf "%s\\n%s\\n" "$state" "$d"',
  'printf "dev %s %s\\n" "$(stat -L -c %d -- "$d")" "$(stat -L -c %d /)"',
  'df -Pk -- "$d" | tail -n 1',
].join("\n");

export function folderProbeArgs(path: string): string[] {
  return ["sh", "-c", FOLDER_PROBE_SCRIPT, "snapkeep-probe", path];
}

export interface FolderProbe {
  readonly state: "present" | "missing" | "notdir";
  /** The folder measured: the target's own, or its nearest existing parent when it is missing. */
  readonly measured: string;
  /** Where the file system holding `measured` is mounted. */
  readonly mountPoint: string;
  /** Whether `measured` is on the same file system as `/`. */
  readonly onRootFileSystem: boolean;
  /** Free bytes there for an unprivileged writer. */
  readonly freeBytes: number;
}

export function parseFolderProbe(output: string, label: string): FolderProbe {
  const [state, measured, dev, df] = output.split("\n");
  const devices = /^dev (\d+) (\d+)$/.exec(dev ?? "");
  // Filesystem, 1024-blocks, Used, Available, Capacity, then the mount point (spaces and all).
  const fields = /^\S+\s+\d+\s+\d+\s+(\d+)\s+\d+%\s+(.+)$/.exec(df ?? "");
  if (
    (state !== "present" && state !== "missing" && state !== "notdir") ||
    measured === undefined ||
    measured === "" ||
    devices === null ||
    fields === null
  ) {
    throw new SnapkeepError(
      "UNEXPECTED_OUTPUT",
      `Looking at the target's folder on ${label} printed something unexpected.`,
      { details: { output } },
    );
  }
  return {
    state,
    measured,
    mountPoint: fields[2] ?? "",
    onRootFileSystem: devices[1] === devices[2],
    freeBytes: Number(fields[1]) * 1024,
  };
}

/**
 * Arguments: ROOT MINUTES FOLDER... (folders relative to ROOT, as the target's scan named them).
 * Prints a line per folder: "quiet" when nothing in it (itself included) was written within the
 * last MINUTES minutes, "busy" when something was or find failed, "-" when it is not a plain
 * folder. `find -mmin` is in GNU findutils and BusyBox alike; no name from the target is printed.
 */
export const QUIET_SCRIPT = [
  'cd -P -- "$1" || exit 1',
  "m=$2; shift 2",
  'for d in "$@"; do',
  '  if [ -d "./$d" ] && [ ! -L "./$d" ]; then',
  '    if found=$(find "./$d" -mmin "-$m" 2>/dev/null) && [ -z "$found" ]; then echo quiet; else echo busy; fi',
  "  else",
  "    echo -",
  "  fi",
  "done",
].join("\n");

export function quietArgs(root: string, minutes: number, folders: readonly string[]): string[] {
  if (!Number.isInteger(minutes) || minutes < 1) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `A quiet time of ${minutes} minutes is not a whole number of at least 1.`,
    );
  }
  return ["sh", "-c", QUIET_SCRIPT, "snapkeep-quiet", root, String(minutes), ...folders];
}

/** QUIET_SCRIPT's answer: for each folder asked about, whether nothing wrote to it lately. */
export function parseQuiet(output: string, count: number, label: string): boolean[] {
  const lines = output.split("\n").filter((line) => line !== "");
  if (lines.length !== count || lines.some((line) => line !== "quiet" && line !== "busy" && line !== "-")) {
    throw new SnapkeepError(
      "UNEXPECTED_OUTPUT",
      `Checking when ${count === 1 ? "a folder" : `${count} folders`} on ${label} were last written printed "${output.slice(0, 120)}".`,
    );
  }
  return lines.map((line) => line === "quiet");
}

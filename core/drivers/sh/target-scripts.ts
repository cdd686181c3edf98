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
 * Unfinished export folders checked for writes and, in "remove" mode, removed in the same command
 * (no window between the check and the removal for an export to start writing there again).
 * Arguments: ROOT MINUTES MODE [VM-FOLDER NAME]... with MODE "check" or "remove", the names as the
 * target's scan gave them (Snapkeep's own patterns). A line per folder, printed as each is done:
 * "-" when either part is not a plain folder (each is entered with `cd -P` after the check, so a
 * link swapped in meanwhile is not followed out of the target); "busy" when something in it,
 * itself included, was written within MINUTES minutes or find failed; else "quiet" (check),
 * "removed" or "failed" (rm's error on stderr). The job record goes last: a removal cut short
 * leaves a folder still recognised as Snapkeep's unfinished export, which the next sweep takes.
 * `find -mmin` is in GNU findutils and BusyBox alike; no name is printed.
 */
export const SWEEP_SCRIPT = [
  'cd -P -- "$1" || exit 1',
  "m=$2 mode=$3; shift 3",
  'while [ "$#" -ge 2 ]; do',
  "  (",
  '    { [ -d "$1" ] && [ ! -L "$1" ] && cd -P -- "$1" && [ -d "$2" ] && [ ! -L "$2" ]; } || { echo -; exit 0; }',
  '    if ! found=$(find "./$2" -mmin "-$m" 2>/dev/null) || [ -n "$found" ]; then echo busy; exit 0; fi',
  '    [ "$mode" = remove ] || { echo quiet; exit 0; }',
  `    if find "./$2" -mindepth 1 -maxdepth 1 ! -name job.json -exec rm -rf -- {} + && rm -f -- "./$2/job.json" && rmdir -- "./$2"; then`,
  "      echo removed",
  "    else",
  "      echo failed",
  "    fi",
  "  )",
  "  shift 2",
  "done",
].join("\n");

export type SweepAnswer = "quiet" | "busy" | "-" | "removed" | "failed";

export function sweepArgs(
  root: string,
  minutes: number,
  mode: "check" | "remove",
  folders: readonly { readonly vmFolder: string; readonly name: string }[],
): string[] {
  if (!Number.isInteger(minutes) || minutes < 1) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `A quiet time of ${minutes} minutes is not a whole number of at least 1.`,
    );
  }
  return [
    "sh",
    "-c",
    SWEEP_SCRIPT,
    "snapkeep-sweep",
    root,
    String(minutes),
    mode,
    ...folders.flatMap((f) => [f.vmFolder, f.name]),
  ];
}

/**
 * SWEEP_SCRIPT's answer, a word per folder asked about, in order. A command cut short answers for
 * the first folders only: those words stand, the rest are unknown (absent). Anything else is
 * refused.
 */
export function parseSweep(output: string, count: number, label: string): SweepAnswer[] {
  const words = new Set<string>(["quiet", "busy", "-", "removed", "failed"]);
  const lines = output.split("\n").filter((line) => line !== "");
  if (lines.length > count || lines.some((line) => !words.has(line))) {
    throw new SnapkeepError(
      "UNEXPECTED_OUTPUT",
      `Checking ${count === 1 ? "an unfinished export" : `${count} unfinished exports`} on ${label} printed "${output.slice(0, 120)}".`,
    );
  }
  return lines as SweepAnswer[];
}

/**
 * The target's side of a merge on retention (issue 16, core/app/exports/merge.ts): one constant
 * script, every name an argument, only POSIX sh, dd, stat, mv, sync and a hash (as exports need).
 *
 * Arguments: ROOT VM-FOLDER EXPORT STEP ARGS... It first walks into ROOT/VM-FOLDER/EXPORT one
 * folder at a time, refusing a link at each step and checking where it landed (exit 7), so a
 * target that swaps a folder for a link after the scan cannot send a write (or a read) out of the
 * export; every name after that is relative to the export's folder.
 *
 * Steps:
 * - `clean NAME...`: removes NAME.merge left by an earlier attempt.
 * - `meta NAME`: writes stdin to NAME (a new file; a link there is refused, exit 5): the merged
 *   image's metadata, which Snapkeep computes.
 * - `copy NAME FILE...`: appends runs of the layers' files (`../<id>/<disk>.qcow2`, or the
 *   export's own) to NAME. stdin has "OFFSET LENGTH" lines for the current file and "next" to move
 *   to the next one: the order is Snapkeep's, so no line names a file. Prints NAME's size and
 *   hash. Exit 3: a read failed; 4: an input is not a regular file in a plain folder.
 * - `files NAME CONTENT...`: writes small files (the new manifest and its companions), each anew.
 * - `commit strict|finish NAME...`: flushes, renames NAME.merge to NAME in the order given (the
 *   manifest last) and flushes again. `strict` (a merge that just wrote its files) refuses to
 *   start when an image's .merge is missing (exit 6): another merge may have taken it. `finish`
 *   (completing one an interruption stopped) renames what is there.
 */
import { HASH_FUNCTION } from "./export-scripts.js";

const WALK_IN = [
  'cd -P -- "$1" || exit 1',
  "p=$(pwd -P)",
  '{ [ -d "$2" ] && [ ! -L "$2" ]; } || exit 7',
  'cd -P -- "$2" && [ "$(pwd -P)" = "${p%/}/$2" ] || exit 7',
  "p=$(pwd -P)",
  '{ [ -d "$3" ] && [ ! -L "$3" ]; } || exit 7',
  'cd -P -- "$3" && [ "$(pwd -P)" = "${p%/}/$3" ] || exit 7',
  "shift 3",
];

export const MERGE_SCRIPT = [
  "umask 077",
  HASH_FUNCTION,
  ...WALK_IN,
  "step=$1; shift; case $step in",
  'clean) for n; do rm -f -- "$n.merge" || exit 1; done ;;',
  'meta) [ ! -L "$1" ] || exit 5; rm -f -- "$1" && (set -C && cat > "$1") || exit 1 ;;',
  "copy)",
  '  out=$1; shift; [ ! -L "$out" ] || exit 5',
  '  for f; do { [ -f "$f" ] && [ ! -L "$f" ] && [ ! -L "${f%/*}" ]; } || exit 4; done',
  "  f=$1; while read -r o n; do",
  '    if [ "$o" = next ]; then shift; f=$1; continue; fi',
  // 64 KiB blocks, as the stream's reader (stream-scripts.ts): 4 MiB ones were far slower here.
  '    dd if="$f" iflag=skip_bytes,count_bytes skip="$o" count="$n" bs=64K status=none || exit 3',
  '  done >> "$out" || exit 3',
  '  stat -c %s -- "$out" && h "$out" ;;',
  "files)",
  '  while [ "$#" -ge 2 ]; do rm -f -- "$1" && (set -C && printf "%s" "$2" > "$1") || exit 1; shift 2; done ;;',
  "commit)",
  "  mode=$1; shift",
  '  if [ "$mode" = strict ]; then for n; do case $n in *.qcow2) { [ -f "$n.merge" ] && [ ! -L "$n.merge" ]; } || exit 6 ;; esac; done; fi',
  "  sync",
  '  for n; do if [ -f "$n.merge" ] && [ ! -L "$n.merge" ]; then mv -f -- "$n.merge" "$n" || exit 1; fi; done',
  "  sync ;;",
  "*) exit 2 ;;",
  "esac",
].join("\n");

/** The suffix of what a merge writes before it commits. */
export const MERGE_SUFFIX = ".merge";

/** Where a merge works: the target's root, the VM's folder and the export's folder in it. */
export interface MergePlace {
  readonly root: string;
  readonly vmFolder: string;
  readonly name: string;
}

export function mergeArgs(place: MergePlace, step: string, args: readonly string[]): string[] {
  return ["sh", "-c", MERGE_SCRIPT, "snapkeep-merge", place.root, place.vmFolder, place.name, step, ...args];
}

/** A layer's file as the copy step names it: the export's own, or one in a sibling folder. */
export function layerFile(place: MergePlace, exportName: string, file: string): string {
  return exportName === place.name ? file : `../${exportName}/${file}`;
}

/** The copy's directions: each file's runs, "next" between files. */
export function mergeCopyInput(runs: readonly (readonly { offset: number; length: number }[])[]): string {
  return runs.map((file) => file.map((r) => `${r.offset} ${r.length}\n`).join("")).join("next 0\n");
}

/** What the copy printed: the merged image's size and SHA-256. */
export function parseMergeCopy(stdout: string): { size: number; sha256: string } | null {
  const match = /^(\d{1,16})\n\\?([0-9a-f]{64}) /.exec(stdout);
  return match === null ? null : { size: Number(match[1]), sha256: match[2] ?? "" };
}

/**
 * The target's side of a merge on retention (issue 16, core/app/exports/merge.ts): constant
 * scripts, every name an argument, only POSIX sh, dd, stat, mv and a hash (as exports need).
 *
 * Copy: appends runs of the layers' files to the merged image, whose metadata Snapkeep wrote
 * first (STREAM_WRITE_SCRIPT). Arguments: OUT FILE...; stdin has "OFFSET LENGTH" lines for the
 * current file and a line "next" that moves to the next one: the order is Snapkeep's (bottom layer
 * first), so no line names a file. Prints the merged image's size and hash. Exit 3: a read failed;
 * 4: an input is not a regular file; 5: OUT is a link.
 *
 * Commit: renames NAME.merge to NAME in the export's folder, in the order given (the manifest
 * last, so an export is listed with its new manifest only once its images are in place). Run again
 * after an interruption, it finishes what is left. Arguments: DIR NAME...
 */
import { HASH_FUNCTION } from "./export-scripts.js";

export const MERGE_COPY_SCRIPT = [
  "umask 077",
  HASH_FUNCTION,
  'out=$1; shift; [ ! -L "$out" ] || exit 5',
  'for f; do { [ -f "$f" ] && [ ! -L "$f" ]; } || exit 4; done',
  "f=$1; while read -r o n; do",
  '  if [ "$o" = next ]; then shift; f=$1; continue; fi',
  '  dd if="$f" iflag=skip_bytes,count_bytes skip="$o" count="$n" bs=4M status=none || exit 3',
  'done >> "$out" || exit 3',
  'stat -c %s -- "$out" && h "$out"',
].join("\n");

export const MERGE_COMMIT_SCRIPT = [
  'cd -P -- "$1" || exit 1; shift',
  'for n; do if [ -f "$n.merge" ] && [ ! -L "$n.merge" ]; then mv -f -- "$n.merge" "$n" || exit 1; fi; done',
].join("\n");

/** The suffix of what a merge writes before it commits. */
export const MERGE_SUFFIX = ".merge";

export function mergeCopyArgs(out: string, files: readonly string[]): string[] {
  return ["sh", "-c", MERGE_COPY_SCRIPT, "snapkeep-merge", out, ...files];
}

/** The copy's directions: each file's runs, "next" between files. */
export function mergeCopyInput(runs: readonly (readonly { offset: number; length: number }[])[]): string {
  return runs.map((file) => file.map((r) => `${r.offset} ${r.length}\n`).join("")).join("next 0\n");
}

export function mergeCommitArgs(dir: string, names: readonly string[]): string[] {
  return ["sh", "-c", MERGE_COMMIT_SCRIPT, "snapkeep-commit", dir, ...names];
}

/** What the copy printed: the merged image's size and SHA-256. */
export function parseMergeCopy(stdout: string): { size: number; sha256: string } | null {
  const match = /^(\d{1,16})\n\\?([0-9a-f]{64}) /.exec(stdout);
  return match === null ? null : { size: Number(match[1]), sha256: match[2] ?? "" };
}

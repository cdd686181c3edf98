/**
 * The two ends of a streamed export (issue 16), constant scripts with every name an argument.
 *
 * Source: reads byte ranges of a snapshot's image, raw, one after another. The ranges come on
 * stdin as "OFFSET LENGTH" lines (numbers Snapkeep wrote), so any number of them fit in one
 * command: an argument list would hit the kernel's limit on one string at a few thousand.
 * Exit 3: a read failed.
 *
 * Target: writes stdin to the image file, from its start or (resuming) after the bytes that are
 * there already, which must be exactly RESUME-AT. Exit 4: the file is not that long any more;
 * exit 5: the name is a link (nothing is written through one).
 */
export const STREAM_READ_SCRIPT = [
  "f=$1; while read -r o n; do",
  // 64 KiB blocks: with 4 MiB ones dd ran at a quarter of the speed (512 MiB in 128 ranges from
  // the page cache into a pipe: 2.6 s against 0.8 s here), and was the slowest part of an export.
  '  dd if="$f" iflag=skip_bytes,count_bytes skip="$o" count="$n" bs=64K status=none || exit 3',
  "done",
].join("\n");

export const STREAM_WRITE_SCRIPT = [
  "umask 077",
  '[ ! -L "$1" ] || exit 5',
  'if [ "$2" = 0 ]; then exec cat > "$1"; fi',
  '[ "$(stat -c %s -- "$1")" = "$2" ] || exit 4',
  'exec cat >> "$1"',
].join("\n");

export function streamReadArgs(image: string): string[] {
  return ["sh", "-c", STREAM_READ_SCRIPT, "snapkeep-read", image];
}

export function streamReadInput(reads: readonly { offset: number; length: number }[]): string {
  return reads.map((r) => `${r.offset} ${r.length}\n`).join("");
}

export function streamWriteArgs(file: string, resumeAt: number): string[] {
  return ["sh", "-c", STREAM_WRITE_SCRIPT, "snapkeep-write", file, String(resumeAt)];
}

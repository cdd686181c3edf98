/**
 * Byte ranges of files on a target, read by a constant script over one SSH channel: what an
 * export browse (issue 19) needs from an export's images without copying them here. A target
 * needs only a POSIX shell and `dd`, as for everything else Snapkeep does there.
 *
 * Snapkeep writes one request per line, `FILE BLOCK COUNT` (1-based file number, 4 KiB blocks);
 * the script answers with those bytes (fewer at the end of the file) and then a line holding the
 * session's marker, so a short answer (a file that shrank) is seen, never taken for another
 * one's bytes. Only digits are accepted; anything else ends the script. The files must be regular
 * files, not links, when it starts (exit 24 otherwise).
 */

/** The block size of a request: dd counts in these. */
export const READER_BLOCK = 4096;

export const BLOCK_READER_SCRIPT = [
  "set -u",
  "marker=$1",
  "shift",
  'for f in "$@"; do',
  '  [ -f "$f" ] && [ ! -L "$f" ] || exit 24',
  "done",
  'printf "%s\\n" "$marker"',
  "while read -r i block count; do",
  '  for n in "$i" "$block" "$count"; do',
  '    case $n in ""|*[!0-9]*) exit 25 ;; esac',
  "  done",
  '  [ "$i" -ge 1 ] && [ "$i" -le $# ] || exit 25',
  // $i is digits within 1..$#: the eval names a positional parameter and nothing else.
  '  eval "f=\\${$i}"',
  '  dd if="$f" bs=4096 skip="$block" count="$count" 2>/dev/null',
  '  printf "%s\\n" "$marker"',
  "done",
].join("\n");

export function blockReaderArgs(marker: string, files: readonly string[]): string[] {
  return ["sh", "-c", BLOCK_READER_SCRIPT, "snapkeep-read", marker, ...files];
}

/** A request line for bytes [offset, offset + length) of file `index` (0-based), and what it covers. */
export function readerRequest(
  index: number,
  offset: number,
  length: number,
  fileSize: number,
): { line: string; from: number; expected: number } {
  const block = Math.floor(offset / READER_BLOCK);
  const end = Math.ceil((offset + length) / READER_BLOCK);
  const from = block * READER_BLOCK;
  return {
    line: `${index + 1} ${block} ${end - block}\n`,
    from,
    expected: Math.min(end * READER_BLOCK, fileSize) - from,
  };
}

export function blockReaderProblem(code: number | null): string | null {
  switch (code) {
    case 24:
      return "an image of the export is not a regular file there (a link, or missing)";
    case 25:
      return "the reader was sent a request it does not understand";
    default:
      return null;
  }
}

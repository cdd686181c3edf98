/**
 * Target: an export's files hashed for a verify, each whole or chunk by chunk (the manifest's
 * per-chunk hashes, drivers/bundle/chunks.ts), in one command. Only regular files are read: a
 * link in a bundle could point anywhere on the target's host.
 */
import { SnapkeepError } from "../../errors.js";
import { HASH_FUNCTION } from "./export-scripts.js";

const MiB = 1024 * 1024;

/**
 * Arguments: FILE CHUNK-BYTES COUNT, repeated; COUNT 0: the whole file. For each file, "-" when it
 * is not a regular file or cannot be read whole, else "S <size>", then "W <sha256>" (whole) or
 * COUNT lines "C <sha256>". Nothing is printed for a file until all of it is known, so a failure
 * halfway is one "-" and the next file goes on. A chunk whose read fails hashes what was read, and
 * so differs: damage where it lies. `fullblock`: a network file system may return short reads,
 * which must not end a chunk early. `h` reads standard input when given no file (OpenSSL and
 * coreutils both do).
 */
export const VERIFY_SCRIPT = [
  HASH_FUNCTION,
  'ddok=""',
  'while [ "$#" -ge 3 ]; do',
  "  f=$1 b=$2 n=$3; shift 3",
  '  if [ -f "$f" ] && [ ! -L "$f" ] && size=$(wc -c < "$f"); then',
  // Unquoted: some wc pad the number with spaces.
  "    out=$(printf 'S %s' $size)",
  '    if [ "$n" -eq 0 ]; then',
  '      s=$(h "$f") || { echo -; continue; }',
  '      out="$out',
  'W ${s%% *}"',
  "    else",
  // A dd without these flags would hash nothing and call every chunk damaged: refuse instead.
  '      [ -n "$ddok" ] || dd if=/dev/null of=/dev/null iflag=skip_bytes,count_bytes,fullblock count=0 2>/dev/null || { echo "snapkeep: this dd cannot read byte ranges (GNU coreutils or BusyBox dd is needed)" >&2; exit 2; }',
  "      ddok=1 i=0",
  '      while [ "$i" -lt "$n" ]; do',
  '        s=$(dd if="$f" iflag=skip_bytes,count_bytes,fullblock skip=$((i * b)) count="$b" bs=64K 2>/dev/null | h)',
  '        out="$out',
  'C ${s%% *}"',
  "        i=$((i + 1))",
  "      done",
  "    fi",
  "    printf '%s\\n' \"$out\"",
  "  else",
  "    echo -",
  "  fi",
  "done",
].join("\n");

/** One file to check: its path, and its chunk size and count (0: hashed whole). */
export interface VerifyEntry {
  readonly path: string;
  readonly chunkBytes: number;
  readonly chunks: number;
}

/** What the target found for a file: undefined when it is not a regular file. */
export type VerifyFound =
  { readonly size: number; readonly whole: string | null; readonly chunks: string[] } | undefined;

export function verifyArgs(entries: readonly VerifyEntry[]): string[] {
  return [
    "sh",
    "-c",
    VERIFY_SCRIPT,
    "snapkeep-verify",
    ...entries.flatMap((e) => {
      const bytes = e.chunks > 0 ? e.chunkBytes : 0;
      // The script multiplies it by up to MAX_CHUNKS: both stay far inside the shell's 64 bits.
      if (
        e.chunks > 0 &&
        (!Number.isSafeInteger(e.chunkBytes * e.chunks) || e.chunkBytes % MiB !== 0 || e.chunkBytes <= 0)
      ) {
        throw new SnapkeepError(
          "INVALID_INPUT",
          `${e.chunks} chunks of ${e.chunkBytes} bytes are not whole MiB inside a size a shell can count.`,
        );
      }
      return [e.path, String(bytes), String(e.chunks)];
    }),
  ];
}

/** Reads the script's output for `entries`, refusing anything but the lines it prints. */
export function parseVerify(output: string, entries: readonly VerifyEntry[]): VerifyFound[] {
  const lines = output.split("\n");
  if (lines.at(-1) === "") {
    lines.pop();
  }
  let at = 0;
  const bad = (): SnapkeepError =>
    new SnapkeepError(
      "UNEXPECTED_OUTPUT",
      `Verifying printed "${(lines[at] ?? "").slice(0, 80)}" where a hash was expected.`,
    );
  const found = entries.map((entry): VerifyFound => {
    if (lines[at] === "-") {
      at++;
      return undefined;
    }
    const size = /^S (\d{1,16})$/.exec(lines[at] ?? "")?.[1];
    if (size === undefined || !Number.isSafeInteger(Number(size))) {
      throw bad();
    }
    at++;
    const sums: string[] = [];
    const kind = entry.chunks === 0 ? "W" : "C";
    for (let i = 0; i < Math.max(1, entry.chunks); i++) {
      const sum = new RegExp(`^${kind} ([0-9a-f]{64})$`).exec(lines[at] ?? "")?.[1];
      if (sum === undefined) {
        throw bad();
      }
      sums.push(sum);
      at++;
    }
    return entry.chunks === 0
      ? { size: Number(size), whole: sums[0] ?? null, chunks: [] }
      : { size: Number(size), whole: null, chunks: sums };
  });
  if (at !== lines.length) {
    throw bad();
  }
  return found;
}

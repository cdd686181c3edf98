/**
 * The few shell scripts an export runs on the source host and on the target, and parsers for what
 * they print. Each script is a constant; names and paths reach it only as positional arguments.
 *
 * Why scripts at all: every SSH command costs a session (and the login shell's startup files, a
 * tenth of a second on some hosts), so steps that belong together run as one command. An export
 * runs about a dozen commands in all, whatever the number of files it writes.
 */
import { SnapkeepError } from "../../errors.js";
import { parseImageInfo, type ImageState } from "../qemu-img/parse.js";

const MARK = "@@snapkeep-";

/**
 * `h FILE...` prints "<sha256> <name>" lines. OpenSSL when the host has it: it uses the CPU's
 * SHA instructions, which Debian 12's sha256sum does not (0.67 s against 2.4 s for 512 MiB here);
 * else coreutils. Paths are absolute, so none can be taken for an option.
 */
export const HASH_FUNCTION =
  'h() { if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r "$@"; else sha256sum -- "$@"; fi; }';

function sections(output: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const part of output.split(`\n${MARK}`)) {
    const text = part.startsWith(MARK) ? part.slice(MARK.length) : part;
    const nl = text.indexOf("\n");
    const name = nl === -1 ? text : text.slice(0, nl);
    found.set(name.trim(), nl === -1 ? "" : text.slice(nl + 1));
  }
  return found;
}

/**
 * Source host, before converting: tool versions, the VM's saved definition, the staging folder,
 * and which disks an earlier attempt already converted completely (their recorded hash).
 * Arguments: URI UUID STAGING IMAGE...
 */
export const SOURCE_PREPARE_SCRIPT = [
  "umask 077",
  "uri=$1 uuid=$2 staging=$3; shift 3",
  `printf '${MARK}qemu-img\\n'; qemu-img --version | head -n 1`,
  `printf '\\n${MARK}rsync\\n'; rsync --version 2>/dev/null | head -n 1`,
  // No staging folder (""): the export writes straight into the target, whose scan makes the folder.
  `printf '\\n${MARK}mkdir\\n'; if [ -n "$staging" ]; then mkdir -p -- "$staging" 2>&1 && echo ok; else echo ok; fi`,
  `printf '\\n${MARK}staged\\n'`,
  'for f; do if [ -f "$f" ] && [ -f "$f.sha256" ]; then head -c 64 -- "$f.sha256"; echo; else echo -; fi; done',
  `printf '${MARK}xml\\n'; virsh -q -c "$uri" dumpxml --inactive --domain "$uuid"`,
].join("\n");

export interface SourcePrepared {
  readonly qemuImg: string;
  readonly rsync: string | null;
  /** The recorded SHA-256 of each image a previous attempt finished converting, else undefined. */
  readonly staged: (string | undefined)[];
  readonly definition: string;
  /** mkdir's complaint when the staging folder could not be made. */
  readonly stagingError: string | null;
}

export function parseSourcePrepared(output: string, images: number): SourcePrepared {
  const s = sections(output);
  const definition = s.get("xml") ?? "";
  if (!definition.includes("<domain")) {
    throw new SnapkeepError("UNEXPECTED_OUTPUT", "The VM definition could not be read for the export.");
  }
  const mkdir = (s.get("mkdir") ?? "").trim();
  const staged = (s.get("staged") ?? "").split("\n").slice(0, images);
  return {
    qemuImg: (s.get("qemu-img") ?? "").trim(),
    rsync: (s.get("rsync") ?? "").trim() || null,
    staged: Array.from({ length: images }, (_, i) => {
      const line = staged[i]?.trim() ?? "";
      return /^[0-9a-f]{64}$/.test(line) ? line : undefined;
    }),
    definition,
    stagingError: mkdir.endsWith("ok") ? null : mkdir || "unknown error",
  };
}

/**
 * Source host, after converting one image: moved to its final staging name. Prints its size.
 * Arguments: TMP FINAL
 */
export const STAGE_SCRIPT = 'mv -f -- "$1" "$2" && wc -c < "$2"';

/**
 * Source host: the staged image's hash, recorded beside it (so a retry skips the conversion) and
 * printed. Runs while rsync sends the same, cached, file. Arguments: IMAGE
 */
export const RECORD_HASH_SCRIPT = [
  HASH_FUNCTION,
  'sum=$(h "$1") || exit 1',
  "sum=${sum%% *}",
  `printf '%s\\n' "$sum" > "$1.sha256.tmp" && mv -f -- "$1.sha256.tmp" "$1.sha256" || exit 1`,
  `printf '%s\\n' "$sum"`,
].join("\n");

export function parseStagedSize(output: string): number {
  const size = Number(output.trim());
  if (output.trim() === "" || !Number.isInteger(size)) {
    throw new SnapkeepError(
      "UNEXPECTED_OUTPUT",
      `Staging the converted image printed "${output.slice(0, 120)}".`,
    );
  }
  return size;
}

export function parseRecordedHash(output: string): string {
  const sum = output.trim();
  if (!/^[0-9a-f]{64}$/.test(sum)) {
    throw new SnapkeepError(
      "UNEXPECTED_OUTPUT",
      `Hashing the converted image printed "${output.slice(0, 120)}".`,
    );
  }
  return sum;
}

/**
 * Source host: the snapshots in each image now, read shared (a running VM holds them), to check
 * that the exported snapshot outlived the export. Arguments: IMAGE-OPTS...
 */
export const SNAPSHOTS_SCRIPT = [
  "for o; do",
  '  qemu-img info -U --output=json --image-opts "$o" || exit 1',
  `  printf '\\n${MARK}end\\n'`,
  "done",
].join("\n");

export function parseSnapshotsNow(output: string): ImageState[] {
  return output
    .split(`\n${MARK}end\n`)
    .filter((part) => part.trim().length > 0)
    .map((json) => parseImageInfo(json));
}

/**
 * Target: claims the folder a new export writes into. A plain mkdir, inside the real VM folder,
 * fails when anything already has that name (a folder, a file, a link someone planted): a new
 * export never writes into a folder it did not make. Exit 3: the name is taken.
 * Arguments: VM-FOLDER NAME
 */
export const CLAIM_SCRIPT = [
  "umask 077",
  'cd -P -- "$1" || exit 1',
  'mkdir -- "$2" 2>/dev/null || exit 3',
].join("\n");

/**
 * Target, once the images are ready on the source: a new export's folder claimed (CLAIM_SCRIPT,
 * in a subshell; exit 3: the name is taken), the export's own small files written (its job record first of
 * all, so the folder is recognised as an unfinished export from then on), then the size of any
 * image an earlier attempt left there, then the free space. One command, because every command on
 * an SSH target is a session of its own, and a session costs what the account's shell costs to
 * start (half a second for a login shell that starts pyenv).
 * Arguments: CLAIM-FOLDER CLAIM-NAME DIR COUNT FILE... [PATH CONTENT]... (CLAIM-FOLDER "": none)
 */
export const SPACE_SCRIPT = [
  // Whole VM disks and their definitions: readable by the owner only, on any target.
  "umask 077",
  'if [ -n "$1" ]; then',
  `  (${CLAIM_SCRIPT.split("\n").join("; ")}) || exit`,
  "fi",
  "dir=$3 n=$4; shift 4",
  'sizes=""',
  'while [ "$n" -gt 0 ]; do',
  '  if [ -f "$1" ]; then s=$(wc -c < "$1"); else s=-; fi',
  '  sizes="$sizes $s"; n=$((n - 1)); shift',
  "done",
  'while [ "$#" -ge 2 ]; do',
  '  mkdir -p -- "$(dirname -- "$1")" || exit 1',
  // A target may hold a link planted where a temporary file goes: rm removes the link itself, and
  // noclobber (O_EXCL) refuses to write through one that appears in between.
  '  rm -f -- "$1.tmp" && (set -C && printf "%s" "$2" > "$1.tmp") || exit 1',
  '  mv -f -- "$1.tmp" "$1" || exit 1',
  "  shift 2",
  "done",
  'df -Pk -- "$dir" | tail -n 1 | awk "{print \\$4}"',
  'for s in $sizes; do echo "$s"; done',
].join("\n");

/**
 * `claim`: the new export's folder to make first (the VM folder it goes in and its name), or
 * undefined when the export resumes one of its own.
 */
export function spaceArgs(
  dir: string,
  present: readonly string[],
  files: readonly { path: string; content: string }[],
  claim?: { readonly vmFolder: string; readonly name: string },
): string[] {
  return [
    "sh",
    "-c",
    SPACE_SCRIPT,
    "snapkeep-space",
    claim?.vmFolder ?? "",
    claim?.name ?? "",
    dir,
    String(present.length),
    ...present,
    ...fileArgs(files),
  ];
}

export function parseSpace(
  output: string,
  files: number,
): { freeBytes: number; sizes: (number | undefined)[] } {
  const [free, ...rest] = output.trim().split("\n");
  const freeKiB = Number(free);
  if (!/^\d+$/.test(free ?? "")) {
    throw new SnapkeepError("UNEXPECTED_OUTPUT", `df printed "${(free ?? "").slice(0, 80)}".`);
  }
  return {
    freeBytes: freeKiB * 1024,
    sizes: Array.from({ length: files }, (_, i) => {
      const line = rest[i]?.trim();
      return line === undefined || line === "-" || line === "" ? undefined : Number(line);
    }),
  };
}

/**
 * Small files written whole: each to a temporary name, then renamed, its folder made first.
 * Contents travel as arguments (quoted by the runner), so no file boundary has to be found in a
 * stream. Arguments: PATH CONTENT [PATH CONTENT]...
 */
export const WRITE_FILES_SCRIPT = [
  "umask 077",
  'while [ "$#" -ge 2 ]; do',
  '  mkdir -p -- "$(dirname -- "$1")" || exit 1',
  // A target may hold a link planted where a temporary file goes: rm removes the link itself, and
  // noclobber (O_EXCL) refuses to write through one that appears in between.
  '  rm -f -- "$1.tmp" && (set -C && printf "%s" "$2" > "$1.tmp") || exit 1',
  '  mv -f -- "$1.tmp" "$1" || exit 1',
  "  shift 2",
  "done",
].join("\n");

/**
 * Target, last step: every file of the bundle hashed where it landed and compared with the hash
 * taken where it was made; on a mismatch "bad: NAME..." and exit 2, nothing renamed. Else the
 * bundle's own files written, rsync's temporary files from killed attempts and the job record
 * removed, and the folder renamed to its final name (mv -T fails rather than move it inside an
 * existing folder). Arguments: PARTIAL FINAL COUNT [NAME SHA256]... [PATH CONTENT]...
 */
export const FINISH_SCRIPT = [
  HASH_FUNCTION,
  "umask 077",
  "partial=$1 final=$2 n=$3; shift 3",
  'bad=""',
  'while [ "$n" -gt 0 ]; do',
  '  sum=$(h "$partial/$1") || sum=missing',
  '  [ "${sum%% *}" = "$2" ] || bad="$bad $1"',
  "  n=$((n - 1)); shift 2",
  "done",
  `if [ -n "$bad" ]; then printf 'bad:%s\\n' "$bad"; exit 2; fi`,
  'while [ "$#" -ge 2 ]; do',
  // A target may hold a link planted where a temporary file goes: rm removes the link itself, and
  // noclobber (O_EXCL) refuses to write through one that appears in between.
  '  rm -f -- "$1.tmp" && (set -C && printf "%s" "$2" > "$1.tmp") || exit 1',
  '  mv -f -- "$1.tmp" "$1" || exit 1',
  "  shift 2",
  "done",
  `find "$partial" -maxdepth 1 -type f -name '.*' -exec rm -f -- {} + || exit 1`,
  // The job record goes only after the rename: a folder that failed to get its final name stays a
  // resumable .partial, never a manifest without a job.
  'mv -T -- "$partial" "$final" || exit 1',
  'rm -f -- "$final/job.json"',
].join("\n");

/** The files FINISH_SCRIPT found not matching, from its "bad:" line; empty when it did not say. */
export function parseBadFiles(output: string): string[] {
  const line = /^bad:(.*)$/m.exec(output)?.[1] ?? "";
  return line.split(" ").filter((f) => f.length > 0);
}

export function finishArgs(
  partial: string,
  final: string,
  check: readonly { name: string; sha256: string }[],
  files: readonly { path: string; content: string }[],
): string[] {
  return [
    "sh",
    "-c",
    FINISH_SCRIPT,
    "snapkeep-finish",
    partial,
    final,
    String(check.length),
    ...check.flatMap((c) => [c.name, c.sha256]),
    ...fileArgs(files),
  ];
}

export function fileArgs(files: readonly { path: string; content: string }[]): string[] {
  return files.flatMap((f) => [f.path, f.content]);
}

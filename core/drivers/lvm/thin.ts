/**
 * What an LVM thin snapshot holds, and what changed between two of them, from the thin pool's
 * metadata (issue 16): `thin_delta` between the two snapshots' thin devices, or `thin_dump` of
 * one device for a full export. Only metadata is read, never the guest's data.
 *
 * The pool's live metadata changes while the pool runs, so the tools read the kernel's metadata
 * snapshot: the script reserves it, runs the tool and releases it, even when interrupted. The
 * kernel keeps one such snapshot per pool, so Snapkeep's own readers of a pool queue on a lock;
 * one held by something else (another backup tool) is left alone and the export goes the old way.
 *
 * Script exits: 2 not a device-mapper name, 3 not an active thin pool, 4 the tools are missing,
 * 5 the metadata snapshot is held by something else, 6 another Snapkeep reader kept the pool busy,
 * else the tool's own status. A reservation left by a reader that was killed outright is
 * recognised by the root recorded beside the lock and released by the next reader.
 */
import { Writable } from "node:stream";

import { SnapkeepError } from "../../errors.js";

export const THIN_MAPPINGS_SCRIPT = [
  "set -u",
  "pool=$1; mode=$2; shift 2; name=${pool#/dev/mapper/}",
  'case $name in ""|*/*|.*) echo "snapkeep: $pool is not a device-mapper device" >&2; exit 2;; esac',
  "is_pool() { dmsetup table -- \"$1\" 2>/dev/null | grep -q ' thin-pool '; }",
  // With thin volumes active, the pool target is the -tpool layer; alone, the pool itself.
  'tpool=$name-tpool; is_pool "$tpool" || tpool=$name',
  'is_pool "$tpool" || { echo "snapkeep: $name is not an active thin pool" >&2; exit 3; }',
  "meta=/dev/mapper/${name}_tmeta",
  '[ -b "$meta" ] || { echo "snapkeep: the pool has no metadata device at $meta" >&2; exit 3; }',
  'for t in thin_delta thin_dump flock; do command -v "$t" >/dev/null 2>&1 || { echo "snapkeep: $t is missing" >&2; exit 4; }; done',
  'lock=/run/lock; [ -d "$lock" ] || lock=/tmp; mark="$lock/snapkeep-thin-$name.held"',
  'exec 9>"$lock/snapkeep-thin-$name.lock"',
  'flock -w 300 9 || { echo "snapkeep: another Snapkeep export kept the pool $name busy for 5 minutes" >&2; exit 6; }',
  // dmsetup status of a thin-pool: ... <used meta>/<total> <used data>/<total> <held root> ...
  "held() { dmsetup status -- \"$tpool\" | awk '{print $7}'; }",
  // A reader killed outright (SIGKILL: a cancel, a timeout) cannot release what it reserved; the
  // root it reserved is written down, so the next reader, under the lock, releases exactly that.
  "h=$(held)",
  'if [ "$h" != "-" ] && [ -f "$mark" ] && [ "$(cat "$mark")" = "$h" ]; then',
  '  dmsetup message -- "$tpool" 0 release_metadata_snap && rm -f "$mark" && h=$(held)',
  "fi",
  '[ "$h" = "-" ] || { echo "snapkeep: the metadata snapshot of $name is held by something else" >&2; exit 5; }',
  // The traps are set first, so no signal that can be caught leaves the snapshot reserved.
  "reserved=",
  'trap \'[ -z "$reserved" ] || { dmsetup message -- "$tpool" 0 release_metadata_snap && rm -f "$mark"; }\' EXIT',
  "trap 'exit 130' HUP INT TERM",
  'dmsetup message -- "$tpool" 0 reserve_metadata_snap || exit 5',
  'reserved=1; held > "$mark"',
  'if [ "$mode" = delta ]; then thin_delta -m --snap1 "$1" --snap2 "$2" "$meta"',
  'else thin_dump -m --dev-id "$1" "$meta"; fi',
].join("\n");

/** argv for the blocks that differ between thin devices `older` and `newer` of the pool. */
export function thinDeltaArgs(poolDmPath: string, older: number, newer: number): string[] {
  return [
    "sh",
    "-c",
    THIN_MAPPINGS_SCRIPT,
    "snapkeep-thin",
    poolDmPath,
    "delta",
    String(older),
    String(newer),
  ];
}

/** argv for every mapped block of thin device `device`. */
export function thinDumpArgs(poolDmPath: string, device: number): string[] {
  return ["sh", "-c", THIN_MAPPINGS_SCRIPT, "snapkeep-thin", poolDmPath, "dump", String(device)];
}

/** Ranges of a thin device, in bytes, sorted and merged: what differs, or what is mapped. */
export interface ThinRanges {
  /** The pool's block (chunk) size in bytes. */
  readonly blockBytes: number;
  readonly ranges: readonly { readonly offset: number; readonly length: number }[];
}

/** The tools' output is refused rather than guessed at: a wrong range would be a wrong backup. */
export class ThinUnsupported extends SnapkeepError {
  constructor(why: string) {
    super("UNEXPECTED_OUTPUT", `The thin pool's changes cannot be read: ${why}.`, {
      details: { reason: why },
    });
  }
}

const ATTRS = String.raw`(?:\s+[a-z_]+="[^"<>]*")*`;
const SUPERBLOCK = new RegExp(String.raw`^<superblock${ATTRS}>$`);
const NUMBER = String.raw`"(\d{1,15})"`;
const DIFF = new RegExp(`^<diff left=${NUMBER} right=${NUMBER}>$`);
const DIFFERS = new RegExp(`^<(?:left_only|right_only|different) begin=${NUMBER} length=${NUMBER}/>$`);
const SAME = /^<same begin="\d+" length="\d+"\/>$/;
const DEVICE = new RegExp(`^<device dev_id=${NUMBER}${ATTRS}>$`);
const SINGLE = new RegExp(`^<single_mapping origin_block=${NUMBER}${ATTRS}/>$`);
const RANGE = new RegExp(
  `^<range_mapping origin_begin=${NUMBER} data_begin="\\d+" length=${NUMBER}${ATTRS}/>$`,
);
/** Longer than any line the tools print; a longer one is not their report. */
const MAX_LINE = 4096;

/**
 * Reads `thin_delta` between devices `older` and `newer` (thin-provisioning-tools 0.9, not
 * verbose), or `thin_dump --dev-id device`, a line at a time: the report of a large, fragmented
 * volume runs to millions of lines, more than one string may hold, so it is never kept whole.
 *
 * thin_delta: every kind of difference counts as a changed range, read from the newer device: a
 * block only the older one maps (discarded since) reads as zeros there, so nothing depends on the
 * tool telling the kinds apart correctly. thin_dump: the device's mapped blocks (where their data
 * lies is not needed).
 */
type Place = "start" | "superblock" | "section" | "end";

export class ThinReport {
  readonly #blocks = new BlockRanges();
  #blockBytes: number | null = null;
  #sections = 0;
  /** Where in the report: before it, in the superblock, in a diff or device, after it. */
  #at: Place = "start";

  constructor(
    private readonly asked: { readonly delta: readonly [number, number] } | { readonly dump: number },
  ) {}

  get #tool(): string {
    return "delta" in this.asked ? "thin_delta" : "thin_dump";
  }

  /** One line of the report (surrounding space is ignored, blank lines too). */
  line(raw: string): void {
    const line = raw.trim();
    if (line === "") {
      return;
    }
    if (SUPERBLOCK.test(line)) {
      this.#move("start", "superblock", line);
      this.#blockBytes = blockSize(line, this.#blockBytes);
    } else if (line === "</superblock>") {
      this.#move("superblock", "end", line);
    } else if (
      !("delta" in this.asked
        ? this.#deltaLine(line, this.asked.delta)
        : this.#dumpLine(line, this.asked.dump))
    ) {
      throw new ThinUnsupported(
        `${this.#tool} printed a line Snapkeep does not understand: ${line.slice(0, 120)}`,
      );
    }
  }

  /**
   * The ranges, once every line was read; refuses a report that is not whole (one section, every
   * element closed): a report cut short would be fewer ranges, and so a wrong backup.
   */
  finish(): ThinRanges {
    if (this.#blockBytes === null || this.#sections !== 1 || this.#at !== "end") {
      throw new ThinUnsupported(
        !("delta" in this.asked) && this.#sections === 0 && this.#at === "end"
          ? `thin_dump did not list device ${this.asked.dump}`
          : `${this.#tool}'s report is incomplete`,
      );
    }
    return { blockBytes: this.#blockBytes, ranges: this.#blocks.ranges(this.#blockBytes) };
  }

  #move(from: Place, to: Place, line: string): void {
    if (this.#at !== from) {
      throw new ThinUnsupported(`${this.#tool} printed ${line.slice(0, 60)} out of its place in the report`);
    }
    this.#at = to;
  }

  #deltaLine(line: string, [older, newer]: readonly [number, number]): boolean {
    let m: RegExpExecArray | null;
    if ((m = DIFF.exec(line)) !== null) {
      if (Number(m[1]) !== older || Number(m[2]) !== newer) {
        throw new ThinUnsupported(
          `thin_delta compared devices ${m[1]} and ${m[2]}, not ${older} and ${newer}`,
        );
      }
      this.#move("superblock", "section", line);
      this.#sections++;
    } else if ((m = DIFFERS.exec(line)) !== null) {
      this.#move("section", "section", line);
      this.#blocks.add(Number(m[1]), Number(m[2]));
    } else if (SAME.test(line)) {
      this.#move("section", "section", line);
    } else if (line === "</diff>") {
      this.#move("section", "superblock", line);
    } else {
      return false;
    }
    return true;
  }

  #dumpLine(line: string, device: number): boolean {
    let m: RegExpExecArray | null;
    if ((m = DEVICE.exec(line)) !== null) {
      if (Number(m[1]) !== device) {
        throw new ThinUnsupported(`thin_dump listed device ${m[1]}, not ${device}`);
      }
      this.#move("superblock", "section", line);
      this.#sections++;
    } else if ((m = SINGLE.exec(line)) !== null) {
      this.#move("section", "section", line);
      this.#blocks.add(Number(m[1]), 1);
    } else if ((m = RANGE.exec(line)) !== null) {
      this.#move("section", "section", line);
      this.#blocks.add(Number(m[1]), Number(m[2]));
    } else if (line === "</device>") {
      this.#move("section", "superblock", line);
    } else {
      // <def>/<ref> (shared subtrees) and anything newer: not understood, so not trusted.
      return false;
    }
    return true;
  }
}

/**
 * Feeds a command's output to a ThinReport line by line, as it arrives (the runner's stdoutTo).
 * A line the report refuses is kept as the answer and the rest of the output is read and dropped:
 * a sink that failed would leave the tool blocked on a full pipe until its timeout.
 */
export class ThinReportSink extends Writable {
  readonly #report: ThinReport;
  #rest = "";
  #failure: unknown = null;

  constructor(report: ThinReport) {
    super();
    this.#report = report;
  }

  /**
   * The ranges, or the report's refusal; once the command has ended. A last line without its
   * newline is read here when the stream's own end has not come yet (the runner may settle first);
   * a report cut short lacks its closing elements and is refused by finish().
   */
  result(): ThinRanges {
    this.#take(() => this.#report.line(this.#rest));
    this.#rest = "";
    if (this.#failure !== null) {
      throw this.#failure;
    }
    return this.#report.finish();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.#take(() => {
      const lines = (this.#rest + chunk.toString("latin1")).split("\n");
      this.#rest = lines.pop() ?? "";
      if (this.#rest.length > MAX_LINE) {
        throw new ThinUnsupported("the tool printed a line longer than any of its reports has");
      }
      lines.forEach((line) => this.#report.line(line));
    });
    done();
  }

  override _final(done: () => void): void {
    this.#take(() => this.#report.line(this.#rest));
    this.#rest = "";
    done();
  }

  #take(read: () => void): void {
    if (this.#failure !== null) {
      return;
    }
    try {
      read();
    } catch (error) {
      this.#failure = error;
    }
  }
}

/** thin_delta's whole report, read at once (tests, small reports). */
export function parseThinDelta(text: string, older: number, newer: number): ThinRanges {
  const report = new ThinReport({ delta: [older, newer] });
  text.split("\n").forEach((line) => report.line(line));
  return report.finish();
}

/** thin_dump's whole report, read at once (tests, small reports). */
export function parseThinDump(text: string, device: number): ThinRanges {
  const report = new ThinReport({ dump: device });
  text.split("\n").forEach((line) => report.line(line));
  return report.finish();
}

/** data_block_size is in 512-byte sectors; one per report. */
function blockSize(line: string, seen: number | null): number {
  const m = /\sdata_block_size="(\d{1,9})"/.exec(line);
  if (seen !== null || m === null || Number(m[1]) === 0) {
    throw new ThinUnsupported("the report's block size is missing or given twice");
  }
  return Number(m[1]) * 512;
}

/**
 * Block ranges as they are listed, merged on the way while they come in order (the tools walk
 * their trees in block order), so a fragmented volume's millions of lines make few ranges; out of
 * order they are kept and sorted at the end.
 */
class BlockRanges {
  readonly #merged: { begin: number; end: number }[] = [];
  #sorted = true;

  add(begin: number, length: number): void {
    if (length <= 0) {
      return;
    }
    const end = begin + length;
    const last = this.#merged.at(-1);
    if (last === undefined || begin > last.end) {
      this.#merged.push({ begin, end });
    } else if (begin >= last.begin) {
      last.end = Math.max(last.end, end);
    } else {
      this.#sorted = false;
      this.#merged.push({ begin, end });
    }
  }

  ranges(blockBytes: number): ThinRanges["ranges"] {
    const blocks = this.#sorted ? this.#merged : [...this.#merged].sort((a, b) => a.begin - b.begin);
    const out: { offset: number; length: number }[] = [];
    for (const b of blocks) {
      const offset = b.begin * blockBytes;
      const length = (b.end - b.begin) * blockBytes;
      const last = out.at(-1);
      if (last !== undefined && offset <= last.offset + last.length) {
        last.length = Math.max(last.length, offset + length - last.offset);
      } else {
        out.push({ offset, length });
      }
    }
    if (out.some((r) => !Number.isSafeInteger(r.offset + r.length))) {
      throw new ThinUnsupported("a range lies beyond any disk");
    }
    return out;
  }
}

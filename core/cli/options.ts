/** Option values as the CLI takes them: numbers in a stated range, and lists of disks. */
import { MAX_BWLIMIT_KIB } from "../domain/limits.js";
import { SnapkeepError, quoteInput } from "../errors.js";

export interface NumberRange {
  readonly min: number;
  /** No upper bound when absent. */
  readonly max?: number;
  /** Allow a decimal point ("1.5" hours); otherwise only whole numbers. */
  readonly fraction?: boolean;
}

/**
 * A number typed on the command line, in a range the error states. Only plain decimal digits are
 * taken: Number() would also let "1e9", "0x10", " " (0) and "Infinity" through.
 *
 * `what` names the number in the message: the option ("--keep") or words ("the number of safety
 * snapshots to keep").
 */
export function parseNumber(text: string, what: string, range: NumberRange): number {
  const pattern = range.fraction === true ? /^\d+(\.\d+)?$/ : /^\d+$/;
  const n = Number(text);
  if (!pattern.test(text) || n < range.min || (range.max !== undefined && n > range.max)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `Use ${range.fraction === true ? "a number" : "a whole number"} ${describeRange(range)} for ${what}, not ${quoteInput(text)}.`,
    );
  }
  return n;
}

/** {@link parseNumber} for an option, as commander's argument parser. */
export function numberOption(option: string, range: NumberRange): (text: string) => number {
  return (text) => parseNumber(text, option, range);
}

function describeRange(range: NumberRange): string {
  const min = range.min.toLocaleString("en-US");
  return range.max === undefined
    ? `of ${min} or more`
    : `from ${min} to ${range.max.toLocaleString("en-US")}`;
}

/** "vda,vdb" (spaces and empty items ignored), as commander's argument parser for --disk. */
export function diskList(text: string): string[] {
  const disks = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (disks.length === 0) {
    throw new SnapkeepError("INVALID_INPUT", "Give at least one disk target, e.g. --disk vda.");
  }
  return disks;
}

/**
 * `--bwlimit` in MiB/s, the unit the desktop app shows (a fraction allowed: 0.5 is 512 KiB/s),
 * as the KiB/s the core and rsync take.
 */
export function bwlimitOption(text: string): number {
  const mib = parseNumber(text, "--bwlimit (MiB/s)", {
    min: 0.01,
    max: Math.floor(MAX_BWLIMIT_KIB / 1024),
    fraction: true,
  });
  return Math.max(1, Math.round(mib * 1024));
}

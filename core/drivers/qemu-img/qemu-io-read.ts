/**
 * Many small byte ranges of a file in one process: `qemu-io -r -U -f raw` with one `read -v` per
 * range, which prints each as a hex dump. The range reader (qcow2-tables.ts, READ_RANGES_SCRIPT)
 * needs perl for that and falls back to one dd per range, and a thousand snapshots' L1 tables took
 * 15 s that way on a busy host, 0.1 s this way. Hex is four to five times the bytes, so this is
 * for many small ranges; whole clusters stay with the range reader and base64.
 *
 * qemu-io comes with qemu-img (Debian's qemu-utils, Fedora's qemu-img). `-f raw` reads the file's
 * own bytes, `-r` opens it read-only and `-U` takes no lock, so a running VM's image is read as it
 * is on disk and nothing is written.
 */
import { SnapkeepError } from "../../errors.js";
import type { ByteRange } from "./qcow2-tables.js";

export function qemuIoReadArgs(image: string, ranges: readonly ByteRange[]): string[] {
  return [
    "qemu-io",
    "-r",
    "-U",
    "-f",
    "raw",
    ...ranges.flatMap((r) => ["-c", `read -v ${r.offset} ${r.length}`]),
    "--",
    image,
  ];
}

const DUMP_LINE = /^([0-9a-f]{8,}): {2}/;
/** "hh hh ... hh": bytes separated by single spaces. */
const HEX_BYTES = /^[0-9a-f]{2}( [0-9a-f]{2})*$/;

/**
 * The ranges' bytes from qemu-io's dump: "OFFSET:  hh hh ... (16 per line)  ascii", then a
 * "read N/N bytes" line per range. Lines are matched to the ranges by their offsets, so anything
 * missing, out of place or not a byte fails rather than shifting the tables read.
 */
export function parseQemuIoRead(output: string, ranges: readonly ByteRange[]): Buffer[] {
  const lines = output.split("\n").filter((line) => DUMP_LINE.test(line));
  let next = 0;
  return ranges.map((range) => {
    const bytes = Buffer.alloc(range.length);
    for (let at = 0; at < range.length; at += 16) {
      const line = lines[next++] ?? "";
      const match = DUMP_LINE.exec(line);
      if (match === null || parseInt(match[1] ?? "", 16) !== range.offset + at) {
        throw unexpected(`no dump line for offset ${range.offset + at}`);
      }
      const count = Math.min(16, range.length - at);
      const hex = line.slice(match[0].length, match[0].length + count * 3 - 1);
      // Buffer.write stops at the first pair that is not hex: a short write says the line was wrong.
      if (!HEX_BYTES.test(hex) || bytes.write(hex.replace(/ /g, ""), at, "hex") !== count) {
        throw unexpected(`the dump line for offset ${range.offset + at} does not hold ${count} bytes`);
      }
    }
    return bytes;
  });
}

function unexpected(why: string): SnapkeepError {
  return new SnapkeepError(
    "UNEXPECTED_OUTPUT",
    `qemu-io's dump of the image's tables was not understood: ${why}.`,
  );
}

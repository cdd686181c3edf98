import { SnapkeepError } from "../../errors.js";

/**
 * Parsers for what the relayed rsync prints: the remote-shell header, progress lines and the
 * closing statistics. Pure, so they are tested on captured output.
 */

/**
 * The server command rsync asked the remote shell to run, from the relay header (argument count,
 * then one argument per line, the first being the host). Returns undefined until the whole header
 * has arrived, else the argv and how many bytes it took.
 */
export function parseRelayHeader(data: Buffer): { argv: string[]; length: number } | undefined {
  const lines: string[] = [];
  let from = 0;
  let count: number | undefined;
  while (count === undefined || lines.length < count) {
    const end = data.indexOf(0x0a, from);
    if (end === -1) {
      if (data.length > 64 * 1024) {
        throw relayError("the remote shell header is too long");
      }
      return undefined;
    }
    const line = data.subarray(from, end).toString("utf8");
    from = end + 1;
    if (count === undefined) {
      if (!/^\d{1,3}$/.test(line)) {
        throw relayError(`the remote shell header starts with "${line.slice(0, 40)}"`);
      }
      count = Number(line);
    } else {
      lines.push(line);
    }
  }
  return { argv: lines, length: from };
}

/**
 * Checks the server command and returns it without the host: `rsync --server` and options only.
 * With --secluded-args no path is on this line, so anything else means the relay is being fed
 * something it should not pass on to a shell, even quoted.
 */
export function validateServerArgv(argv: readonly string[], expectedDestination?: string): string[] {
  const [, program, server, ...rest] = argv;
  if (program !== "rsync" || server !== "--server") {
    throw relayError(`rsync asked for \`${argv.slice(1).join(" ").slice(0, 80)}\`, not an rsync server`);
  }
  for (const arg of rest) {
    if (!/^[A-Za-z0-9._=,:+/-]*$/.test(arg)) {
      throw relayError(`unexpected rsync server argument "${arg.slice(0, 80)}"`);
    }
  }
  // Paths on the command line (no -s): the sending side is not trusted (an import from a target).
  // The server must receive into exactly the file asked for, with only the options Snapkeep's own
  // client asks for: no links, devices, owners, deletions, backups or logs a hostile sender could
  // want. `rsync --server -Ie.CAPS [--timeout=N] [--bwlimit=N] [--stats] --inplace . DEST`.
  if (expectedDestination !== undefined) {
    if (rest.at(-1) !== expectedDestination || rest.at(-2) !== "." || rest.some((a) => a === "--sender")) {
      throw relayError(
        `the sending side asked to write "${(rest.at(-1) ?? "").slice(0, 120)}", not ${expectedDestination}`,
      );
    }
    const unexpected = rest
      .slice(0, -2)
      .filter((arg) => !UNTRUSTED_SENDER_OPTIONS.some((re) => re.test(arg)));
    if (unexpected.length > 0) {
      throw relayError(
        `the sending side asked for rsync options Snapkeep does not use (${unexpected.join(" ").slice(0, 120)})`,
      );
    }
  }
  return [program, server, ...rest];
}

/**
 * What Snapkeep's client (rsyncSendArgs without -s) puts on the server's command line: the short
 * options -I (ignore times) and the capability string after "e." (protocol features, not options),
 * and a few long options that only pace or report the transfer.
 */
const UNTRUSTED_SENDER_OPTIONS: readonly RegExp[] = [
  /^-I?e\.[A-Za-z]*$/,
  /^--timeout=\d{1,6}$/,
  /^--bwlimit=\d{1,9}$/,
  /^--stats$/,
  /^--inplace$/,
];

function relayError(what: string): SnapkeepError {
  return new SnapkeepError("UNEXPECTED_OUTPUT", `The rsync relay stopped: ${what}.`, {
    hint: "Check that rsync on both sides is a standard rsync 3.2 or newer.",
  });
}

export interface RsyncProgress {
  /** Bytes of the file processed so far (matched or sent), rsync's first progress2 column. */
  readonly bytes: number;
  readonly percent: number;
}

// `    460,423,168  85%  439.06MB/s    0:00:00` (and ` (xfr#1, to-chk=0/1)` on the last one).
const PROGRESS2 = /^\s*([\d,]+)\s+(\d{1,3})%\s+\S+\s+\d+:\d{2}:\d{2}/;

/** The last complete progress2 update in `text` (updates are separated by \r or \n). */
export function parseProgress2(text: string): RsyncProgress | undefined {
  let latest: RsyncProgress | undefined;
  for (const part of text.split(/[\r\n]/)) {
    const m = PROGRESS2.exec(part);
    if (m !== null) {
      latest = { bytes: Number((m[1] ?? "").replaceAll(",", "")), percent: Number(m[2]) };
    }
  }
  return latest;
}

export interface RsyncStats {
  /** Bytes sent as new data: what changed since the basis. */
  readonly literalBytes: number;
  /** Bytes the basis already had. */
  readonly matchedBytes: number;
  /** Everything sent over the wire, protocol overhead and checksums included. */
  readonly bytesSent: number;
}

export function parseStats(text: string): RsyncStats | undefined {
  const num = (label: string): number | undefined => {
    const m = new RegExp(`^${label}: ([\\d,]+)`, "m").exec(text);
    return m?.[1] === undefined ? undefined : Number(m[1].replaceAll(",", ""));
  };
  const literalBytes = num("Literal data");
  const matchedBytes = num("Matched data");
  const bytesSent = num("Total bytes sent");
  if (literalBytes === undefined || matchedBytes === undefined || bytesSent === undefined) {
    return undefined;
  }
  return { literalBytes, matchedBytes, bytesSent };
}

/** rsync's error lines, without the progress and statistics around them, for messages. */
export function rsyncErrorText(text: string): string {
  return text
    .split(/[\r\n]/)
    .map((line) => line.trim())
    .filter((line) => line.startsWith("rsync") || /error|failed|denied|No space/i.test(line))
    .filter((line) => !PROGRESS2.test(line))
    .slice(0, 6)
    .join("; ");
}

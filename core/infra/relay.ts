/**
 * rsync from one runner to another through Snapkeep: the rsync client runs where the file is,
 * `rsync --server` runs where it goes, and this process pipes the two (see drivers/rsync/args.ts
 * for why that way round).
 */
import { PassThrough, Transform, type TransformCallback } from "node:stream";

import { SnapkeepError, describeError, isSnapkeepError } from "../errors.js";
import { rsyncSendArgs, rsyncServerArgs, type RsyncSendOptions } from "../drivers/rsync/args.js";
import {
  parseProgress2,
  parseRelayHeader,
  parseStats,
  rsyncErrorText,
  validateServerArgv,
  type RsyncProgress,
  type RsyncStats,
} from "../drivers/rsync/parse.js";
import type { CommandRunner, RunResult } from "./runner/types.js";

export interface RelayRequest {
  /** Where the file is: runs the rsync client. */
  readonly sender: CommandRunner;
  /** Where it goes: runs `rsync --server`. */
  readonly receiver: CommandRunner;
  readonly send: RsyncSendOptions;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((progress: RsyncProgress) => void) | undefined;
  /** With `send.secluded: false`: the only destination the receiving server may be started for. */
  readonly expectedDestination?: string | undefined;
}

export interface RelayResult {
  readonly stats: RsyncStats | undefined;
}

/**
 * How long the receiver gets to finish on its own once the sender is gone. On cancel the sender is
 * killed and the receiver, seeing its input end, keeps what arrived (--partial) for a resume;
 * killing both at once would lose that.
 */
const RECEIVER_GRACE_MS = 15_000;

/** Holds back the relay header, hands its argv over, and passes every later byte through. */
class HeaderSplitter extends Transform {
  readonly header: Promise<string[]>;
  #buffered: Buffer | undefined = Buffer.alloc(0);
  #resolve!: (argv: string[]) => void;
  #reject!: (error: unknown) => void;

  constructor() {
    super();
    this.header = new Promise<string[]>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.header.catch(() => undefined);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.#buffered === undefined) {
      done(null, chunk);
      return;
    }
    const data = Buffer.concat([this.#buffered, chunk]);
    let parsed: ReturnType<typeof parseRelayHeader>;
    try {
      parsed = parseRelayHeader(data);
    } catch (error) {
      this.#reject(error);
      done();
      return;
    }
    if (parsed === undefined) {
      this.#buffered = data;
      done();
      return;
    }
    this.#buffered = undefined;
    this.#resolve(parsed.argv);
    done(null, data.subarray(parsed.length));
  }

  override _flush(done: TransformCallback): void {
    if (this.#buffered !== undefined) {
      this.#reject(new Error("the sender ended before it asked for an rsync server"));
    }
    done();
  }
}

/** Sends one file; rejects with a typed error (retryable ones carry `details.retryable`). */
export async function relayRsync(request: RelayRequest): Promise<RelayResult> {
  if (request.signal?.aborted === true) {
    throw cancelled(request.signal.reason);
  }
  const senderStop = new AbortController();
  const receiverStop = new AbortController();
  const onAbort = (): void => {
    senderStop.abort(request.signal?.reason);
    receiverGrace();
  };
  let graceTimer: NodeJS.Timeout | undefined;
  let graceExpired = false;
  const receiverGrace = (): void => {
    graceTimer ??= setTimeout(() => {
      graceExpired = true;
      receiverStop.abort(request.signal?.reason);
    }, RECEIVER_GRACE_MS);
  };
  request.signal?.addEventListener("abort", onAbort, { once: true });

  const upstream = new HeaderSplitter();
  const downstream = new PassThrough();
  let senderText = "";
  let receiverText = "";
  let lastProgress = "";
  const senderRun = request.sender
    .run(rsyncSendArgs(request.send), {
      stdin: downstream,
      stdoutTo: upstream,
      signal: senderStop.signal,
      onStderr: (chunk) => {
        const text = chunk.toString("utf8");
        senderText = (senderText + text).slice(-64 * 1024);
        lastProgress = (lastProgress + text).slice(-512);
        const progress = parseProgress2(lastProgress);
        if (progress !== undefined) {
          request.onProgress?.(progress);
        }
      },
    })
    .finally(() => {
      // The sender is gone: whatever the receiver still does, it gets no more input. If it never
      // got to write, nothing else ends the header's stream: end it, so the header wait settles.
      if (!upstream.writableEnded) {
        upstream.end();
      }
      receiverGrace();
    });
  const receiverRun = startReceiver(request, upstream, downstream, receiverStop.signal, (chunk) => {
    receiverText = (receiverText + chunk.toString("utf8")).slice(-16 * 1024);
  });
  // Either side failing to run at all stops the other.
  receiverRun.catch(() => senderStop.abort());
  senderRun.catch(() => receiverGrace());

  try {
    const [sent, received] = await Promise.allSettled([senderRun, receiverRun]);
    if (isAborted(request.signal)) {
      throw cancelled(request.signal?.reason);
    }
    return relayOutcome(sent, received, { graceExpired, senderText, receiverText }, request);
  } finally {
    clearTimeout(graceTimer);
    request.signal?.removeEventListener("abort", onAbort);
    upstream.destroy();
    downstream.destroy();
  }
}

/**
 * Starts `rsync --server` on the receiver with the argv the sender asked for (once checked), its
 * stdin and stdout joined to the sender's. Undefined when the sender ended without asking for one;
 * rejects when what it asked for is malformed or not allowed.
 */
function startReceiver(
  request: RelayRequest,
  upstream: HeaderSplitter,
  downstream: PassThrough,
  signal: AbortSignal,
  onStderr: (chunk: Buffer) => void,
): Promise<RunResult | undefined> {
  return upstream.header.then(
    (argv) =>
      request.receiver.run(rsyncServerArgs(validateServerArgv(argv, request.expectedDestination)), {
        stdin: upstream,
        stdoutTo: downstream,
        signal,
        onStderr,
      }),
    (error: unknown) => {
      // No server was asked for (the client failed first): let the sender's stdin end too.
      downstream.end();
      if (isSnapkeepError(error)) {
        throw error;
      }
      return undefined;
    },
  );
}

interface RelayEnding {
  /** Whether the receiver was stopped because it outlived the sender by the grace period. */
  readonly graceExpired: boolean;
  readonly senderText: string;
  readonly receiverText: string;
}

/** The result of a relay whose two sides have both ended, or the failure that tells its story. */
function relayOutcome(
  sent: PromiseSettledResult<RunResult>,
  received: PromiseSettledResult<RunResult | undefined>,
  { graceExpired, senderText, receiverText }: RelayEnding,
  request: RelayRequest,
): RelayResult {
  // The receiver's failure first: when it dies, the sender is stopped on purpose and only
  // reports that it was. Unless the receiver was only stopped because the sender had died
  // and it did not finish in time: then the sender's failure is the story.
  if (received.status === "rejected") {
    throw graceExpired && sent.status === "rejected" ? sent.reason : received.reason;
  }
  if (sent.status === "rejected") {
    throw sent.reason;
  }
  const text = `${senderText}\n${receiverText}`;
  if (sent.value.code !== 0 || received.value === undefined || received.value.code !== 0) {
    throw transferFailure(sent.value, received.value, text, request);
  }
  return { stats: parseStats(senderText) };
}

function transferFailure(
  sent: RunResult,
  received: RunResult | undefined,
  text: string,
  request: RelayRequest,
): SnapkeepError {
  const reason = rsyncErrorText(text) || `rsync exit code ${sent.code ?? sent.signal}`;
  const where = `${request.receiver.label}:${request.send.destination}`;
  if (/No space left on device|Disk quota exceeded/i.test(text)) {
    return new SnapkeepError("TARGET_FULL", `There is not enough space for ${where}: ${reason}`, {
      hint: "Free space on the target or export to another one; what arrived so far is kept for a resume.",
    });
  }
  if (/Permission denied|Read-only file system/i.test(text)) {
    return new SnapkeepError("TARGET_UNWRITABLE", `Snapkeep may not write ${where}: ${reason}`, {
      hint: "Give the SSH user write access to the target folder, or choose another path.",
    });
  }
  if (sent.code === 127 || received?.code === 127 || /rsync: (command )?not found/.test(text)) {
    return new SnapkeepError(
      "TOOL_MISSING",
      `rsync is missing on ${request.sender.label} or ${request.receiver.label}.`,
      {
        hint: "Install it on both sides with: apt-get install rsync",
        details: { tool: "rsync" },
      },
    );
  }
  // Link and protocol failures (10 socket, 12 stream, 30 timeout, 35 daemon timeout, or the relay's
  // other end vanishing) are worth another attempt; a bad option or a missing file is not.
  const retryable =
    [10, 12, 20, 30, 35].includes(sent.code ?? -1) || received === undefined || sent.code === null;
  return new SnapkeepError("TRANSFER_FAILED", `Copying to ${where} failed: ${reason}`, {
    details: { retryable, senderCode: sent.code, receiverCode: received?.code ?? null },
    hint: retryable ? "Run the export again: it resumes where it stopped." : undefined,
  });
}

/** Read through a call: TypeScript would otherwise keep an earlier check's narrowing of it. */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function cancelled(reason: unknown): SnapkeepError {
  return isSnapkeepError(reason, "CANCELLED")
    ? reason
    : new SnapkeepError("CANCELLED", "The transfer was cancelled; what arrived is kept for a resume.");
}

export function isRetryable(error: unknown): boolean {
  if (!isSnapkeepError(error)) {
    return false;
  }
  return (
    error.details["retryable"] === true ||
    error.code === "HOST_UNREACHABLE" ||
    (error.code === "COMMAND_FAILED" && /connection/i.test(describeError(error)))
  );
}

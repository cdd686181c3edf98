/**
 * One command on one SSH exec channel, and the kill path for commands that must stop early.
 */
import type { Writable } from "node:stream";
import type { Client, ClientChannel } from "ssh2";

import { SnapkeepError, describeError } from "../../errors.js";
import { isStream, pipeIn, pipeOut } from "../runner/streams.js";
import type { RunOptions, RunResult } from "../runner/types.js";
import { REMOTE_PID_MARKER, buildRemoteCommand } from "../../domain/shell-quote.js";
import { connectionLost } from "./failures.js";

/** Thrown when the connection was gone before the channel opened, so the caller may reconnect once. */
export class NotConnectedError extends Error {}

// Enough for a chatty login script ahead of the marker line; past that, stop waiting for it.
const MAX_PREFIX_BYTES = 64 * 1024;
const MARKER = Buffer.from(REMOTE_PID_MARKER, "latin1");
const PID_GRACE_MS = 2000;
const STDOUT_DRAIN_MS = 5000;

/**
 * Takes the first `snapkeep-pid:<pid>` line out of stderr and passes every other byte on. It is
 * searched for rather than expected at offset 0 because login scripts (bash reads ~/.bashrc for
 * SSH commands) may print first, even half a line. The command itself only starts after the line,
 * so a look-alike printed by the command is never the first one.
 */
class PidLineFilter {
  private buffered: Buffer | undefined = Buffer.alloc(0);

  constructor(
    private readonly onPid: (pid: number) => void,
    private readonly emit: (chunk: Buffer) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.buffered === undefined) {
      this.emit(chunk);
      return;
    }
    const data = Buffer.concat([this.buffered, chunk]);
    let from = 0;
    for (;;) {
      const at = data.indexOf(MARKER, from);
      if (at === -1) {
        break;
      }
      const end = data.indexOf(0x0a, at);
      if (end === -1) {
        this.buffered = data;
        return;
      }
      const digits = data.subarray(at + MARKER.length, end).toString("latin1");
      if (/^\d{1,10}$/.test(digits)) {
        this.buffered = undefined;
        this.emitNonEmpty(data.subarray(0, at));
        this.onPid(Number(digits));
        this.emitNonEmpty(data.subarray(end + 1));
        return;
      }
      from = at + 1;
    }
    if (data.length > MAX_PREFIX_BYTES) {
      this.flush(data);
    } else {
      this.buffered = data;
    }
  }

  flush(data = this.buffered): void {
    this.buffered = undefined;
    if (data !== undefined) {
      this.emitNonEmpty(data);
    }
  }

  private emitNonEmpty(data: Buffer): void {
    if (data.length > 0) {
      this.emit(data);
    }
  }
}

export interface ChannelHooks {
  /** Runner label and a short form of the command, for messages. */
  readonly label: string;
  readonly display: string;
  /** Called exactly once, when the channel is closed for good (or never opened). */
  readonly onChannelGone: () => void;
  /** Asks for the remote process group to be killed. */
  readonly kill: (pid: number) => void;
}

/**
 * Runs an already-built command string. Resolves on the channel's 'close' once stderr has ended
 * too, so no output is lost; rejects with `signal.reason` as soon as the signal aborts, while the
 * kill and the channel close continue in the background (and `onChannelGone` follows them).
 */
export function runOnChannel(
  client: Client,
  command: string,
  options: RunOptions,
  signal: AbortSignal,
  hooks: ChannelHooks,
): Promise<RunResult> {
  return new Promise<RunResult>((resolve, reject) => {
    new ChannelRun(options, signal, hooks, resolve, reject).start(client, command);
  });
}

type ExitStatus = { code: number | null | undefined; signal: string | undefined };

/**
 * The state of one `runOnChannel` call, shared by the signal, the channel's streams and the kill
 * path: the result settles once, the channel is reported gone once, and a kill waits for the pid.
 */
class ChannelRun {
  private readonly stdout: Buffer[] = [];
  private readonly stderr: Buffer[] = [];
  private settled = false;
  private gone = false;
  private channel: ClientChannel | undefined;
  private pid: number | undefined;
  private killRequested = false;
  private fallback: NodeJS.Timeout | undefined;
  private exit: ExitStatus | undefined;
  private stderrEnded = false;
  // Piped stdout may still hold data after 'close': the result waits until it has all gone out.
  private stdoutEnded: boolean;

  constructor(
    private readonly options: RunOptions,
    private readonly signal: AbortSignal,
    private readonly hooks: ChannelHooks,
    private readonly resolve: (result: RunResult) => void,
    private readonly reject: (reason: unknown) => void,
  ) {
    this.stdoutEnded = options.stdoutTo === undefined;
  }

  start(client: Client, command: string): void {
    this.signal.addEventListener("abort", this.onAbort, { once: true });
    try {
      client.exec(command, (error, stream) => this.onChannel(error, stream));
    } catch (error) {
      this.channelGone();
      this.settle(() => this.reject(new NotConnectedError(describeError(error))));
    }
  }

  private readonly onAbort = (): void => {
    this.stopWith(this.signal.reason);
  };

  private settle(outcome: () => void): void {
    if (!this.settled) {
      this.settled = true;
      this.signal.removeEventListener("abort", this.onAbort);
      outcome();
    }
  }

  private channelGone(): void {
    if (!this.gone) {
      this.gone = true;
      clearTimeout(this.fallback);
      this.hooks.onChannelGone();
    }
  }

  // Closing the channel makes sshd stop reading the command's output, so the pid line must be in
  // before the close; the kill itself goes over a separate channel.
  private killIfWanted(): void {
    const channel = this.channel;
    if (!this.killRequested || this.gone || channel === undefined) {
      return;
    }
    if (this.pid !== undefined) {
      this.hooks.kill(this.pid);
      this.pid = undefined;
      clearTimeout(this.fallback);
      channel.close();
    } else {
      // No pid yet (or a host that swallowed it): close anyway after a grace period, which at
      // least ends commands that write output (SIGPIPE).
      this.fallback ??= setTimeout(() => channel.close(), PID_GRACE_MS);
    }
  }

  private stopWith(reason: unknown): void {
    this.settle(() => this.reject(reason));
    this.killRequested = true;
    this.killIfWanted();
  }

  // A throwing output callback would otherwise unwind into ssh2's packet parser, which then
  // tears down the whole connection and every other command on it.
  private deliver(callback: ((chunk: Buffer) => void) | undefined, chunk: Buffer): void {
    try {
      callback?.(chunk);
    } catch (error) {
      this.stopWith(error);
    }
  }

  private onChannel(error: Error | undefined, stream: ClientChannel): void {
    if (error !== undefined) {
      this.refuseUnopened(error);
      return;
    }
    this.channel = stream;
    const filter = new PidLineFilter(
      (reported) => this.onPid(reported),
      (chunk) => this.keepStderr(chunk),
    );
    const sink = this.options.stdoutTo;
    if (sink === undefined) {
      stream.on("data", (chunk: Buffer) => this.keepStdout(chunk));
    } else {
      this.pipeStdout(stream, sink);
    }
    this.watchStderr(stream, filter);
    this.watchErrors(stream);
    stream.once("close", (code?: number | null, exitSignal?: string) => this.onClose(code, exitSignal));
    this.sendInput(stream);
  }

  private refuseUnopened(error: Error): void {
    this.channelGone();
    // ssh2's words for "the connection closed before the channel opened": nothing ran.
    if (error.message === "No response from server") {
      this.settle(() => this.reject(new NotConnectedError(error.message)));
      return;
    }
    this.settle(() =>
      this.reject(
        new SnapkeepError(
          "COMMAND_FAILED",
          `${this.hooks.label} would not start \`${this.hooks.display}\`: ${error.message}.`,
          {
            hint: "The host may allow fewer sessions per connection (sshd MaxSessions) than Snapkeep uses.",
            cause: error,
          },
        ),
      ),
    );
  }

  private onPid(reported: number): void {
    // Never 0 or 1: `kill -- -0` is our own group and `kill -- -1` is every process.
    if (reported > 1) {
      this.pid = reported;
      this.killIfWanted();
    }
  }

  private keepStdout(chunk: Buffer): void {
    if (!this.settled) {
      this.stdout.push(chunk);
      this.deliver(this.options.onStdout, chunk);
    }
  }

  private keepStderr(chunk: Buffer): void {
    if (!this.settled) {
      this.stderr.push(chunk);
      this.deliver(this.options.onStderr, chunk);
    }
  }

  private pipeStdout(stream: ClientChannel, sink: Writable): void {
    const ended = (): void => {
      this.stdoutEnded = true;
      this.maybeDone();
    };
    stream.once("end", ended);
    // A sink destroyed by its owner takes no more data; waiting for 'end' would hang.
    sink.once("close", ended);
    pipeOut(stream, sink);
  }

  private watchStderr(stream: ClientChannel, filter: PidLineFilter): void {
    stream.stderr.on("data", (chunk: Buffer) => filter.push(chunk));
    stream.stderr.once("end", () => {
      filter.flush();
      this.stderrEnded = true;
      this.maybeDone();
    });
  }

  private watchErrors(stream: ClientChannel): void {
    const onStreamError = (streamError: Error): void =>
      this.stopWith(
        new SnapkeepError(
          "COMMAND_FAILED",
          `\`${this.hooks.display}\` on ${this.hooks.label} failed: ${streamError.message}.`,
          { cause: streamError },
        ),
      );
    stream.on("error", onStreamError);
    stream.stderr.on("error", onStreamError);
  }

  private onClose(code: number | null | undefined, exitSignal: string | undefined): void {
    this.channelGone();
    this.exit = { code, signal: exitSignal };
    if (!this.stdoutEnded) {
      // Piped output still buffered behind a sink that stopped reading (its own consumer died)
      // would hold the result forever; what has not drained by now is given up.
      setTimeout(() => {
        this.stdoutEnded = true;
        this.maybeDone();
      }, STDOUT_DRAIN_MS).unref();
    }
    this.maybeDone();
  }

  private sendInput(stream: ClientChannel): void {
    if (this.killRequested) {
      // Stopped while the channel was opening, but the command has started: the listeners
      // above wait for its pid so that it can be killed.
      stream.end();
      this.killIfWanted();
    } else if (isStream(this.options.stdin)) {
      pipeIn(this.options.stdin, stream);
    } else {
      stream.end(this.options.stdin);
    }
  }

  private maybeDone(): void {
    if (this.exit === undefined || !this.stderrEnded || !this.stdoutEnded) {
      return;
    }
    const { code, signal: exitSignal } = this.exit;
    if (code === undefined) {
      this.settle(() => this.reject(connectionLost(this.hooks.label, this.hooks.display)));
      return;
    }
    this.settle(() =>
      this.resolve({
        code,
        signal: code === null ? (exitSignal ?? null) : null,
        stdout: Buffer.concat(this.stdout).toString("utf8"),
        stderr: Buffer.concat(this.stderr).toString("utf8"),
      }),
    );
  }
}

/**
 * Kills remote process groups through their own exec channel. Requests that arrive while a kill
 * is in flight are batched into the next one, so a burst of timeouts needs one spare channel,
 * not one each (the runner keeps spare sessions below sshd's MaxSessions for this).
 */
export class RemoteKiller {
  private queued: number[] = [];
  private running: Promise<void> | undefined;

  constructor(private readonly client: Client) {}

  kill(pid: number): void {
    this.queued.push(pid);
    this.running ??= this.drain();
  }

  /** Resolves once every requested kill was sent and answered (or given up on). */
  async idle(): Promise<void> {
    await this.running;
  }

  private async drain(): Promise<void> {
    while (this.queued.length > 0) {
      const pids = this.queued;
      this.queued = [];
      await this.send(pids);
    }
    this.running = undefined;
  }

  private send(pids: readonly number[]): Promise<void> {
    const argv = ["kill", "-s", "KILL", "--", ...pids.map((pid) => `-${pid}`)];
    return new Promise<void>((resolve) => {
      // A kill that gets no answer must not hold up dispose() for long.
      const timer = setTimeout(resolve, 5000);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      try {
        this.client.exec(buildRemoteCommand(argv), (error, stream) => {
          if (error !== undefined) {
            done();
            return;
          }
          stream.on("error", done);
          stream.once("close", done);
          stream.resume();
          stream.stderr.resume();
          stream.end();
        });
      } catch {
        done();
      }
    });
  }
}

/**
 * The command runner port: argv in, streamed output and exit status out.
 *
 * Drivers only ever see this interface, so the same driver code runs a tool on this computer
 * (spawned with an argv array, no shell) or on an SSH host (ssh2 exec, every argument quoted by
 * `quoteShellArgs`). `LC_ALL=C` is always set so that parsers see untranslated output.
 */
import type { Readable, Writable } from "node:stream";

export interface RunOptions {
  /**
   * Bytes written to the command's stdin, then stdin is closed; or a stream piped into stdin
   * (with backpressure) until it ends, for commands that are one end of a data pipe (rsync).
   */
  readonly stdin?: string | Buffer | Readable;
  /** Called with each chunk of stdout as it arrives (progress parsing); output is still collected. */
  readonly onStdout?: (chunk: Buffer) => void;
  /**
   * Pipes stdout into this stream instead of collecting it (the result's stdout is then empty and
   * `onStdout` is not called). The stream is ended when the command's stdout ends.
   */
  readonly stdoutTo?: Writable;
  readonly onStderr?: (chunk: Buffer) => void;
  /** Milliseconds before the command is killed and the run rejects with a TIMEOUT error. */
  readonly timeoutMs?: number;
  /** Aborting kills the command and rejects with a CANCELLED error. */
  readonly signal?: AbortSignal;
}

export interface RunResult {
  /** Exit code, or null when the process was ended by a signal. */
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CommandRunner {
  /** A short human label for messages: "this computer", "root@web01:22". */
  readonly label: string;
  /** Commands run on this computer (wrappers pass it on), so files it writes are files here. */
  readonly isLocal?: boolean;
  /**
   * Runs argv[0] with the remaining arguments. Resolves with the exit status whatever it is
   * (callers decide what a non-zero code means); rejects only when the command could not be
   * run at all (tool missing, connection failed, timeout, cancel).
   */
  run(argv: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** Closes connections and kills anything still running. Idempotent. */
  dispose(): Promise<void>;
}

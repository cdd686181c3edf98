/**
 * Piping a command's stdin and stdout to streams, shared by the local and the SSH runner.
 *
 * `Readable.pipe` is used rather than `stream.pipeline` on purpose: pipeline destroys both sides
 * when either errors, and a command's stdin erroring (EPIPE once it exits without reading all of
 * it) must not tear down the caller's stream, whose owner decides what a short read means.
 */
import { Readable, type Writable } from "node:stream";

export function isStream(value: unknown): value is Readable {
  return value instanceof Readable;
}

/** Feeds `source` into a command's stdin and closes stdin when `source` ends. */
export function pipeIn(source: Readable, stdin: Writable): void {
  source.pipe(stdin);
  // The command went away (exit, kill): stop feeding it, but leave `source` to its owner.
  stdin.once("close", () => source.unpipe(stdin));
}

/** Sends a command's stdout into `sink`, ending `sink` when stdout ends. */
export function pipeOut(stdout: Readable, sink: Writable): void {
  stdout.pipe(sink);
}

/**
 * Piping a command's stdin and stdout to streams, shared by the local and the SSH runner.
 *
 * `Readable.pipe` is used rather than `stream.pipeline` on purpose: pipeline destroys both sides
 * when either errors, and a command's stdin erroring (EPIPE once it exits without reading all of
 * it) must not tear down the caller's stream, whose owner decides what a short read means.
 *
 * Once a command is gone, what is still piped towards it is thrown away instead of held: in a
 * relay (rsync client → this process → rsync server) a held stream would stop the surviving
 * side's output from draining, and a process whose output cannot drain never reports 'close'.
 */
import { Readable, type Writable } from "node:stream";

export function isStream(value: unknown): value is Readable {
  return value instanceof Readable;
}

/** Feeds `source` into a command's stdin and closes stdin when `source` ends. */
export function pipeIn(source: Readable, stdin: Writable): void {
  source.pipe(stdin);
  stdin.once("close", () => {
    source.unpipe(stdin);
    source.resume();
  });
}

/** Sends a command's stdout into `sink`, ending `sink` when stdout ends. */
export function pipeOut(stdout: Readable, sink: Writable): void {
  stdout.pipe(sink);
}

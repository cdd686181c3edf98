/**
 * A job's command-level log: every command a runner runs while a job's work is under way is
 * reported to that job (the History view shows them among its steps), found through Node's
 * AsyncLocalStorage, so runners shared by jobs running at once (one SSH connection per host)
 * still tell each job only its own commands. Outside a job nothing is logged.
 */
import { AsyncLocalStorage } from "node:async_hooks";

import { shellWord } from "../../domain/shell-quote.js";
import type { RunResult } from "./types.js";

type Sink = (line: string) => void;

const current = new AsyncLocalStorage<Sink>();

/** A command line as logged: quoted as a shell would read it, cut to a length a log can hold. */
const MAX_LOGGED = 400;

/** Runs `work` with every command started inside it logged to `sink`. */
export function withJobLog<T>(sink: Sink, work: () => Promise<T>): Promise<T> {
  return current.run(sink, work);
}

/** Runs a command through `run`, and tells the job it belongs to (if any) how it ended. */
export async function logged(
  where: string,
  argv: readonly string[],
  run: () => Promise<RunResult>,
): Promise<RunResult> {
  const sink = current.getStore();
  if (sink === undefined) {
    return run();
  }
  const started = performance.now();
  const line = argv.map(shellWord).join(" ");
  const shown = line.length > MAX_LOGGED ? `${line.slice(0, MAX_LOGGED)}…` : line;
  const took = (): string => `${((performance.now() - started) / 1000).toFixed(1)} s`;
  const prefix = where === "this computer" ? "" : `[${where}] `;
  try {
    const result = await run();
    report(
      sink,
      `${prefix}$ ${shown} → ${result.code === null ? `killed (${result.signal ?? "?"})` : `exit ${result.code}`}, ${took()}`,
    );
    return result;
  } catch (error) {
    report(
      sink,
      `${prefix}$ ${shown} → not run to its end (${error instanceof Error ? error.message : String(error)}), ${took()}`,
    );
    throw error;
  }
}

function report(sink: Sink, line: string): void {
  try {
    sink(line);
  } catch {
    // A log that cannot be written (a full disk) must not fail the command that ran.
  }
}

import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { SnapkeepError } from "../../errors.js";
import { logged } from "./job-log.js";
import { isStream, pipeIn, pipeOut } from "./streams.js";
import type { CommandRunner, RunOptions, RunResult } from "./types.js";

// Each command runs in its own process group, so stopping it also stops what it started: a
// `sh -c` loop over qemu-img would otherwise leave the qemu-img it was running behind.
const OWN_GROUP = process.platform !== "win32";

interface Running {
  /** Kills the command's process group and makes its run reject with `error`. */
  readonly stop: (error: unknown) => void;
  readonly closed: Promise<void>;
}

/**
 * Runs commands on this computer: spawned with an argv array, never through a shell, so names
 * with quotes, `$()` or newlines are passed to the tool exactly as they are.
 */
export class LocalRunner implements CommandRunner {
  readonly label = "this computer";
  readonly isLocal = true;
  readonly #running = new Set<Running>();

  run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return logged(this.label, argv, () => this.#run(argv, options));
  }

  #run(argv: readonly string[], options: RunOptions): Promise<RunResult> {
    const [command, ...args] = argv;
    if (command === undefined) {
      return Promise.reject(new SnapkeepError("INVALID_INPUT", "No command given to run."));
    }
    if (options.signal?.aborted) {
      return Promise.reject(cancelled(command));
    }
    return new Promise<RunResult>((resolve, reject) => {
      const child = spawn(command, args, {
        env: { ...process.env, LC_ALL: "C", LANG: "C" },
        stdio: ["pipe", "pipe", "pipe"],
        detached: OWN_GROUP,
      });
      let failure: { readonly error: unknown } | undefined;

      const stop = (error: unknown): void => {
        failure ??= { error };
        killGroup(child, "SIGKILL");
      };
      let markClosed = (): void => undefined;
      const running: Running = { stop, closed: new Promise<void>((done) => (markClosed = done)) };
      this.#running.add(running);
      watchFatalSignals(child);
      const timer = stopOnTimeout(command, options.timeoutMs, stop);
      const onAbort = (): void => stop(cancelled(command));
      options.signal?.addEventListener("abort", onAbort, { once: true });

      const output = captureOutput(child, options, stop);
      feedStdin(child, options.stdin);

      const cleanup = (): void => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        this.#running.delete(running);
        unwatchFatalSignals(child);
      };
      child.on("error", (error: NodeJS.ErrnoException) => {
        cleanup();
        markClosed();
        reject(spawnFailure(command, error));
      });
      child.on("close", (code, signal) => {
        cleanup();
        markClosed();
        if (failure !== undefined) {
          reject(failure.error);
          return;
        }
        resolve({ code, signal, ...output() });
      });
    });
  }

  /** Kills every running command (and what it started); their runs reject with CANCELLED. */
  async dispose(): Promise<void> {
    const running = [...this.#running];
    for (const { stop } of running) {
      stop(
        new SnapkeepError(
          "CANCELLED",
          "A command on this computer was cancelled because Snapkeep is closing.",
        ),
      );
    }
    await Promise.all(running.map(({ closed }) => closed));
  }
}

/** Kills the child's process group; the child alone where there are no groups or it has none. */
function killGroup(child: ChildProcessWithoutNullStreams, signal: NodeJS.Signals): void {
  if (child.pid === undefined) {
    return;
  }
  if (OWN_GROUP) {
    try {
      process.kill(-child.pid, signal);
      return;
    } catch {
      // Gone already, or not a group leader after all: fall back to the child itself.
    }
  }
  child.kill(signal);
}

function stopOnTimeout(
  command: string,
  timeoutMs: number | undefined,
  stop: (error: unknown) => void,
): NodeJS.Timeout | undefined {
  return timeoutMs === undefined
    ? undefined
    : setTimeout(
        () => stop(new SnapkeepError("TIMEOUT", `${command} did not finish within ${timeoutMs} ms.`)),
        timeoutMs,
      );
}

/**
 * Collects stderr, and stdout unless it is piped to `options.stdoutTo`, passing each chunk to the
 * caller's callbacks as it comes; returns what was collected, as text, for the result.
 */
function captureOutput(
  child: ChildProcessWithoutNullStreams,
  options: RunOptions,
  stop: (error: unknown) => void,
): () => { stdout: string; stderr: string } {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  // A throwing callback must stop this command, not crash the process from a stream event.
  const deliver = (callback: ((chunk: Buffer) => void) | undefined, chunk: Buffer): void => {
    try {
      callback?.(chunk);
    } catch (error) {
      stop(error);
    }
  };
  if (options.stdoutTo === undefined) {
    child.stdout.on("data", (chunk: Buffer) => {
      stdout.push(chunk);
      deliver(options.onStdout, chunk);
    });
  } else {
    pipeOut(child.stdout, options.stdoutTo);
  }
  child.stderr.on("data", (chunk: Buffer) => {
    stderr.push(chunk);
    deliver(options.onStderr, chunk);
  });
  return () => ({
    stdout: Buffer.concat(stdout).toString("utf8"),
    stderr: Buffer.concat(stderr).toString("utf8"),
  });
}

function feedStdin(child: ChildProcessWithoutNullStreams, stdin: RunOptions["stdin"]): void {
  // A tool that exits without reading its stdin makes the write fail with EPIPE; the exit
  // status is what matters, so the write error is not a run error.
  child.stdin.on("error", () => undefined);
  if (isStream(stdin)) {
    pipeIn(stdin, child.stdin);
  } else {
    child.stdin.end(stdin);
  }
}

/** Why a command could not be started, as a sentence (with the package to install if missing). */
function spawnFailure(command: string, error: NodeJS.ErrnoException): SnapkeepError {
  if (error.code === "ENOENT") {
    return new SnapkeepError("TOOL_MISSING", `${command} is not installed on this computer.`, {
      hint: toolHint(command),
      details: { tool: command },
    });
  }
  return new SnapkeepError("COMMAND_FAILED", `Could not run ${command}: ${error.message}`);
}

/**
 * Children in their own process group no longer get the terminal's Ctrl+C, and nothing else ends
 * them when this process dies from a signal. While any run, a signal that nobody else handles
 * (so it would end this process) kills every child's group, then ends this process as it would
 * have without the listener. SIGKILL rather than the signal itself, because a `sh -c` script's
 * background jobs ignore SIGINT.
 */
const groups = new Set<ChildProcessWithoutNullStreams>();
const FATAL_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
// Marks this listener in every copy of this module (a bundle and the sources may both be loaded),
// so that two copies do not each take the other for an app's own handler and keep the process alive.
const FORWARDER = Symbol.for("snapkeep.local-runner.signal-forwarder");

function onFatalSignal(signal: NodeJS.Signals): void {
  if (process.listeners(signal).some((listener) => !(FORWARDER in listener))) {
    // Someone else handles it and owns the shutdown (and disposes the runners).
    return;
  }
  for (const child of groups) {
    killGroup(child, "SIGKILL");
  }
  groups.clear();
  for (const name of FATAL_SIGNALS) {
    process.removeListener(name, onFatalSignal);
  }
  process.kill(process.pid, signal);
}

Object.defineProperty(onFatalSignal, FORWARDER, { value: true });

function watchFatalSignals(child: ChildProcessWithoutNullStreams): void {
  if (!OWN_GROUP) {
    return;
  }
  if (groups.size === 0) {
    for (const name of FATAL_SIGNALS) {
      process.on(name, onFatalSignal);
    }
  }
  groups.add(child);
}

function unwatchFatalSignals(child: ChildProcessWithoutNullStreams): void {
  if (groups.delete(child) && groups.size === 0) {
    for (const name of FATAL_SIGNALS) {
      process.removeListener(name, onFatalSignal);
    }
  }
}

function cancelled(command: string): SnapkeepError {
  return new SnapkeepError("CANCELLED", `${command} was cancelled.`);
}

/** The Debian package that brings each tool Snapkeep calls. */
export function toolHint(command: string): string | undefined {
  const packages: Record<string, string> = {
    virsh: "libvirt-clients",
    "qemu-img": "qemu-utils",
    "qemu-io": "qemu-utils",
    rsync: "rsync",
  };
  const pkg = packages[command];
  return pkg === undefined ? undefined : `Install it with: apt-get install ${pkg}`;
}

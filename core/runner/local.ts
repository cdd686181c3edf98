import { spawn } from "node:child_process";
import { SnapkeepError } from "../errors.js";
import type { CommandRunner, RunOptions, RunResult } from "./types.js";

/**
 * Runs commands on this computer: spawned with an argv array, never through a shell, so names
 * with quotes, `$()` or newlines are passed to the tool exactly as they are.
 */
export class LocalRunner implements CommandRunner {
  readonly label = "this computer";
  readonly #running = new Set<ReturnType<typeof spawn>>();

  run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
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
      });
      this.#running.add(child);
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let failure: SnapkeepError | undefined;

      const stop = (error: SnapkeepError): void => {
        failure ??= error;
        child.kill("SIGKILL");
      };
      const timer =
        options.timeoutMs === undefined
          ? undefined
          : setTimeout(
              () =>
                stop(
                  new SnapkeepError("TIMEOUT", `${command} did not finish within ${options.timeoutMs} ms.`),
                ),
              options.timeoutMs,
            );
      const onAbort = (): void => stop(cancelled(command));
      options.signal?.addEventListener("abort", onAbort, { once: true });

      child.stdout.on("data", (chunk: Buffer) => {
        stdout.push(chunk);
        options.onStdout?.(chunk);
      });
      child.stderr.on("data", (chunk: Buffer) => {
        stderr.push(chunk);
        options.onStderr?.(chunk);
      });
      // A tool that exits without reading its stdin makes the write fail with EPIPE; the exit
      // status is what matters, so the write error is not a run error.
      child.stdin.on("error", () => undefined);
      child.stdin.end(options.stdin);

      const cleanup = (): void => {
        if (timer !== undefined) {
          clearTimeout(timer);
        }
        options.signal?.removeEventListener("abort", onAbort);
        this.#running.delete(child);
      };
      child.on("error", (error: NodeJS.ErrnoException) => {
        cleanup();
        if (error.code === "ENOENT") {
          reject(
            new SnapkeepError("TOOL_MISSING", `${command} is not installed on this computer.`, {
              hint: toolHint(command),
              details: { tool: command },
            }),
          );
        } else {
          reject(new SnapkeepError("COMMAND_FAILED", `Could not run ${command}: ${error.message}`));
        }
      });
      child.on("close", (code, signal) => {
        cleanup();
        if (failure !== undefined) {
          reject(failure);
          return;
        }
        resolve({
          code,
          signal,
          stdout: Buffer.concat(stdout).toString("utf8"),
          stderr: Buffer.concat(stderr).toString("utf8"),
        });
      });
    });
  }

  async dispose(): Promise<void> {
    for (const child of this.#running) {
      child.kill("SIGKILL");
    }
    this.#running.clear();
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

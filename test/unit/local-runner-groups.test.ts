import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomInt } from "node:crypto";
import { fileURLToPath } from "node:url";

import { afterEach, describe, expect, it } from "vitest";

import { LocalRunner } from "../../core/infra/runner/local.js";
import { waitFor } from "../support/wait.js";
import { failure } from "../support/failure.js";

const runners: LocalRunner[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  await Promise.all(runners.splice(0).map((runner) => runner.dispose()));
  for (const child of children.splice(0)) {
    child.kill("SIGKILL");
  }
});

function makeRunner(): LocalRunner {
  const runner = new LocalRunner();
  runners.push(runner);
  return runner;
}

/** A sleep duration no other process uses, so `pgrep -f` finds exactly this test's processes. */
function uniqueDuration(): string {
  return `60.${randomInt(1_000_000, 9_999_999)}`;
}

function running(pattern: string): boolean {
  try {
    execFileSync("pgrep", ["-f", pattern]);
    return true;
  } catch {
    return false;
  }
}

/** A shell that starts a grandchild and waits for it, like the `sh -c` loops the drivers run. */
function withGrandchild(duration: string): string[] {
  return ["sh", "-c", `sleep ${duration} & wait`];
}

describe("LocalRunner", () => {
  it("passes stdin through and keeps stdout and stderr apart", async () => {
    const runner = makeRunner();
    expect(await runner.run(["cat"], { stdin: "hello\nworld \u{1F4BE}" })).toEqual({
      code: 0,
      signal: null,
      stdout: "hello\nworld \u{1F4BE}",
      stderr: "",
    });
    const split = await runner.run(["sh", "-c", 'cat; echo err >&2; printf %s "$LC_ALL" >&2; exit 3'], {
      stdin: "in",
    });
    expect(split).toEqual({ code: 3, signal: null, stdout: "in", stderr: "err\nC" });
    expect((await runner.run(["cat"], { timeoutMs: 10_000 })).stdout).toBe("");
  });

  it("kills the command and what it started when it times out", async () => {
    const runner = makeRunner();
    const duration = uniqueDuration();
    const started = Date.now();
    const error = await failure(runner.run(withGrandchild(duration), { timeoutMs: 300 }));
    expect(error.code).toBe("TIMEOUT");
    expect(Date.now() - started).toBeLessThan(5000);
    await waitFor(() => !running(`sleep ${duration}`), 5000, "the grandchild gone");
  });

  it("kills the command and what it started when the signal aborts", async () => {
    const runner = makeRunner();
    const duration = uniqueDuration();
    const controller = new AbortController();
    const pending = runner.run(withGrandchild(duration), { signal: controller.signal });
    await waitFor(() => running(`^sleep ${duration}`), 5000, "the grandchild started");
    controller.abort();
    expect((await failure(pending)).code).toBe("CANCELLED");
    await waitFor(() => !running(`sleep ${duration}`), 5000, "the grandchild gone");
  });

  it("dispose kills what runs, waits for it, and the runs reject with CANCELLED", async () => {
    const runner = makeRunner();
    const duration = uniqueDuration();
    const pending = runner.run(withGrandchild(duration));
    await waitFor(() => running(`^sleep ${duration}`), 5000, "the grandchild started");
    await runner.dispose();
    expect((await failure(pending)).code).toBe("CANCELLED");
    await waitFor(() => !running(`sleep ${duration}`), 5000, "the grandchild gone");
    await runner.dispose();
  });

  it("stops a command whose output callback throws, instead of crashing", async () => {
    const runner = makeRunner();
    const duration = uniqueDuration();
    const boom = new Error("callback bug");
    const pending = runner.run(["sh", "-c", `echo hi; sleep ${duration} & wait`], {
      onStdout: () => {
        throw boom;
      },
    });
    await expect(pending).rejects.toBe(boom);
    await waitFor(() => !running(`sleep ${duration}`), 5000, "the grandchild gone");
  });

  it("says TOOL_MISSING for a program that does not exist", async () => {
    const error = await failure(makeRunner().run(["snapkeep-no-such-tool"]));
    expect(error.code).toBe("TOOL_MISSING");
  });

  describe("when the process gets a signal", () => {
    const script = fileURLToPath(new URL("./local-runner-signal-child.ts", import.meta.url));

    function start(duration: string, mode?: string): ChildProcess {
      const child = spawn(process.execPath, ["--import", "tsx", script, duration, ...(mode ? [mode] : [])], {
        stdio: ["ignore", "ignore", "inherit"],
      });
      children.push(child);
      return child;
    }

    function exited(child: ChildProcess): Promise<{ code: number | null; signal: string | null }> {
      return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    }

    it("takes the commands with it when nobody handles the signal, and still dies of it", async () => {
      const duration = uniqueDuration();
      const child = start(duration);
      const exit = exited(child);
      await waitFor(() => running(`^sleep ${duration}`), 20_000, "the grandchild started");
      child.kill("SIGINT");
      expect(await exit).toEqual({ code: null, signal: "SIGINT" });
      await waitFor(() => !running(`sleep ${duration}`), 5000, "the grandchild gone");
    }, 30_000);

    it("leaves the shutdown to the process's own handler", async () => {
      const duration = uniqueDuration();
      const child = start(duration, "own-handler");
      const exit = exited(child);
      await waitFor(() => running(`^sleep ${duration}`), 20_000, "the grandchild started");
      child.kill("SIGINT");
      expect(await exit).toEqual({ code: 0, signal: null });
      await waitFor(() => !running(`sleep ${duration}`), 5000, "the grandchild gone");
    }, 30_000);
  });
});

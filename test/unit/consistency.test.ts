import { describe, expect, it } from "vitest";
import { withConsistency, type GuestOps } from "../../core/domain/consistency.js";
import type { Consistency, Hook } from "../../core/domain/settings.js";

/** Records the order of guest operations; each step can be told to fail. */
function recordingOps(
  options: { agent?: boolean; failing?: string[]; hookCodes?: Record<string, number> } = {},
) {
  const log: string[] = [];
  const fails = (step: string): void => {
    if (options.failing?.includes(step)) {
      throw new Error(`${step} failed`);
    }
  };
  const ops: GuestOps = {
    async agentAnswers() {
      log.push("ping");
      return options.agent ?? true;
    },
    async freeze() {
      log.push("freeze");
      fails("freeze");
    },
    async thaw() {
      log.push("thaw");
      fails("thaw");
    },
    async runHook(hook: Hook) {
      const name = hook.argv[0] ?? "";
      log.push(`hook:${name}`);
      return { code: options.hookCodes?.[name] ?? 0, output: `${name} says hi` };
    },
  };
  return { ops, log };
}

const hook = (name: string): Hook => ({ where: "guest", argv: [name], timeoutSeconds: 30 });
const full: Consistency = { freeze: true, pre: hook("pre"), post: hook("post") };

describe("consistent snapshots", () => {
  it("runs pre-hook, freeze, snapshot, thaw, post-hook in that order", async () => {
    const { ops, log } = recordingOps();
    const result = await withConsistency(ops, full, true, async () => {
      log.push("snapshot");
      return 42;
    });
    expect(log).toEqual(["hook:pre", "ping", "freeze", "snapshot", "thaw", "hook:post"]);
    expect(result).toEqual({
      result: 42,
      consistency: "frozen+hooked",
      warnings: [],
      // What the hooks printed goes with the result, into the job's log.
      log: [
        "The pre-snapshot hook pre (guest) printed: pre says hi",
        "The post-snapshot hook post (guest) printed: post says hi",
      ],
    });
  });

  it("thaws and runs the post-hook even when the snapshot fails", async () => {
    const { ops, log } = recordingOps();
    await expect(
      withConsistency(ops, full, true, async () => {
        log.push("snapshot");
        throw new Error("disk full");
      }),
    ).rejects.toThrow("disk full");
    expect(log).toEqual(["hook:pre", "ping", "freeze", "snapshot", "thaw", "hook:post"]);
  });

  it("aborts on a failing pre-hook with its output, without freezing or snapshotting", async () => {
    const { ops, log } = recordingOps({ hookCodes: { pre: 3 } });
    const error = await withConsistency(ops, full, true, async () => log.push("snapshot")).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({
      code: "HOOK_FAILED",
      message: expect.stringContaining("exit code 3"),
      hint: expect.stringContaining("pre says hi"),
    });
    expect(log).toEqual(["hook:pre"]);
  });

  it("retries a failing thaw and fails loudly if the guest stays frozen", async () => {
    const { ops, log } = recordingOps({ failing: ["thaw"] });
    await expect(
      withConsistency(ops, { freeze: true }, true, async () => log.push("snapshot")),
    ).rejects.toMatchObject({
      code: "HOOK_FAILED",
      message: expect.stringContaining("virsh domfsthaw"),
    });
    expect(log).toEqual(["ping", "freeze", "snapshot", "thaw", "thaw", "thaw"]);
  });

  it("thaws after a failed freeze (it may have frozen some filesystems)", async () => {
    const { ops, log } = recordingOps({ failing: ["freeze"] });
    await expect(
      withConsistency(ops, { freeze: true }, true, async () => log.push("snapshot")),
    ).rejects.toMatchObject({
      code: "HOOK_FAILED",
    });
    expect(log).toEqual(["ping", "freeze", "thaw"]);
  });

  it("is crash-consistent without an agent, reports a failing post-hook as a warning", async () => {
    const { ops, log } = recordingOps({ agent: false, hookCodes: { post: 1 } });
    const result = await withConsistency(ops, full, true, async () => log.push("snapshot"));
    expect(log).toEqual(["hook:pre", "ping", "snapshot", "hook:post"]);
    expect(result.consistency).toBe("hooked");
    expect(result.warnings).toEqual([expect.stringContaining("post-snapshot hook post failed")]);
  });

  it("needs nothing from the guest when the VM is off, and skips freezing when switched off", async () => {
    const off = recordingOps();
    expect(
      (await withConsistency(off.ops, full, false, async () => off.log.push("snapshot"))).consistency,
    ).toBe("vm-off");
    expect(off.log).toEqual(["snapshot"]);
    const noFreeze = recordingOps();
    expect((await withConsistency(noFreeze.ops, { freeze: false }, true, async () => 1)).consistency).toBe(
      "crash-consistent",
    );
    expect(noFreeze.log).toEqual([]);
  });
});

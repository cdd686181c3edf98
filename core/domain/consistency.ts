import { SnapkeepError, describeError } from "../errors.js";
import type { Consistency, Hook } from "./settings.js";

/** What the guest side can do for a consistent snapshot; implemented over virsh in the driver. */
export interface GuestOps {
  /** True when the QEMU guest agent answers a ping in time. */
  agentAnswers(): Promise<boolean>;
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  runHook(hook: Hook): Promise<{ code: number | null; output: string }>;
}

export interface ConsistentResult<T> {
  readonly result: T;
  /** vm-off, crash-consistent, frozen, hooked or frozen+hooked: recorded with the snapshot. */
  readonly consistency: string;
  /** Problems that did not stop the snapshot (a failing post-hook), for the job log. */
  readonly warnings: readonly string[];
  /** What the hooks printed when they succeeded, for the job log: the proof they ran, and how. */
  readonly log: readonly string[];
}

const THAW_ATTEMPTS = 3;

/**
 * Takes a snapshot as consistently as the VM allows. Order: pre-hook (a failure aborts, with its
 * output), freeze (only when the agent answers and freezing is on), snapshot, thaw, post-hook.
 * Thaw runs on every path once a freeze was attempted, and post-hook runs whenever pre-hook ran,
 * so a database paused by the pre-hook is resumed even when the snapshot fails.
 */
export async function withConsistency<T>(
  ops: GuestOps,
  settings: Consistency | undefined,
  vmActive: boolean,
  take: () => Promise<T>,
): Promise<ConsistentResult<T>> {
  if (!vmActive) {
    return { result: await take(), consistency: "vm-off", warnings: [], log: [] };
  }
  const warnings: string[] = [];
  const log: string[] = [];
  let hooked = false;
  if (settings?.pre !== undefined) {
    const pre = await runHookSafely(ops, settings.pre);
    if (pre.code !== 0) {
      throw new SnapkeepError(
        "HOOK_FAILED",
        `The pre-snapshot hook ${settings.pre.argv.join(" ")} (${settings.pre.where}) failed with ${pre.code === null ? "no exit code" : `exit code ${pre.code}`}; no snapshot was taken.`,
        {
          hint: pre.output.trim() === "" ? undefined : `Its output:\n${pre.output.trim()}`,
          details: { output: pre.output },
        },
      );
    }
    hooked = true;
    logOutput(log, "pre", settings.pre, pre.output);
  }
  let frozen = false;
  try {
    if ((settings?.freeze ?? true) && (await ops.agentAnswers())) {
      try {
        await ops.freeze();
        frozen = true;
      } catch (error) {
        // A freeze that half-happened must still be undone.
        await thawWithRetries(ops, warnings);
        throw new SnapkeepError(
          "HOOK_FAILED",
          `Freezing the guest's filesystems failed: ${describeError(error)}`,
        );
      }
    }
    let result: T;
    try {
      result = await take();
    } finally {
      if (frozen) {
        await thawWithRetries(ops, warnings);
      }
    }
    return { result, consistency: label(frozen, hooked), warnings, log };
  } finally {
    if (hooked && settings?.post !== undefined) {
      const post = await runHookSafely(ops, settings.post);
      if (post.code !== 0) {
        warnings.push(
          `The post-snapshot hook ${settings.post.argv.join(" ")} failed (${post.code ?? "no exit code"}): ${post.output.trim()}`,
        );
      } else {
        logOutput(log, "post", settings.post, post.output);
      }
    }
  }
}

function logOutput(log: string[], which: "pre" | "post", hook: Hook, output: string): void {
  const text = output.trim();
  if (text !== "") {
    log.push(
      `The ${which}-snapshot hook ${hook.argv.join(" ")} (${hook.where}) printed: ${text.slice(0, 2000)}`,
    );
  }
}

async function runHookSafely(ops: GuestOps, hook: Hook): Promise<{ code: number | null; output: string }> {
  try {
    return await ops.runHook(hook);
  } catch (error) {
    return { code: null, output: describeError(error) };
  }
}

/** A guest left frozen stops writing to disk, so thaw is retried before giving up loudly. */
async function thawWithRetries(ops: GuestOps, warnings: string[]): Promise<void> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= THAW_ATTEMPTS; attempt++) {
    try {
      await ops.thaw();
      return;
    } catch (error) {
      lastError = error;
    }
  }
  const message = `Thawing the guest's filesystems failed ${THAW_ATTEMPTS} times (${describeError(lastError)}); run virsh domfsthaw on the VM now.`;
  warnings.push(message);
  throw new SnapkeepError("HOOK_FAILED", message);
}

function label(frozen: boolean, hooked: boolean): string {
  if (frozen && hooked) {
    return "frozen+hooked";
  }
  return frozen ? "frozen" : hooked ? "hooked" : "crash-consistent";
}

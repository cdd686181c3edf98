/**
 * Reverting a running VM that ignores the shutdown request (issue 18: the revert waited 120 s and
 * failed). A real VM with no OS, which never reacts to ACPI, through the API the wizard calls:
 * the plan says no guest agent answers; powering it off up front is quick; a clean shutdown is
 * counted down in the API's events and ends in a power-off or in a refusal that changes nothing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Api, type ApiEvent } from "../../core/api/api.js";
import type { RevertProgress, RevertResult } from "../../core/api/contract.js";
import { openCoreContext, type CoreContext } from "../../core/app/context.js";
import { runCli } from "../../core/cli/main.js";
import { TestVms, uniqueSuffix, virshOut } from "../support/libvirt.js";

describe("reverting a running VM that ignores the shutdown request", () => {
  const vms = new TestVms();
  const vmName = `sk-rvoff-${uniqueSuffix()}`;
  let home: string;
  let context: CoreContext;
  let api: Api;
  let vmUuid = "";
  let next = 1;
  const events: ApiEvent[] = [];

  async function call(method: string, params: Record<string, unknown>): Promise<unknown> {
    const answer = await api.handle({ id: next++, method, params });
    if ("error" in answer) {
      throw Object.assign(new Error(answer.error.message), { code: answer.error.code });
    }
    return answer.result;
  }

  /** The revert events of this VM since `from`, as the wizard receives them. */
  function progressSince(from: number): RevertProgress[] {
    return events
      .slice(from)
      .flatMap((e) => (e.event === "revert" && e.data.vmUuid === vmUuid ? [e.data.progress] : []));
  }

  const safetyCount = async (): Promise<number> =>
    (await context.snapshots.list("local", vmName)).filter((s) => s.kind === "safety").length;

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), "snapkeep-home-"));
    context = openCoreContext({
      home,
      ssh: { homeDir: home, defaultUser: "root", agentSocket: undefined, passphrase: undefined },
      path: process.env["PATH"],
      now: () => new Date(),
    });
    api = new Api(context);
    api.onEvent((event) => events.push(event));
    const vm = await vms.create({ name: vmName, running: true, disks: [{ target: "vda", sizeMiB: 16 }] });
    vmUuid = vm.uuid;
    await context.snapshots.create("local", vmName, { name: "base" });
  });

  afterAll(async () => {
    await api?.dispose();
    await context?.dispose();
    await vms.dispose();
    rmSync(home, { recursive: true, force: true });
  });

  it("the plan says no guest agent answers, so the wizard can offer a power-off up front", async () => {
    const plan = (await call("snapshots.planRevert", {
      host: "local",
      vmUuid,
      snapshot: "base",
      stopRunning: true,
    })) as RevertResult;
    expect(plan.restarted).toBe(true);
    expect(plan.guestAgent).toBe(false);
  });

  it("powered off up front, the revert is done in seconds, not after the shutdown wait", async () => {
    const from = events.length;
    const started = performance.now();
    const result = (await call("snapshots.revert", {
      host: "local",
      vmUuid,
      snapshot: "base",
      stopRunning: true,
      powerOffNow: true,
      // The default wait: it is not waited at all.
      shutdownTimeoutSeconds: 120,
    })) as RevertResult;
    expect((performance.now() - started) / 1000).toBeLessThan(30);
    expect(result.restarted).toBe(true);
    expect(virshOut("domstate", vmUuid).trim()).toBe("running");
    expect(progressSince(from).map((p) => p.phase)).toEqual(["powering-off", "reverting", "starting"]);
    expect(await safetyCount()).toBe(1);
  });

  it("a clean shutdown is counted down to its deadline, then the VM is powered off as chosen", async () => {
    const from = events.length;
    const started = Date.now();
    await call("snapshots.revert", {
      host: "local",
      vmUuid,
      snapshot: "base",
      stopRunning: true,
      force: true,
      shutdownTimeoutSeconds: 3,
    });
    const progress = progressSince(from);
    const waits = progress.flatMap((p) => (p.phase === "shutting-down" ? [p] : []));
    expect(waits.length).toBeGreaterThanOrEqual(3);
    // One deadline, three seconds after the start, counted down to it.
    expect(new Set(waits.map((w) => w.deadline)).size).toBe(1);
    const deadline = Date.parse(waits[0]?.deadline ?? "");
    expect(deadline - started).toBeGreaterThanOrEqual(2500);
    expect(deadline - started).toBeLessThan(6000);
    expect(waits[0]?.secondsLeft).toBe(3);
    const left = waits.map((w) => w.secondsLeft);
    expect(left).toEqual([...left].sort((a, b) => b - a));
    expect(left.at(-1)).toBeLessThanOrEqual(1);
    expect(waits.every((w) => w.then === "power-off")).toBe(true);
    expect(progress.slice(waits.length).map((p) => p.phase)).toEqual([
      "powering-off",
      "reverting",
      "starting",
    ]);
    expect(Date.now()).toBeGreaterThanOrEqual(deadline);
    expect(virshOut("domstate", vmUuid).trim()).toBe("running");
  });

  it("without consent to power it off, the wait ends in a refusal that changed nothing", async () => {
    const before = await safetyCount();
    const from = events.length;
    const error = await call("snapshots.revert", {
      host: "local",
      vmUuid,
      snapshot: "base",
      stopRunning: true,
      shutdownTimeoutSeconds: 2,
    }).then(
      () => null,
      (e: unknown) => e as Error & { code: string },
    );
    expect(error?.code).toBe("VM_RUNNING");
    expect(error?.message).toMatch(/did not shut down within 2 s; nothing was reverted/);
    const waits = progressSince(from);
    expect(waits.length).toBeGreaterThan(0);
    expect(waits.every((w) => w.phase === "shutting-down" && w.then === "give-up")).toBe(true);
    expect(virshOut("domstate", vmUuid).trim()).toBe("running");
    expect(await safetyCount()).toBe(before);
  });

  it("the CLI: the dry run says no agent answers, and --power-off-now reverts without the wait", async () => {
    const cli = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
      let out = "";
      let err = "";
      const code = await runCli(args, {
        out: (text) => (out += text),
        err: (text) => (err += text),
        env: { ...process.env, SNAPKEEP_HOME: home, SNAPKEEP_DEBUG: "" },
      });
      return { code, out, err };
    };
    const dry = await cli("snapshot", "revert", `local/${vmName}`, "base", "--dry-run");
    expect(dry.code).toBe(0);
    expect(dry.out).toMatch(/No guest agent answers in it: .* --power-off-now powers it off at once instead/);

    const started = performance.now();
    const done = await cli("snapshot", "revert", `local/${vmName}`, "base", "--power-off-now");
    expect(done.code).toBe(0);
    expect((performance.now() - started) / 1000).toBeLessThan(30);
    expect(done.err).toBe("Powering the VM off.\nReverting the disks.\nStarting the VM again.\n");
    expect(done.out).toMatch(/^Reverted vda to base; the VM was started again\./);
    expect(virshOut("domstate", vmUuid).trim()).toBe("running");
  });
});

/**
 * The UI's job registry (core/api/jobs.ts): started at once, progress pushed a few times a second,
 * cancel ends a job as cancelled (never done), failures keep the error's sentence.
 */
import { describe, expect, it } from "vitest";

import { Jobs, type JobView } from "../../core/api/jobs.js";
import { SnapkeepError } from "../../core/errors.js";

function harness() {
  let clock = 0;
  const events: JobView[] = [];
  const jobs = new Jobs({
    now: () => new Date(Date.UTC(2026, 10, 26, 12, 0, 0) + clock),
    clock: () => clock,
    onChange: (job) => events.push(job),
  });
  return { jobs, events, tick: (ms: number) => (clock += ms) };
}

const progress = (fraction: number) => ({
  phase: "transfer",
  fraction,
  bytesDone: fraction * 100,
  bytesTotal: 100,
  bytesPerSecond: 10,
  etaSeconds: 1,
});

describe("UI jobs", () => {
  it("returns a running job at once and ends it with the work's result", async () => {
    const { jobs, events } = harness();
    let finish: (value: readonly string[]) => void = () => undefined;
    const started = jobs.start({ kind: "lab", title: "Lab a" }, () => new Promise((r) => (finish = r)));
    expect(started.state).toBe("running");
    expect(jobs.list().map((j) => j.id)).toEqual([started.id]);
    await Promise.resolve(); // the work starts on the next tick, after start() has answered
    finish(["sk-lab-a"]);
    const ended = await jobs.settled(started.id);
    expect(ended).toMatchObject({ state: "succeeded", result: ["sk-lab-a"], cancellable: false });
    expect(ended.endedAt).not.toBeNull();
    expect(events.at(-1)?.state).toBe("succeeded");
  });

  it("carries the export a job is about, so a view finds its row without reading the title", async () => {
    const { jobs } = harness();
    const verify = jobs.start(
      { kind: "verify", title: "Check it", export: { target: "nas", id: "e-1" } },
      () => new Promise(() => undefined),
    );
    expect(verify.export).toEqual({ target: "nas", id: "e-1" });
    expect(jobs.get(verify.id).export).toEqual({ target: "nas", id: "e-1" });
    expect(
      jobs.start({ kind: "lab", title: "Lab" }, () => new Promise(() => undefined)).export,
    ).toBeUndefined();
  });

  it("pushes progress at most every 250 ms, but keeps the latest for the list", async () => {
    const { jobs, events, tick } = harness();
    let report: (p: ReturnType<typeof progress>) => void = () => undefined;
    let finish: () => void = () => undefined;
    const started = jobs.start({ kind: "lab", title: "Lab b" }, (_signal, r) => {
      report = r;
      return new Promise<string[]>((resolve) => (finish = () => resolve([])));
    });
    await Promise.resolve();
    events.length = 0;
    tick(300);
    report(progress(0.1));
    tick(10);
    report(progress(0.2));
    tick(10);
    report(progress(0.3));
    expect(events.map((e) => e.progress?.fraction)).toEqual([0.1]);
    expect(jobs.get(started.id).progress?.fraction).toBe(0.3);
    tick(300);
    report(progress(0.4));
    expect(events.map((e) => e.progress?.fraction)).toEqual([0.1, 0.4]);
    finish();
    expect((await jobs.settled(started.id)).progress?.fraction).toBe(1);
  });

  it("cancels through the signal: the job ends as cancelled, not done", async () => {
    const { jobs } = harness();
    const started = jobs.start(
      { kind: "export", title: "Export c" },
      (signal) =>
        new Promise((_resolve, reject) =>
          signal.addEventListener("abort", () =>
            reject(new SnapkeepError("CANCELLED", "The export was cancelled.")),
          ),
        ),
    );
    await Promise.resolve();
    expect(jobs.cancel(started.id).cancellable).toBe(false);
    const ended = await jobs.settled(started.id);
    expect(ended.state).toBe("cancelled");
    expect(ended.result).toBeNull();
  });

  it("offers no cancel for work that cannot stop half way, and refuses one", async () => {
    const { jobs } = harness();
    let finish: () => void = () => undefined;
    const started = jobs.start(
      { kind: "lab", title: "Make the demo VMs", cancellable: false },
      () => new Promise<string[]>((r) => (finish = () => r([]))),
    );
    expect(started.cancellable).toBe(false);
    expect(() => jobs.cancel(started.id)).toThrow(/cannot be stopped half way/);
    await Promise.resolve();
    finish();
    expect((await jobs.settled(started.id)).state).toBe("succeeded");
  });

  it("keeps a failure's sentence and hint", async () => {
    const { jobs } = harness();
    const started = jobs.start({ kind: "restore", title: "Restore" }, async () => {
      throw new SnapkeepError("TARGET_FULL", "nas has 1 GiB free; the export needs 3 GiB.", {
        hint: "Free space or prune old exports.",
      });
    });
    expect(await jobs.settled(started.id)).toMatchObject({
      state: "failed",
      error: {
        code: "TARGET_FULL",
        message: "nas has 1 GiB free; the export needs 3 GiB.",
        hint: "Free space or prune old exports.",
      },
    });
  });

  it("keeps the newest 50 ended jobs and every running one", async () => {
    const { jobs } = harness();
    const running = jobs.start({ kind: "lab", title: "long" }, () => new Promise(() => undefined));
    for (let i = 0; i < 60; i++) {
      await jobs.settled(jobs.start({ kind: "lab", title: `v${i}` }, async () => [`v${i}`]).id);
    }
    jobs.start({ kind: "lab", title: "last" }, async () => []);
    const titles = jobs.list().map((j) => j.title);
    expect(titles).toContain("long");
    expect(titles).not.toContain("v0");
    expect(titles).toContain("v59");
    expect(jobs.get(running.id).state).toBe("running");
    await expect(async () => jobs.get("000000000000")).rejects.toThrow(/no job/);
  });

  it("dispose cancels what runs and waits for it", async () => {
    const { jobs } = harness();
    let stopped = false;
    const started = jobs.start(
      { kind: "export", title: "d" },
      (signal) =>
        new Promise((_resolve, reject) =>
          signal.addEventListener("abort", () => {
            stopped = true;
            reject(new Error("aborted"));
          }),
        ),
    );
    await Promise.resolve();
    await jobs.dispose();
    expect(stopped).toBe(true);
    expect(jobs.get(started.id).state).toBe("cancelled");
  });
});

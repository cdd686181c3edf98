/**
 * The History view's page of the journal (api/journal-jobs.ts historyOf): newest first, filtered,
 * each job with its steps, what it pruned and what it sent; a job whose process is gone is
 * interrupted, never running. The journal keeps a job's steps, the last hundred.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

import { historyOf } from "../../core/api/journal-jobs.js";
import { Journal } from "../../core/infra/journal.js";

describe("historyOf", () => {
  const home = mkdtempSync(join(tmpdir(), "sk-history-"));
  const journal = new Journal(home);
  const at = (s: number) => new Date(Date.UTC(2026, 11, 6, 2, 0, s)).toISOString();
  const scheduled = { scheduleId: "s1", host: "pve", vmUuid: "u1", tag: "t" };
  journal.start({
    job: "a",
    at: at(0),
    kind: "scheduled-snapshot",
    slot: at(0),
    vmName: "web",
    ...scheduled,
  });
  journal.progress("a", "snapshot made", new Date(at(2)));
  journal.end({
    job: "a",
    at: at(3),
    status: "succeeded",
    pruned: ["scheduled-2026-11-01"],
    held: ["kept-1"],
  });
  journal.start({ job: "b", at: at(10), kind: "copy", target: "nas", vmName: "web", ...scheduled });
  journal.end({
    job: "b",
    at: at(40),
    status: "failed",
    message: "nas is offline",
    copy: { target: "nas", exportId: null, bytesSent: 0, prunedCopies: [], error: "nas is offline" },
  });
  journal.start({
    job: "c",
    at: at(50),
    kind: "export",
    title: "Export db to usb",
    host: "pve",
    vmName: "db",
  });
  journal.progress("c", "transfer", new Date(at(51)));
  journal.progress("c", "vda: incremental on 20261205-0200", new Date(at(59)));
  journal.end({
    job: "c",
    at: at(60),
    status: "succeeded",
    sent: { target: "usb", exportId: "e9", bytes: 4096 },
  });
  // Started by a process that is gone, never ended: interrupted.
  journal.start({
    job: "d",
    at: at(70),
    kind: "verify",
    title: "Verify e9 on usb",
    host: null,
    vmName: null,
  });
  const jobs = journal
    .jobs()
    .map((j) => (j.id === "d" ? { ...j, owner: { pid: 999_999_999, hostname: hostname() } } : j));
  rmSync(home, { recursive: true, force: true });

  it("lists newest first with the whole record of each job", () => {
    const history = historyOf(jobs, { limit: 300 }, false);
    expect(history.entries.map((e) => [e.id, e.state])).toEqual([
      ["d", "interrupted"],
      ["c", "succeeded"],
      ["b", "failed"],
      ["a", "succeeded"],
    ]);
    expect(history.matching).toBe(4);
    expect(history.vms).toEqual([
      { host: "pve", vm: "db" },
      { host: "pve", vm: "web" },
    ]);
    const [d, c, b, a] = history.entries;
    expect(a).toMatchObject({
      title: "Scheduled snapshot of web",
      pruned: ["scheduled-2026-11-01"],
      held: ["kept-1"],
      steps: [{ at: at(2), step: "snapshot made" }],
      message: null,
    });
    expect(b).toMatchObject({ kind: "copy", message: "nas is offline", sent: { target: "nas", bytes: 0 } });
    expect(c).toMatchObject({
      sent: { target: "usb", exportId: "e9", bytes: 4096, prunedCopies: [] },
      steps: [
        { at: at(51), step: "transfer" },
        { at: at(59), step: "vda: incremental on 20261205-0200" },
      ],
    });
    expect(d?.message).toMatch(/stopped while this job ran/);
  });

  it("filters by VM, kind and result, and pages by the limit", () => {
    const ids = (filter: Parameters<typeof historyOf>[1]) =>
      historyOf(jobs, filter, false).entries.map((e) => e.id);
    expect(ids({ limit: 300, host: "pve", vm: "web" })).toEqual(["b", "a"]);
    expect(ids({ limit: 300, kind: "export" })).toEqual(["c"]);
    expect(ids({ limit: 300, result: "failed" })).toEqual(["b"]);
    expect(ids({ limit: 300, host: "pve", vm: "web", result: "interrupted" })).toEqual([]);
    const page = historyOf(jobs, { limit: 2 }, false);
    expect([page.entries.length, page.matching]).toEqual([2, 4]);
  });
});

describe("the journal's steps", () => {
  it("keeps a job's last hundred steps", () => {
    const home = mkdtempSync(join(tmpdir(), "sk-history-"));
    try {
      const journal = new Journal(home);
      journal.start({
        job: "x",
        at: new Date(0).toISOString(),
        kind: "lab",
        title: "Lab",
        host: null,
        vmName: null,
      });
      for (let i = 0; i < 130; i++) {
        journal.progress("x", `step ${i}`, new Date(i * 1000));
      }
      const steps = journal.jobs()[0]?.steps ?? [];
      expect(steps).toHaveLength(100);
      expect(steps[0]?.step).toBe("step 30");
      expect(steps.at(-1)?.step).toBe("step 129");
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

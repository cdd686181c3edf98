/**
 * The UI's jobs in the job journal (core/api/journal-jobs.ts): a job's start and end are written
 * as it runs, and the jobs panel shows the journal's jobs of other processes beside its own,
 * a job whose process died shown as interrupted, never as running or done.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

import { JobJournal } from "../../core/api/journal-jobs.js";
import type { JobView } from "../../core/api/contract.js";
import { Journal } from "../../core/infra/journal.js";

const homes: string[] = [];
afterEach(() => homes.splice(0).forEach((h) => rmSync(h, { recursive: true, force: true })));

function exportJob(id: string, state: JobView["state"]): JobView {
  return {
    id,
    kind: "export",
    title: `Export web “before upgrade” to nas`,
    host: "local",
    vm: "web",
    state,
    startedAt: "2026-12-05T10:00:00.000Z",
    endedAt: state === "running" ? null : "2026-12-05T10:01:00.000Z",
    progress: null,
    error:
      state === "failed" ? { code: "TARGET_FULL", message: "nas is full.", hint: null, action: null } : null,
    result: null,
    cancellable: state === "running",
  };
}

describe("the UI's jobs in the job journal", () => {
  it("journals a job's start once and its end, and lists other processes' jobs beside its own", () => {
    const home = mkdtempSync(join(tmpdir(), "snapkeep-jj-"));
    homes.push(home);
    const journaled = new JobJournal(home);
    journaled.record(exportJob("aaaa", "running"));
    journaled.record(exportJob("aaaa", "running")); // a progress event: nothing more written
    journaled.record(exportJob("bbbb", "running"));
    journaled.record(exportJob("bbbb", "failed"));
    const journal = new Journal(home);
    expect(journal.jobs().map((j) => [j.id, j.kind, j.status, j.message])).toEqual([
      ["aaaa", "export", "running", null],
      ["bbbb", "export", "failed", "nas is full."],
    ]);
    // Another process's export that died with it, and the scheduler's copy.
    journal.start({
      job: "cccc",
      at: "2026-12-05T09:00:00.000Z",
      kind: "verify",
      title: "Verify export x on nas",
      host: null,
      vmName: null,
      owner: { pid: 2 ** 22 + 777, hostname: hostname() },
    });
    journal.start({
      job: "job-copy",
      at: "2026-12-05T09:30:00.000Z",
      kind: "copy",
      scheduleId: "s1",
      host: "local",
      vmUuid: "u",
      vmName: "db",
      tag: "t",
      target: "nas",
    });
    journal.end({
      job: "job-copy",
      at: "2026-12-05T09:31:00.000Z",
      status: "succeeded",
      copy: { target: "nas", exportId: "e1", bytesSent: 5, prunedCopies: [], error: null, resumed: true },
    });
    // This process's own jobs come from its live list, not twice from the journal.
    const shown = journaled.others(new Set(["aaaa", "bbbb"]));
    expect(shown.map((j) => [j.id, j.kind, j.state, j.title])).toEqual([
      ["cccc", "verify", "interrupted", "Verify export x on nas"],
      ["job-copy", "scheduled-copy", "succeeded", "Copy of db to nas"],
    ]);
    expect(shown[0]?.error?.code).toBe("INTERRUPTED");
    expect(shown[1]?.result).toEqual({
      target: "nas",
      exportId: "e1",
      bytesSent: 5,
      resumed: true,
      pruned: [],
    });
  });
});

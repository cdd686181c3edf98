import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Journal, stillRunning } from "../../core/infra/journal.js";

const homes: string[] = [];
afterEach(() => homes.splice(0).forEach((h) => rmSync(h, { recursive: true, force: true })));

describe("job journal", () => {
  it("keeps records whole after a torn last line (power loss mid-write)", () => {
    const home = mkdtempSync(join(tmpdir(), "snapkeep-journal-"));
    homes.push(home);
    const journal = new Journal(home);
    appendFileSync(journal.path, '{"event":"start","job":"job-torn","at":"2026-11-26T'); // cut off
    journal.start({
      job: "job-next",
      at: "2026-11-26T10:00:00.000Z",
      kind: "scheduled-snapshot",
      scheduleId: "aaaaaaa1",
      host: "h",
      vmUuid: "u",
      vmName: "v",
      tag: "t",
      slot: "2026-11-26T10:00:00.000Z",
    });
    journal.end({ job: "job-next", at: "2026-11-26T10:00:05.000Z", status: "succeeded" });
    expect(journal.jobs().map((j) => [j.id, j.status])).toEqual([["job-next", "succeeded"]]);
    // Recovery finds nothing open: the torn start never parsed, so nothing is reported as done either.
    expect(journal.recoverInterrupted(new Date())).toEqual([]);
  });

  it("reports as interrupted only the open jobs whose process is gone", () => {
    const home = mkdtempSync(join(tmpdir(), "snapkeep-journal-"));
    homes.push(home);
    const journal = new Journal(home);
    const at = "2026-12-05T10:00:00.000Z";
    const dead = { pid: 2 ** 22 + 54_321, hostname: hostname() };
    const elsewhere = { pid: 2 ** 22 + 54_321, hostname: `not-${hostname()}` };
    const app = (job: string) => ({
      job,
      at,
      kind: "export" as const,
      title: `Export ${job}`,
      host: "local",
      vmName: "web",
    });
    journal.start(app("mine")); // this process: still running
    journal.start({ ...app("killed"), owner: dead });
    journal.start({ ...app("remote"), owner: elsewhere }); // cannot be checked from here: never called interrupted
    appendFileSync(
      journal.path,
      `${JSON.stringify({ event: "start", job: "legacy", at, kind: "scheduled-snapshot", scheduleId: "s", host: "h", vmUuid: "u", vmName: "v", tag: "t", slot: at })}\n`,
    );
    expect(journal.jobs().map((j) => [j.id, stillRunning(j, false)])).toEqual([
      ["mine", true],
      ["killed", false],
      ["remote", true],
      ["legacy", false], // from before jobs named their process: the scheduler's, and none runs
    ]);
    const recovered = journal.recoverInterrupted(new Date(at));
    expect(recovered.map((j) => j.id)).toEqual(["killed", "legacy"]);
    expect(journal.jobs().map((j) => [j.id, j.status])).toEqual([
      ["mine", "running"],
      ["killed", "interrupted"],
      ["remote", "running"],
      ["legacy", "interrupted"],
    ]);
    const mine = journal.jobs()[0];
    expect(mine).toMatchObject({ kind: "export", title: "Export mine", host: "local", vmName: "web" });
    expect(mine?.owner?.pid).toBe(process.pid);
  });
});

import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Journal } from "../../core/infra/journal.js";

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
});

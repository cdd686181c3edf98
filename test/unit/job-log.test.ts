/**
 * A job's command-level log (infra/runner/job-log.ts): the commands a runner runs inside a job are
 * that job's, even with two jobs sharing one runner at once; outside a job nothing is logged.
 * Real commands on this computer.
 */
import { describe, expect, it } from "vitest";

import { withJobLog } from "../../core/infra/runner/job-log.js";
import { LocalRunner } from "../../core/infra/runner/local.js";

describe("withJobLog", () => {
  it("gives each job the commands it ran, quoted, with how they ended", async () => {
    const runner = new LocalRunner();
    const a: string[] = [];
    const b: string[] = [];
    await Promise.all([
      withJobLog(
        (line) => a.push(line),
        async () => {
          await runner.run(["sh", "-c", "sleep 0.2; exit 3"]);
          await runner.run(["echo", "it's a VM"]);
        },
      ),
      withJobLog(
        (line) => b.push(line),
        async () => {
          await runner.run(["true"]);
          await runner.run(["no-such-tool-snapkeep"]).catch(() => undefined);
        },
      ),
    ]);
    await runner.run(["true"]); // outside any job: nobody's
    expect(a).toEqual([
      expect.stringMatching(/^\$ sh -c 'sleep 0\.2; exit 3' → exit 3, 0\.\d s$/),
      expect.stringMatching(/^\$ echo 'it'\\''s a VM' → exit 0, \d\.\d s$/),
    ]);
    expect(b).toEqual([
      expect.stringMatching(/^\$ true → exit 0, /),
      expect.stringMatching(/^\$ no-such-tool-snapkeep → not run to its end \(.+\), /),
    ]);
    await runner.dispose();
  });
});

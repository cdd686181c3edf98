import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

import type { Exports } from "../../core/app/exports/exports.js";
import { ScheduleCopies } from "../../core/app/schedules/copies.js";
import { hasCopy } from "../../core/app/schedules/schedules.js";
import { Targets } from "../../core/app/targets.js";
import type { Schedule } from "../../core/domain/settings.js";
import type { Snapshot } from "../../core/domain/types.js";
import { openSettingsStore } from "../../core/infra/store/store.js";

const homes: string[] = [];
afterEach(() => homes.splice(0).forEach((h) => rmSync(h, { recursive: true, force: true })));

function schedule(id: string, vmUuid: string): Schedule {
  return {
    id,
    host: "local",
    vmUuid,
    vmName: vmUuid,
    when: { every: "daily", at: "02:00" },
    retention: { keepLast: 3 },
    enabled: true,
    createdAt: "2026-12-01T00:00:00.000Z",
    copy: {
      target: "nas",
      cadence: { every: "runs", n: 1 },
      retention: { keepLast: 2 },
      holdLocalUntilCopied: true,
    },
  };
}

function snapshot(tag: string): Snapshot {
  return {
    tag,
    name: tag,
    kind: "scheduled",
    origin: null,
    createdAt: "2026-12-05T02:00:00.000Z",
    disks: [],
    note: null,
    pinned: false,
    consistency: null,
    incomplete: false,
    hasVmState: false,
  };
}

describe("a schedule's copies, with the export engine stood in for", () => {
  it("sends one copy per target at a time, with the target's bandwidth limit", async () => {
    const home = mkdtempSync(join(tmpdir(), "snapkeep-copies-"));
    homes.push(home);
    const now = (): Date => new Date("2026-12-05T02:00:05Z");
    const store = openSettingsStore(home, now());
    const targets = new Targets({
      store,
      ssh: { homeDir: home, defaultUser: "root", agentSocket: undefined, passphrase: undefined },
    });
    await targets.add({ name: "nas", dir: join(home, "nas"), bwlimitKiB: 5000 });
    const a = schedule("aaaa1111", "vm-a");
    const b = schedule("bbbb2222", "vm-b");
    store.update((s) => ({ ...s, schedules: [a, b] }));
    const events: string[] = [];
    const limits: (number | undefined)[] = [];
    const exports = {
      async export(request: { vm: string; bwlimitKiB?: number }) {
        events.push(`start ${request.vm}`);
        limits.push(request.bwlimitKiB);
        await new Promise((resolve) => setTimeout(resolve, 30));
        events.push(`end ${request.vm}`);
        return { id: `export-${request.vm}`, bytesSent: 0 };
      },
      pruneCopies: async () => ({ removed: [], kept: [], abandoned: [], abandonedKept: [], dryRun: false }),
      copiesOn: async () => [],
      verify: async () => {
        throw new Error("nothing to verify");
      },
    } as unknown as Exports;
    const copies = new ScheduleCopies({ store, exports, targets, now });
    const signal = new AbortController().signal;
    if (!hasCopy(a) || !hasCopy(b)) {
      throw new Error("the schedules copy");
    }
    // The first run of each schedule chooses its snapshot for a copy: it is owed from then on.
    expect(copies.decide(a, snapshot("t-a"))).toMatchObject({
      due: true,
      reason: "the schedule's first copy",
    });
    expect(copies.decide(b, snapshot("t-b"))).toMatchObject({ due: true });
    expect(copies.owed(a.id)?.tag).toBe("t-a");
    const [ra, rb] = await Promise.all([
      copies.sendOwed(a, signal, () => undefined),
      copies.sendOwed(b, signal, () => undefined),
    ]);
    expect(events).toEqual(["start vm-a", "end vm-a", "start vm-b", "end vm-b"]);
    expect(limits).toEqual([5000, 5000]);
    expect([ra.exportId, rb.exportId]).toEqual(["export-vm-a", "export-vm-b"]);
    // What landed is remembered: nothing is owed any more.
    expect(copies.history(a.id)).toMatchObject({ owedSince: null, newestLanded: { tag: "t-a" } });
    expect(copies.owed(a.id)).toBeNull();
    // A copy job with nothing owed sends nothing.
    const again = await copies.sendOwed(a, signal, () => undefined);
    expect(again).toMatchObject({ attempted: false, exportId: null });
    expect(events).toHaveLength(4);
    await targets.dispose();
  });
});

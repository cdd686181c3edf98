/** Which events become desktop notifications, and that none is repeated without news. */
import { describe, expect, it } from "vitest";
import type { SchedulerEvent } from "../../core/app/schedules/scheduler.js";
import type { Schedule, NotificationSettings } from "../../core/domain/settings.js";
import {
  NotificationPolicy,
  factFromApiEvent,
  factFromSchedulerEvent,
  type Fact,
} from "../../electron/lib/notifications.js";

const schedule: Schedule = {
  id: "aaaaaaa1",
  host: "local",
  vmUuid: "uuid-1",
  vmName: "db",
  when: { every: "daily", at: "02:00" },
  retention: { keepLast: 3 },
  enabled: true,
  createdAt: "2026-01-01T00:00:00.000Z",
};
const failed: SchedulerEvent = {
  type: "job-failed",
  repeated: false,
  job: "job-1",
  schedule,
  message: "Cannot connect to web01.",
};
const overdue: SchedulerEvent = { type: "overdue", schedule, since: "2026-11-26T01:00:00.000Z" };
const at = (minutes: number): Date => new Date(Date.UTC(2026, 10, 26, 10, minutes));

describe("NotificationPolicy", () => {
  const allOn: NotificationSettings = { jobFailed: true, vmOverdue: true, exportVerified: true };
  const fact = (event: SchedulerEvent): Fact => {
    const f = factFromSchedulerEvent(event);
    if (f === null) {
      throw new Error(`no fact for ${event.type}`);
    }
    return f;
  };

  it("tells a failure once, again only after a recovery or after the repeat window", () => {
    const policy = new NotificationPolicy(() => allOn, 60 * 60_000);
    expect(policy.decide(fact(failed), at(0))).toEqual({
      kind: "jobFailed",
      subject: "aaaaaaa1",
      title: "Snapshot of db failed",
      body: "Cannot connect to web01. Snapkeep retries with backoff.",
    });
    expect(policy.decide(fact(failed), at(5))).toBeNull();
    // Another kind about the same schedule is its own news.
    expect(policy.decide(fact(overdue), at(6))?.title).toBe("db is overdue");
    policy.decide(fact({ type: "recovered", schedule }), at(10));
    expect(policy.decide(fact(failed), at(11))?.kind).toBe("jobFailed");
    expect(policy.decide(fact(failed), at(70))).toBeNull();
    expect(policy.decide(fact(failed), at(72))?.kind).toBe("jobFailed");
  });

  it("honours the setting of each kind, read at the time of the event", () => {
    let settings: NotificationSettings = { ...allOn, jobFailed: false };
    const policy = new NotificationPolicy(() => settings);
    expect(policy.decide(fact(failed), at(0))).toBeNull();
    expect(policy.decide(fact(overdue), at(0))?.kind).toBe("vmOverdue");
    settings = allOn;
    expect(policy.decide(fact(failed), at(1))?.kind).toBe("jobFailed");
  });

  it("counts a job cut off by a crash as a failure of its schedule", () => {
    const job = {
      id: "job-1",
      kind: "scheduled-snapshot" as const,
      scheduleId: "aaaaaaa1",
      host: "local",
      vmUuid: "uuid-1",
      vmName: "db",
      tag: "t",
      slot: "2026-11-26T01:00:00.000Z",
      startedAt: "2026-11-26T01:00:00.000Z",
      endedAt: null,
      status: "interrupted" as const,
      step: "snapshot",
      message: null,
      pruned: [],
      pruneError: null,
      copy: null,
      held: [],
      sent: null,
      steps: [],
      target: null,
      owner: null,
    };
    expect(
      factFromSchedulerEvent({ type: "interrupted", job, cleanup: "the half-made snapshot was removed" }),
    ).toEqual({
      type: "notice",
      notice: {
        kind: "jobFailed",
        subject: "aaaaaaa1",
        title: "Snapshot of db was interrupted",
        body: "Snapkeep stopped while it ran; the half-made snapshot was removed.",
      },
    });
  });

  it("ignores the scheduler's routine events", () => {
    expect(factFromSchedulerEvent({ type: "job-started", job: "j", schedule, slot: "x" })).toBeNull();
    expect(factFromSchedulerEvent({ type: "job-cancelled", job: "j", schedule })).toBeNull();
    expect(
      factFromSchedulerEvent({ type: "job-succeeded", job: "j", schedule, snapshot: "s", pruned: [] }),
    ).toEqual({
      type: "cleared",
      kinds: ["jobFailed", "vmOverdue"],
      subject: "aaaaaaa1",
    });
  });
});

describe("factFromApiEvent", () => {
  const job = { id: "0123456789ab", kind: "export", title: "Export db “before” to nas", state: "succeeded" };

  it("turns a finished export or verification into 'verified', once per job", () => {
    const fact = factFromApiEvent({ event: "job", data: { ...job, progress: null, result: { id: "x" } } });
    expect(fact).toEqual({
      type: "notice",
      notice: {
        kind: "exportVerified",
        subject: "0123456789ab",
        title: "Off-host copy verified",
        body: "Export db “before” to nas: its checksums match on the target.",
      },
    });
    const policy = new NotificationPolicy(() => ({ jobFailed: true, vmOverdue: true, exportVerified: true }));
    expect(policy.decide(fact as Fact, at(0))).not.toBeNull();
    expect(policy.decide(fact as Fact, at(1))).toBeNull();
    expect(factFromApiEvent({ event: "job", data: { ...job, kind: "verify" } })).not.toBeNull();
  });

  it("ignores everything else, including shapes it does not know", () => {
    for (const event of [
      { event: "changed", data: { host: "local" } },
      { event: "job", data: { ...job, state: "running" } },
      { event: "job", data: { ...job, state: "failed" } },
      { event: "job", data: { ...job, kind: "template" } },
      { event: "job", data: { id: 1 } },
      null,
      "job",
    ]) {
      expect(factFromApiEvent(event), JSON.stringify(event)).toBeNull();
    }
  });
});

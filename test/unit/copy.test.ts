/**
 * A schedule's off-host copies, piece by piece: the policy and its checks, which runs are copied,
 * copy before prune, retention on the target, the off-host RPO and the preview's forecast. Runs in
 * Europe/Berlin (vitest.config.ts): DST starts 2026-03-29 02:00 and ends 2026-10-25 03:00.
 */
import { describe, expect, it } from "vitest";

import { isSnapkeepError } from "../../core/errors.js";
import { forecastSchedule } from "../../core/domain/copy/forecast.js";
import {
  copyDue,
  historyAfterLanded,
  historyAfterRun,
  isOwedCopy,
  NO_COPIES_YET,
  owedCopy,
  type CopyHistory,
  type SnapshotRef,
} from "../../core/domain/copy/due.js";
import { holdUntilCopied } from "../../core/domain/copy/hold.js";
import {
  copyIntervalMs,
  describeCadence,
  validateCopyPolicy,
  type CopyCadence,
  type CopyPolicy,
  type CopyPolicyDraft,
} from "../../core/domain/copy/policy.js";
import { copyOverdueAfterMs, offHostRpo, type CopyFailure } from "../../core/domain/copy/rpo.js";
import {
  applyTargetRetention,
  type CopyState,
  type TargetCopy,
} from "../../core/domain/copy/target-retention.js";
import type { RetentionPolicy } from "../../core/domain/retention/gfs.js";
import type { Snapshot } from "../../core/domain/types.js";

const HOUR = 3600_000;
const local = (y: number, m: number, d: number, h = 0, min = 0): Date => new Date(y, m - 1, d, h, min);
const ref = (at: Date): SnapshotRef => ({
  tag: `snapkeep:scheduled@s1:${at.toISOString()}`,
  createdAt: at.toISOString(),
});

function policy(cadence: CopyCadence, extra: Partial<CopyPolicy> = {}): CopyPolicy {
  return { target: "nas", cadence, retention: { keepLast: 3 }, holdLocalUntilCopied: true, ...extra };
}

/** The message of what `fn` throws, after checking it is one INVALID_INPUT sentence. */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(isSnapkeepError(error, "INVALID_INPUT")).toBe(true);
    const message = (error as Error).message;
    expect(message).toMatch(/^[A-Z"].*\.$/);
    expect(message).not.toMatch(/\. [A-Z]/);
    return message;
  }
  throw new Error("not refused");
}

describe("copy policy", () => {
  it("defaults to a copy every run, held on the host until it lands", () => {
    expect(validateCopyPolicy({ target: "nas", retention: { keepLast: 3 } })).toEqual({
      target: "nas",
      cadence: { every: "runs", n: 1 },
      retention: { keepLast: 3 },
      holdLocalUntilCopied: true,
    });
    expect(
      validateCopyPolicy({
        target: "offsite.box",
        cadence: { every: "week" },
        retention: { weekly: 8, monthly: 12 },
        holdLocalUntilCopied: false,
      }),
    ).toMatchObject({ cadence: { every: "week" }, holdLocalUntilCopied: false });
  });

  it.each([
    [{ target: "../nas", retention: { keepLast: 1 } }, /^The target name "..\/nas" may contain only letters/],
    [{ target: "nas", cadence: { every: "runs", n: 0 }, retention: { keepLast: 1 } }, /A copy every 0 runs/],
    [
      { target: "nas", cadence: { every: "runs", n: 2.5 }, retention: { keepLast: 1 } },
      /use a whole number from 1/,
    ],
    [{ target: "nas", cadence: { every: "runs", n: 1001 }, retention: { keepLast: 1 } }, /to 1000\.$/],
    [
      { target: "nas", cadence: { every: "month" }, retention: { keepLast: 1 } },
      /"month" is not a copy cadence/,
    ],
    [
      { target: "nas", retention: { daily: 0 } },
      /daily copies nas keeps is a whole number from 1 to 1000, not 0/,
    ],
    [{ target: "nas", retention: { keepLast: 1001 } }, /latest copies nas keeps .* not 1001/],
    [{ target: "nas", retention: {} }, /^Say how many copies nas keeps/],
  ] as [CopyPolicyDraft, RegExp][])("refuses %j in one sentence", (draft, message) => {
    expect(refusal(() => validateCopyPolicy(draft))).toMatch(message);
  });

  it("expects a copy every N runs, or every day or week, never more often than the schedule runs", () => {
    const hourly = { every: "cron", cron: "0 * * * *" } as const;
    const now = local(2026, 6, 1, 12);
    expect(copyIntervalMs(hourly, { every: "runs", n: 4 }, now)).toBe(4 * HOUR);
    expect(copyIntervalMs(hourly, { every: "day" }, now)).toBe(24 * HOUR);
    expect(copyIntervalMs(hourly, { every: "week" }, now)).toBe(7 * 24 * HOUR);
    expect(copyIntervalMs({ every: "weekly", at: "03:00", weekday: "monday" }, { every: "day" }, now)).toBe(
      7 * 24 * HOUR,
    );
    expect(describeCadence({ every: "runs", n: 1 })).toBe("every run");
    expect(describeCadence({ every: "runs", n: 4 })).toBe("every 4 runs");
    expect(describeCadence({ every: "day" })).toBe("the first run of each day");
  });
});

/** Runs at these instants with every copy landing at once; returns the runs that were copied. */
function copiedRuns(p: CopyPolicy, runs: readonly Date[]): Date[] {
  let history: CopyHistory = NO_COPIES_YET;
  const copied: Date[] = [];
  for (const at of runs) {
    const snapshot = ref(at);
    const decision = copyDue(p, history, snapshot, at);
    history = historyAfterRun(history, snapshot, decision);
    if (decision.copy) {
      copied.push(at);
      history = historyAfterLanded(history, [snapshot]);
    }
  }
  return copied;
}

function hourlyRuns(from: Date, to: Date): Date[] {
  const runs: Date[] = [];
  for (let t = from.getTime(); t <= to.getTime(); t += HOUR) {
    runs.push(new Date(t));
  }
  return runs;
}

const wall = (d: Date): string => d.toString().slice(4, 21);

describe("which runs are copied", () => {
  it("copies the first run, then every Nth", () => {
    const runs = hourlyRuns(local(2026, 6, 1, 0), local(2026, 6, 1, 9));
    expect(copiedRuns(policy({ every: "runs", n: 4 }), runs).map((d) => d.getHours())).toEqual([0, 4, 8]);
    expect(copiedRuns(policy({ every: "runs", n: 1 }), runs)).toHaveLength(10);
  });

  it("copies the first run of each local day, on the 23-hour and the 25-hour day alike", () => {
    const spring = copiedRuns(
      policy({ every: "day" }),
      hourlyRuns(local(2026, 3, 28, 22), local(2026, 3, 31, 1)),
    );
    expect(spring.map(wall)).toEqual([
      "Mar 28 2026 22:00",
      "Mar 29 2026 00:00",
      "Mar 30 2026 00:00",
      "Mar 31 2026 00:00",
    ]);
    const fall = copiedRuns(
      policy({ every: "day" }),
      hourlyRuns(local(2026, 10, 24, 23), local(2026, 10, 27, 1)),
    );
    expect(fall.map(wall)).toEqual([
      "Oct 24 2026 23:00",
      "Oct 25 2026 00:00",
      "Oct 26 2026 00:00",
      "Oct 27 2026 00:00",
    ]);
  });

  it("copies the first run of each ISO week, across the year's end", () => {
    const daily: Date[] = [];
    for (let day = 0; day < 21; day++) {
      daily.push(local(2026, 12, 20 + day, 2, 30));
    }
    expect(copiedRuns(policy({ every: "week" }), daily).map(wall)).toEqual([
      "Dec 20 2026 02:30", // the first copy (a Sunday)
      "Dec 21 2026 02:30", // Monday
      "Dec 28 2026 02:30", // Monday of 2026's week 53
      "Jan 04 2027 02:30",
    ]);
  });

  it("copies every run while a copy is owed, and says why", () => {
    const p = policy({ every: "runs", n: 4 });
    const first = ref(local(2026, 6, 1, 0));
    let history = historyAfterRun(
      NO_COPIES_YET,
      first,
      copyDue(p, NO_COPIES_YET, first, local(2026, 6, 1, 0)),
    );
    expect(owedCopy(history)).toEqual(first); // chosen, not landed (the target is offline)
    const second = ref(local(2026, 6, 1, 1));
    const decision = copyDue(p, history, second, local(2026, 6, 1, 1));
    expect(decision).toEqual({
      copy: true,
      reason: `the copy of the snapshot of ${first.createdAt} has not landed on nas; this run's snapshot goes in its place`,
    });
    history = historyAfterRun(history, second, decision);
    expect(owedCopy(history)).toEqual(second);
    expect(history.owedSince).toEqual(first);
    // The newest lands: everything owed is settled, and the cadence counts from it.
    history = historyAfterLanded(history, [second]);
    expect(owedCopy(history)).toBeNull();
    const third = ref(local(2026, 6, 1, 2));
    expect(copyDue(p, history, third, local(2026, 6, 1, 2))).toEqual({
      copy: false,
      reason: "every 4 runs: run 1 since the last copy",
    });
  });

  it("keeps a copy owed when only an older one lands, and counts what a listing shows", () => {
    const [a, b, c] = [1, 2, 3].map((h) => ref(local(2026, 6, 1, h))) as [
      SnapshotRef,
      SnapshotRef,
      SnapshotRef,
    ];
    const every = policy({ every: "runs", n: 1 });
    let history = NO_COPIES_YET;
    for (const s of [a, b, c]) {
      history = historyAfterRun(history, s, copyDue(every, history, s, new Date(s.createdAt)));
    }
    const late = historyAfterLanded(history, [a]); // a copy still running when b and c were made
    expect(owedCopy(late)).toEqual(c);
    expect([a, b, c].map((s) => isOwedCopy(late, s))).toEqual([false, true, true]);
    const listed = historyAfterLanded(late, [b, c, a]);
    expect(listed.newestLanded).toEqual(c);
    expect(owedCopy(listed)).toBeNull();
    expect([a, b, c].map((s) => isOwedCopy(listed, s))).toEqual([false, false, false]);
  });

  it("copies once more when the last copy is dated after now (the clock was set back)", () => {
    const p = policy({ every: "day" });
    const ahead = ref(local(2026, 6, 2, 12));
    const history = historyAfterLanded(historyAfterRun(NO_COPIES_YET, ahead, { copy: true, reason: "" }), [
      ahead,
    ]);
    const now = local(2026, 6, 1, 12);
    expect(copyDue(p, history, ref(now), now)).toMatchObject({
      copy: true,
      reason: expect.stringMatching(/clock/),
    });
  });
});

function snapshot(at: Date, extra: Partial<Snapshot> = {}): Snapshot {
  const { tag, createdAt } = ref(at);
  return {
    tag,
    name: tag.slice(tag.lastIndexOf(":") + 1),
    kind: "scheduled",
    origin: "s1",
    createdAt,
    disks: [],
    note: null,
    pinned: false,
    consistency: null,
    incomplete: false,
    hasVmState: false,
    ...extra,
  };
}

describe("copy before prune", () => {
  const landedAt = local(2026, 6, 1, 0);
  const owedAt = local(2026, 6, 1, 4);
  let history = historyAfterLanded(
    historyAfterRun(NO_COPIES_YET, ref(landedAt), { copy: true, reason: "" }),
    [ref(landedAt)],
  );
  history = historyAfterRun(history, ref(owedAt), { copy: true, reason: "" });
  const wouldRemove = [
    snapshot(local(2026, 5, 31, 23)), // older than the copy that landed
    snapshot(landedAt), // its copy landed
    snapshot(local(2026, 6, 1, 2)), // not chosen: made before the owed copy
    snapshot(owedAt), // chosen, its copy has not landed
    snapshot(local(2026, 6, 1, 5), { incomplete: true }), // half-made: never a recovery point
  ];

  it("holds the snapshots still owed a copy, with the reason, and lets the rest go", () => {
    const { remove, held } = holdUntilCopied(policy({ every: "runs", n: 4 }), wouldRemove, history);
    expect(held).toEqual([
      {
        snapshot: wouldRemove[3],
        reason: `held for its copy to nas, which has not landed yet (owed since ${owedAt.toISOString()})`,
      },
    ]);
    expect(remove).toEqual([wouldRemove[0], wouldRemove[1], wouldRemove[2], wouldRemove[4]]);
  });

  it("holds nothing when the policy says not to, or once the copy landed", () => {
    const off = holdUntilCopied(
      policy({ every: "runs", n: 4 }, { holdLocalUntilCopied: false }),
      wouldRemove,
      history,
    );
    expect(off).toEqual({ remove: wouldRemove, held: [] });
    const landed = holdUntilCopied(
      policy({ every: "runs", n: 4 }),
      wouldRemove,
      historyAfterLanded(history, [ref(owedAt)]),
    );
    expect(landed.held).toEqual([]);
  });
});

const OWNER = { id: "s1", vmUuid: "vm-1" };
const TR_NOW = new Date("2026-11-26T12:00:00+01:00");

function copy(
  id: string,
  createdAt: string | null,
  extra: { state?: CopyState; scheduleId?: string | null; vmUuid?: string | null } = {},
): TargetCopy {
  return {
    id,
    state: extra.state ?? "verified",
    vmUuid: extra.vmUuid === undefined ? OWNER.vmUuid : extra.vmUuid,
    scheduleId: extra.scheduleId === undefined ? OWNER.id : extra.scheduleId,
    snapshotTag: createdAt === null ? null : `snapkeep:scheduled@s1:${id}`,
    snapshotCreatedAt: createdAt === null ? null : new Date(createdAt).toISOString(),
  };
}

function decideTarget(copies: TargetCopy[], p: RetentionPolicy): Record<string, string> {
  const result = applyTargetRetention(copies, p, OWNER, TR_NOW);
  const out: Record<string, string> = {};
  for (const k of result.keep) {
    out[k.copy.id] = k.reasons.join(",");
  }
  result.remove.forEach((r, i) => (out[r.id] = `REMOVE-${i + 1}`));
  return out;
}

describe("retention on the target", () => {
  it("removes only this schedule's verified copies, oldest first, and says why the others stay", () => {
    expect(
      decideTarget(
        [
          copy("d23", "2026-11-23T02:00:00+01:00"),
          copy("d26", "2026-11-26T02:00:00+01:00"),
          copy("d24", "2026-11-24T02:00:00+01:00"),
          copy("d25", "2026-11-25T02:00:00+01:00"),
          copy("partial", "2026-11-26T03:00:00+01:00", { state: "partial" }), // the next copy resumes it
          copy("corrupt", "2026-11-20T02:00:00+01:00", { state: "corrupt" }),
          copy("unverified", "2026-11-19T02:00:00+01:00", { state: "unverified" }), // another computer's seal
          copy("manual", "2026-11-01T02:00:00+01:00", { scheduleId: null }),
          copy("other", "2026-11-02T02:00:00+01:00", { scheduleId: "s2" }),
          copy("other-vm", "2026-11-03T02:00:00+01:00", { vmUuid: "vm-2" }),
          copy("no-manifest", null, { state: "partial", vmUuid: null, scheduleId: null }),
          copy("future", "2026-11-27T02:00:00+01:00"), // copied before the clock was set back
        ],
        { keepLast: 2 },
      ),
    ).toEqual({
      future: "dated in the future",
      d26: "latest-1",
      d25: "latest-2",
      d24: "REMOVE-2",
      d23: "REMOVE-1",
      partial: "partial",
      corrupt: "corrupt",
      unverified: "unverified",
      manual: "manual export",
      other: "schedule s2",
      "other-vm": "VM vm-2",
      "no-manifest": "partial",
    });
  });

  it("never removes the newest verified copy, however old, nor counts newer damaged ones", () => {
    expect(
      decideTarget(
        [
          copy("old", "2026-06-01T02:00:00+02:00"),
          copy("older", "2026-05-01T02:00:00+02:00"),
          copy("broken", "2026-11-26T02:00:00+01:00", { state: "corrupt" }),
        ],
        { daily: 1 },
      ),
    ).toEqual({ old: "daily-1", older: "REMOVE-1", broken: "corrupt" });
  });

  it("keeps GFS copies by local day, ISO week and month, as on the host", () => {
    expect(
      decideTarget(
        [
          copy("thu-26", "2026-11-26T02:00:00+01:00"),
          copy("wed-25-late", "2026-11-25T23:30:00+01:00"),
          copy("wed-25-early", "2026-11-25T02:00:00+01:00"),
          copy("sun-22", "2026-11-22T02:00:00+01:00"),
          copy("oct-31", "2026-10-31T02:00:00+01:00"),
        ],
        { daily: 2, weekly: 2, monthly: 2 },
      ),
    ).toEqual({
      "thu-26": "daily-1,weekly-1,monthly-1",
      "wed-25-late": "daily-2",
      "wed-25-early": "REMOVE-1",
      "sun-22": "weekly-2",
      "oct-31": "monthly-2",
    });
  });
});

function prng(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

function randomTarget(seed: number, count: number): TargetCopy[] {
  const random = prng(seed);
  const states: CopyState[] = [
    "verified",
    "verified",
    "verified",
    "verified",
    "partial",
    "corrupt",
    "unverified",
  ];
  return Array.from({ length: count }, (_, i) => {
    const at = new Date(TR_NOW.getTime() - Math.floor(random() * 400 * 86_400_000) + 86_400_000);
    const owner = random();
    return copy(`c${i}`, at.toISOString(), {
      state: states[Math.floor(random() * states.length)] ?? "verified",
      scheduleId: owner < 0.7 ? OWNER.id : owner < 0.85 ? null : "s2",
      vmUuid: random() < 0.95 ? OWNER.vmUuid : "vm-2",
    });
  });
}

describe("retention on the target, invariants", () => {
  const policies: RetentionPolicy[] = [
    { keepLast: 1 },
    { keepLast: 7 },
    { daily: 7, weekly: 4, monthly: 12 },
    { weekly: 52 },
  ];
  for (const [p, rules] of policies.entries()) {
    for (const seed of [1, 2, 3]) {
      it(`holds for ${JSON.stringify(rules)}, seed ${seed}`, () => {
        const input = randomTarget(seed * 10 + p, 200);
        const result = applyTargetRetention(input, rules, OWNER, TR_NOW);
        expect(result.keep.length + result.remove.length).toBe(input.length);
        for (const removed of result.remove) {
          expect(removed).toMatchObject({ state: "verified", scheduleId: OWNER.id, vmUuid: OWNER.vmUuid });
        }
        const removedTimes = result.remove.map((r) => Date.parse(r.snapshotCreatedAt ?? ""));
        expect(removedTimes).toEqual([...removedTimes].sort((a, b) => a - b));
        const ours = input.filter(
          (c) =>
            c.state === "verified" &&
            c.scheduleId === OWNER.id &&
            c.vmUuid === OWNER.vmUuid &&
            (c.snapshotCreatedAt ?? "") <= TR_NOW.toISOString(),
        );
        const newest = ours.reduce<TargetCopy | undefined>(
          (a, c) => (a === undefined || (c.snapshotCreatedAt ?? "") > (a.snapshotCreatedAt ?? "") ? c : a),
          undefined,
        );
        expect(newest).toBeDefined();
        expect(result.remove).not.toContain(newest);
        const again = applyTargetRetention(
          result.keep.map((k) => k.copy),
          rules,
          OWNER,
          TR_NOW,
        );
        expect(again.remove).toEqual([]);
        expect(again.keep.map((k) => k.reasons)).toEqual(result.keep.map((k) => k.reasons));
      });
    }
  }
});

describe("off-host RPO", () => {
  const now = local(2026, 6, 1, 12);
  const hourly = HOUR;
  const rpo = (
    ageMs: number | null,
    extra: { interval?: number; failure?: CopyFailure; scheduler?: boolean } = {},
  ): { level: string; reason: string | null } => {
    const { level, reason } = offHostRpo({
      newestVerifiedCopyAt: ageMs === null ? null : new Date(now.getTime() - ageMs),
      copyIntervalMs: extra.interval ?? hourly,
      lastCopyFailure: extra.failure ?? null,
      schedulerRunning: extra.scheduler ?? true,
      now,
    });
    return { level, reason };
  };
  const offline: CopyFailure = { kind: "target-offline", detail: null };
  const failed: CopyFailure = { kind: "copy-failed", detail: "rsync: connection reset" };
  const unverified: CopyFailure = { kind: "verify-failed", detail: "vda.qcow2 does not match" };

  it.each([
    ["no copy yet", null, {}, "on-host-only", "no copy has been made off this host yet"],
    ["no copy, target offline", null, { failure: offline }, "on-host-only", "the target is offline"],
    ["recent", 30 * 60_000, {}, "ok", null],
    [
      "recent, no scheduler",
      30 * 60_000,
      { scheduler: false },
      "ok",
      "no scheduler is running, so no copies are made",
    ],
    ["late by minutes", 70 * 60_000, {}, "due", "a copy is pending"],
    [
      "late, copy failed",
      70 * 60_000,
      { failure: failed },
      "due",
      "the last copy failed: rsync: connection reset",
    ],
    [
      "late, verify failed",
      70 * 60_000,
      { failure: unverified },
      "due",
      "the last copy did not verify on the target: vda.qcow2 does not match",
    ],
    ["late, target offline", 70 * 60_000, { failure: offline }, "overdue", "the target is offline"],
    [
      "late, no scheduler",
      70 * 60_000,
      { scheduler: false },
      "overdue",
      "no scheduler is running, so no copies are made",
    ],
    [
      "past the grace time",
      91 * 60_000,
      {},
      "overdue",
      "the scheduled copy has not landed (is the schedule paused, or a copy still running?)",
    ],
    ["a daily copy 29 hours old", 29 * HOUR, { interval: 24 * HOUR }, "due", "a copy is pending"],
    [
      "a daily copy 31 hours old",
      31 * HOUR,
      { interval: 24 * HOUR, failure: failed },
      "overdue",
      "the last copy failed: rsync: connection reset",
    ],
  ] as const)("%s", (_name, age, extra, level, reason) => {
    expect(rpo(age, extra)).toEqual({ level, reason });
  });

  it("gives a copy half its interval of grace, at most six hours", () => {
    expect(copyOverdueAfterMs(HOUR)).toBe(30 * 60_000);
    expect(copyOverdueAfterMs(24 * HOUR)).toBe(6 * HOUR);
  });
});

describe("the preview's year, with copies", () => {
  const now = local(2026, 11, 26, 12);

  it("shows what stays on the host and on the target of a daily schedule copied every run", () => {
    const f = forecastSchedule(
      { every: "daily", at: "02:00" },
      { keepLast: 7 },
      validateCopyPolicy({ target: "nas", retention: { keepLast: 3, monthly: 12 } }),
      now,
    );
    expect(f.host).toMatchObject({ runs: 365, kept: 7 });
    expect(f.target).toMatchObject({
      target: "nas",
      runs: 365,
      copies: 365,
      byRule: { latest: 3, daily: 0, weekly: 0, monthly: 12 },
      holdLocalUntilCopied: true,
    });
    expect(f.target?.kept).toBeGreaterThanOrEqual(12);
    expect(f.target?.kept).toBeLessThanOrEqual(15);
  });

  it("copies an hourly schedule once a local day, 23- and 25-hour days included", () => {
    const when = { every: "cron", cron: "0 * * * *" } as const;
    const p = validateCopyPolicy({
      target: "nas",
      cadence: { every: "day" },
      retention: { daily: 7, weekly: 4 },
    });
    const f = forecastSchedule(when, { keepLast: 24 }, p, now);
    // From 13:00 on Nov 26, 2026 to 12:00 on Nov 26, 2027: 366 local days, each with its copy.
    // Kept: Nov 20-26 (daily), of which Nov 26 and Sunday Nov 21 end their weeks, then Nov 14 and 7.
    expect(f.target).toMatchObject({ copies: 366, kept: 9, byRule: { daily: 7, weekly: 4 } });
    expect(f.host.kept).toBe(24);
  });

  it("has no target part without a copy policy", () => {
    expect(forecastSchedule({ every: "daily", at: "02:00" }, { keepLast: 7 }, null, now).target).toBeNull();
  });
});

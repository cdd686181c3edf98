/**
 * A year of a schedule with off-host copies on virtual time: the scheduler's decisions (dueSlot,
 * copyDue, both retentions, copy before prune, the off-host RPO) are pure functions of what is
 * remembered and `now`, so a simulated clock drives them every 15 minutes through both DST
 * changes and target outages of hours and days, with some copies interrupted or failing their
 * verification on the way. What is checked is written down independently of the code under test:
 * a snapshot is owed a copy when it was chosen and nothing as new has landed. Runs in
 * Europe/Berlin (vitest.config.ts).
 */
import { describe, expect, it } from "vitest";

import {
  copyDue,
  copyRetryDelayMs,
  historyAfterLanded,
  historyAfterRun,
  NO_COPIES_YET,
  owedCopy,
  type CopyHistory,
  type SnapshotRef,
} from "../../core/domain/copy/due.js";
import { forecastSchedule } from "../../core/domain/copy/forecast.js";
import { holdUntilCopied } from "../../core/domain/copy/hold.js";
import { copyIntervalMs, validateCopyPolicy, type CopyPolicy } from "../../core/domain/copy/policy.js";
import {
  copyOverdueAfterMs,
  offHostRpo,
  type CopyFailure,
  type OffHostRpo,
} from "../../core/domain/copy/rpo.js";
import { applyTargetRetention, type TargetCopy } from "../../core/domain/copy/target-retention.js";
import { applyRetention, type RetentionPolicy } from "../../core/domain/retention/gfs.js";
import { dueSlot, stateAfterSuccess } from "../../core/domain/schedule/due.js";
import type { When } from "../../core/domain/schedule/spec.js";
import type { Schedule, ScheduleState } from "../../core/domain/settings.js";
import type { Snapshot } from "../../core/domain/types.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const STEP = 15 * MINUTE;
const SCHEDULE_ID = "copysim1";
const VM_UUID = "vm-0001";
const OWNER = { id: SCHEDULE_ID, vmUuid: VM_UUID };

interface Outage {
  readonly from: Date;
  readonly to: Date;
}

const local = (y: number, m: number, d: number, h = 0, min = 0): Date => new Date(y, m - 1, d, h, min);

/** Hours and days, across both DST nights, a midnight and a week's start; none ends on a run. */
const OUTAGES: readonly Outage[] = [
  { from: local(2026, 2, 10, 9, 15), to: local(2026, 2, 10, 14, 15) },
  { from: local(2026, 3, 28, 20, 15), to: local(2026, 3, 30, 7, 45) },
  { from: local(2026, 6, 3, 0, 15), to: local(2026, 6, 8, 0, 15) },
  { from: local(2026, 8, 14, 23, 15), to: local(2026, 8, 15, 1, 45) },
  { from: local(2026, 10, 20, 10, 15), to: local(2026, 10, 22, 16, 45) },
  { from: local(2026, 11, 2, 1, 15), to: local(2026, 11, 5, 12, 15) },
  { from: local(2026, 12, 27, 22, 15), to: local(2026, 12, 29, 9, 45) },
];

/** On the target before the year starts: none of them is this schedule's to remove. */
const OTHERS_ON_TARGET: readonly TargetCopy[] = [
  targetCopy("manual", "2025-12-01T10:00:00.000Z", { scheduleId: null }),
  targetCopy("other-schedule", "2025-12-02T10:00:00.000Z", { scheduleId: "other123" }),
  targetCopy("other-vm", "2025-12-03T10:00:00.000Z", { vmUuid: "vm-0002" }),
  targetCopy("other-computer", "2025-12-04T10:00:00.000Z", { state: "unverified" }),
];

function targetCopy(id: string, createdAt: string, extra: Partial<TargetCopy> = {}): TargetCopy {
  return {
    id,
    state: "verified",
    vmUuid: VM_UUID,
    scheduleId: SCHEDULE_ID,
    snapshotTag: `tag-${id}`,
    snapshotCreatedAt: createdAt,
    ...extra,
  };
}

interface Setup {
  readonly when: When;
  readonly retention: RetentionPolicy;
  readonly copy: CopyPolicy;
  readonly outages: readonly Outage[];
  /** Share of copy attempts on a reachable target that fail: half interrupted, half not verified. */
  readonly failureRate: number;
  readonly start: Date;
  readonly end: Date;
}

interface Landing {
  readonly snapshot: SnapshotRef;
  readonly at: Date;
}

/** The simulated host, target and scheduler, and a record of everything the checks need. */
class SimulatedYear {
  local: Snapshot[] = [];
  target: TargetCopy[] = [...OTHERS_ON_TARGET];
  history: CopyHistory = NO_COPIES_YET;
  readonly landings: Landing[] = [];
  readonly chosen: SnapshotRef[] = [];
  /** Owed snapshots the local prune removed: must stay empty while copies hold snapshots. */
  readonly owedPruned: SnapshotRef[] = [];
  /** The copies left damaged on the target (interrupted, then superseded; or failed verification). */
  readonly damaged: TargetCopy[] = [];
  readonly violations: string[] = [];
  readonly rpo: { readonly at: Date; readonly rpo: OffHostRpo }[] = [];
  /** What was owed when each outage ended, by outage. */
  readonly owedAtOutageEnd = new Map<Outage, SnapshotRef | null>();
  mostHeld = 0;
  /** Copy attempts over the year, failed ones included. */
  attempts = 0;
  #state: ScheduleState | undefined;
  #failure: CopyFailure | null = null;
  #failures = 0;
  #retryAt = -Infinity;
  #newestLandedAt = -Infinity;
  readonly #schedule: Schedule;
  readonly #random = prng(15);

  constructor(readonly setup: Setup) {
    this.#schedule = {
      id: SCHEDULE_ID,
      host: "h",
      vmUuid: VM_UUID,
      vmName: "vm",
      when: setup.when,
      retention: setup.retention,
      enabled: true,
      createdAt: setup.start.toISOString(),
    };
  }

  run(): this {
    for (let t = this.setup.start.getTime(); t <= this.setup.end.getTime(); t += STEP) {
      this.#tick(new Date(t));
    }
    return this;
  }

  #online(now: Date): boolean {
    return !this.setup.outages.some((o) => now >= o.from && now < o.to);
  }

  #tick(now: Date): void {
    for (const outage of this.setup.outages) {
      if (now.getTime() >= outage.to.getTime() && now.getTime() < outage.to.getTime() + STEP) {
        this.owedAtOutageEnd.set(outage, owedCopy(this.history));
      }
    }
    const slot = dueSlot(this.#schedule, this.#state, now);
    if (slot !== null) {
      this.#runSchedule(slot, now);
    } else if (now.getTime() >= this.#retryAt) {
      // Between runs the scheduler tries what is owed again, after the backoff of its failures.
      const owed = owedCopy(this.history);
      if (owed !== null) {
        this.#attemptCopy(owed, now);
      }
    }
    if (now.getDate() === 1 && now.getHours() === 12 && now.getMinutes() === 0 && this.#online(now)) {
      // A person exports by hand once a month: never the schedule's to remove.
      this.target.push(targetCopy(`manual-${now.toISOString()}`, now.toISOString(), { scheduleId: null }));
    }
    this.#recordRpo(now);
  }

  #runSchedule(slot: Date, now: Date): void {
    const snapshot = scheduledSnapshot(now);
    this.local.push(snapshot);
    this.#state = stateAfterSuccess(this.#state, slot, now);
    const decision = copyDue(this.setup.copy, this.history, snapshot, now);
    this.history = historyAfterRun(this.history, snapshot, decision);
    // The run prunes with its decision made; the copy is a job queued after it (the newest owed),
    // unless an earlier failure's backoff still runs.
    this.#pruneLocal(now);
    if (decision.copy) {
      this.chosen.push(snapshot);
      const owed = owedCopy(this.history);
      if (owed !== null && now.getTime() >= this.#retryAt) {
        this.#attemptCopy(owed, now);
      }
    }
  }

  #attemptCopy(snapshot: SnapshotRef, now: Date): void {
    if (!this.local.some((s) => s.tag === snapshot.tag)) {
      this.violations.push(`${now.toISOString()}: the copy owed of ${snapshot.tag} is no longer on the host`);
      return;
    }
    this.attempts++;
    if (!this.#online(now)) {
      this.#failed({ kind: "target-offline", detail: null }, now);
      return;
    }
    const roll = this.#random();
    if (roll < this.setup.failureRate) {
      const interrupted = roll < this.setup.failureRate / 2;
      this.#leaveDamaged(snapshot, interrupted, now);
      this.#failed({ kind: interrupted ? "copy-failed" : "verify-failed", detail: null }, now);
      return;
    }
    // The next copy of the same snapshot resumes its interrupted one.
    this.target = this.target.filter((c) => !(c.state === "partial" && c.snapshotTag === snapshot.tag));
    this.target.push(
      targetCopy(`copy-${now.toISOString()}`, snapshot.createdAt, { snapshotTag: snapshot.tag }),
    );
    this.history = historyAfterLanded(this.history, [snapshot]);
    this.#failure = null;
    this.#failures = 0;
    this.#retryAt = -Infinity;
    this.landings.push({ snapshot, at: now });
    this.#newestLandedAt = Math.max(this.#newestLandedAt, Date.parse(snapshot.createdAt));
    this.#pruneTarget(now);
    // The copy job prunes the host again once its copy landed: what was held may go now.
    this.#pruneLocal(now);
  }

  #failed(failure: CopyFailure, now: Date): void {
    this.#failure = failure;
    this.#failures++;
    this.#retryAt = now.getTime() + copyRetryDelayMs(this.#failures);
  }

  #leaveDamaged(snapshot: SnapshotRef, interrupted: boolean, now: Date): void {
    if (interrupted && this.target.some((c) => c.state === "partial" && c.snapshotTag === snapshot.tag)) {
      return;
    }
    const damaged = targetCopy(`copy-${now.toISOString()}`, snapshot.createdAt, {
      state: interrupted ? "partial" : "corrupt",
      snapshotTag: snapshot.tag,
    });
    this.target.push(damaged);
    this.damaged.push(damaged);
  }

  #pruneLocal(now: Date): void {
    const { remove } = applyRetention(this.local, this.setup.retention, SCHEDULE_ID, now);
    const { remove: go, held } = holdUntilCopied(this.setup.copy, remove, this.history);
    const gone = new Set(go.map((s) => s.tag));
    // Owed, by the rule written down here: chosen, and nothing as new has landed.
    for (let i = this.chosen.length - 1; i >= 0; i--) {
      const chosen = this.chosen[i] as SnapshotRef;
      if (Date.parse(chosen.createdAt) <= this.#newestLandedAt) {
        break;
      }
      if (gone.has(chosen.tag)) {
        this.owedPruned.push(chosen);
      }
    }
    this.local = this.local.filter((s) => !gone.has(s.tag));
    this.mostHeld = Math.max(this.mostHeld, held.length);
  }

  #pruneTarget(now: Date): void {
    const { keep, remove } = applyTargetRetention(this.target, this.setup.copy.retention, OWNER, now);
    for (const copy of remove) {
      if (copy.state !== "verified" || copy.scheduleId !== SCHEDULE_ID || copy.vmUuid !== VM_UUID) {
        this.violations.push(`${now.toISOString()}: target retention removed ${copy.id} (${copy.state})`);
      }
    }
    const kept = keep.map((k) => k.copy);
    if (applyTargetRetention(kept, this.setup.copy.retention, OWNER, now).remove.length > 0) {
      this.violations.push(
        `${now.toISOString()}: target retention removed more when applied to its own result`,
      );
    }
    this.target = kept;
    if (ownVerified(this.target).length === 0) {
      this.violations.push(`${now.toISOString()}: no verified copy left on the target`);
    }
  }

  #recordRpo(now: Date): void {
    const newest = ownVerified(this.target).reduce<number | null>(
      (a, c) => Math.max(a ?? -Infinity, Date.parse(c.snapshotCreatedAt ?? "")),
      null,
    );
    const rpo = offHostRpo({
      newestVerifiedCopyAt: newest === null ? null : new Date(newest),
      copyIntervalMs: copyIntervalMs(this.setup.when, this.setup.copy.cadence, now),
      lastCopyFailure: this.#failure,
      schedulerRunning: true,
      now,
    });
    this.rpo.push({ at: now, rpo });
  }
}

function ownVerified(copies: readonly TargetCopy[]): TargetCopy[] {
  return copies.filter((c) => c.state === "verified" && c.scheduleId === SCHEDULE_ID && c.vmUuid === VM_UUID);
}

function scheduledSnapshot(at: Date): Snapshot {
  const name = `scheduled-${at.toISOString()}`;
  return {
    tag: `snapkeep:scheduled@${SCHEDULE_ID}:${name}`,
    name,
    kind: "scheduled",
    origin: SCHEDULE_ID,
    createdAt: at.toISOString(),
    disks: [],
    note: null,
    pinned: false,
    consistency: null,
    incomplete: false,
    hasVmState: false,
  };
}

/** A deterministic pseudo-random generator, so every run of the year is the same year. */
function prng(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

/** Every invariant of the year; the outages are checked one by one. */
function expectInvariants(year: SimulatedYear): void {
  expect(year.violations).toEqual([]);
  if (year.setup.copy.holdLocalUntilCopied) {
    expect(year.owedPruned).toEqual([]);
  }
  // No snapshot is sent twice, and what others put on the target is all still there.
  const sent = year.landings.map((l) => l.snapshot.tag);
  expect(new Set(sent).size).toBe(sent.length);
  for (const other of OTHERS_ON_TARGET) {
    expect(year.target).toContainEqual(other);
  }
  expect(year.target.filter((c) => c.id.startsWith("manual-"))).toHaveLength(12);
  for (const damaged of year.damaged) {
    const resumed = damaged.state === "partial" && sent.includes(damaged.snapshotTag ?? "");
    expect(resumed || year.target.includes(damaged)).toBe(true);
  }
  // Never zero verified copies after the first (also checked after every prune, in violations).
  const first = year.landings[0];
  expect(first).toBeDefined();
  const levelsAfterFirst = new Set(
    year.rpo.filter((r) => r.at >= (first as Landing).at).map((r) => r.rpo.level),
  );
  expect(levelsAfterFirst.has("on-host-only")).toBe(false);
  // The target keeps no more than the counts say.
  const counts = Object.values(year.setup.copy.retention).reduce<number>((a, n) => a + (n ?? 0), 0);
  expect(ownVerified(year.target).length).toBeLessThanOrEqual(counts);
  for (const outage of year.setup.outages) {
    expectOutageHandled(year, outage);
  }
}

function expectOutageHandled(year: SimulatedYear, outage: Outage): void {
  const during = (l: Landing): boolean =>
    Date.parse(l.snapshot.createdAt) >= outage.from.getTime() &&
    Date.parse(l.snapshot.createdAt) < outage.to.getTime();
  // Of the copies missed while the target was away, one is sent: not one per missed run.
  expect(year.landings.filter(during).length).toBeLessThanOrEqual(1);
  const owed = year.owedAtOutageEnd.get(outage) ?? null;
  if (owed !== null) {
    // ... and it is sent within the backoff's hour after the target is back (one more when that try
    // is one of the sim's failed copies): the newest owed then (a run in that time may have chosen
    // a newer one, sent in its place); the RPO is ok again.
    const firstBack = year.landings.find((l) => l.at >= outage.to);
    expect(Date.parse(firstBack?.snapshot.createdAt ?? "")).toBeGreaterThanOrEqual(
      Date.parse(owed.createdAt),
    );
    expect((firstBack as Landing).at.getTime() - outage.to.getTime()).toBeLessThanOrEqual(2 * HOUR);
    expect(year.rpo.find((r) => r.at.getTime() === (firstBack as Landing).at.getTime())?.rpo.level).toBe(
      "ok",
    );
  }
  // While it was away, an RPO past its grace time said why.
  const last = year.rpo.filter((r) => r.at >= outage.from && r.at < outage.to).at(-1);
  const interval = copyIntervalMs(year.setup.when, year.setup.copy.cadence, outage.to);
  if (last !== undefined && (last.rpo.ageMs ?? 0) > interval + copyOverdueAfterMs(interval)) {
    expect(last.rpo).toMatchObject({ level: "overdue", reason: "the target is offline" });
  }
}

const HOURLY: When = { every: "cron", cron: "0 * * * *" };
const DAILY: When = { every: "daily", at: "02:30" };
const YEAR = { start: local(2026, 1, 1), end: local(2026, 12, 31, 23, 45) };

function year(
  when: When,
  retention: RetentionPolicy,
  copy: Parameters<typeof validateCopyPolicy>[0],
  extra: Partial<Setup> = {},
): SimulatedYear {
  const setup = {
    when,
    retention,
    copy: validateCopyPolicy(copy),
    outages: OUTAGES,
    failureRate: 0.04,
    ...YEAR,
  };
  return new SimulatedYear({ ...setup, ...extra }).run();
}

const dayKey = (d: Date): string => `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;

// CPU-bound (a year of 15-minute ticks): generous time on a loaded 2-core machine.
describe("a simulated year of copies", { timeout: 60_000 }, () => {
  it("an hourly schedule copied every 4th run keeps its invariants through outages and DST", () => {
    const sim = year(
      HOURLY,
      { keepLast: 24, daily: 7, weekly: 4 },
      {
        target: "nas",
        cadence: { every: "runs", n: 4 },
        retention: { keepLast: 6, daily: 14, weekly: 8, monthly: 6 },
      },
    );
    expectInvariants(sim);
    expect(sim.landings.length).toBeGreaterThan(1800);
    expect(sim.damaged.length).toBeGreaterThan(20);
  });

  it("an hourly schedule copied once a day sends one copy per local day, 25-hour day included", () => {
    const sim = year(
      HOURLY,
      { keepLast: 12 },
      { target: "nas", cadence: { every: "day" }, retention: { daily: 7, weekly: 4, monthly: 12 } },
      { failureRate: 0 },
    );
    expectInvariants(sim);
    const touched = new Set(
      OUTAGES.flatMap((o) => [dayKey(o.from), dayKey(o.to), dayKey(new Date(o.to.getTime() + 24 * HOUR))]),
    );
    const perDay = new Map<string, number>();
    for (const l of sim.landings) {
      perDay.set(dayKey(l.at), (perDay.get(dayKey(l.at)) ?? 0) + 1);
    }
    const quietDays = [...perDay.keys()].filter((d) => !touched.has(d));
    expect(quietDays.length).toBeGreaterThan(330);
    expect(quietDays.filter((d) => perDay.get(d) !== 1)).toEqual([]);
    expect(perDay.get("2026-10-25")).toBe(1);
  });

  it("a daily schedule keeping 2 holds every snapshot owed a copy through a 5-day outage", () => {
    const sim = year(DAILY, { keepLast: 2 }, { target: "nas", retention: { keepLast: 7, monthly: 12 } });
    expectInvariants(sim);
    expect(sim.mostHeld).toBeGreaterThanOrEqual(3); // June: five days of owed snapshots, two of them kept anyway
    // An offline target is knocked on at most hourly once the backoff has grown: over the year's
    // outages (about 14 days), a few hundred tries, not one per 15-minute tick (~1,300).
    const outageHours = OUTAGES.reduce((h, o) => h + (o.to.getTime() - o.from.getTime()) / HOUR, 0);
    expect(sim.attempts - sim.landings.length).toBeLessThan(outageHours + OUTAGES.length * 7 + 40);
  });

  it("a daily schedule copied weekly holds the week's copy while the target is away", () => {
    const sim = year(
      DAILY,
      { keepLast: 2 },
      { target: "nas", cadence: { every: "week" }, retention: { weekly: 8 } },
    );
    expectInvariants(sim);
    expect(sim.mostHeld).toBeGreaterThanOrEqual(1); // November: Monday's copy outlives keep 2
  });

  it("without holding, owed snapshots are pruned: the hold is what keeps them", () => {
    const sim = year(
      DAILY,
      { keepLast: 2 },
      { target: "nas", retention: { keepLast: 7 }, holdLocalUntilCopied: false },
    );
    expectInvariants(sim);
    expect(sim.owedPruned.length).toBeGreaterThan(0);
    expect(sim.mostHeld).toBe(0);
  });

  it("ends where the preview's forecast said, for the host and for the target", () => {
    const start = local(2026, 1, 1);
    const end = new Date(start.getTime() + 365 * 24 * HOUR);
    for (const [when, retention, copy] of [
      [
        HOURLY,
        { keepLast: 24, daily: 7 },
        {
          target: "nas",
          cadence: { every: "runs", n: 3 },
          retention: { keepLast: 4, daily: 7, weekly: 4, monthly: 6 },
        },
      ],
      [
        DAILY,
        { keepLast: 7 },
        { target: "nas", cadence: { every: "week" }, retention: { weekly: 8, monthly: 12 } },
      ],
    ] as const) {
      const sim = year(when, retention, copy, { outages: [], failureRate: 0, start, end });
      expectInvariants(sim);
      const forecast = forecastSchedule(when, retention, validateCopyPolicy(copy), start);
      const onTarget = ownVerified(sim.target)
        .map((c) => c.snapshotCreatedAt ?? "")
        .sort();
      expect(forecast.target).toMatchObject({
        kept: onTarget.length,
        oldestKeptAt: onTarget[0],
        copies: sim.landings.length,
      });
      expect(forecast.host).toMatchObject({ kept: sim.local.length, oldestKeptAt: sim.local[0]?.createdAt });
    }
  });
});

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Snapshot, SnapshotKind } from "../../core/domain/types.js";
import {
  applyRetention,
  retainDated,
  startOfIsoWeek,
  type RetentionPolicy,
} from "../../core/domain/retention/gfs.js";

const SCHEDULE = "s1";
const NOW = new Date("2026-11-26T12:00:00+01:00");

function snap(
  createdAt: string,
  extra: {
    kind?: SnapshotKind;
    origin?: string | null;
    pinned?: boolean;
    name?: string;
    incomplete?: boolean;
  } = {},
): Snapshot {
  const kind = extra.kind ?? "scheduled";
  const origin = extra.origin === undefined ? (kind === "scheduled" ? SCHEDULE : null) : extra.origin;
  const name = extra.name ?? createdAt;
  return {
    tag: `snapkeep:${kind}${origin === null ? "" : `@${origin}`}:${name}`,
    name,
    kind,
    origin,
    createdAt: new Date(createdAt).toISOString(),
    disks: [
      { target: "vda", imageSnapshotId: "1", createdAt: new Date(createdAt).toISOString(), vmStateSize: 0 },
    ],
    note: null,
    pinned: extra.pinned ?? false,
    consistency: null,
    incomplete: extra.incomplete ?? false,
    hasVmState: false,
  };
}

/** Runs the policy and returns "name → reasons" (removed ones map to "REMOVE"). */
function decide(snapshots: Snapshot[], policy: RetentionPolicy): Record<string, string> {
  const result = applyRetention(snapshots, policy, SCHEDULE, NOW);
  const out: Record<string, string> = {};
  for (const k of result.keep) {
    out[k.snapshot.name] = k.reasons.join(",");
  }
  for (const r of result.remove) {
    out[r.name] = "REMOVE";
  }
  return out;
}

describe("retention, row by row", () => {
  it("keep last 2 removes older ones of this schedule only", () => {
    expect(
      decide(
        [
          snap("2026-11-26T02:00:00+01:00", { name: "d26" }),
          snap("2026-11-25T02:00:00+01:00", { name: "d25" }),
          snap("2026-11-24T02:00:00+01:00", { name: "d24" }), // older than the last 2: removed
          snap("2026-11-23T02:00:00+01:00", { name: "d23" }), // removed
          snap("2026-11-01T00:00:00+01:00", { kind: "manual", name: "m" }), // manual: never ours to remove
          snap("2026-11-02T00:00:00+01:00", { origin: "s2", name: "other" }), // another schedule's
          snap("2026-11-03T00:00:00+01:00", { kind: "foreign", origin: null, name: "f" }), // not Snapkeep's
          snap("2026-11-04T00:00:00+01:00", { kind: "safety", name: "safe" }), // safety net
        ],
        { keepLast: 2 },
      ),
    ).toEqual({
      d26: "latest-1",
      d25: "latest-2",
      d24: "REMOVE",
      d23: "REMOVE",
      m: "manual",
      other: "schedule s2",
      f: "foreign",
      safe: "safety",
    });
  });

  it("a pinned snapshot stays and does not use up the count", () => {
    expect(
      decide(
        [
          snap("2026-11-26T02:00:00+01:00", { name: "new" }),
          snap("2026-11-25T02:00:00+01:00", { name: "pinned", pinned: true }),
          snap("2026-11-24T02:00:00+01:00", { name: "old" }), // one is kept already, so this goes
        ],
        { keepLast: 1 },
      ),
    ).toEqual({ new: "latest-1", pinned: "pinned", old: "REMOVE" });
  });

  it("removes this schedule's snapshots from interrupted jobs, which are never counted", () => {
    expect(
      decide(
        [
          snap("2026-11-26T02:00:00+01:00", { name: "half-made", incomplete: true }), // newest, but not good
          snap("2026-11-25T02:00:00+01:00", { name: "good" }),
          snap("2026-11-24T02:00:00+01:00", { name: "older" }),
        ],
        { keepLast: 1 },
      ),
    ).toEqual({ "half-made": "REMOVE", good: "latest-1", older: "REMOVE" });
  });

  it("an empty policy keeps everything", () => {
    expect(
      decide(
        [snap("2026-11-26T02:00:00+01:00", { name: "a" }), snap("2025-01-01T00:00:00+01:00", { name: "b" })],
        {},
      ),
    ).toEqual({
      a: "policy is empty",
      b: "policy is empty",
    });
  });

  it("GFS keeps the newest of each local day, ISO week and month", () => {
    expect(
      decide(
        [
          snap("2026-11-26T02:00:00+01:00", { name: "thu-26" }),
          snap("2026-11-25T23:30:00+01:00", { name: "wed-25-late" }),
          snap("2026-11-25T02:00:00+01:00", { name: "wed-25-early" }), // not the newest of its day
          snap("2026-11-22T02:00:00+01:00", { name: "sun-22" }), // newest of ISO week 47
          snap("2026-11-16T02:00:00+01:00", { name: "mon-16" }), // ISO week 47 starts Monday 16th: older in week 47
          snap("2026-10-31T02:00:00+01:00", { name: "oct-31" }), // newest of October
          snap("2026-10-01T02:00:00+02:00", { name: "oct-01" }), // October has a newer one
          snap("2026-09-30T02:00:00+02:00", { name: "sep-30" }), // beyond 3 months? no: third month
          snap("2026-08-31T02:00:00+02:00", { name: "aug-31" }), // fourth month: beyond monthly 3
        ],
        { daily: 2, weekly: 2, monthly: 3 },
      ),
    ).toEqual({
      "thu-26": "daily-1,weekly-1,monthly-1",
      "wed-25-late": "daily-2",
      "wed-25-early": "REMOVE",
      "sun-22": "weekly-2",
      "mon-16": "REMOVE",
      "oct-31": "monthly-2",
      "oct-01": "REMOVE",
      "sep-30": "monthly-3",
      "aug-31": "REMOVE",
    });
  });

  it("never removes this schedule's newest snapshot, even when counts keep nothing for it", () => {
    // weekly: 1 keeps the newest of the week, which is the newest anyway; monthly 0 keeps nothing.
    expect(
      decide(
        [snap("2026-11-26T02:00:00+01:00", { name: "n" }), snap("2026-11-20T02:00:00+01:00", { name: "o" })],
        { monthly: 0, daily: 0, weekly: 0, keepLast: 0 },
      ),
    ).toEqual({
      n: "policy is empty",
      o: "policy is empty",
    });
    expect(
      decide(
        [snap("2026-11-26T02:00:00+01:00", { name: "n" }), snap("2026-09-20T02:00:00+02:00", { name: "o" })],
        { daily: 1 },
      ),
    ).toEqual({
      n: "daily-1",
      o: "REMOVE",
    });
  });

  it("keeps snapshots dated in the future without letting them push out the real newest", () => {
    expect(
      decide(
        [
          snap("2026-11-27T02:00:00+01:00", { name: "future" }), // made before the clock was set back
          snap("2026-11-26T02:00:00+01:00", { name: "real-newest" }),
          snap("2026-11-25T02:00:00+01:00", { name: "old" }),
        ],
        { keepLast: 1 },
      ),
    ).toEqual({ future: "dated in the future", "real-newest": "latest-1", old: "REMOVE" });
  });

  it("retains any dated items by the same rules, with their standing deciding what is counted", () => {
    const item = (
      name: string,
      createdAt: string,
      owner: string,
    ): { tag: string; createdAt: string; owner: string } => ({
      tag: name,
      createdAt: new Date(createdAt).toISOString(),
      owner,
    });
    const items = [
      item("old", "2026-11-20T02:00:00+01:00", "us"),
      item("new", "2026-11-26T02:00:00+01:00", "us"),
      item("theirs", "2026-11-01T02:00:00+01:00", "them"),
      item("broken", "2026-11-25T02:00:00+01:00", "broken"),
    ];
    const result = retainDated(items, { keepLast: 1 }, NOW, (i) =>
      i.owner === "us" ? "count" : i.owner === "broken" ? "remove" : { keep: `owned by ${i.owner}` },
    );
    expect(result.keep.map((k) => [k.item.tag, k.reasons.join(",")])).toEqual([
      ["new", "latest-1"],
      ["theirs", "owned by them"],
    ]);
    expect(result.remove.map((i) => i.tag)).toEqual(["old", "broken"]);
  });

  it("starts ISO weeks on the local Monday, across year ends and DST", () => {
    const monday = (y: number, m: number, d: number, h = 12): Date =>
      new Date(startOfIsoWeek(new Date(y, m, d, h).getTime()));
    expect(monday(2026, 0, 1)).toEqual(new Date(2025, 11, 29)); // Thursday: 2026-W01 began in 2025
    expect(monday(2027, 0, 1)).toEqual(new Date(2026, 11, 28)); // Friday of 2026's week 53
    expect(monday(2024, 11, 30, 0)).toEqual(new Date(2024, 11, 30)); // Monday at midnight is its own start
    expect(monday(2026, 2, 29, 23)).toEqual(new Date(2026, 2, 23)); // Sunday after the spring-forward night
  });
});

/** A deterministic pseudo-random generator, so the invariant runs are reproducible. */
function prng(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

function randomSet(seed: number, count: number): Snapshot[] {
  const random = prng(seed);
  const kinds: SnapshotKind[] = ["scheduled", "scheduled", "scheduled", "manual", "safety", "foreign"];
  return Array.from({ length: count }, (_, i) => {
    const kind = kinds[Math.floor(random() * kinds.length)] ?? "scheduled";
    const when = new Date(NOW.getTime() - Math.floor(random() * 400 * 86_400_000));
    return snap(when.toISOString(), {
      kind,
      name: `n${i}`,
      pinned: random() < 0.05,
      ...(kind === "scheduled" ? { origin: random() < 0.8 ? SCHEDULE : "s2" } : {}),
    });
  });
}

const POLICIES: RetentionPolicy[] = [
  {},
  { keepLast: 1 },
  { keepLast: 7 },
  { daily: 7 },
  { daily: 7, weekly: 4, monthly: 12 },
  { keepLast: 3, monthly: 6 },
  { weekly: 52 },
];

describe("retention invariants", () => {
  for (const [p, policy] of POLICIES.entries()) {
    for (const seed of [1, 2, 3, 42]) {
      it(`holds for policy ${JSON.stringify(policy)}, seed ${seed}`, () => {
        const input = randomSet(seed * 100 + p, 250);
        const result = applyRetention(input, policy, SCHEDULE, NOW);
        // Keep + remove is the input, each exactly once.
        expect(result.keep.length + result.remove.length).toBe(input.length);
        expect(new Set([...result.keep.map((k) => k.snapshot), ...result.remove]).size).toBe(input.length);
        // Only this schedule's unpinned snapshots can go.
        for (const removed of result.remove) {
          expect(removed).toMatchObject({ kind: "scheduled", origin: SCHEDULE, pinned: false });
        }
        // Every kept snapshot says why.
        expect(result.keep.every((k) => k.reasons.length > 0)).toBe(true);
        // The newest of this schedule's snapshots always stays.
        const ours = input.filter((s) => s.kind === "scheduled" && s.origin === SCHEDULE && !s.pinned);
        const newest = ours.reduce<Snapshot | undefined>(
          (a, s) => (a === undefined || s.createdAt > a.createdAt ? s : a),
          undefined,
        );
        if (newest !== undefined) {
          expect(result.remove).not.toContain(newest);
        }
        // Stability: the policy applied to what it kept removes nothing more.
        const again = applyRetention(
          result.keep.map((k) => k.snapshot),
          policy,
          SCHEDULE,
          NOW,
        );
        expect(again.remove).toEqual([]);
        expect(again.keep.map((k) => k.reasons)).toEqual(result.keep.map((k) => k.reasons));
      });
    }
  }
});

describe("retention golden files", () => {
  // Regenerate with UPDATE_GOLDEN=1 after a deliberate change, and read the diff.
  for (const [p, policy] of POLICIES.entries()) {
    it(`matches golden file ${p} for ${JSON.stringify(policy)}`, () => {
      const input = randomSet(7, 120);
      const result = applyRetention(input, policy, SCHEDULE, NOW);
      const actual = {
        policy,
        keep: result.keep.map((k) => ({
          name: k.snapshot.name,
          createdAt: k.snapshot.createdAt,
          reasons: k.reasons,
        })),
        remove: result.remove.map((r) => r.name),
      };
      const file = new URL(`../golden/retention/policy-${p}.json`, import.meta.url);
      if (process.env["UPDATE_GOLDEN"] === "1" || !existsSync(file)) {
        if (process.env["CI"] === "true") {
          throw new Error(`golden file ${file.pathname} is missing`);
        }
        writeFileSync(file, `${JSON.stringify(actual, null, 1)}\n`);
      }
      expect(actual).toEqual(JSON.parse(readFileSync(file, "utf8")));
    });
  }
});

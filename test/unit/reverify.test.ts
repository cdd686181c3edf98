import { describe, expect, it } from "vitest";
import { copyToReverify, REVERIFY_AFTER_MS } from "../../core/domain/copy/reverify.js";
import type { TargetCopy } from "../../core/domain/copy/target-retention.js";

const OWNER = { id: "s1", vmUuid: "vm-1" };
const NOW = new Date("2026-12-05T12:00:00Z");
const DAY = 24 * 3600_000;

function copy(id: string, checkedDaysAgo: number | null, extra: Partial<TargetCopy> = {}): TargetCopy {
  return {
    id,
    state: "verified",
    vmUuid: OWNER.vmUuid,
    scheduleId: OWNER.id,
    snapshotTag: `tag-${id}`,
    snapshotCreatedAt: "2026-10-01T00:00:00.000Z",
    checkedAt: checkedDaysAgo === null ? null : new Date(NOW.getTime() - checkedDaysAgo * DAY).toISOString(),
    ...extra,
  };
}

describe("which copy a run checks again", () => {
  it("takes the owner's copy checked longest ago, once that check is older than 30 days", () => {
    expect(REVERIFY_AFTER_MS).toBe(30 * DAY);
    expect(copyToReverify([copy("a", 10), copy("b", 29)], OWNER, NOW)).toBeNull();
    expect(copyToReverify([copy("a", 31), copy("b", 45), copy("c", 5)], OWNER, NOW)?.id).toBe("b");
  });

  it("checks a copy with no known or unreadable check first", () => {
    expect(copyToReverify([copy("a", 45), copy("b", null)], OWNER, NOW)?.id).toBe("b");
    expect(copyToReverify([copy("a", 45), copy("b", 1, { checkedAt: "garbage" })], OWNER, NOW)?.id).toBe("b");
  });

  it("never checks another schedule's, another VM's, a manual or a copy that is not verified", () => {
    const others = [
      copy("m", 90, { scheduleId: null }),
      copy("o", 90, { scheduleId: "s2" }),
      copy("v", 90, { vmUuid: "vm-2" }),
      copy("p", 90, { state: "partial" }),
      copy("x", 90, { state: "corrupt" }),
    ];
    expect(copyToReverify(others, OWNER, NOW)).toBeNull();
  });
});

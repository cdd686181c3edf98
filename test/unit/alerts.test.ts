/**
 * The alert policy (domain/alerts.ts): one alert per problem until it recovers, quiet hours that
 * wrap midnight, the digest's time and words, off-host copies too old, mail's subject and text, and
 * addresses never shown past their host.
 */
import { describe, expect, it } from "vitest";
import {
  alertChannelSchema,
  channelAddress,
  decideAlerts,
  digestAlert,
  inQuietHours,
  mailSubject,
  mailText,
  nextDigestAt,
  heldAlertSchema,
  ntfyHeaders,
  offHostChecks,
  redactedUrl,
  type AlertInput,
  type OpenProblem,
} from "../../core/domain/alerts.js";

const schedule = { id: "s1", host: "pve", vmName: "web01" };
const at = new Date("2026-12-06T10:00:00Z");

function run(inputs: AlertInput[]): { events: string[]; open: Record<string, OpenProblem> } {
  let open: Record<string, OpenProblem> = {};
  const events: string[] = [];
  for (const input of inputs) {
    const d = decideAlerts(input, open, at);
    open = { ...d.open };
    events.push(...d.alerts.map((a) => `${a.event} ${a.subject}`));
  }
  return { events, open };
}

describe("decideAlerts", () => {
  it("alerts a failing streak once, then once when it recovers; successes alone say nothing", () => {
    const failed: AlertInput = { type: "job-failed", schedule, message: "no space" };
    const ok: AlertInput = { type: "job-succeeded", schedule };
    expect(run([ok, failed, failed, failed, ok, ok, failed]).events).toEqual([
      "failed schedule:s1",
      "recovered schedule:s1",
      "failed schedule:s1",
    ]);
  });

  it("keeps a target's copies, an overdue run and the scheduler as problems of their own", () => {
    const result = run([
      { type: "copy-failed", schedule, target: "nas", message: "offline" },
      { type: "copy-failed", schedule, target: "nas", message: "offline" },
      { type: "overdue", schedule, since: "2026-12-06T02:00:00Z" },
      { type: "scheduler-error", message: "settings unreadable" },
      { type: "copy-recovered", schedule, target: "nas" },
      { type: "recovered", schedule },
    ]);
    expect(result.events).toEqual([
      "failed copy:s1:nas",
      "overdue schedule:s1",
      "failed scheduler",
      "recovered copy:s1:nas",
      "recovered schedule:s1",
    ]);
    expect(Object.keys(result.open)).toEqual(["scheduler"]);
  });

  it("alerts a failing restore drill once per streak, with why, and once when a drill boots again", () => {
    const failed: AlertInput = {
      type: "drill-failed",
      schedule,
      target: "nas",
      exportId: "20261206T020000Z-ab",
      message: "The restored VM's guest agent did not answer within 10 min of its start.",
    };
    let open: Record<string, OpenProblem> = {};
    const first = decideAlerts(failed, open, at);
    open = { ...first.open };
    expect(first.alerts[0]).toMatchObject({
      event: "failed",
      subject: "drill:s1",
      title: "Restore drill of pve/web01 failed",
      vm: "web01",
    });
    expect(first.alerts[0]?.body).toContain("did not answer within 10 min");
    expect(first.alerts[0]?.body).toContain("20261206T020000Z-ab on nas");
    expect(decideAlerts(failed, open, at).alerts).toEqual([]);
    const passed = decideAlerts({ type: "drill-passed", schedule, target: "nas" }, open, at);
    expect(passed.alerts.map((a) => `${a.event} ${a.subject} ${a.title}`)).toEqual([
      "recovered drill:s1 Restore drills of pve/web01 pass again",
    ]);
    expect(passed.open).toEqual({});
  });

  it("alerts every damaged copy, each its own subject", () => {
    const damaged = (exportId: string): AlertInput => ({
      type: "copy-damaged",
      schedule,
      target: "nas",
      exportId,
      message: "vda.qcow2 does not match",
    });
    expect(run([damaged("a"), damaged("a"), damaged("b")]).events).toEqual([
      "verify-failed export:nas/a",
      "verify-failed export:nas/a",
      "verify-failed export:nas/b",
    ]);
  });
});

describe("quiet hours and the digest", () => {
  it("quiet hours may wrap midnight", () => {
    const night = { from: "22:00", to: "07:00" };
    expect([21 * 60 + 59, 22 * 60, 3 * 60, 7 * 60 - 1, 7 * 60].map((m) => inQuietHours(night, m))).toEqual([
      false,
      true,
      true,
      true,
      false,
    ]);
    expect(inQuietHours({ from: "12:00", to: "13:00" }, 12 * 60 + 30)).toBe(true);
    expect(inQuietHours(undefined, 0)).toBe(false);
  });

  it("the digest comes on Monday at 09:00 local time, the next one after the last", () => {
    const sunday = new Date(2026, 11, 6, 23, 0);
    expect(nextDigestAt(sunday)).toEqual(new Date(2026, 11, 7, 9, 0));
    expect(nextDigestAt(new Date(2026, 11, 7, 9, 0))).toEqual(new Date(2026, 11, 14, 9, 0));
    expect(nextDigestAt(new Date(2026, 11, 7, 8, 59))).toEqual(new Date(2026, 11, 7, 9, 0));
  });

  it("says all green, or what is still open", () => {
    expect(digestAlert({}, { succeeded: 14, failed: 0 }, at)).toMatchObject({
      title: "Snapkeep weekly: all green",
      body: "14 scheduled jobs succeeded and 0 failed this week.",
    });
    const open = {
      "copy:s1:nas": {
        kind: "failed" as const,
        since: "2026-12-05T01:00:00Z",
        title: "Copies of pve/web01 to nas fail",
      },
    };
    expect(digestAlert(open, { succeeded: 1, failed: 3 }, at).body).toBe(
      "1 scheduled job succeeded and 3 failed this week.\nStill open since 2026-12-05T01:00:00Z: Copies of pve/web01 to nas fail.",
    );
  });
});

describe("what leaves the machine", () => {
  it("shows addresses only up to their host: tokens live in the path and the query", () => {
    expect(redactedUrl("https://hooks.example/api/webhooks/123/s3cret?x=1")).toBe("https://hooks.example/…");
    expect(redactedUrl("https://user:pw@ntfy.sh/my-topic")).toBe("https://ntfy.sh/…");
    expect(redactedUrl("http://10.0.0.5:8080/")).toBe("http://10.0.0.5:8080");
    expect(redactedUrl("not a url")).toBe("(not an address)");
  });

  it("gives ntfy a priority and tags, and a header-safe title", () => {
    const alert = decideAlerts(
      { type: "job-failed", schedule: { ...schedule, vmName: "wéb01" }, message: "x" },
      {},
      at,
    ).alerts[0];
    expect(alert === undefined ? null : ntfyHeaders(alert)).toEqual({
      Title: "Snapshot of pve/w?b01 failed",
      Priority: "4",
      Tags: "warning,snapkeep",
    });
  });
});

describe("off-host copies too old", () => {
  const day = 24 * 3600_000;
  const now = new Date("2026-12-09T12:00:00Z");
  const copying = {
    ...schedule,
    when: { every: "daily" as const, at: "02:00" },
    copy: { target: "nas", cadence: { every: "day" as const } },
  };
  const state = (landedAgoMs: number | null, failure: "target-offline" | null = null) => ({
    lastChosen: null,
    runsSinceChosen: 0,
    newestLanded:
      landedAgoMs === null
        ? null
        : { tag: "snapkeep:x", createdAt: new Date(now.getTime() - landedAgoMs).toISOString() },
    owedSince: null,
    lastAttempt:
      failure === null
        ? null
        : { at: now.toISOString(), exportId: null, failure: { kind: failure, detail: "no route to host" } },
  });

  it("is overdue past the interval and its grace, ok when recent, and not judged before a first copy", () => {
    const check = (s: ReturnType<typeof state>) =>
      offHostChecks([copying], { s1: s }, now).map((i) => i.type);
    expect(check(state(3 * day))).toEqual(["offhost-overdue"]);
    expect(check(state(day + 3 * 3600_000))).toEqual([]); // due: in the grace time
    expect(check(state(2 * 3600_000))).toEqual(["offhost-ok"]);
    expect(check(state(null))).toEqual([]);
    // An offline target will not heal by itself: overdue as soon as the interval is past.
    const offline = offHostChecks([copying], { s1: state(day + 3600_000, "target-offline") }, now);
    expect(offline).toMatchObject([
      { type: "offhost-overdue", reason: expect.stringMatching(/offline: no route to host/) },
    ]);
  });

  it("is one alert while it stays overdue, and one recovered when a copy lands", () => {
    const overdue: AlertInput = {
      type: "offhost-overdue",
      schedule,
      target: "nas",
      reason: "the target is offline",
    };
    const ok: AlertInput = { type: "offhost-ok", schedule, target: "nas" };
    const failed: AlertInput = { type: "job-failed", schedule, message: "disk locked" };
    expect(run([ok, overdue, overdue, failed, ok, ok]).events).toEqual([
      "offhost-overdue offhost:s1",
      "failed schedule:s1",
      "recovered offhost:s1",
    ]);
  });
});

describe("mail", () => {
  const [alert = expect.fail("an alert")] = decideAlerts(
    { type: "job-failed", schedule: { ...schedule, vmName: "web\r\nBcc: x@evil" }, message: "no space" },
    {},
    at,
  ).alerts;

  it("has a subject that sorts by kind, on one line whatever the names hold", () => {
    expect(mailSubject(alert)).toBe("Snapkeep FAILED: Snapshot of pve/web Bcc: x@evil failed");
    expect(mailSubject(digestAlert({}, { succeeded: 3, failed: 0 }, at))).toBe("Snapkeep WEEKLY: all green");
  });

  it("has the alert's body, then one fact a line", () => {
    expect(mailText(alert, "hv1")).toBe(
      "no space Snapkeep retries with backoff.\n\nWhen: 2026-12-06T10:00:00.000Z\nHost: pve\nVM: web\r\nBcc: x@evil\nSchedule: s1\n\n-- \nSent by Snapkeep on hv1.\n",
    );
  });

  it("keeps mail servers' passwords out of the address, and lists a channel without them", () => {
    const channel = {
      name: "mail",
      kind: "email",
      events: ["failed"],
      to: ["a@example.org"],
      starttls: true,
      password: "pw",
    };
    const parse = (smtp: string) => alertChannelSchema.safeParse({ ...channel, smtp }).success;
    expect(parse("smtp://alice@mail.example:587")).toBe(true);
    expect(parse("smtps://mail.example")).toBe(true);
    expect(parse("smtp://alice:pw@mail.example")).toBe(false);
    expect(parse("http://mail.example")).toBe(false);
    expect(parse("smtp://mail.example/path")).toBe(false);
    expect(
      alertChannelSchema.safeParse({ ...channel, smtp: "smtp://m.example", to: ["x@y.org\r\nBcc: z@w.org"] })
        .success,
    ).toBe(false);
    const parsed = alertChannelSchema.parse({ ...channel, smtp: "smtp://alice@mail.example:587" });
    expect(channelAddress(parsed)).toBe("a@example.org via smtp://mail.example:587");
  });
});

describe("long messages", () => {
  it("are cut to what the settings keep, so a held alert is never lost", () => {
    const long = "x".repeat(20_000);
    const [alert] = decideAlerts({ type: "scheduler-error", message: long }, {}, at).alerts;
    expect(alert?.body.length).toBeLessThanOrEqual(8000);
    expect(alert?.body.endsWith("…")).toBe(true);
    expect(heldAlertSchema.safeParse({ channel: "mail", alert }).success).toBe(true);
  });
});

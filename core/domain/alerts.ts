/**
 * Alerts for headless use (issue 17): which scheduler events become an alert, once. Pure; the app
 * layer (app/alerts.ts) keeps the open problems in the settings and sends what this decides.
 *
 * A problem has a subject (a schedule, a schedule's copies to a target, the scheduler itself). Its
 * first failure opens it and alerts; further failures while it is open say nothing (a target
 * offline for a day is one alert); the first success closes it with one "recovered" alert. A
 * damaged copy is its own subject each time. Quiet hours hold a channel's alerts until they end.
 */
import { z } from "zod";

import { copyIntervalMs, type CopyCadence } from "./copy/policy.js";
import { offHostRpo } from "./copy/rpo.js";
import type { When } from "./schedule/spec.js";
import type { ScheduleCopyState } from "./settings.js";

export const ALERT_EVENTS = [
  "failed",
  "overdue",
  "offhost-overdue",
  "recovered",
  "verify-failed",
  "digest",
] as const;
export type AlertEvent = (typeof ALERT_EVENTS)[number];

const clock = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "HH:MM");
export const httpUrl = z
  .string()
  .max(2048)
  .refine((text) => {
    try {
      const url = new URL(text);
      return url.protocol === "http:" || url.protocol === "https:";
    } catch {
      return false;
    }
  }, "an http:// or https:// address");

const common = {
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "letters, digits, . _ -"),
  events: z.array(z.enum(ALERT_EVENTS)).min(1),
  quiet: z.object({ from: clock, to: clock }).optional(),
};

/** A mailbox, as a mail server takes it in RCPT TO: no names, no spaces, no header tricks. */
export const mailAddress = z
  .string()
  .max(254)
  .regex(/^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/, "name@domain");

/**
 * The mail server: smtp://[user@]host[:port] (STARTTLS when offered, or required with
 * `starttls`) or smtps://[user@]host[:port] (TLS from the start). The password is kept apart
 * (`password`), never in the address, so that the address can be shown.
 */
export const smtpUrl = z
  .string()
  .max(1024)
  .refine((text) => {
    try {
      const url = new URL(text);
      return (
        (url.protocol === "smtp:" || url.protocol === "smtps:") &&
        url.hostname !== "" &&
        url.password === "" &&
        (url.pathname === "" || url.pathname === "/") &&
        url.search === ""
      );
    } catch {
      return false;
    }
  }, "smtp://[user@]host[:port] or smtps://[user@]host[:port], without a password");

export const alertChannelSchema = z.discriminatedUnion("kind", [
  z.object({ ...common, kind: z.literal("webhook"), url: httpUrl }),
  /** ntfy: the topic's full address, e.g. https://ntfy.sh/my-homelab. */
  z.object({ ...common, kind: z.literal("ntfy"), url: httpUrl }),
  z.object({
    ...common,
    kind: z.literal("email"),
    to: z.array(mailAddress).min(1).max(20),
    from: mailAddress.optional(),
    smtp: smtpUrl,
    /** smtp:// only: refuse to send unless the server upgrades to TLS (no password in clear). */
    starttls: z.boolean(),
    /** The SMTP password; the settings file is 0600 and nothing lists or logs it. */
    password: z.string().min(1).max(1024).optional(),
    /** PEM certificate(s) to trust for this server besides the system's (a self-signed relay). */
    ca: z.string().max(65_536).optional(),
  }),
]);
export type AlertChannel = z.infer<typeof alertChannelSchema>;

/** An open problem, kept across restarts so a daemon restart does not alert again. */
export const openProblemSchema = z.object({
  kind: z.enum(["failed", "overdue", "offhost-overdue"]),
  since: z.string(),
  title: z.string().max(500),
});
export type OpenProblem = z.infer<typeof openProblemSchema>;

export interface Alert {
  readonly event: AlertEvent;
  /** What it is about: the unit of de-duplication. */
  readonly subject: string;
  readonly title: string;
  readonly body: string;
  readonly at: string;
  readonly host: string | null;
  readonly vm: string | null;
  readonly schedule: string | null;
}

/** An alert held through a channel's quiet hours, kept in the settings so a restart sends it still. */
export const heldAlertSchema = z.object({
  channel: z.string().max(64),
  alert: z.object({
    event: z.enum(ALERT_EVENTS),
    subject: z.string().max(600),
    title: z.string().max(1000),
    body: z.string().max(10_000),
    at: z.string().max(40),
    host: z.string().max(300).nullable(),
    vm: z.string().max(300).nullable(),
    schedule: z.string().max(64).nullable(),
  }),
});
export type HeldAlert = z.infer<typeof heldAlertSchema>;
/** Held alerts kept at most: a channel quiet for days does not grow the settings without end. */
export const MAX_HELD_ALERTS = 200;

/** The parts of a scheduler event the policy reads (app/schedules/scheduler.ts has them all). */
export type AlertInput =
  | {
      readonly type: "job-failed" | "prune-failed";
      readonly schedule: AboutSchedule;
      readonly message: string;
    }
  | { readonly type: "job-succeeded"; readonly schedule: AboutSchedule }
  | { readonly type: "overdue"; readonly schedule: AboutSchedule; readonly since: string }
  | { readonly type: "recovered"; readonly schedule: AboutSchedule }
  | {
      readonly type: "copy-failed";
      readonly schedule: AboutSchedule;
      readonly target: string;
      readonly message: string;
    }
  | { readonly type: "copy-recovered"; readonly schedule: AboutSchedule; readonly target: string }
  | {
      readonly type: "copy-damaged";
      readonly schedule: AboutSchedule;
      readonly target: string;
      readonly exportId: string;
      readonly message: string;
    }
  | {
      readonly type: "offhost-overdue";
      readonly schedule: AboutSchedule;
      readonly target: string;
      readonly reason: string;
    }
  | { readonly type: "offhost-ok"; readonly schedule: AboutSchedule; readonly target: string }
  | {
      readonly type: "drill-failed";
      readonly schedule: AboutSchedule;
      readonly target: string;
      readonly exportId: string;
      readonly message: string;
    }
  | { readonly type: "drill-passed"; readonly schedule: AboutSchedule; readonly target: string }
  | { readonly type: "scheduler-error"; readonly message: string };

export interface AboutSchedule {
  readonly id: string;
  readonly host: string;
  readonly vmName: string;
}

export interface Decision {
  readonly alerts: readonly Alert[];
  readonly open: Readonly<Record<string, OpenProblem>>;
}

/** The alerts an event raises, and the open problems after it. */
export function decideAlerts(
  input: AlertInput,
  open: Readonly<Record<string, OpenProblem>>,
  now: Date,
): Decision {
  const at = now.toISOString();
  const step = stepOf(input, open, at);
  // Cut to what the settings keep (a held alert is stored): a long error must not lose the alert.
  const alert = {
    ...step.alert,
    title: clip(step.alert.title, 500),
    body: clip(step.alert.body, 8000),
    subject: clip(step.subject, 600),
    at,
  };
  if (step.action === "once") {
    return { alerts: [alert], open };
  }
  if (step.action === "raise") {
    return open[step.subject] === undefined
      ? {
          alerts: [alert],
          open: { ...open, [step.subject]: { kind: step.kind, since: at, title: alert.title } },
        }
      : { alerts: [], open };
  }
  if (open[step.subject] === undefined) {
    return { alerts: [], open };
  }
  const { [step.subject]: _closed, ...rest } = open;
  return { alerts: [alert], open: rest };
}

type Step = {
  readonly subject: string;
  readonly alert: Omit<Alert, "subject" | "at">;
} & (
  { readonly action: "raise"; readonly kind: OpenProblem["kind"] } | { readonly action: "clear" | "once" }
);

/** What an event means: open a problem, close one, or a one-off alert. */
function stepOf(input: AlertInput, open: Readonly<Record<string, OpenProblem>>, at: string): Step {
  if (input.type === "scheduler-error") {
    const alert = {
      event: "failed" as const,
      title: "Snapkeep's scheduler has a problem",
      body: input.message,
    };
    return {
      action: "raise",
      kind: "failed",
      subject: "scheduler",
      alert: { ...alert, host: null, vm: null, schedule: null },
    };
  }
  const s = input.schedule;
  const about = { host: s.host, vm: s.vmName, schedule: s.id };
  const vm = `${s.host}/${s.vmName}`;
  const since = (subject: string): string => open[subject]?.since ?? at;
  switch (input.type) {
    case "job-failed":
    case "prune-failed": {
      const retry = input.type === "job-failed" ? " Snapkeep retries with backoff." : "";
      const alert = {
        event: "failed" as const,
        title: `Snapshot of ${vm} failed`,
        body: `${input.message}${retry}`,
      };
      return { action: "raise", kind: "failed", subject: `schedule:${s.id}`, alert: { ...alert, ...about } };
    }
    case "overdue": {
      const alert = {
        event: "overdue" as const,
        title: `${vm} is overdue`,
        body: `Its run of ${input.since} has not happened.`,
      };
      return { action: "raise", kind: "overdue", subject: `schedule:${s.id}`, alert: { ...alert, ...about } };
    }
    case "job-succeeded":
    case "recovered": {
      const subject = `schedule:${s.id}`;
      const body = `Something was wrong since ${since(subject)}; the last run succeeded.`;
      return {
        action: "clear",
        subject,
        alert: { event: "recovered", title: `Snapshots of ${vm} work again`, body, ...about },
      };
    }
    case "copy-failed": {
      const body = `${input.message} The next runs try again; snapshots owed a copy are kept.`;
      const alert = { event: "failed" as const, title: `Copies of ${vm} to ${input.target} fail`, body };
      return {
        action: "raise",
        kind: "failed",
        subject: `copy:${s.id}:${input.target}`,
        alert: { ...alert, ...about },
      };
    }
    case "copy-recovered": {
      const subject = `copy:${s.id}:${input.target}`;
      const title = `Copies of ${vm} land on ${input.target} again`;
      return {
        action: "clear",
        subject,
        alert: { event: "recovered", title, body: `They failed since ${since(subject)}.`, ...about },
      };
    }
    case "offhost-overdue":
    case "offhost-ok":
      return offHostStep(input, about, since);
    case "drill-failed":
    case "drill-passed":
      return drillStep(input, about, since);
    case "copy-damaged": {
      const title = `Copy ${input.exportId} of ${vm} on ${input.target} is damaged`;
      const body = `${input.message} It is no recovery point any more.`;
      const subject = `export:${input.target}/${input.exportId}`;
      return { action: "once", subject, alert: { event: "verify-failed", title, body, ...about } };
    }
  }
}

/** A failed restore drill of a schedule's copies opens a problem; a drill that passes closes it. */
function drillStep(
  input: Extract<AlertInput, { type: "drill-failed" | "drill-passed" }>,
  about: { readonly host: string; readonly vm: string; readonly schedule: string },
  since: (subject: string) => string,
): Step {
  const subject = `drill:${about.schedule}`;
  const vm = `${about.host}/${about.vm}`;
  if (input.type === "drill-passed") {
    const title = `Restore drills of ${vm} pass again`;
    const body = `A copy on ${input.target} booted; drills failed since ${since(subject)}.`;
    return { action: "clear", subject, alert: { event: "recovered", title, body, ...about } };
  }
  const title = `Restore drill of ${vm} failed`;
  const body = `Copy ${input.exportId} on ${input.target} was restored into a throwaway VM and did not come back: ${input.message} Each new copy is drilled until one boots.`;
  return { action: "raise", kind: "failed", subject, alert: { event: "failed", title, body, ...about } };
}

/** An off-host copy too old opens a problem of its own; a recent one closes it. */
function offHostStep(
  input: Extract<AlertInput, { type: "offhost-overdue" | "offhost-ok" }>,
  about: { readonly host: string; readonly vm: string; readonly schedule: string },
  since: (subject: string) => string,
): Step {
  const subject = `offhost:${about.schedule}`;
  const vm = `${about.host}/${about.vm}`;
  if (input.type === "offhost-ok") {
    const title = `${vm} has a recent copy off the host again`;
    const body = `A verified copy landed on ${input.target}; the off-host copy was overdue since ${since(subject)}.`;
    return { action: "clear", subject, alert: { event: "recovered", title, body, ...about } };
  }
  const title = `${vm} has no recent copy off the host`;
  const body = `Its newest verified copy on ${input.target} is older than the schedule promises: ${input.reason}.`;
  return {
    action: "raise",
    kind: "offhost-overdue",
    subject,
    alert: { event: "offhost-overdue", title, body, ...about },
  };
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Whether `now` (local time, as minutes of the day) falls in quiet hours that may wrap midnight. */
export function inQuietHours(quiet: { from: string; to: string } | undefined, minuteOfDay: number): boolean {
  if (quiet === undefined) {
    return false;
  }
  const from = minutes(quiet.from);
  const to = minutes(quiet.to);
  return from <= to ? minuteOfDay >= from && minuteOfDay < to : minuteOfDay >= from || minuteOfDay < to;
}

function minutes(hhmm: string): number {
  const [h, m] = hhmm.split(":").map(Number);
  return (h ?? 0) * 60 + (m ?? 0);
}

/** The weekly digest: Monday 09:00 local time, the first one after `after`. */
export function nextDigestAt(after: Date): Date {
  const next = new Date(after);
  next.setHours(9, 0, 0, 0);
  const daysToMonday = (8 - next.getDay()) % 7;
  next.setDate(next.getDate() + daysToMonday);
  if (next.getTime() <= after.getTime()) {
    next.setDate(next.getDate() + 7);
  }
  return next;
}

/** The digest: all green, or what is still wrong, so that silence itself means something. */
export function digestAlert(
  open: Readonly<Record<string, OpenProblem>>,
  counts: { readonly succeeded: number; readonly failed: number },
  now: Date,
): Alert {
  const problems = Object.values(open);
  return {
    event: "digest",
    subject: "digest",
    title:
      problems.length === 0
        ? "Snapkeep weekly: all green"
        : `Snapkeep weekly: ${problems.length} problem${problems.length === 1 ? "" : "s"} open`,
    body: [
      `${counts.succeeded} scheduled job${counts.succeeded === 1 ? "" : "s"} succeeded and ${counts.failed} failed this week.`,
      ...problems.map((p) => `Still open since ${p.since}: ${p.title}.`),
    ].join("\n"),
    at: now.toISOString(),
    host: null,
    vm: null,
    schedule: null,
  };
}

/**
 * The webhook's body, version 1 (documented in README.md; fields are only ever added):
 * {"version":1,"source":"snapkeep","event","subject","title","body","at","host","vm","schedule"}.
 */
export function webhookBody(alert: Alert): string {
  return JSON.stringify({
    version: 1,
    source: "snapkeep",
    event: alert.event,
    subject: alert.subject,
    title: alert.title,
    body: alert.body,
    at: alert.at,
    host: alert.host,
    vm: alert.vm,
    schedule: alert.schedule,
  });
}

/** ntfy's publish by POST: the message as the body, title, priority (1-5) and tags as headers. */
export function ntfyHeaders(alert: Alert): Record<string, string> {
  const style: Record<AlertEvent, { priority: string; tags: string }> = {
    failed: { priority: "4", tags: "warning,snapkeep" },
    overdue: { priority: "4", tags: "hourglass,snapkeep" },
    "offhost-overdue": { priority: "4", tags: "hourglass,floppy_disk,snapkeep" },
    "verify-failed": { priority: "5", tags: "rotating_light,snapkeep" },
    recovered: { priority: "3", tags: "white_check_mark,snapkeep" },
    digest: { priority: "2", tags: "calendar,snapkeep" },
  };
  // Header values must be ISO-8859-1: anything else is left out of the title (the body keeps it).
  return {
    Title: alert.title.replace(/[^\x20-\x7e]/g, "?"),
    Priority: style[alert.event].priority,
    Tags: style[alert.event].tags,
  };
}

/**
 * An address as listed or logged: only its origin. Webhook and ntfy addresses carry their secret
 * in the path (a token, a topic anyone could post to) or the query, so nothing past the host shows.
 */
export function redactedUrl(text: string): string {
  try {
    const url = new URL(text);
    return `${url.origin}${url.pathname === "/" && url.search === "" ? "" : "/…"}`;
  } catch {
    return "(not an address)";
  }
}

/** Where a channel sends, as listed and logged: addresses up to their host, mail recipients whole. */
export function channelAddress(channel: AlertChannel): string {
  if (channel.kind !== "email") {
    return redactedUrl(channel.url);
  }
  const server = new URL(channel.smtp);
  return `${channel.to.join(", ")} via ${server.protocol}//${server.host}`;
}

const MAIL_WORD: Record<AlertEvent, string> = {
  failed: "FAILED",
  overdue: "OVERDUE",
  "offhost-overdue": "OFF-HOST OVERDUE",
  "verify-failed": "DAMAGED",
  recovered: "RECOVERED",
  digest: "WEEKLY",
};

/**
 * A mail's subject: "Snapkeep FAILED: Snapshot of web01/db failed". The word after "Snapkeep"
 * sorts a mailbox by kind; a line break (from a VM name, say) never reaches the header.
 */
export function mailSubject(alert: Alert): string {
  const title = alert.event === "digest" ? alert.title.replace(/^Snapkeep weekly: /, "") : alert.title;
  return `Snapkeep ${MAIL_WORD[alert.event]}: ${title}`.replace(/[\r\n\t]+/g, " ").slice(0, 250);
}

/** A mail's plain text: the alert's body, then what it is about, one fact a line. */
export function mailText(alert: Alert, sentBy: string): string {
  const facts = [
    `When: ${alert.at}`,
    ...(alert.host === null ? [] : [`Host: ${alert.host}`]),
    ...(alert.vm === null ? [] : [`VM: ${alert.vm}`]),
    ...(alert.schedule === null ? [] : [`Schedule: ${alert.schedule}`]),
  ];
  return `${alert.body}\n\n${facts.join("\n")}\n\n-- \nSent by Snapkeep on ${sentBy}.\n`;
}

/** The parts of a schedule that copies off the host which the off-host check reads. */
export interface CopyingSchedule extends AboutSchedule {
  readonly when: When;
  readonly copy: { readonly target: string; readonly cadence: CopyCadence };
}

/**
 * The off-host alerts' inputs, checked every few minutes: a schedule that copies off the host and
 * whose newest verified copy is older than it promises (copy/rpo.ts: past the interval and its
 * grace, or at once when the target is offline) is "offhost-overdue"; one whose copy is recent
 * again is "offhost-ok" (which closes the problem, if one is open). A schedule that has never
 * landed a copy is not judged here: its first copy's failure alerts as "failed" already.
 */
export function offHostChecks(
  schedules: readonly CopyingSchedule[],
  copyState: Readonly<Record<string, ScheduleCopyState>>,
  now: Date,
): AlertInput[] {
  return schedules.flatMap((schedule): AlertInput[] => {
    const state = copyState[schedule.id];
    const landed = state?.newestLanded?.createdAt;
    if (landed === undefined) {
      return [];
    }
    const rpo = offHostRpo({
      newestVerifiedCopyAt: new Date(landed),
      copyIntervalMs: copyIntervalMs(schedule.when, schedule.copy.cadence, now),
      lastCopyFailure: state?.lastAttempt?.failure ?? null,
      schedulerRunning: true,
      now,
    });
    const about = { id: schedule.id, host: schedule.host, vmName: schedule.vmName };
    const target = schedule.copy.target;
    return rpo.level === "overdue"
      ? [{ type: "offhost-overdue", schedule: about, target, reason: rpo.reason ?? "no copy landed" }]
      : rpo.level === "ok"
        ? [{ type: "offhost-ok", schedule: about, target }]
        : [];
  });
}

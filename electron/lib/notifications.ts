/**
 * Desktop notifications, as decisions: which events are worth telling the admin, once. The main
 * process shows what `decide` returns with Electron's Notification; nothing here knows Electron.
 *
 * A notice of one kind about one subject is not repeated within `repeatAfterMs`, and is shown
 * again sooner only after its state changed back (a failing schedule that recovered and fails
 * again is news). Each kind can be switched off in the settings.
 */
import { z } from "zod";

import type { SchedulerEvent } from "../../core/app/schedules/scheduler.js";
import type { NotificationSettings } from "../../core/domain/settings.js";

export type NoticeKind = "jobFailed" | "vmOverdue" | "exportVerified";

export interface Notice {
  readonly kind: NoticeKind;
  /** What it is about (a schedule id, an export job id): the unit of de-duplication. */
  readonly subject: string;
  readonly title: string;
  readonly body: string;
}

/** Something happened: a notice to consider, or a state that went back to normal. */
export type Fact =
  | { readonly type: "notice"; readonly notice: Notice }
  | { readonly type: "cleared"; readonly kinds: readonly NoticeKind[]; readonly subject: string };

/** A day: a VM that stays overdue is mentioned again each day, not each minute. */
export const REPEAT_AFTER_MS = 24 * 3600_000;

export class NotificationPolicy {
  readonly #shown = new Map<string, number>();
  readonly #settings: () => NotificationSettings;
  readonly #repeatAfterMs: number;

  constructor(settings: () => NotificationSettings, repeatAfterMs = REPEAT_AFTER_MS) {
    this.#settings = settings;
    this.#repeatAfterMs = repeatAfterMs;
  }

  /** The notice to show for this fact now, or null (switched off, a repeat, or a state change). */
  decide(fact: Fact, now: Date): Notice | null {
    if (fact.type === "cleared") {
      for (const kind of fact.kinds) {
        this.#shown.delete(`${kind}\n${fact.subject}`);
      }
      return null;
    }
    const { notice } = fact;
    if (!this.#settings()[notice.kind]) {
      return null;
    }
    const key = `${notice.kind}\n${notice.subject}`;
    const last = this.#shown.get(key);
    if (last !== undefined && now.getTime() - last < this.#repeatAfterMs) {
      return null;
    }
    this.#shown.set(key, now.getTime());
    return notice;
  }
}

/** The scheduler's events that concern the admin. */
export function factFromSchedulerEvent(event: SchedulerEvent): Fact | null {
  switch (event.type) {
    case "job-failed":
      // One notice per failing streak; the log has every failure.
      return event.repeated
        ? null
        : {
            type: "notice",
            notice: {
              kind: "jobFailed",
              subject: event.schedule.id,
              title: `Snapshot of ${event.schedule.vmName} failed`,
              body: `${event.message} Snapkeep retries with backoff.`,
            },
          };
    case "overdue":
      return {
        type: "notice",
        notice: {
          kind: "vmOverdue",
          subject: event.schedule.id,
          title: `${event.schedule.vmName} is overdue`,
          body: `Its scheduled snapshot of ${new Date(event.since).toLocaleString()} has not been made.`,
        },
      };
    case "copy-failed":
      return {
        type: "notice",
        notice: {
          kind: "jobFailed",
          subject: `copy:${event.schedule.id}`,
          title: `Copy of ${event.schedule.vmName} to ${event.target} failed`,
          body: `${event.message} The next runs try again; snapshots owed a copy stay on the host.`,
        },
      };
    case "copy-damaged":
      return {
        type: "notice",
        notice: {
          kind: "jobFailed",
          subject: `damaged:${event.exportId}`,
          title: `A copy of ${event.schedule.vmName} on ${event.target} is damaged`,
          body: `${event.message}. It is marked damaged and no longer counts as a recovery point; the next copies go on.`,
        },
      };
    case "copy-recovered":
      return { type: "cleared", kinds: ["jobFailed"], subject: `copy:${event.schedule.id}` };
    case "interrupted":
      return {
        type: "notice",
        notice: {
          kind: "jobFailed",
          subject: event.job.scheduleId,
          title: `${event.job.kind === "copy" ? "Off-host copy" : "Snapshot"} of ${event.job.vmName} was interrupted`,
          body: `Snapkeep stopped while it ran; ${event.cleanup}.`,
        },
      };
    case "job-succeeded":
    case "recovered":
      return { type: "cleared", kinds: ["jobFailed", "vmOverdue"], subject: event.schedule.id };
    default:
      return null;
  }
}

/**
 * The API's job events (`{event: "job", data: JobView}`), read defensively: only a finished export
 * or verification matters here, and an export only succeeds once its copy was verified on the
 * target. Anything else, or a shape this version does not know, is no notice.
 */
const finishedCopy = z.object({
  event: z.literal("job"),
  data: z.object({
    id: z.string(),
    kind: z.enum(["export", "verify"]),
    title: z.string(),
    state: z.literal("succeeded"),
  }),
});

export function factFromApiEvent(event: unknown): Fact | null {
  const parsed = finishedCopy.safeParse(event);
  if (!parsed.success) {
    return null;
  }
  const job = parsed.data.data;
  return {
    type: "notice",
    notice: {
      kind: "exportVerified",
      subject: job.id,
      title: "Off-host copy verified",
      body: `${job.title}: its checksums match on the target.`,
    },
  };
}

/**
 * Alerts for the daemon, `serve` and the desktop app alike (issue 17): scheduler events through
 * the policy (domain/alerts.ts) to every channel that wants that kind of alert, held through a
 * channel's quiet hours; monitor pings per schedule (healthchecks.io / Uptime Kuma style); the
 * weekly digest. Open problems and the week's tally live in the settings, so a restart neither
 * alerts a known problem again nor forgets one.
 *
 * Sending never blocks the scheduler: each alert goes out on its own, tried three times; a channel
 * that cannot be reached is logged (its address redacted) and the others still get theirs.
 */
import {
  alertChannelSchema,
  channelAddress,
  decideAlerts,
  digestAlert,
  inQuietHours,
  MAX_HELD_ALERTS,
  mailSubject,
  mailText,
  nextDigestAt,
  ntfyHeaders,
  offHostChecks,
  redactedUrl,
  webhookBody,
  type Alert,
  type AlertChannel,
  type AlertInput,
  type HeldAlert,
} from "../domain/alerts.js";
import { SnapkeepError, describeError } from "../errors.js";
import { sendHttp } from "../infra/http-send.js";
import { sendMail, senderHost } from "../infra/mail-send.js";
import type { SettingsStore } from "../infra/store/store.js";
import type { TimerPort } from "../infra/timers.js";
import type { SchedulerEvent } from "./schedules/scheduler.js";

export interface AlertsDeps {
  readonly store: SettingsStore;
  readonly now: () => Date;
  readonly timers: TimerPort;
  /** A line for the daemon's log: what was sent, what could not be. */
  readonly log: (line: string) => void;
  /** Waits between attempts (tests pass one that does not wait). */
  readonly sleep?: ((ms: number) => Promise<void>) | undefined;
}

const RETRY_MS = [5_000, 30_000];
/** Quiet hours are checked this often for alerts to let go of. */
const QUIET_CHECK_MS = 60_000;
/** Off-host copies' age is checked this often (from the settings only: no target is asked). */
const OFFHOST_CHECK_MS = 5 * 60_000;

export class Alerts {
  readonly #deps: AlertsDeps;
  readonly #pending = new Set<Promise<void>>();
  #timers: { cancel(): void }[] = [];

  constructor(deps: AlertsDeps) {
    this.#deps = deps;
  }

  /** Starts the weekly digest and the quiet-hours release; the tally starts now if it never did. */
  start(): void {
    if (this.#timers.length > 0) {
      return;
    }
    const now = this.#deps.now();
    this.#deps.store.update((s) =>
      s.alertTally === null ? { ...s, alertTally: { since: now.toISOString(), succeeded: 0, failed: 0 } } : s,
    );
    this.#scheduleDigest(now);
    this.#timers.push(this.#deps.timers.every(QUIET_CHECK_MS, () => this.#releaseHeld()));
    this.#timers.push(this.#deps.timers.every(OFFHOST_CHECK_MS, () => this.checkOffHost()));
  }

  /** Raises or closes "offhost-overdue" for every schedule that copies off the host. */
  checkOffHost(): void {
    const { schedules, copyState } = this.#deps.store.read();
    const copying = schedules.flatMap((s) => (s.copy === undefined ? [] : [{ ...s, copy: s.copy }]));
    offHostChecks(copying, copyState, this.#deps.now()).forEach((input) => this.#raise(input));
  }

  /** Stops the timers and waits for alerts on their way. */
  async stop(): Promise<void> {
    this.#timers.forEach((t) => t.cancel());
    this.#timers = [];
    await Promise.allSettled([...this.#pending]);
  }

  /** A scheduler event: pings, the tally, and the alerts it raises. */
  handle(event: SchedulerEvent): void {
    // Called from the scheduler's event path: whatever goes wrong here (a settings file that
    // cannot be written) is logged, and never reaches the scheduler or ends the process.
    try {
      this.#ping(event);
      this.#tally(event);
      const input = alertInput(event);
      if (input !== null) {
        this.#raise(input);
      }
    } catch (error) {
      this.#deps.log(`ALERTS FAILED for a ${event.type} event: ${describeError(error)}`);
    }
  }

  #raise(input: AlertInput): void {
    const now = this.#deps.now();
    let alerts: readonly Alert[] = [];
    this.#deps.store.update((s) => {
      const decided = decideAlerts(input, s.alertOpen, now);
      alerts = decided.alerts;
      return { ...s, alertOpen: { ...decided.open } };
    });
    alerts.forEach((alert) => this.#dispatch(alert));
  }

  /** Sends a test alert to one channel now, whatever its events and quiet hours; throws on failure. */
  async test(name: string): Promise<void> {
    const channel = this.#deps.store.read().alertChannels.find((c) => c.name === name);
    if (channel === undefined) {
      throw new SnapkeepError("NOT_FOUND", `There is no alert channel "${name}".`);
    }
    await deliver(channel, {
      event: "recovered",
      subject: "test",
      title: "Snapkeep test alert",
      body: `If you can read this, alerts from Snapkeep reach you through "${name}".`,
      at: this.#deps.now().toISOString(),
      host: null,
      vm: null,
      schedule: null,
    });
  }

  /** Alerts on their way (for tests and a clean stop). */
  settled(): Promise<void> {
    return Promise.allSettled([...this.#pending]).then(() => undefined);
  }

  #dispatch(alert: Alert): void {
    const minute = minuteOfDay(this.#deps.now());
    for (const channel of this.#deps.store.read().alertChannels) {
      if (!channel.events.includes(alert.event)) {
        continue;
      }
      if (inQuietHours(channel.quiet, minute) && alert.event !== "digest") {
        this.#hold(channel.name, alert);
        continue;
      }
      this.#track(this.#sendWithRetries(channel, alert));
    }
  }

  /**
   * Keeps an alert for after a channel's quiet hours, in the settings: a restart during them still
   * sends it. The oldest go first when there are too many. A settings file that cannot be written
   * costs this alert (logged), never the scheduler that raised it.
   */
  #hold(channel: string, alert: Alert): void {
    try {
      this.#deps.store.update((s) => ({
        ...s,
        alertHeld: [...s.alertHeld, { channel, alert }].slice(-MAX_HELD_ALERTS),
      }));
    } catch (error) {
      this.#deps.log(`ALERT NOT KEPT for ${channel} (quiet hours): ${describeError(error)}`);
    }
  }

  #releaseHeld(): void {
    const minute = minuteOfDay(this.#deps.now());
    const channels = this.#deps.store.read().alertChannels;
    const due = (held: HeldAlert): boolean => {
      const channel = channels.find((c) => c.name === held.channel);
      return channel === undefined || !inQuietHours(channel.quiet, minute);
    };
    let released: HeldAlert[] = [];
    this.#deps.store.update((s) => {
      released = s.alertHeld.filter(due);
      return released.length === 0 ? s : { ...s, alertHeld: s.alertHeld.filter((h) => !due(h)) };
    });
    for (const held of released) {
      // A channel removed meanwhile gets nothing.
      const channel = channels.find((c) => c.name === held.channel);
      if (channel !== undefined) {
        this.#track(this.#sendWithRetries(channel, held.alert));
      }
    }
  }

  async #sendWithRetries(channel: AlertChannel, alert: Alert): Promise<void> {
    const sleep = this.#deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    for (let attempt = 0; ; attempt++) {
      try {
        await deliver(channel, alert);
        this.#deps.log(`alert "${alert.title}" sent to ${channel.name}`);
        return;
      } catch (error) {
        const wait = RETRY_MS[attempt];
        if (wait === undefined) {
          this.#deps.log(
            `ALERT NOT SENT to ${channel.name} (${channelAddress(channel)}): ${describeError(error)}`,
          );
          return;
        }
        await sleep(wait);
      }
    }
  }

  #ping(event: SchedulerEvent): void {
    if (!("schedule" in event) || event.schedule.ping === undefined) {
      return;
    }
    const suffix =
      event.type === "job-started"
        ? "/start"
        : event.type === "job-succeeded"
          ? ""
          : event.type === "job-failed"
            ? "/fail"
            : null;
    if (suffix === null) {
      return;
    }
    const base = event.schedule.ping.replace(/\/+$/, "");
    const label = `The monitor ${redactedUrl(base)}`;
    this.#track(
      sendHttp({ url: `${base}${suffix}`, method: "GET", label }).catch((error: unknown) =>
        this.#deps.log(`PING FAILED for schedule ${event.schedule.id}: ${describeError(error)}`),
      ),
    );
  }

  #tally(event: SchedulerEvent): void {
    if (event.type !== "job-succeeded" && event.type !== "job-failed") {
      return;
    }
    this.#deps.store.update((s) => {
      const tally = s.alertTally ?? { since: this.#deps.now().toISOString(), succeeded: 0, failed: 0 };
      return {
        ...s,
        alertTally:
          event.type === "job-succeeded"
            ? { ...tally, succeeded: tally.succeeded + 1 }
            : { ...tally, failed: tally.failed + 1 },
      };
    });
  }

  #scheduleDigest(after: Date): void {
    const at = nextDigestAt(after);
    this.#timers.push(
      this.#deps.timers.at(at, () => {
        const now = this.#deps.now();
        const week = this.#deps.store.read();
        this.#deps.store.update((s) => ({
          ...s,
          alertTally: { since: now.toISOString(), succeeded: 0, failed: 0 },
        }));
        this.#dispatch(digestAlert(week.alertOpen, week.alertTally ?? { succeeded: 0, failed: 0 }, now));
        this.#scheduleDigest(at);
      }),
    );
  }

  #track(work: Promise<void>): void {
    this.#pending.add(work);
    void work.finally(() => this.#pending.delete(work));
  }
}

/** Adds an alert channel (a new name) after checking it against the settings' schema. */
export function addAlertChannel(store: SettingsStore, channel: AlertChannel): AlertChannel {
  const parsed = alertChannelSchema.safeParse(channel);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SnapkeepError(
      "INVALID_INPUT",
      `The alert channel's ${issue?.path.join(".") || "settings"} is not valid: ${issue?.message ?? "?"}.`,
    );
  }
  store.update((s) => {
    if (s.alertChannels.some((c) => c.name === channel.name)) {
      throw new SnapkeepError("ALREADY_EXISTS", `There is an alert channel "${channel.name}" already.`);
    }
    return { ...s, alertChannels: [...s.alertChannels, parsed.data] };
  });
  return parsed.data;
}

/** The channels as they may be shown: addresses reduced to their origin (they carry tokens). */
export function listAlertChannels(store: SettingsStore): ListedChannel[] {
  return store.read().alertChannels.map((c) => {
    const shown = { name: c.name, kind: c.kind, events: c.events, address: channelAddress(c) };
    return c.quiet === undefined ? shown : { ...shown, quiet: c.quiet };
  });
}

/** A channel as listed: no token, no password, no certificate. */
export interface ListedChannel {
  readonly name: string;
  readonly kind: AlertChannel["kind"];
  readonly events: readonly string[];
  readonly address: string;
  readonly quiet?: { readonly from: string; readonly to: string };
}

export function removeAlertChannel(store: SettingsStore, name: string): void {
  store.update((s) => {
    if (!s.alertChannels.some((c) => c.name === name)) {
      throw new SnapkeepError("NOT_FOUND", `There is no alert channel "${name}".`);
    }
    return { ...s, alertChannels: s.alertChannels.filter((c) => c.name !== name) };
  });
}

/** One alert to one channel. */
export async function deliver(channel: AlertChannel, alert: Alert): Promise<void> {
  if (channel.kind === "email") {
    const server = new URL(channel.smtp);
    await sendMail({
      smtp: channel.smtp,
      starttls: channel.starttls,
      password: channel.password,
      ca: channel.ca,
      from: channel.from,
      to: channel.to,
      subject: mailSubject(alert),
      text: mailText(alert, senderHost()),
      label: `The mail server ${server.protocol}//${server.host} of "${channel.name}"`,
    });
    return;
  }
  const label = `The ${channel.kind} address ${redactedUrl(channel.url)} of "${channel.name}"`;
  if (channel.kind === "webhook") {
    await sendHttp({
      url: channel.url,
      method: "POST",
      body: webhookBody(alert),
      headers: { "Content-Type": "application/json" },
      label,
    });
    return;
  }
  await sendHttp({ url: channel.url, method: "POST", body: alert.body, headers: ntfyHeaders(alert), label });
}

function minuteOfDay(now: Date): number {
  return now.getHours() * 60 + now.getMinutes();
}

/** The scheduler events the policy reads; the rest (starts, ends, copies started) raise nothing. */
function alertInput(event: SchedulerEvent): AlertInput | null {
  switch (event.type) {
    case "job-failed":
    case "prune-failed":
    case "job-succeeded":
    case "overdue":
    case "recovered":
    case "copy-failed":
    case "copy-recovered":
    case "copy-damaged":
    case "drill-failed":
    case "drill-passed":
    case "scheduler-error":
      return event;
    default:
      return null;
  }
}

/**
 * `snapkeep notify add|list|remove|test` (alert channels for headless use, app/alerts.ts) and
 * `snapkeep schedule ping ID URL|--off` (a monitor pinged at each run). The daemon, `serve` and
 * the desktop app send the alerts; these commands only change the settings, or send a test.
 */
import { readFileSync } from "node:fs";

import type { Command } from "commander";

import { addAlertChannel, Alerts, listAlertChannels, removeAlertChannel } from "../app/alerts.js";
import {
  ALERT_EVENTS,
  channelAddress,
  redactedUrl,
  type AlertChannel,
  type AlertEvent,
} from "../domain/alerts.js";
import { SnapkeepError, describeError } from "../errors.js";
import { wallClockTimers } from "../infra/timers.js";
import type { CliContext, CliIo } from "./main.js";

interface AddOptions {
  webhook?: string;
  ntfy?: string;
  email?: string;
  smtp?: string;
  starttls?: boolean;
  from?: string;
  passwordFile?: string;
  smtpCa?: string;
  events?: string;
  quiet?: string;
}

export function registerNotifyCommands(
  program: Command,
  io: CliIo,
  context: () => CliContext,
  print: (value: unknown, json: boolean | undefined, human: () => string) => void,
): void {
  const notify = program
    .command("notify")
    .description("alerts for headless use: webhooks, ntfy and mail, sent by the daemon, serve and the app");
  notify
    .command("add <name>")
    .description("add an alert channel (--webhook URL, --ntfy URL/TOPIC, or --email ADDR --smtp URL)")
    .option("--webhook <url>", "POST a JSON object (version 1, see the README) to this address")
    .option("--ntfy <url>", "publish to this ntfy topic, e.g. https://ntfy.sh/my-homelab")
    .option("--email <addr>", "mail these addresses (comma-separated) through --smtp")
    .option("--smtp <url>", "the mail server: smtp://[user@]host[:port] or smtps://[user@]host[:port]")
    .option("--starttls", "smtp:// only: send only if the server upgrades to TLS")
    .option("--from <addr>", "the sender (default snapkeep@ this machine's name)")
    .option(
      "--password-file <file>",
      "the SMTP password, first line of this file (or SNAPKEEP_SMTP_PASSWORD)",
    )
    .option("--smtp-ca <file>", "trust this PEM certificate for the mail server (a self-signed relay)")
    .option("--events <list>", `which: ${ALERT_EVENTS.join(",")} (default: all)`)
    .option("--quiet <HH:MM-HH:MM>", "hold alerts in these hours (local time) and send them after")
    .action((name: string, opts: AddOptions) => {
      const channel = addAlertChannel(context().store, channelOf(name, opts, io.env));
      io.out(
        `Added alert channel ${channel.name}: ${channel.kind} to ${channelAddress(channel)}, for ${channel.events.join(", ")}${channel.quiet === undefined ? "" : `, quiet ${channel.quiet.from}-${channel.quiet.to}`}.\nTry it: snapkeep notify test ${channel.name}\n`,
      );
    });
  notify
    .command("list")
    .description("the alert channels (addresses shown up to their host: they carry tokens)")
    .option("--json", "machine-readable output")
    .action((opts: { json?: boolean }) => {
      const channels = listAlertChannels(context().store);
      print(channels, opts.json, () =>
        channels.length === 0
          ? "No alert channels. Add one: snapkeep notify add NAME --ntfy https://ntfy.sh/TOPIC\n"
          : channels
              .map(
                (c) =>
                  `${c.name}\t${c.kind}\t${c.address}\t${c.events.join(",")}${c.quiet === undefined ? "" : `\tquiet ${c.quiet.from}-${c.quiet.to}`}\n`,
              )
              .join(""),
      );
    });
  notify
    .command("remove <name>")
    .description("remove an alert channel")
    .action((name: string) => {
      removeAlertChannel(context().store, name);
      io.out(`Removed alert channel ${name}.\n`);
    });
  notify
    .command("test <name>")
    .description("send a test alert to one channel now")
    .action(async (name: string) => {
      const alerts = new Alerts({
        store: context().store,
        now: () => new Date(),
        timers: wallClockTimers,
        log: () => undefined,
      });
      await alerts.test(name);
      io.out(`Sent a test alert to ${name}.\n`);
    });
}

function channelOf(name: string, opts: AddOptions, env: NodeJS.ProcessEnv): AlertChannel {
  const given = [opts.webhook, opts.ntfy, opts.email].filter((o) => o !== undefined);
  if (given.length !== 1) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "Give one of --webhook URL, --ntfy URL or --email ADDR --smtp URL.",
    );
  }
  const events = (opts.events ?? ALERT_EVENTS.join(",")).split(",").map((e) => e.trim());
  const unknown = events.filter((e) => !(ALERT_EVENTS as readonly string[]).includes(e));
  if (unknown.length > 0) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `${unknown.join(", ")} ${unknown.length === 1 ? "is not an alert event" : "are not alert events"}: use ${ALERT_EVENTS.join(", ")}.`,
    );
  }
  const quiet = opts.quiet === undefined ? undefined : /^(\d\d:\d\d)-(\d\d:\d\d)$/.exec(opts.quiet);
  if (quiet === null) {
    throw new SnapkeepError("INVALID_INPUT", `--quiet takes HH:MM-HH:MM, e.g. 22:00-07:00.`);
  }
  const common = {
    name,
    events: [...new Set(events)] as AlertEvent[],
    ...(quiet === undefined ? {} : { quiet: { from: quiet[1] ?? "", to: quiet[2] ?? "" } }),
  };
  if (opts.email !== undefined) {
    return { ...common, ...mailChannel(opts.email, opts, env) };
  }
  return opts.webhook !== undefined
    ? { ...common, kind: "webhook", url: opts.webhook }
    : { ...common, kind: "ntfy", url: opts.ntfy ?? "" };
}

/**
 * A mail channel from the options. A password written into the address (smtp://user:pw@host) is
 * taken out of it and kept apart, like one from --password-file or SNAPKEEP_SMTP_PASSWORD, so the
 * address can be listed; the settings file that keeps it is 0600.
 */
function mailChannel(
  email: string,
  opts: AddOptions,
  env: NodeJS.ProcessEnv,
): Omit<Extract<AlertChannel, { kind: "email" }>, "name" | "events" | "quiet"> {
  if (opts.smtp === undefined) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "--email needs --smtp smtp://[user@]host[:port], the mail server.",
    );
  }
  let server: URL;
  try {
    server = new URL(opts.smtp);
  } catch {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `--smtp takes smtp://[user@]host[:port] or smtps://…, not "${opts.smtp}".`,
    );
  }
  const inAddress = server.password === "" ? undefined : decodeURIComponent(server.password);
  server.password = "";
  if (opts.starttls === true && server.protocol !== "smtp:") {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "--starttls is for smtp:// servers; smtps:// is TLS from the start.",
    );
  }
  const password =
    inAddress ??
    (opts.passwordFile === undefined ? undefined : firstLine(opts.passwordFile)) ??
    (env["SNAPKEEP_SMTP_PASSWORD"] || undefined);
  if (server.username !== "" && password === undefined) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `The mail server's user ${decodeURIComponent(server.username)} needs a password: --password-file FILE or SNAPKEEP_SMTP_PASSWORD.`,
    );
  }
  return {
    kind: "email",
    to: email.split(",").map((a) => a.trim()),
    smtp: server.href.replace(/\/$/, ""),
    starttls: opts.starttls === true,
    ...(opts.from === undefined ? {} : { from: opts.from }),
    ...(password === undefined ? {} : { password }),
    ...(opts.smtpCa === undefined ? {} : { ca: certificateFile(opts.smtpCa) }),
  };
}

function firstLine(file: string): string {
  const line = readText(file, "--password-file").split(/\r?\n/)[0] ?? "";
  if (line === "") {
    throw new SnapkeepError("INVALID_INPUT", `${file} is empty: put the SMTP password on its first line.`);
  }
  return line;
}

function certificateFile(file: string): string {
  const pem = readText(file, "--smtp-ca");
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----).`,
    );
  }
  return pem;
}

function readText(file: string, option: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    throw new SnapkeepError("INVALID_INPUT", `${option} ${file} cannot be read: ${describeError(error)}.`);
  }
}

/** `schedule ping ID URL` / `schedule ping ID --off`. */
export function registerPingCommand(schedule: Command, io: CliIo, context: () => CliContext): void {
  schedule
    .command("ping <id> [url]")
    .description("ping a monitor (healthchecks.io, Uptime Kuma) at each run: URL/start, URL, URL/fail")
    .option("--off", "stop pinging")
    .action((id: string, url: string | undefined, opts: { off?: boolean }) => {
      if ((url === undefined) !== (opts.off === true)) {
        throw new SnapkeepError("INVALID_INPUT", "Give the monitor's address, or --off.");
      }
      const updated = context().schedules.setPing(id, url ?? null);
      io.out(
        updated.ping === undefined
          ? `Schedule ${id} pings no monitor.\n`
          : `Schedule ${id} pings ${redactedUrl(updated.ping)} at each run's start, success and failure.\n`,
      );
    });
}

/**
 * Alerts for headless use against real things: a libvirt VM whose disk cannot be snapshotted
 * (another process holds its image's write lock), the real scheduler and Schedules on virtual time,
 * real HTTP receivers on loopback for a webhook, an ntfy topic and a monitor's pings, and a real
 * SMTP server that takes a login only after STARTTLS. A failing streak is one alert per channel,
 * its recovery one more, and the weekly digest comes on time.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Alerts } from "../../core/app/alerts.js";
import { Scheduler, type SchedulerEvent } from "../../core/app/schedules/scheduler.js";
import { Schedules } from "../../core/app/schedules/schedules.js";
import { Journal } from "../../core/infra/journal.js";
import { makeApp } from "../support/app.js";
import { TestVms, uniqueSuffix } from "../support/libvirt.js";
import { VirtualClock } from "../support/virtual-clock.js";
import { startSmtp, type TestSmtp } from "../support/smtp.js";
import { waitFor } from "../support/wait.js";

interface Received {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

describe("alerts from a failing schedule", () => {
  const vms = new TestVms();
  const name = `sk-alerts-${uniqueSuffix()}`;
  const received: Received[] = [];
  const events: SchedulerEvent[] = [];
  const log: string[] = [];
  let ctx: ReturnType<typeof makeApp>;
  let server: Server;
  let base = "";
  let image = "";
  let holder: ChildProcess | undefined;
  let smtp: TestSmtp;
  const SMTP_PASSWORD = "mail-pw-s3cret";

  beforeAll(async () => {
    ctx = makeApp();
    ctx.app.hosts.addLocal("local");
    const vm = await vms.create({ name, running: false, disks: [{ target: "vda", sizeMiB: 8 }] });
    image = vm.diskPaths[0] ?? "";
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        received.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, body });
        res.writeHead(200).end("ok");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    smtp = await startSmtp({ user: "snapkeep", password: SMTP_PASSWORD });
  }, 120_000);

  afterAll(async () => {
    holder?.kill("SIGKILL");
    await new Promise((resolve) => server?.close(resolve));
    await smtp?.close();
    await ctx?.dispose();
    await vms.dispose();
  });

  it("one alert per channel for the streak, one on recovery, pings each run, and the digest on Monday", async () => {
    // Monday 08:32 local time: a run at 08:40, retries after 1 and 2 minutes, the digest at 09:00.
    const start = new Date(2026, 11, 7, 8, 32, 0);
    const clock = new VirtualClock(start);
    const now = (): Date => clock.now;
    const schedules = new Schedules(ctx.app, now);
    const schedule = await schedules.add({
      host: "local",
      vm: name,
      when: { every: "cron", cron: "*/10 * * * *" },
      retention: { keepLast: 2 },
    });
    schedules.setPing(schedule.id, `${base}/ping/${schedule.id}`);
    ctx.store.update((s) => ({
      ...s,
      alertChannels: [
        {
          name: "hook",
          kind: "webhook",
          url: `${base}/hook?token=s3cret`,
          events: ["failed", "recovered", "digest"],
        },
        {
          name: "phone",
          kind: "ntfy",
          url: `${base}/ntfy/homelab`,
          events: ["failed", "recovered", "digest"],
        },
        {
          name: "mail",
          kind: "email",
          to: ["admin@example.org", "oncall@example.org"],
          smtp: `smtp://snapkeep@127.0.0.1:${smtp.port}`,
          starttls: true,
          password: SMTP_PASSWORD,
          ca: smtp.cert,
          events: ["failed", "recovered", "digest"],
        },
        // Quiet all day: held, so it gets nothing while the test runs.
        {
          name: "night",
          kind: "webhook",
          url: `${base}/night`,
          events: ["failed"],
          quiet: { from: "00:00", to: "23:59" },
        },
      ],
    }));
    const alerts = new Alerts({
      store: ctx.store,
      now,
      timers: clock,
      log: (line) => log.push(line),
      sleep: async () => undefined,
    });
    const scheduler = new Scheduler({
      work: schedules,
      journal: new Journal(ctx.home),
      now,
      timers: clock,
      onEvent: (event) => {
        events.push(event);
        console.log("EVENT", clock.now.toISOString(), event.type, "message" in event ? event.message : "");
        alerts.handle(event);
      },
    });
    const ended = (type: SchedulerEvent["type"], count: number) =>
      waitFor(() => events.filter((e) => e.type === type).length >= count, 120_000, `${count} × ${type}`);

    // Another process holds the image open for writing: QEMU's lock refuses the snapshot.
    holder = spawn("qemu-io", ["-f", "qcow2", image], { stdio: ["pipe", "ignore", "ignore"] });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await scheduler.start();
    alerts.start();
    await clock.advance(8 * 60_000 + 30_000); // 08:40:30: the run fails
    await ended("job-failed", 1);
    await clock.advance(90_000); // the retry a minute later (the next check) fails too
    await ended("job-failed", 2);
    await alerts.settled();
    expect(events.filter((e) => e.type === "job-failed").at(-1)).toMatchObject({
      message: expect.stringMatching(/lock/i),
    });
    const failedPosts = received.filter((r) => r.method === "POST");
    expect(failedPosts.map((r) => r.path).sort()).toEqual(["/hook?token=s3cret", "/ntfy/homelab"]);

    holder.kill("SIGKILL");
    holder = undefined;
    await clock.advance(150_000); // the next retry, two minutes later, succeeds
    await ended("job-succeeded", 1);
    await alerts.settled();
    const posts = received.filter((r) => r.method === "POST");
    expect(posts).toHaveLength(4);
    const hook = posts
      .filter((r) => r.path.startsWith("/hook"))
      .map((r) => JSON.parse(r.body) as Record<string, unknown>);
    expect(hook.map((h) => h["event"])).toEqual(["failed", "recovered"]);
    expect(hook[0]).toMatchObject({
      version: 1,
      source: "snapkeep",
      subject: `schedule:${schedule.id}`,
      title: `Snapshot of local/${name} failed`,
      host: "local",
      vm: name,
      schedule: schedule.id,
    });
    const ntfy = posts.filter((r) => r.path === "/ntfy/homelab");
    expect(ntfy.map((r) => [r.headers["title"], r.headers["priority"], r.headers["tags"]])).toEqual([
      [`Snapshot of local/${name} failed`, "4", "warning,snapkeep"],
      [`Snapshots of local/${name} work again`, "3", "white_check_mark,snapkeep"],
    ]);
    expect(ntfy[0]?.body).toMatch(/lock/i);
    // Mail: the same two, over STARTTLS after a login, to both recipients, subjects that sort.
    expect(smtp.mails.map((m) => m.headers["subject"])).toEqual([
      `Snapkeep FAILED: Snapshot of local/${name} failed`,
      `Snapkeep RECOVERED: Snapshots of local/${name} work again`,
    ]);
    for (const mail of smtp.mails) {
      expect(mail).toMatchObject({
        secure: true,
        user: "snapkeep",
        to: ["admin@example.org", "oncall@example.org"],
      });
      expect(mail.from).toMatch(/^snapkeep@/);
    }
    expect(smtp.mails[0]?.text).toMatch(/lock[\s\S]*Host: local\r?\nVM: sk-alerts-/i);
    // The monitor: /start and /fail twice, then /start and the success.
    const pings = received
      .filter((r) => r.path.startsWith("/ping/"))
      .map((r) => r.path.slice(`/ping/${schedule.id}`.length));
    expect(pings).toEqual(["/start", "/fail", "/start", "/fail", "/start", ""]);

    // Monday 09:00: the weekly digest, all green again, with the week's counts.
    ctx.store.update((s) => ({ ...s, schedules: s.schedules.map((x) => ({ ...x, enabled: false })) }));
    await clock.advance(20 * 60_000);
    await alerts.settled();
    const digest = received
      .filter((r) => r.path.startsWith("/hook"))
      .map((r) => JSON.parse(r.body) as Record<string, unknown>)
      .filter((h) => h["event"] === "digest");
    expect(digest).toHaveLength(1);
    expect(digest[0]?.["title"]).toBe("Snapkeep weekly: all green");
    expect(digest[0]?.["body"]).toMatch(/^1 scheduled job succeeded and 2 failed this week\./);
    expect(smtp.mails.map((m) => m.headers["subject"]).at(-1)).toBe("Snapkeep WEEKLY: all green");
    expect(smtp.mails).toHaveLength(3);
    expect(received.some((r) => r.path === "/night")).toBe(false);
    // Tokens never reach the log.
    expect(log.join("\n")).not.toMatch(/s3cret/);
    expect(log.join("\n")).toMatch(/sent to mail/);
    await scheduler.stop();
    await alerts.stop();

    // Held through its quiet hours, the failure is kept in the settings: after a restart, a new
    // Alerts sends it once the quiet hours end, and only then.
    expect(ctx.store.read().alertHeld.map((h) => [h.channel, h.alert.title])).toEqual([
      ["night", `Snapshot of local/${name} failed`],
    ]);
    const restarted = new Alerts({
      store: ctx.store,
      now,
      timers: clock,
      log: () => undefined,
      sleep: async () => undefined,
    });
    restarted.start();
    await clock.advance(60_000);
    await restarted.settled();
    expect(received.filter((r) => r.path === "/night")).toHaveLength(0);
    ctx.store.update((s) => ({
      ...s,
      alertChannels: s.alertChannels.map(({ quiet: _quiet, ...c }) => c),
    }));
    await clock.advance(60_000);
    await restarted.settled();
    expect(
      received.filter((r) => r.path === "/night").map((r) => (JSON.parse(r.body) as { event: string }).event),
    ).toEqual(["failed"]);
    expect(ctx.store.read().alertHeld).toEqual([]);
    await restarted.stop();
  }, 300_000);

  it("notify test sends now; an unreachable channel is a sentence without its token", async () => {
    const before = received.length;
    ctx.store.update((s) => ({
      ...s,
      alertChannels: [
        { name: "hook", kind: "webhook", url: `${base}/hook?token=s3cret`, events: ["failed"] },
        // Nothing listens on port 9 (discard) of loopback here: the connection is refused.
        { name: "gone", kind: "ntfy", url: "http://127.0.0.1:9/topic-s3cret", events: ["failed"] },
      ],
    }));
    const alerts = new Alerts({
      store: ctx.store,
      now: () => new Date(),
      timers: new VirtualClock(new Date()),
      log: () => undefined,
    });
    await alerts.test("hook");
    expect(received.slice(before).map((r) => JSON.parse(r.body) as Record<string, unknown>)).toMatchObject([
      { version: 1, event: "recovered", subject: "test", title: "Snapkeep test alert" },
    ]);
    const error: unknown = await alerts.test("gone").catch((e: unknown) => e);
    expect(String(error)).toMatch(/The ntfy address http:\/\/127.0.0.1:9\/… of "gone" could not be reached/);
    expect(String(error)).not.toMatch(/s3cret/);
    await expect(alerts.test("nope")).rejects.toThrow(/There is no alert channel "nope"/);
  });

  it("mail is sent only over TLS to a trusted server with the right login, and says why not without the password", async () => {
    const plain = await startSmtp({ user: "snapkeep", password: SMTP_PASSWORD, noStarttls: true });
    const mail = {
      kind: "email" as const,
      to: ["admin@example.org"],
      starttls: true,
      events: ["failed" as const],
    };
    ctx.store.update((s) => ({
      ...s,
      alertChannels: [
        {
          ...mail,
          name: "good",
          smtp: `smtp://snapkeep@127.0.0.1:${smtp.port}`,
          password: SMTP_PASSWORD,
          ca: smtp.cert,
        },
        {
          ...mail,
          name: "wrong-pw",
          smtp: `smtp://snapkeep@127.0.0.1:${smtp.port}`,
          password: "guess-s3cret",
          ca: smtp.cert,
        },
        // The system's CAs do not know the relay's self-signed certificate.
        {
          ...mail,
          name: "untrusted",
          smtp: `smtp://snapkeep@127.0.0.1:${smtp.port}`,
          password: SMTP_PASSWORD,
        },
        // A relay that cannot encrypt: the password must not go out in clear.
        { ...mail, name: "clear", smtp: `smtp://snapkeep@127.0.0.1:${plain.port}`, password: SMTP_PASSWORD },
        // Without --starttls too: a login is never sent in clear.
        {
          ...mail,
          name: "clear-anyway",
          starttls: false,
          smtp: `smtp://snapkeep@127.0.0.1:${plain.port}`,
          password: SMTP_PASSWORD,
        },
      ],
    }));
    const alerts = new Alerts({
      store: ctx.store,
      now: () => new Date(),
      timers: new VirtualClock(new Date()),
      log: () => undefined,
    });
    try {
      const before = smtp.mails.length;
      await alerts.test("good");
      expect(smtp.mails.slice(before)).toMatchObject([
        { secure: true, user: "snapkeep", headers: { subject: "Snapkeep RECOVERED: Snapkeep test alert" } },
      ]);
      const failure = async (channel: string): Promise<string> =>
        String(
          await alerts.test(channel).then(
            () => "sent",
            (e: unknown) => e,
          ),
        );
      const wrong = await failure("wrong-pw");
      expect(wrong).toMatch(
        /The mail server smtp:\/\/127.0.0.1:\d+ of "wrong-pw" did not take the mail: .*Invalid/,
      );
      expect(await failure("untrusted")).toMatch(
        /of "untrusted" did not take the mail: .*(self-signed|certificate)/i,
      );
      expect(await failure("clear")).toMatch(/of "clear" did not take the mail: .*STARTTLS/i);
      expect(await failure("clear-anyway")).toMatch(/of "clear-anyway" did not take the mail: .*STARTTLS/i);
      expect(plain.mails).toHaveLength(0);
      for (const said of [wrong, await failure("untrusted"), await failure("clear")]) {
        expect(said).not.toMatch(/s3cret/);
      }
      expect(smtp.mails.length).toBe(before + 1);
    } finally {
      await plain.close();
    }
  });

  it("a copy off the host that is too old is one alert, and one more when a copy lands again", async () => {
    const before = received.length;
    const start = new Date(2026, 11, 9, 12, 0, 0);
    const clock = new VirtualClock(start);
    const day = 24 * 3600_000;
    const landedAt = (ms: number) => ({ tag: "snapkeep:s", createdAt: new Date(ms).toISOString() });
    ctx.store.update((s) => ({
      ...s,
      alertOpen: {},
      alertChannels: [
        { name: "hook", kind: "webhook", url: `${base}/offhost`, events: ["offhost-overdue", "recovered"] },
      ],
      schedules: [
        {
          ...(s.schedules[0] ?? expect.fail("the first test made a schedule")),
          id: "offhost1",
          when: { every: "daily", at: "02:00" },
          copy: {
            target: "nas",
            cadence: { every: "day" },
            retention: { keepLast: 7 },
            holdLocalUntilCopied: true,
          },
        },
      ],
      copyState: {
        offhost1: {
          lastChosen: null,
          runsSinceChosen: 0,
          // Three days old for a daily copy: overdue.
          newestLanded: landedAt(start.getTime() - 3 * day),
          owedSince: null,
          lastAttempt: null,
        },
      },
    }));
    const alerts = new Alerts({
      store: ctx.store,
      now: () => clock.now,
      timers: clock,
      log: () => undefined,
    });
    alerts.start();
    await clock.advance(5 * 60_000);
    await clock.advance(5 * 60_000);
    await alerts.settled();
    const got = () =>
      received
        .slice(before)
        .map((r) => JSON.parse(r.body) as { event: string; subject: string; body: string });
    expect(got().map((h) => [h.event, h.subject])).toEqual([["offhost-overdue", "offhost:offhost1"]]);
    expect(got()[0]?.body).toMatch(/nas is older than the schedule promises/);
    ctx.store.update((s) => ({
      ...s,
      copyState: {
        offhost1: {
          ...(s.copyState["offhost1"] ?? expect.fail("kept")),
          newestLanded: landedAt(clock.now.getTime()),
        },
      },
    }));
    await clock.advance(5 * 60_000);
    await clock.advance(5 * 60_000);
    await alerts.settled();
    expect(got().map((h) => h.event)).toEqual(["offhost-overdue", "recovered"]);
    await alerts.stop();
  });
});

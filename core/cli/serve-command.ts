/**
 * `snapkeep serve`: the UI in a browser (server/serve.ts), the schedules run here unless asked
 * not to, /metrics; on loopback with the token in the printed URL, on any other address
 * (`--listen ADDR:PORT`) over HTTPS with the admin password set by `snapkeep serve passwd`.
 */
import { hostname } from "node:os";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";

import type { Command } from "commander";

import { SnapkeepError } from "../errors.js";
import type { CliContext, CliIo } from "./main.js";
import { numberOption } from "./options.js";
import { logMessage } from "./schedule-commands.js";

interface ServeOpts {
  port: number;
  host: string;
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
  scheduler: boolean;
  json?: boolean;
  tokenFile?: string;
}

export function registerServeCommand(program: Command, io: CliIo, context: () => CliContext): void {
  const serveCommand = program
    .command("serve")
    .description(
      "the UI in a browser: on 127.0.0.1 with a token in the printed URL, or --listen with TLS and a login",
    )
    .option("--port <n>", "port (0: any free one)", numberOption("--port", { min: 0, max: 65535 }), 8484)
    .option("--host <address>", "address to listen on", "127.0.0.1")
    .option("--listen <addr:port>", "address and port; one other computers reach needs `serve passwd` first")
    .option("--tls-cert <file>", "with --listen: your certificate (PEM) instead of a self-signed one")
    .option("--tls-key <file>", "with --tls-cert: its private key (PEM)")
    .option("--no-scheduler", "do not run the schedules here (a daemon or the desktop app runs them)")
    .option("--json", "log one JSON object per line")
    .option("--token-file <file>", "use the token in this file (made, 0600, if missing) instead of a new one")
    .action(async (opts: ServeOpts) => {
      const core = context();
      const [host, port] = opts.listen === undefined ? [opts.host, opts.port] : parseListen(opts.listen);
      // Loaded here only: the API's schemas and the WebSocket server are a tenth of a second of
      // start-up that no other command needs.
      const [{ Api }, { serve, isLoopbackHost }, { metricsText }, { tokenFromFile }] = await Promise.all([
        import("../api/api.js"),
        import("../server/serve.js"),
        import("../api/metrics.js"),
        import("../infra/token-file.js"),
      ]);
      const login = isLoopbackHost(host) ? undefined : await loginFor(core.home, host, opts);
      const api = new Api(core);
      const serving = await serve(api, {
        port,
        host,
        ...(opts.tokenFile === undefined ? {} : { token: tokenFromFile(opts.tokenFile) }),
        ...(login === undefined ? {} : { login }),
        metrics: () => metricsText({ ...core, now: () => new Date() }),
      });
      const json = opts.json === true;
      io.out(
        json
          ? logMessage(servingLine(serving.url, login?.fingerprint, opts.tokenFile), true, new Date())
          : servingText(serving.url, host, serving.port, login?.fingerprint),
      );
      const scheduling = opts.scheduler ? await hostSchedules(core, io, api, json) : null;
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      await serving.close();
      await scheduling?.stop();
      await api.dispose();
    });
  serveCommand
    .command("passwd")
    .description(
      "set the admin password of the web UI (asked twice on a terminal, else the first line of stdin)",
    )
    .action(async () => {
      const { setAdminPassword, MIN_PASSWORD_CHARS } = await import("../infra/web-credentials.js");
      const password = await readNewPassword(MIN_PASSWORD_CHARS);
      await setAdminPassword(context().home, password);
      io.out("The admin password is set. A running `snapkeep serve --listen` uses it from its next start.\n");
    });
}

/** The JSON log's line: the address, and the certificate's fingerprint with a login. */
function servingLine(url: string, fingerprint: string | undefined, tokenFile: string | undefined): string {
  if (tokenFile !== undefined) {
    // A lasting token stays out of logs (a service's land in the journal): the file holds it.
    return `Snapkeep is at ${url.replace(/#token=.*$/, "")} (its token is in ${tokenFile})`;
  }
  return fingerprint === undefined
    ? `Snapkeep is at ${url}`
    : `Snapkeep is at ${url} (certificate SHA-256 ${fingerprint})`;
}

/** What a person reads when serve starts: where, and with a login what to compare first. */
function servingText(url: string, host: string, port: number, fingerprint: string | undefined): string {
  if (fingerprint === undefined) {
    return `Snapkeep is at ${url}\nOpen it in a browser on this computer; Ctrl+C stops it.\n`;
  }
  const everywhere =
    host === "0.0.0.0" || host === "::"
      ? `It listens on every address of this computer, e.g. https://${hostname()}:${port}/\n`
      : "";
  return `Snapkeep is at ${url}\n${everywhere}Its TLS certificate's SHA-256 fingerprint is\n  ${fingerprint}\nCompare it with what the browser shows before you sign in with the admin password. Ctrl+C stops it.\n`;
}

/** ADDR:PORT, [IPv6]:PORT. */
function parseListen(text: string): [string, number] {
  const match = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:\s]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (match?.[1] === undefined || !(port >= 0 && port <= 65535)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `--listen takes ADDRESS:PORT, e.g. 0.0.0.0:8443 or [::]:8443, not "${text}".`,
    );
  }
  return [match[1], port];
}

async function loginFor(home: string, host: string, opts: ServeOpts) {
  const { readAdminPassword, passwordMatches, providedCertificate, ownCertificate } =
    await import("../infra/web-credentials.js");
  const verifier = readAdminPassword(home);
  if (verifier === null) {
    const tunnelPort = opts.listen === undefined && opts.port !== 0 ? opts.port : 8484;
    throw new SnapkeepError(
      "INVALID_INPUT",
      `The UI on ${host} would be reachable from other computers, so it needs a login: set the admin password first with \`snapkeep serve passwd\`, then start it again (it serves HTTPS, with a certificate of its own or --tls-cert and --tls-key).`,
      {
        hint: `Or keep it on this computer and reach it through an SSH tunnel: start it with --port ${tunnelPort} and no --host, run \`ssh -L ${tunnelPort}:127.0.0.1:${tunnelPort} user@host\` on the other computer, and open the printed address there.`,
      },
    );
  }
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "Give --tls-cert and --tls-key together (or neither, for a self-signed one).",
    );
  }
  const certificate =
    opts.tlsCert !== undefined && opts.tlsKey !== undefined
      ? providedCertificate(opts.tlsCert, opts.tlsKey)
      : await ownCertificate(home, host, new Date());
  return {
    tls: { cert: certificate.cert, key: certificate.key },
    fingerprint: certificate.fingerprint,
    verify: (password: string) => passwordMatches(verifier, password),
  };
}

/** A new password: typed twice without echo on a terminal, or the first line of piped input. */
async function readNewPassword(minChars: number): Promise<string> {
  if (process.stdin.isTTY !== true) {
    let text = "";
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      text += chunk.toString("utf8");
    }
    return text.split(/\r?\n/)[0] ?? "";
  }
  const first = await askHidden(`New admin password (at least ${minChars} characters): `);
  const again = await askHidden("The same again: ");
  if (first !== again) {
    throw new SnapkeepError("INVALID_INPUT", "The two passwords differ; nothing was changed.");
  }
  return first;
}

function askHidden(prompt: string): Promise<string> {
  process.stdout.write(prompt);
  // Typed characters are not echoed: readline writes to a sink.
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  const rl = createInterface({ input: process.stdin, output: sink, terminal: true });
  return new Promise((resolve) =>
    rl.question("", (answer) => {
      rl.close();
      process.stdout.write("\n");
      resolve(answer);
    }),
  );
}

/**
 * `snapkeep serve` runs the schedules too, so schedules made in the browser fire without a
 * separate daemon: the same lock as the daemon and the desktop app, so only one of them runs them.
 * While another holds it, this one says who and takes over once that one stops.
 */
async function hostSchedules(
  core: CliContext,
  io: CliIo,
  api: { notifyChanged(host: string): void },
  json: boolean,
): Promise<{ stop(): Promise<void> }> {
  const [
    { openScheduler },
    { SchedulingHost },
    { wallClockTimers },
    { schedulerOwner },
    { logLine },
    { Alerts },
  ] = await Promise.all([
    import("../app/schedules/owned.js"),
    import("../app/schedules/hosting.js"),
    import("../infra/timers.js"),
    import("../infra/scheduler-lock.js"),
    import("./schedule-commands.js"),
    import("../app/alerts.js"),
  ]);
  const log = (line: string): void => io.out(logMessage(line, json, new Date()));
  const alerts = new Alerts({ store: core.store, now: () => new Date(), timers: wallClockTimers, log });
  const host = new SchedulingHost({
    open: () => {
      const owned = openScheduler({
        home: core.home,
        app: "snapkeep serve",
        work: core.schedules,
        now: () => new Date(),
        timers: wallClockTimers,
        onEvent: (event) => {
          io.out(logLine(event, json, new Date()));
          alerts.handle(event);
          if ("schedule" in event) {
            api.notifyChanged(event.schedule.host);
          }
        },
      });
      // Alerts (and the weekly digest) go out from whichever process runs the schedules.
      alerts.start();
      return owned;
    },
    holder: () => schedulerOwner(core.home),
    timers: wallClockTimers,
    onChange: (state) =>
      log(
        state.kind === "here"
          ? `schedules run here (pid ${process.pid})`
          : state.kind === "elsewhere"
            ? `schedules are run by ${state.owner.app} (pid ${state.owner.pid}); this server takes over when it stops`
            : `SCHEDULES DO NOT RUN: ${state.message}`,
      ),
  });
  await host.start();
  return {
    stop: async () => {
      await host.stop();
      await alerts.stop();
    },
  };
}

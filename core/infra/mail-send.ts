/**
 * Outgoing mail for alerts, through nodemailer (loaded only when a mail is sent: the CLI starts
 * without it). One message, time limits, TLS checked against the system's CAs plus the channel's
 * own certificate when it has one, and a failure as one sentence that names the server by host
 * and port only and never carries the password.
 */
import { hostname } from "node:os";

import { SnapkeepError, describeError } from "../errors.js";

export interface MailRequest {
  /** smtp://[user@]host[:port] or smtps://[user@]host[:port], without a password. */
  readonly smtp: string;
  /** smtp:// only: refuse to go on unless the server upgrades to TLS. */
  readonly starttls: boolean;
  readonly password?: string | undefined;
  /** PEM to trust besides the system's CAs. */
  readonly ca?: string | undefined;
  readonly from?: string | undefined;
  readonly to: readonly string[];
  readonly subject: string;
  readonly text: string;
  /** How the server is named in errors. */
  readonly label: string;
  readonly timeoutMs?: number | undefined;
}

/** The name a mail says it was sent by (and the default sender's domain). */
export function senderHost(): string {
  return hostname();
}

export async function sendMail(request: MailRequest): Promise<void> {
  const server = new URL(request.smtp);
  const secure = server.protocol === "smtps:";
  const user = decodeURIComponent(server.username);
  const timeout = request.timeoutMs ?? 15_000;
  const { createTransport } = await import("nodemailer");
  const transport = createTransport({
    host: server.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: server.port === "" ? (secure ? 465 : 587) : Number(server.port),
    secure,
    // A login never goes out in clear: with a user, STARTTLS is required whatever --starttls says
    // (otherwise a machine in the path could strip the server's offer and read the password).
    requireTLS: !secure && (request.starttls || user !== ""),
    ...(user === "" ? {} : { auth: { user, pass: request.password ?? "" } }),
    tls: { minVersion: "TLSv1.2", ...(request.ca === undefined ? {} : { ca: request.ca }) },
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  try {
    await transport.sendMail({
      from: request.from ?? `Snapkeep <snapkeep@${senderHost()}>`,
      to: [...request.to],
      subject: request.subject,
      text: request.text,
    });
  } catch (error) {
    const said = describeError(error).replaceAll(request.password ?? "\u0000", "…");
    const hint = /certificate/i.test(said)
      ? " If the server uses a certificate of its own, trust it: notify add … --smtp-ca FILE."
      : "";
    throw new SnapkeepError("COMMAND_FAILED", `${request.label} did not take the mail: ${said}.${hint}`);
  } finally {
    transport.close();
  }
}

/**
 * A real SMTP server on loopback (the smtp-server library, as mail relays are built with it) that
 * offers STARTTLS with a self-signed certificate, takes a login only over TLS, and keeps every
 * mail it accepts with whether its session was encrypted.
 */
import type { AddressInfo } from "node:net";

import { SMTPServer } from "smtp-server";

import { selfSignedCertificate } from "./tls.js";

export interface ReceivedMail {
  readonly secure: boolean;
  readonly user: string | undefined;
  readonly from: string;
  readonly to: readonly string[];
  /** The header lines unfolded, by lower-case name. */
  readonly headers: Readonly<Record<string, string>>;
  readonly text: string;
}

export interface TestSmtp {
  readonly port: number;
  /** The certificate to trust (PEM). */
  readonly cert: string;
  readonly mails: ReceivedMail[];
  close(): Promise<void>;
}

export async function startSmtp(options: {
  readonly user: string;
  readonly password: string;
  /** Leave STARTTLS out (a relay that cannot encrypt). */
  readonly noStarttls?: boolean;
}): Promise<TestSmtp> {
  const { key, cert } = selfSignedCertificate();
  const mails: ReceivedMail[] = [];
  const server = new SMTPServer({
    key,
    cert,
    secure: false,
    logger: false,
    authMethods: ["PLAIN", "LOGIN"],
    disabledCommands: options.noStarttls === true ? ["STARTTLS"] : [],
    // Only when the relay cannot encrypt: a login in clear, which Snapkeep must refuse to send.
    allowInsecureAuth: options.noStarttls === true,
    onAuth(auth, _session, callback) {
      if (auth.username === options.user && auth.password === options.password) {
        callback(null, { user: auth.username });
      } else {
        callback(new Error("Invalid username or password"));
      }
    },
    onData(stream, session, callback) {
      let data = "";
      stream.on("data", (chunk: Buffer) => (data += chunk.toString("utf8")));
      stream.on("end", () => {
        const [head = "", ...rest] = data.split(/\r\n\r\n/);
        const headers: Record<string, string> = {};
        for (const line of head.replace(/\r\n[ \t]+/g, " ").split("\r\n")) {
          const colon = line.indexOf(":");
          headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
        }
        mails.push({
          secure: session.secure,
          user: typeof session.user === "string" ? session.user : undefined,
          from: session.envelope.mailFrom === false ? "" : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          headers,
          text: rest.join("\r\n\r\n"),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    cert,
    mails,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

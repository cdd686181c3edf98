/**
 * The login of `snapkeep serve --listen` on an address other computers reach (issue 17, part 3):
 * TLS always, an admin password (scrypt, `snapkeep serve passwd`), and a session cookie that is
 * HttpOnly, Secure, SameSite=Strict and __Host- bound to this origin. Sign-in attempts are limited
 * per client address and overall (domain/login-limiter.ts). Sessions live in this process: a
 * restart signs everyone out, which is the safe way round.
 *
 *   GET  /session  {"mode":"login","signedIn":bool,"fingerprint":"AB:…"}
 *   POST /login    {"password":"…"}  204 + cookie | 401 | 429 (Retry-After) | 403 (foreign origin)
 *   POST /logout   204, the cookie cleared and the session ended
 */
import { createHash, randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

import { LoginLimiter } from "../domain/login-limiter.js";

export const SESSION_COOKIE = "__Host-snapkeep";
const SESSION_TTL_MS = 12 * 3600_000;
const MAX_LOGIN_BODY = 4096;

export interface LoginOptions {
  readonly tls: { readonly cert: string; readonly key: string };
  /** The certificate's SHA-256, shown on the sign-in page and in Settings to compare. */
  readonly fingerprint: string;
  readonly verify: (password: string) => Promise<boolean>;
  readonly now?: () => Date;
}

/** Sessions by the SHA-256 of their id: the map never holds a usable cookie value. */
export class WebSessions {
  readonly #expires = new Map<string, number>();

  create(now: Date): string {
    const id = randomBytes(32).toString("base64url");
    this.#expires.set(digest(id), now.getTime() + SESSION_TTL_MS);
    return id;
  }

  valid(request: IncomingMessage, now: Date): boolean {
    const id = sessionId(request);
    const expires = id === null ? undefined : this.#expires.get(digest(id));
    if (expires === undefined || expires <= now.getTime()) {
      return false;
    }
    return true;
  }

  end(request: IncomingMessage): void {
    const id = sessionId(request);
    if (id !== null) {
      this.#expires.delete(digest(id));
    }
  }
}

function digest(id: string): string {
  return createHash("sha256").update(id).digest("base64url");
}

function sessionId(request: IncomingMessage): string | null {
  for (const part of (request.headers.cookie ?? "").split(";")) {
    const [name, value] = part.trim().split("=", 2);
    if (name === SESSION_COOKIE && value !== undefined && /^[\w-]{43}$/.test(value)) {
      return value;
    }
  }
  return null;
}

/** Whether a request that changes something comes from a page of this very origin. */
export function sameOrigin(request: IncomingMessage): boolean {
  const host = request.headers.host ?? "";
  return host !== "" && request.headers.origin === `https://${host}`;
}

const NO_STORE = { "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff" };

/** Answers /session, /login and /logout; false for any other path (the caller serves it). */
export async function answerLogin(
  request: IncomingMessage,
  response: ServerResponse,
  path: string,
  state: { readonly sessions: WebSessions; readonly limiter: LoginLimiter; readonly options: LoginOptions },
): Promise<boolean> {
  const now = state.options.now?.() ?? new Date();
  if (path === "/session" && request.method === "GET") {
    const body = {
      mode: "login",
      signedIn: state.sessions.valid(request, now),
      fingerprint: state.options.fingerprint,
    };
    response.writeHead(200, { ...NO_STORE, "Content-Type": "application/json" }).end(JSON.stringify(body));
    return true;
  }
  if (path !== "/login" && path !== "/logout") {
    return false;
  }
  if (request.method !== "POST") {
    response.writeHead(405, { ...NO_STORE, Allow: "POST" }).end();
    return true;
  }
  if (!sameOrigin(request)) {
    response.writeHead(403, NO_STORE).end();
    return true;
  }
  if (path === "/logout") {
    state.sessions.end(request);
    response
      .writeHead(204, {
        ...NO_STORE,
        "Set-Cookie": `${SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0`,
      })
      .end();
    return true;
  }
  await signIn(request, response, state, now);
  return true;
}

async function signIn(
  request: IncomingMessage,
  response: ServerResponse,
  state: { readonly sessions: WebSessions; readonly limiter: LoginLimiter; readonly options: LoginOptions },
  now: Date,
): Promise<void> {
  const client = request.socket.remoteAddress ?? "?";
  const allowed = state.limiter.check(client, now);
  if (!allowed.allowed) {
    response.writeHead(429, { ...NO_STORE, "Retry-After": String(allowed.retryAfterS) }).end();
    return;
  }
  const password = await passwordOf(request);
  if (password === null) {
    response.writeHead(400, NO_STORE).end();
    return;
  }
  // Counted before the check: attempts sent in parallel cannot all pass the limiter first.
  state.limiter.failed(client, now);
  if (!(await state.options.verify(password))) {
    response.writeHead(401, NO_STORE).end();
    return;
  }
  state.limiter.succeeded(client);
  const id = state.sessions.create(now);
  response
    .writeHead(204, {
      ...NO_STORE,
      "Set-Cookie": `${SESSION_COOKIE}=${id}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=${SESSION_TTL_MS / 1000}`,
    })
    .end();
}

/** The password of a JSON body {"password": "..."} of at most 4 KiB, or null. */
async function passwordOf(request: IncomingMessage): Promise<string | null> {
  if (!(request.headers["content-type"] ?? "").startsWith("application/json")) {
    return null;
  }
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_LOGIN_BODY) {
      return null;
    }
    chunks.push(chunk);
  }
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
    const password =
      typeof body === "object" && body !== null ? (body as { password?: unknown }).password : undefined;
    return typeof password === "string" && password.length > 0 && password.length <= 1024 ? password : null;
  } catch {
    return null;
  }
}

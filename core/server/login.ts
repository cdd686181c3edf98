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
  readonly #ended = new Set<(key: string) => void>();

  create(now: Date): string {
    const id = randomBytes(32).toString("base64url");
    // Expired sessions are forgotten as new ones come: the map holds only live ones.
    for (const [key, expires] of this.#expires) {
      if (expires <= now.getTime()) {
        this.#expires.delete(key);
      }
    }
    this.#expires.set(digest(id), now.getTime() + SESSION_TTL_MS);
    return id;
  }

  /** The session a request carries (the digest of its cookie), live or not; null without one. */
  keyOf(request: IncomingMessage): string | null {
    const id = sessionId(request);
    return id === null ? null : digest(id);
  }

  live(key: string | null, now: Date): boolean {
    const expires = key === null ? undefined : this.#expires.get(key);
    return expires !== undefined && expires > now.getTime();
  }

  valid(request: IncomingMessage, now: Date): boolean {
    return this.live(this.keyOf(request), now);
  }

  end(request: IncomingMessage): void {
    const key = this.keyOf(request);
    if (key !== null && this.#expires.delete(key)) {
      this.#ended.forEach((listener) => listener(key));
    }
  }

  /** Called with a session's key when it is signed out (the server closes its sockets). */
  onEnd(listener: (key: string) => void): void {
    this.#ended.add(listener);
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
  state: LoginState,
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
  await signIn(request, response, state);
  return true;
}

/** At most this many password checks run at once: each takes 64 MiB and a thread of libuv's four. */
const MAX_VERIFYING = 2;

export interface LoginState {
  readonly sessions: WebSessions;
  readonly limiter: LoginLimiter;
  readonly options: LoginOptions;
  /** Password checks under way. */
  verifying: number;
}

async function signIn(request: IncomingMessage, response: ServerResponse, state: LoginState): Promise<void> {
  // The body first: the limiter's check and the attempt's record then happen in one step, with
  // nothing awaited between, so attempts sent in parallel cannot all pass the check first.
  const password = await passwordOf(request);
  if (password === null) {
    response.writeHead(400, NO_STORE).end();
    return;
  }
  const now = state.options.now?.() ?? new Date();
  const client = clientKey(request.socket.remoteAddress ?? "?");
  const allowed = state.limiter.check(client, now);
  if (!allowed.allowed) {
    response.writeHead(429, { ...NO_STORE, "Retry-After": String(allowed.retryAfterS) }).end();
    return;
  }
  if (state.verifying >= MAX_VERIFYING) {
    response.writeHead(503, { ...NO_STORE, "Retry-After": "1" }).end();
    return;
  }
  state.limiter.failed(client, now);
  state.verifying += 1;
  let matches: boolean;
  try {
    matches = await state.options.verify(password);
  } finally {
    state.verifying -= 1;
  }
  if (!matches) {
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

/**
 * Whom the limiter counts: an IPv4 address, or an IPv6 address's /64 (one host usually holds a
 * whole /64, and would otherwise have 2^64 fresh addresses to guess from).
 */
export function clientKey(address: string): string {
  const plain = address.replace(/%.*$/, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(plain);
  if (mapped?.[1] !== undefined) {
    return mapped[1];
  }
  if (!plain.includes(":")) {
    return plain;
  }
  const [head = "", tail] = plain.toLowerCase().split("::", 2);
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups =
    tail === undefined
      ? headGroups
      : [
          ...headGroups,
          ...Array<string>(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill("0"),
          ...tailGroups,
        ];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
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

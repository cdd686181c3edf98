/**
 * `snapkeep serve`: the UI in a browser. One HTTP server on 127.0.0.1 serves the built renderer
 * (no data in it) and one WebSocket, /api, carries the API. The WebSocket opens only with the
 * random token printed in the URL, from a page of this same origin, for a Host header naming this
 * server (a web page elsewhere cannot reach it through DNS rebinding either). On an address other
 * computers reach, it serves HTTPS only and a login replaces the token (login.ts).
 *
 * The process runs jobs, so no client may end it: whatever one connection sends or does (a
 * malformed frame, a reset mid-handshake) closes that connection only.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import { BlockList, isIP, isIPv6, type AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { WebSocketServer, type WebSocket } from "ws";

import { DOWNLOAD_PREFIX, type Api, type ApiEvent } from "../api/api.js";
import { LoginLimiter } from "../domain/login-limiter.js";
import { SnapkeepError, describeError } from "../errors.js";
import { answerLogin, sameOrigin, WebSessions, type LoginOptions } from "./login.js";

/** What the page may do: its own scripts, styles and socket; nothing inline, nothing remote. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Content types of the renderer's built files; the desktop app serves the same files. */
export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".woff2": "font/woff2",
};

export interface ServeOptions {
  readonly host?: string;
  readonly port?: number;
  /** The built renderer; by default dist/renderer next to this module's dist/core. */
  readonly rendererDir?: string;
  readonly token?: string;
  /** The text of GET /metrics (Prometheus), asked with the token as a bearer; absent: 404. */
  readonly metrics?: () => Promise<string>;
  /**
   * TLS and a login instead of the token in the URL: required on an address other computers
   * reach. The token (when given) still opens /metrics as a bearer, for a scraper.
   */
  readonly login?: LoginOptions;
}

export interface Serving {
  readonly url: string;
  readonly port: number;
  readonly token: string;
  close(): Promise<void>;
}

/** The largest message a client may send; the biggest real request (a long note) is far smaller. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

const loopback = new BlockList();
loopback.addSubnet("127.0.0.0", 8, "ipv4");
loopback.addAddress("::1", "ipv6");

/** Whether `host` names this computer only: 127.0.0.0/8, ::1 (in any spelling) or localhost. */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === "localhost") {
    return true;
  }
  // Any other host name may resolve to any interface.
  const family = isIP(host);
  return family !== 0 && loopback.check(host, family === 6 ? "ipv6" : "ipv4");
}

export function defaultRendererDir(): string {
  return fileURLToPath(new URL("../../renderer/", import.meta.url));
}

export async function serve(api: Api, options: ServeOptions = {}): Promise<Serving> {
  const host = options.host ?? "127.0.0.1";
  const requestedPort = options.port ?? 8484;
  if (options.login === undefined) {
    refuseRemoteHost(host, requestedPort);
  }
  // An IPv6 address in a URL or Host header goes in brackets.
  const authority = isIPv6(host) ? `[${host}]` : host;
  const token = options.token ?? randomBytes(24).toString("base64url");
  const root = normalize(options.rendererDir ?? defaultRendererDir());
  const sockets = new Set<WebSocket>();
  /** With a login: each socket's session, so signing out or expiry closes the sockets it opened. */
  const socketSessions = new Map<WebSocket, string>();
  let port = 0;
  const access =
    options.login === undefined
      ? tokenAccess(token, () => new Set([`${authority}:${port}`, `localhost:${port}`, `127.0.0.1:${port}`]))
      : loginAccess(options.login, token);

  const stopWatching = closeEndedSessions(access, socketSessions);

  const answerRequest = (request: IncomingMessage, response: ServerResponse): void => {
    // Whatever a request does wrong, it gets an answer: a rejection here would end the process,
    // and with it the jobs it runs.
    answerHttp(request, response, access, root, options.metrics, api).catch(() => {
      if (!response.headersSent) {
        response.writeHead(400);
      }
      response.end();
    });
  };
  const server: Server =
    options.login === undefined
      ? createServer(answerRequest)
      : createTlsServer({ ...options.login.tls, minVersion: "TLSv1.2" }, answerRequest);

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    // The HTTP server hands the socket over without its error listener: a client resetting it
    // before it is a WebSocket (ws then adds its own) would otherwise end the process.
    socket.on("error", () => socket.destroy());
    let url: URL;
    try {
      url = new URL(request.url ?? "/", "http://x");
    } catch {
      refuse(socket, "400 Bad Request");
      return;
    }
    if (url.pathname !== "/api" || !access.mayOpenApi(request, url)) {
      refuse(socket, "401 Unauthorized");
      return;
    }
    const session = access.sessionOf(request);
    wss.handleUpgrade(request, socket, head, (ws) => {
      if (session !== null) {
        socketSessions.set(ws, session);
        ws.on("close", () => socketSessions.delete(ws));
      }
      answerOnSocket(ws, api, sockets);
    });
  });

  port = await listen(server, requestedPort, host, authority);
  const unsubscribe = api.onEvent((event: ApiEvent) => {
    const text = JSON.stringify(event);
    for (const ws of sockets) {
      ws.send(text);
    }
  });
  return {
    url:
      options.login === undefined
        ? `http://${authority}:${port}/#token=${token}`
        : `https://${authority}:${port}/`,
    port,
    token,
    close: async () => {
      stopWatching();
      unsubscribe();
      for (const ws of sockets) {
        ws.terminate();
      }
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** How often open sockets are checked for a session that expired. */
const SESSION_CHECK_MS = 60_000;

/** Closes a session's sockets when it is signed out, or once it expired; returns the stop. */
function closeEndedSessions(access: Access, socketSessions: ReadonlyMap<WebSocket, string>): () => void {
  const close = (ended: (session: string) => boolean): void => {
    for (const [ws, session] of socketSessions) {
      if (ended(session)) {
        ws.terminate();
      }
    }
  };
  access.onSessionEnd((session) => close((s) => s === session));
  const expiry = setInterval(() => close((s) => !access.sessionLive(s)), SESSION_CHECK_MS);
  expiry.unref();
  return () => clearInterval(expiry);
}

/** Who may do what: the token mode on loopback, or TLS and a login on any address. */
interface Access {
  /** The session a request carries (login mode), to close its sockets when it ends; else null. */
  sessionOf(request: IncomingMessage): string | null;
  sessionLive(session: string): boolean;
  onSessionEnd(listener: (session: string) => void): void;
  /** Whether a plain request's Host names this server (DNS rebinding guard in the token mode). */
  hostAllowed(request: IncomingMessage): boolean;
  mayOpenApi(request: IncomingMessage, url: URL): boolean;
  mayReadMetrics(request: IncomingMessage): boolean;
  /** Answers the mode's own paths (/login, ...); false for the others. */
  answer(request: IncomingMessage, response: ServerResponse, path: string): Promise<boolean>;
}

function tokenAccess(token: string, allowedHosts: () => ReadonlySet<string>): Access {
  const hostAllowed = (request: IncomingMessage): boolean => allowedHosts().has(request.headers.host ?? "");
  return {
    sessionOf: () => null,
    sessionLive: () => true,
    onSessionEnd: () => undefined,
    hostAllowed,
    mayOpenApi: (request, url) =>
      tokenMatches(url.searchParams.get("token"), token) &&
      hostAllowed(request) &&
      request.headers.origin === `http://${request.headers.host ?? ""}`,
    mayReadMetrics: (request) => hostAllowed(request) && tokenMatches(bearerOf(request), token),
    answer: () => Promise.resolve(false),
  };
}

function loginAccess(options: LoginOptions, token: string): Access {
  const sessions = new WebSessions();
  const limiter = new LoginLimiter();
  const now = options.now ?? ((): Date => new Date());
  const state = { sessions, limiter, options, verifying: 0 };
  return {
    sessionOf: (request) => sessions.keyOf(request),
    sessionLive: (session) => sessions.live(session, now()),
    onSessionEnd: (listener) => sessions.onEnd(listener),
    // Any name may reach it (a DNS name, an address): TLS, the cookie and Origin guard it.
    hostAllowed: () => true,
    mayOpenApi: (request) => sameOrigin(request) && sessions.valid(request, now()),
    mayReadMetrics: (request) => tokenMatches(bearerOf(request), token) || sessions.valid(request, now()),
    answer: (request, response, path) => answerLogin(request, response, path, state),
  };
}

function bearerOf(request: IncomingMessage): string | null {
  return /^Bearer (\S+)$/.exec(request.headers.authorization ?? "")?.[1] ?? null;
}

function tokenMatches(given: string | null, token: string): boolean {
  const a = Buffer.from(given ?? "");
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function answerHttp(
  request: IncomingMessage,
  response: ServerResponse,
  access: Access,
  root: string,
  metrics: (() => Promise<string>) | undefined,
  api: Api,
): Promise<void> {
  let path: string;
  try {
    path = decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname);
  } catch {
    response.writeHead(400).end();
    return;
  }
  if (await access.answer(request, response, path)) {
    return;
  }
  if (path === "/metrics") {
    await serveMetrics(request, response, access, metrics);
    return;
  }
  if (path.startsWith(DOWNLOAD_PREFIX)) {
    await serveDownload(
      request,
      response,
      api,
      path.slice(DOWNLOAD_PREFIX.length),
      access.hostAllowed(request),
    );
    return;
  }
  await serveFile(request, response, root, path, access.hostAllowed(request));
}

function refuseRemoteHost(host: string, requestedPort: number): void {
  if (isLoopbackHost(host)) {
    return;
  }
  const tunnelPort = requestedPort === 0 ? 8484 : requestedPort;
  throw new SnapkeepError(
    "INVALID_INPUT",
    `The UI is served on this computer only (127.0.0.1, ::1 or localhost), not on ${host}, unless it has TLS and a login (snapkeep serve passwd).`,
    {
      hint: `To use it from another computer, start it here with --port ${tunnelPort} and no --host, run \`ssh -L ${tunnelPort}:127.0.0.1:${tunnelPort} user@host\` on that computer, and open the printed address there.`,
    },
  );
}

/** `/assets/index-C_yxgPLg.js`: a file the bundler named by its content's hash. */
export function isHashedAsset(path: string): boolean {
  return /^\/assets\/[\w.-]+-[\w-]{8}\.(?:js|css)$/.test(path);
}

/** Answers a plain HTTP request with a file of the built renderer under `root`, or an error status. */
async function serveFile(
  request: IncomingMessage,
  response: ServerResponse,
  root: string,
  path: string,
  hostAllowed: boolean,
): Promise<void> {
  const headers = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
  };
  if (!hostAllowed || (request.method !== "GET" && request.method !== "HEAD")) {
    response.writeHead(request.method === "GET" ? 421 : 405, headers).end();
    return;
  }
  const file = normalize(join(root, path === "/" ? "index.html" : path));
  if (!file.startsWith(root.endsWith(sep) ? root : `${root}${sep}`)) {
    response.writeHead(404, headers).end();
    return;
  }
  try {
    const body = await readFile(file);
    response.writeHead(200, {
      ...headers,
      // The bundler names each asset by its content's hash, so an asset never changes under its
      // name: a returning browser loads it (and V8's compiled code for it) from its cache. The
      // page itself is never cached, so a new version's page names its new assets.
      ...(isHashedAsset(path) ? { "Cache-Control": "public, max-age=31536000, immutable" } : {}),
      "Content-Type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream",
    });
    response.end(request.method === "HEAD" ? undefined : body);
  } catch {
    response.writeHead(404, headers).end();
  }
}

/**
 * GET /download/TICKET: a file or folder of a snapshot that a `files.download` call named. The
 * ticket (128 random bits, from an API call on an opened socket, once, two minutes) is the right
 * to it. The name is guest data: it reaches the header only percent-encoded (RFC 6266/5987) and
 * as an ASCII stand-in. A copy that breaks off ends the connection without its end, so the
 * browser says the download failed instead of keeping a short file.
 */
async function serveDownload(
  request: IncomingMessage,
  response: ServerResponse,
  api: Api,
  ticket: string,
  hostAllowed: boolean,
): Promise<void> {
  const headers = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'",
    "Referrer-Policy": "no-referrer",
  };
  if (!hostAllowed || request.method !== "GET") {
    response.writeHead(request.method === "GET" ? 421 : 405, headers).end();
    return;
  }
  const item = /^[0-9a-f]{32}$/.test(ticket) ? api.takeDownload(ticket) : null;
  if (item === null) {
    response.writeHead(404, { ...headers, "Content-Type": "text/plain; charset=utf-8" });
    response.end(
      "This download link was used already or is too old: download it again from the file browser.\n",
    );
    return;
  }
  response.writeHead(200, {
    ...headers,
    "Content-Type":
      item.name.endsWith(".tar") && item.size === null ? "application/x-tar" : "application/octet-stream",
    "Content-Disposition": contentDisposition(item.name),
    ...(item.size === null ? {} : { "Content-Length": String(item.size) }),
  });
  try {
    await item.send(response);
    response.end();
  } catch {
    response.destroy();
  }
}

/** `attachment` with the name as an ASCII stand-in and, exactly, percent-encoded UTF-8. */
export function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\%;]/g, "_");
  const exact = encodeURIComponent(name).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${exact}`;
}

/**
 * GET /metrics for Prometheus: `Authorization: Bearer TOKEN` (the serve token; a fixed one from
 * --token-file for a scraper's bearer_token_file), and a Host naming this server.
 */
async function serveMetrics(
  request: IncomingMessage,
  response: ServerResponse,
  access: Access,
  metrics: (() => Promise<string>) | undefined,
): Promise<void> {
  const headers = { "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff" };
  if (metrics === undefined) {
    response.writeHead(404, headers).end();
    return;
  }
  if (!access.hostAllowed(request) || request.method !== "GET") {
    response.writeHead(request.method === "GET" ? 421 : 405, headers).end();
    return;
  }
  if (!access.mayReadMetrics(request)) {
    response.writeHead(401, { ...headers, "WWW-Authenticate": 'Bearer realm="snapkeep"' }).end();
    return;
  }
  let text: string;
  try {
    text = await metrics();
  } catch (error) {
    response.writeHead(500, { ...headers, "Content-Type": "text/plain; charset=utf-8" });
    response.end(`# Snapkeep could not gather its metrics: ${describeError(error)}\n`);
    return;
  }
  response.writeHead(200, { ...headers, "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
  response.end(text);
}

/** Answers each API request that arrives on an opened WebSocket, and forgets the socket on close. */
function answerOnSocket(ws: WebSocket, api: Api, sockets: Set<WebSocket>): void {
  sockets.add(ws);
  ws.on("close", () => sockets.delete(ws));
  // A malformed or oversized frame is an error on this WebSocket only: ws has already sent the
  // close code that says what was wrong (1002, 1007, 1009) and closes the connection itself.
  ws.on("error", () => undefined);
  ws.on("message", (data) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(data.toString());
    } catch {
      parsed = undefined;
    }
    void api.handle(parsed).then((answer) => {
      if (ws.readyState === ws.OPEN) {
        ws.send(JSON.stringify(answer));
      }
    });
  });
}

/** Starts listening and returns the port (the one the system chose for port 0). */
async function listen(
  server: Server,
  requestedPort: number,
  host: string,
  authority: string,
): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException): void =>
      reject(listenError(error, authority, requestedPort));
    server.once("error", failed);
    server.listen(requestedPort, host, () => {
      server.off("error", failed);
      resolve();
    });
  });
  // Once listening, the server's only errors are failed accepts (ENFILE, ENOMEM, ...): they cost
  // the one connection being accepted, not the others, and the next accept may succeed.
  server.on("error", () => undefined);
  return (server.address() as AddressInfo).port;
}

/** How long a refused client may keep sending before its socket is destroyed. */
const REFUSED_GRACE_MS = 2000;

/**
 * Answers an upgrade request that may not open the API, and lets go of its socket. What the client
 * still sends (frames pipelined behind the request) is read and dropped until it closes its side:
 * closing a socket with unread input makes the kernel send a reset, which can destroy the answer
 * before the client reads it. A client that keeps sending is cut off after a short grace.
 */
function refuse(socket: Duplex, status: string): void {
  socket.on("data", () => undefined);
  const grace = setTimeout(() => socket.destroy(), REFUSED_GRACE_MS);
  grace.unref();
  socket.once("close", () => clearTimeout(grace));
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** Why the server could not listen, as a sentence (anything unforeseen stays as it was). */
function listenError(error: NodeJS.ErrnoException, authority: string, port: number): unknown {
  switch (error.code) {
    case "EADDRINUSE":
      return new SnapkeepError(
        "INVALID_INPUT",
        `Port ${port} on ${authority} is in use (by another snapkeep serve, or another program); choose another with --port, or --port 0 for any free one.`,
        { cause: error },
      );
    case "EACCES":
      return new SnapkeepError(
        "INVALID_INPUT",
        `Port ${port} on ${authority} is for privileged programs only; choose one above 1023 with --port.`,
        { cause: error },
      );
    case "ENOTFOUND":
      return new SnapkeepError(
        "INVALID_INPUT",
        `The host name ${authority} does not resolve to an address on this computer; use --host 127.0.0.1.`,
        { cause: error },
      );
    case "EADDRNOTAVAIL":
      return new SnapkeepError(
        "INVALID_INPUT",
        `${authority} is not an address of this computer; use --host 127.0.0.1.`,
        { cause: error },
      );
    default:
      return error;
  }
}

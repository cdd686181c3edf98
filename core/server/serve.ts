/**
 * `snapkeep serve`: the UI in a browser. One HTTP server on 127.0.0.1 serves the built renderer
 * (no data in it) and one WebSocket, /api, carries the API. The WebSocket opens only with the
 * random token printed in the URL, from a page of this same origin, for a Host header naming this
 * server (a web page elsewhere cannot reach it through DNS rebinding either).
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { WebSocketServer, type WebSocket } from "ws";

import type { Api, ApiEvent } from "../api/api.js";

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
}

export interface Serving {
  readonly url: string;
  readonly port: number;
  readonly token: string;
  close(): Promise<void>;
}

export function defaultRendererDir(): string {
  return fileURLToPath(new URL("../../renderer/", import.meta.url));
}

export async function serve(api: Api, options: ServeOptions = {}): Promise<Serving> {
  const host = options.host ?? "127.0.0.1";
  const token = options.token ?? randomBytes(24).toString("base64url");
  const root = normalize(options.rendererDir ?? defaultRendererDir());
  const sockets = new Set<WebSocket>();
  let port = 0;

  const allowedHosts = (): Set<string> =>
    new Set([`${host}:${port}`, `localhost:${port}`, `127.0.0.1:${port}`]);

  const server: Server = createServer((request, response) => {
    // Whatever a request does wrong, it gets an answer: a rejection here would end the process,
    // and with it the jobs it runs.
    serveFile(request, response).catch(() => {
      if (!response.headersSent) {
        response.writeHead(400);
      }
      response.end();
    });
  });
  const serveFile = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const headers = {
      "Content-Security-Policy": CONTENT_SECURITY_POLICY,
      "X-Content-Type-Options": "nosniff",
      "Referrer-Policy": "no-referrer",
      "Cache-Control": "no-store",
    };
    if (
      !allowedHosts().has(request.headers.host ?? "") ||
      (request.method !== "GET" && request.method !== "HEAD")
    ) {
      response.writeHead(request.method === "GET" ? 421 : 405, headers).end();
      return;
    }
    let path: string;
    try {
      path = decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname);
    } catch {
      response.writeHead(400, headers).end();
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
        "Content-Type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream",
      });
      response.end(request.method === "HEAD" ? undefined : body);
    } catch {
      response.writeHead(404, headers).end();
    }
  };

  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  server.on("upgrade", (request, socket, head) => {
    const url = new URL(request.url ?? "/", "http://x");
    const given = Buffer.from(url.searchParams.get("token") ?? "");
    const expected = Buffer.from(token);
    const origin = request.headers.origin ?? "";
    const ok =
      url.pathname === "/api" &&
      given.length === expected.length &&
      timingSafeEqual(given, expected) &&
      allowedHosts().has(request.headers.host ?? "") &&
      origin === `http://${request.headers.host ?? ""}`;
    if (!ok) {
      socket.end("HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n");
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      sockets.add(ws);
      ws.on("close", () => sockets.delete(ws));
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
    });
  });
  const unsubscribe = api.onEvent((event: ApiEvent) => {
    const text = JSON.stringify(event);
    for (const ws of sockets) {
      ws.send(text);
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 8484, host, () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}/#token=${token}`,
    port,
    token,
    close: async () => {
      unsubscribe();
      for (const ws of sockets) {
        ws.terminate();
      }
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

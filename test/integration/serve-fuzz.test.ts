/**
 * `snapkeep serve` never dies from a client (issue 13): the real process, attacked over raw TCP with
 * hand-built WebSocket frames and resets around the upgrade, with and without the token, round
 * after round; after each attack it still answers an API call and the page. And the ways it
 * refuses to start are sentences.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";

import { MAX_MESSAGE_BYTES } from "../../core/server/serve.js";
import { startServe } from "../support/serve.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const ROUNDS = 3;

/** One client frame as RFC 6455 lays it out; `length` may claim more than the payload holds. */
function frame(options: {
  opcode: number;
  payload: Buffer;
  fin?: boolean;
  rsv?: number;
  masked?: boolean;
  length?: number;
}): Buffer {
  const { opcode, payload, fin = true, rsv = 0, masked = true } = options;
  const length = options.length ?? payload.length;
  const maskBit = masked ? 0x80 : 0;
  let header: Buffer;
  if (length < 126) {
    header = Buffer.from([0, maskBit | length]);
  } else if (length < 0x10000) {
    header = Buffer.alloc(4);
    header.writeUInt8(maskBit | 126, 1);
    header.writeUInt16BE(length, 2);
  } else {
    header = Buffer.alloc(10);
    header.writeUInt8(maskBit | 127, 1);
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  header.writeUInt8((fin ? 0x80 : 0) | (rsv << 4) | opcode, 0);
  if (!masked) {
    return Buffer.concat([header, payload]);
  }
  const mask = randomBytes(4);
  const body = Buffer.from(payload.map((byte, i) => byte ^ (mask[i % 4] ?? 0)));
  return Buffer.concat([header, mask, body]);
}

const TEXT = 0x1;
const CONTINUATION = 0x0;

/** Malformed client messages, and the close code ws answers each with (RFC 6455, 7.4.1). */
const MALFORMED: readonly { name: string; bytes: () => Buffer; closeCode: number }[] = [
  {
    name: "a text frame that is not UTF-8",
    bytes: () => frame({ opcode: TEXT, payload: Buffer.from([0xc3, 0x28, 0xff]) }),
    closeCode: 1007,
  },
  {
    name: "a frame announcing 2 GiB",
    bytes: () => frame({ opcode: TEXT, payload: Buffer.alloc(0), length: 2 ** 31 }),
    closeCode: 1009,
  },
  {
    name: "a message over the limit in two fragments",
    bytes: () => {
      const half = Buffer.alloc(MAX_MESSAGE_BYTES / 2 + 1, 0x20);
      return Buffer.concat([
        frame({ opcode: TEXT, payload: half, fin: false }),
        frame({ opcode: CONTINUATION, payload: half }),
      ]);
    },
    closeCode: 1009,
  },
  {
    name: "a frame with reserved bits set",
    bytes: () => frame({ opcode: TEXT, payload: Buffer.from("{}"), rsv: 0b111 }),
    closeCode: 1002,
  },
  {
    name: "an unmasked client frame",
    bytes: () => frame({ opcode: TEXT, payload: Buffer.from("{}"), masked: false }),
    closeCode: 1002,
  },
  {
    name: "a frame with the reserved opcode 0x3",
    bytes: () => frame({ opcode: 0x3, payload: Buffer.from("x") }),
    closeCode: 1002,
  },
];

interface Exchange {
  /** The raw request bytes (an upgrade request, a plain GET, half of one). */
  readonly request: string | Buffer;
  /** Bytes sent with the request, before any answer (the server reads them as the upgrade's head). */
  readonly pipelined?: Buffer;
  /** Bytes sent once the server answered 101. */
  readonly afterUpgrade?: Buffer;
  /** Where the client resets the connection (RST) instead of closing it. */
  readonly reset?: "after request" | "after response";
}

/**
 * Plays one exchange over raw TCP and says what the client saw: "no answer", the status code, or
 * the status code and the code of the close frame the server sent.
 */
function play(port: number, exchange: Exchange): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let received = Buffer.alloc(0);
    let status = "";
    let seen = "no answer";
    // The client's own side of a reset or of a closed connection is not what is tested.
    socket.on("error", () => undefined);
    socket.on("close", () => resolve(seen));
    socket.on("connect", () => {
      socket.write(
        exchange.pipelined === undefined
          ? exchange.request
          : Buffer.concat([Buffer.from(exchange.request), exchange.pipelined]),
      );
      if (exchange.reset === "after request") {
        socket.resetAndDestroy();
      }
    });
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const headEnd = received.indexOf("\r\n\r\n");
      if (headEnd < 0) {
        return;
      }
      if (status === "") {
        status = /^HTTP\/1\.1 (\d{3}) /.exec(received.toString("latin1"))?.[1] ?? "garbled";
        seen = status;
        if (exchange.reset === "after response") {
          socket.resetAndDestroy();
          return;
        }
        if (status === "101" && exchange.afterUpgrade !== undefined) {
          socket.write(exchange.afterUpgrade);
        }
      }
      const frames = received.subarray(headEnd + 4);
      if (frames.length >= 4 && frames[0] === 0x88) {
        seen = `${status}, close ${frames.readUInt16BE(2)}`;
        socket.destroy();
      }
    });
  });
}

/** What `snapkeep serve ARGS` printed and how it ended; stopped if it starts serving instead. */
function runServe(
  home: string,
  args: readonly string[],
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn("node", [join(repo, "bin/snapkeep.js"), "serve", ...args], {
      env: { ...process.env, SNAPKEEP_HOME: home },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("Snapkeep is at")) {
        child.kill("SIGTERM");
      }
    });
    child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
    child.on("close", (code) => resolve({ code, out, err }));
  });
}

/** Ends a server this test started and waits until it is gone. */
async function stop(server: ChildProcess | undefined): Promise<void> {
  if (server === undefined || server.exitCode !== null || server.signalCode !== null) {
    return;
  }
  const exited = new Promise((resolve) => server.once("exit", resolve));
  server.kill("SIGTERM");
  await exited;
}

/** An API client as the page is one: token in the query, Origin of the page. */
class ApiSocket {
  #nextId = 1;
  private constructor(private readonly ws: WebSocket) {}

  static open(origin: string, token: string): Promise<ApiSocket> {
    const ws = new WebSocket(`${origin.replace(/^http/, "ws")}/api?token=${token}`, {
      headers: { Origin: origin },
    });
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(new ApiSocket(ws)));
      ws.once("error", reject);
    });
  }

  /** One call; resolves with its answer, the id (matched here) left out: { result } or { error }. */
  call(method: string, params: Record<string, unknown>): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const onMessage = (data: WebSocket.RawData): void => {
        const { id: answered, ...answer } = JSON.parse(data.toString()) as Record<string, unknown>;
        if (answered === id) {
          this.ws.off("message", onMessage).off("close", onClose);
          resolve(answer);
        }
      };
      const onClose = (): void => reject(new Error(`the API socket closed before answering ${method}`));
      this.ws.on("message", onMessage).on("close", onClose);
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.ws.once("close", () => resolve());
      this.ws.close();
    });
  }
}

describe("snapkeep serve survives its clients", () => {
  const home = mkdtempSync(join(tmpdir(), "snapkeep-serve-fuzz-"));
  let server: ChildProcess | undefined;
  let port = 0;
  let token = "";
  let origin = "";
  const here = { name: "here", kind: "local", uri: "qemu:///system" };
  /** The answer to hosts.list once `here` was added: every later hosts.list must equal it. */
  let hostsAnswer: unknown;

  /** The server process is alive, answers an API call and serves the page. */
  const expectServing = async (after: string): Promise<void> => {
    expect(server?.exitCode, `exit code after ${after}`).toBeNull();
    expect(server?.signalCode, `signal after ${after}`).toBeNull();
    const api = await ApiSocket.open(origin, token);
    expect(await api.call("hosts.list", {}), `hosts.list after ${after}`).toEqual(hostsAnswer);
    await api.close();
    const page = await fetch(`${origin}/`);
    expect(page.status, `GET / after ${after}`).toBe(200);
    expect(await page.text()).toContain('<div id="root"></div>');
  };

  beforeAll(async () => {
    let url: string;
    ({ server, url } = await startServe(repo, home));
    origin = url.replace(/\/#token=.*/, "");
    token = url.slice(url.indexOf("#token=") + "#token=".length);
    port = Number(new URL(origin).port);
    const api = await ApiSocket.open(origin, token);
    expect(await api.call("hosts.add", { name: "here", local: true })).toMatchObject({
      result: { host: here },
    });
    hostsAnswer = await api.call("hosts.list", {});
    expect(hostsAnswer).toMatchObject({ result: expect.arrayContaining([here]) });
    await api.close();
  });

  afterAll(async () => {
    await stop(server);
    rmSync(home, { recursive: true, force: true });
  });

  it("closes only the offending connection, for every malformed frame and reset, round after round", async () => {
    const upgrade = (withToken: boolean, path = `/api?token=${withToken ? token : "not-the-token"}`) =>
      [
        `GET ${path} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        `Origin: http://127.0.0.1:${port}`,
        "Upgrade: websocket",
        "Connection: Upgrade",
        `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`,
        "Sec-WebSocket-Version: 13",
        "",
        "",
      ].join("\r\n");
    const hostsList = frame({
      opcode: TEXT,
      payload: Buffer.from(JSON.stringify({ id: 1, method: "hosts.list", params: {} })),
    });
    const attacks: { name: string; exchange: () => Exchange; seen: string }[] = [
      ...MALFORMED.flatMap((malformed) => [
        {
          name: `${malformed.name}, with the token`,
          exchange: () => ({ request: upgrade(true), afterUpgrade: malformed.bytes() }),
          seen: `101, close ${malformed.closeCode}`,
        },
        {
          name: `${malformed.name}, without the token`,
          exchange: () => ({ request: upgrade(false), pipelined: malformed.bytes() }),
          seen: "401",
        },
      ]),
      ...[true, false].flatMap((withToken) => {
        const which = withToken ? "with the token" : "without the token";
        return [
          {
            name: `a reset right after the upgrade request, ${which}`,
            exchange: (): Exchange => ({ request: upgrade(withToken), reset: "after request" }),
            seen: "no answer",
          },
          {
            name: `a reset right after the answer to the upgrade request, ${which}`,
            exchange: (): Exchange => ({ request: upgrade(withToken), reset: "after response" }),
            seen: withToken ? "101" : "401",
          },
        ];
      }),
      {
        name: "a reset with an API call in flight",
        exchange: () => ({ request: upgrade(true), pipelined: hostsList, reset: "after response" }),
        seen: "101",
      },
      {
        name: "a reset halfway through the upgrade request's headers",
        exchange: () => ({ request: upgrade(true).slice(0, 60), reset: "after request" }),
        seen: "no answer",
      },
      {
        name: "an upgrade request ws refuses (no key), with the token, then a reset",
        exchange: () => ({
          request: upgrade(true).replace(/Sec-WebSocket-Key: .*\r\n/, ""),
          reset: "after response",
        }),
        seen: "400",
      },
      {
        name: "an upgrade request for a URL that does not parse, then a reset",
        exchange: () => ({ request: upgrade(true, "//"), reset: "after response" }),
        seen: "400",
      },
      {
        name: "a reset right after a request for the page",
        exchange: () => ({
          request: `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`,
          reset: "after request",
        }),
        seen: "no answer",
      },
      {
        name: "bytes that are not HTTP",
        exchange: () => ({ request: Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x0d, 0x0a, 0x0d, 0x0a]) }),
        seen: "400",
      },
    ];

    // A well-behaved client connected all along keeps its connection through all of it.
    const bystander = await ApiSocket.open(origin, token);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const attack of attacks) {
        const what = `${attack.name} (round ${round})`;
        expect(await play(port, attack.exchange()), what).toBe(attack.seen);
        await expectServing(what);
      }
    }
    expect(await bystander.call("hosts.list", {})).toEqual(hostsAnswer);
    await bystander.close();
  });

  it("never lets a browser cache the page, and lets it keep each hashed asset (and its compiled code) for good", async () => {
    const page = await fetch(`${origin}/`);
    expect(page.headers.get("cache-control")).toBe("no-store");
    const assets = [...(await page.text()).matchAll(/(?:src|href)="\.(\/assets\/[^"]+)"/g)].map((m) => m[1]);
    expect(assets.length, "the page names its script and its style sheet").toBeGreaterThanOrEqual(2);
    for (const asset of assets) {
      const answer = await fetch(`${origin}${asset}`);
      expect(answer.status, asset).toBe(200);
      expect(answer.headers.get("cache-control"), asset).toBe("public, max-age=31536000, immutable");
      expect(answer.headers.get("content-security-policy"), asset).toContain("default-src 'none'");
    }
    // A download link answers once, from a files.download call; a made-up one says so, uncached.
    for (const ticket of ["0".repeat(32), "A".repeat(32), "x"]) {
      const download = await fetch(`${origin}/download/${ticket}`);
      expect(download.status, ticket).toBe(404);
      expect(download.headers.get("cache-control")).toBe("no-store");
      expect(download.headers.get("content-disposition")).toBeNull();
    }
    expect((await fetch(`${origin}/download/${"0".repeat(32)}`, { method: "POST" })).status).toBe(405);
    // A file that is not the bundler's is never cached for good, even under assets/.
    const missing = await fetch(`${origin}/assets/not-hashed.js`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get("cache-control")).toBe("no-store");
  });

  it("refuses to listen beyond this computer without a login, and says how to set one or use an SSH tunnel", async () => {
    for (const host of ["0.0.0.0", "::", "192.0.2.1", "example.com"]) {
      const { code, out, err } = await runServe(home, ["--host", host]);
      expect(out, host).toBe("");
      expect(code, host).toBe(1);
      expect(err, host).toContain(
        `The UI on ${host} would be reachable from other computers, so it needs a login`,
      );
      expect(err, host).toContain("`snapkeep serve passwd`");
      expect(err, host).toContain("`ssh -L 8484:127.0.0.1:8484 user@host`");
    }
  });

  it("serves on ::1 with the address in brackets, so the printed URL and its Host header work", async () => {
    const { server: v6, url } = await startServe(repo, home, ["--host", "::1"]);
    try {
      expect(url).toMatch(/^http:\/\/\[::1\]:\d+\/#token=/);
      const v6Origin = url.replace(/\/#token=.*/, "");
      expect((await fetch(`${v6Origin}/`)).status).toBe(200);
      const api = await ApiSocket.open(v6Origin, url.slice(url.indexOf("#token=") + "#token=".length));
      expect(await api.call("hosts.list", {})).toEqual(hostsAnswer);
      await api.close();
    } finally {
      await stop(v6);
    }
  });

  it("says in one sentence that the port is in use, and the server already there goes on", async () => {
    const { code, out, err } = await runServe(home, ["--port", String(port)]);
    expect(out).toBe("");
    expect(code).toBe(1);
    expect(err).toBe(
      `snapkeep: Port ${port} on 127.0.0.1 is in use (by another snapkeep serve, or another program); choose another with --port, or --port 0 for any free one.\n`,
    );
    await expectServing("a second serve on its port");
  });
});

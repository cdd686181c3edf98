/**
 * The NBD server's protocol (drivers/nbd/protocol.ts) and the export browse's argv builders, as
 * pure logic: the handshake qemu does (fixed newstyle, NBD_OPT_GO), reads bounded by the export,
 * writes refused, anything not understood ends the connection. The same server is read by real
 * QEMU in test/integration/nbd-chain.test.ts.
 */
import { describe, expect, it } from "vitest";

import { MAX_REQUEST_BYTES, NbdConnection } from "../../core/drivers/nbd/protocol.js";
import { withPinnedHead } from "../../core/infra/block-source.js";
import { blockReaderArgs, readerRequest } from "../../core/drivers/sh/block-reader.js";
import { chainBlockdevArgs, filesSessionArgs } from "../../core/drivers/sh/files-script.js";
import { activateArgs, setReadOnlyArgs } from "../../core/drivers/lvm/args.js";

const IHAVEOPT = 0x49484156454f5054n;

function option(type: number, data: Buffer): Buffer {
  const head = Buffer.alloc(16);
  head.writeBigUInt64BE(IHAVEOPT, 0);
  head.writeUInt32BE(type, 8);
  head.writeUInt32BE(data.length, 12);
  return Buffer.concat([head, data]);
}

function go(name: string): Buffer {
  const n = Buffer.from(name);
  const data = Buffer.alloc(4 + n.length + 2);
  data.writeUInt32BE(n.length, 0);
  n.copy(data, 4);
  data.writeUInt16BE(0, 4 + n.length);
  return option(7, data);
}

function request(type: number, cookie: number, offset: bigint, length: number): Buffer {
  const r = Buffer.alloc(28);
  r.writeUInt32BE(0x25609513, 0);
  r.writeUInt16BE(type, 6);
  r.writeBigUInt64BE(BigInt(cookie), 8);
  r.writeBigUInt64BE(offset, 16);
  r.writeUInt32BE(length, 24);
  return r;
}

function connect(size = 1 << 20) {
  const sent: Buffer[] = [];
  const reads: [number, number, number][] = [];
  const closed: (string | null)[] = [];
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) {
    data[i] = i & 0xff;
  }
  const connection = new NbdConnection({
    exports: [
      { name: "0", size },
      { name: "1", size: 512 },
    ],
    read: (index, offset, length) => {
      reads.push([index, offset, length]);
      return Promise.resolve(data.subarray(offset, offset + length));
    },
    send: (b) => sent.push(b),
    close: (why) => closed.push(why),
  });
  const out = (): Buffer => Buffer.concat(sent.splice(0));
  return { connection, out, reads, closed };
}

/** Past the greeting and the client flags, then GO on export `name`. */
function ready(name = "0") {
  const c = connect();
  const greeting = c.out();
  expect(greeting.subarray(0, 8).toString()).toBe("NBDMAGIC");
  expect(greeting.readBigUInt64BE(8)).toBe(IHAVEOPT);
  expect(greeting.readUInt16BE(16)).toBe(3);
  const flags = Buffer.alloc(4);
  flags.writeUInt32BE(3, 0);
  c.connection.feed(flags);
  c.connection.feed(go(name));
  return c;
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("the NBD server's protocol", () => {
  it("answers GO with the export's size and read-only flags, then serves reads by cookie", async () => {
    const c = ready("1");
    const replies = c.out();
    // REP_INFO (export), REP_INFO (block sizes), REP_ACK.
    expect(replies.readUInt32BE(12)).toBe(3);
    expect(replies.readUInt16BE(20)).toBe(0);
    expect(replies.readBigUInt64BE(22)).toBe(512n);
    expect(replies.readUInt16BE(30) & 2).toBe(2);
    expect(replies.readUInt32BE(replies.length - 8)).toBe(1);
    // A request in two pieces: the frame is taken whole.
    const r = request(0, 77, 100n, 10);
    c.connection.feed(r.subarray(0, 5));
    c.connection.feed(r.subarray(5));
    await settle();
    const reply = c.out();
    expect(reply.readUInt32BE(0)).toBe(0x67446698);
    expect(reply.readUInt32BE(4)).toBe(0);
    expect(reply.readBigUInt64BE(8)).toBe(77n);
    expect(reply.length).toBe(16 + 10);
    expect(c.reads).toEqual([[1, 100, 10]]);
  });

  it("refuses reads past the end or too large, and writes, without reading", async () => {
    const c = ready();
    c.out();
    c.connection.feed(request(0, 1, BigInt((1 << 20) - 4), 8));
    c.connection.feed(request(0, 2, 0n, MAX_REQUEST_BYTES + 1));
    c.connection.feed(request(0, 3, 0n, 0));
    const write = request(1, 4, 0n, 4);
    c.connection.feed(Buffer.concat([write, Buffer.from("evil")]));
    await settle();
    const out = c.out();
    const errors = [0, 1, 2, 3].map((i) => [out.readBigUInt64BE(i * 16 + 8), out.readUInt32BE(i * 16 + 4)]);
    expect(errors).toEqual([
      [1n, 22],
      [2n, 22],
      [3n, 22],
      [4n, 1],
    ]);
    expect(c.reads).toEqual([]);
    // After the refused write, the connection still serves the next request.
    c.connection.feed(request(0, 5, 0n, 4));
    await settle();
    expect(c.out().subarray(16)).toEqual(Buffer.from([0, 1, 2, 3]));
  });

  it("gives EIO when a read fails or comes back short, and goes on", async () => {
    const errors: unknown[] = [];
    const sent: Buffer[] = [];
    let calls = 0;
    const c = new NbdConnection({
      exports: [{ name: "0", size: 4096 }],
      read: () =>
        ++calls === 1 ? Promise.reject(new Error("target gone")) : Promise.resolve(Buffer.alloc(3)),
      send: (b) => sent.push(b),
      close: () => undefined,
      onReadError: (e) => errors.push(e),
    });
    c.feed(Buffer.from([0, 0, 0, 1]));
    c.feed(go(""));
    sent.splice(0);
    c.feed(request(0, 9, 0n, 8));
    c.feed(request(0, 10, 0n, 8));
    await settle();
    const out = Buffer.concat(sent);
    expect(out.readUInt32BE(4)).toBe(5);
    expect(out.readUInt32BE(20)).toBe(5);
    expect(errors).toHaveLength(2);
  });

  it("answers reads in flight before it ends on a disconnect", async () => {
    const c = ready();
    c.out();
    c.connection.feed(Buffer.concat([request(0, 1, 0n, 4), request(2, 2, 0n, 0)]));
    expect(c.closed).toEqual([]);
    await settle();
    expect(c.out().readBigUInt64BE(8)).toBe(1n);
    expect(c.closed).toEqual([null]);
  });

  it("serves a checked header, whatever the source says the second time", async () => {
    const source = {
      size: 8192,
      read: (_offset: number, length: number) => Promise.resolve(Buffer.alloc(length, 0xee)),
    };
    const head = Buffer.alloc(4096, 0x11);
    const pinned = withPinnedHead(source, head);
    expect([...(await pinned.read(4090, 12))]).toEqual([...Array(6).fill(0x11), ...Array(6).fill(0xee)]);
    expect((await pinned.read(0, 4096)).equals(head)).toBe(true);
    expect((await pinned.read(4096, 4)).equals(Buffer.alloc(4, 0xee))).toBe(true);
  });

  it("ends the connection on what it does not understand", () => {
    const badFlags = connect();
    badFlags.connection.feed(Buffer.from([0, 0, 0, 0]));
    expect(badFlags.closed).toHaveLength(1);

    const hugeOption = connect();
    hugeOption.connection.feed(Buffer.from([0, 0, 0, 1]));
    const head = option(7, Buffer.alloc(0));
    head.writeUInt32BE(1 << 20, 12);
    hugeOption.connection.feed(head);
    expect(hugeOption.closed[0]).toMatch(/option of 1048576 bytes/);

    const noMagic = ready();
    noMagic.connection.feed(Buffer.alloc(28));
    expect(noMagic.closed[0]).toMatch(/without its magic/);

    const unknown = connect();
    unknown.out();
    unknown.connection.feed(Buffer.from([0, 0, 0, 1]));
    unknown.connection.feed(go("/etc/passwd"));
    // NBD_REP_ERR_UNKNOWN, and still in option haggling (nothing served).
    expect(unknown.out().readUInt32BE(12)).toBe(0x80000006);
    unknown.connection.feed(request(0, 1, 0n, 4));
    expect(unknown.reads).toEqual([]);
  });
});

describe("the export browse's argv", () => {
  it("asks the block reader for whole 4 KiB blocks, the last one as long as the file is", () => {
    expect(readerRequest(0, 0, 72, 1_000_000)).toEqual({ line: "1 0 1\n", from: 0, expected: 4096 });
    expect(readerRequest(2, 4095, 2, 1_000_000)).toEqual({ line: "3 0 2\n", from: 0, expected: 8192 });
    expect(readerRequest(0, 8192, 4096, 10_000)).toEqual({ line: "1 2 1\n", from: 8192, expected: 1808 });
    // The files are arguments after the marker, never part of the script.
    const args = blockReaderArgs("M", ["/t/a b/vda.qcow2", "-x"]);
    expect(args.slice(0, 2)).toEqual(["sh", "-c"]);
    expect(args.slice(3)).toEqual(["snapkeep-read", "M", "/t/a b/vda.qcow2", "-x"]);
  });

  it("gives qemu-storage-daemon the chain node by node, the base with no backing", () => {
    const args = chainBlockdevArgs("/tmp/x,y/nbd.sock", 2);
    const nodes = args.filter((_, i) => i % 2 === 1).map((a) => JSON.parse(a) as Record<string, unknown>);
    expect(args.filter((_, i) => i % 2 === 0)).toEqual([
      "--blockdev",
      "--blockdev",
      "--blockdev",
      "--blockdev",
    ]);
    expect(nodes).toEqual([
      {
        driver: "nbd",
        "node-name": "f1",
        server: { type: "unix", path: "/tmp/x,y/nbd.sock" },
        export: "1",
        "read-only": true,
      },
      { driver: "qcow2", "node-name": "l1", file: "f1", backing: null, "read-only": true },
      {
        driver: "nbd",
        "node-name": "f0",
        server: { type: "unix", path: "/tmp/x,y/nbd.sock" },
        export: "0",
        "read-only": true,
      },
      { driver: "qcow2", "node-name": "l0", file: "f0", backing: "l1", "read-only": true },
    ]);
    expect(() => chainBlockdevArgs("/s", 0)).toThrow(RangeError);
    expect(filesSessionArgs({ kind: "chain", socket: "/s", links: 1 }, () => "").slice(3, 5)).toEqual([
      "snapkeep-files",
      "chain",
    ]);
  });

  it("marks an activated snapshot's device read-only in the kernel, its LV's permission untouched", () => {
    expect(setReadOnlyArgs("/dev/vgsk/-odd")).toEqual(["blockdev", "--setro", "/dev/vgsk/-odd"]);
    expect(() => setReadOnlyArgs("-v")).toThrow(RangeError);
    expect(activateArgs("vg", "lv", true)).not.toContain("--permission");
  });
});

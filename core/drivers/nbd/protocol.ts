/**
 * The server half of the NBD protocol (the "fixed newstyle" handshake and simple replies, as in
 * the protocol's doc/proto.md), read-only, for one thing: letting qemu-nbd on this computer read
 * an export's images that live on a target, a byte range at a time, without copying them here
 * first (a browse of a 100 GiB export reads megabytes).
 *
 * Pure: bytes in through `feed`, bytes out through `send`, reads through `read`. The client is
 * qemu-nbd, started by Snapkeep, but the bytes it asks for are a target's: every request is
 * bounded (option data, read length, offset + length within the export), a write is refused,
 * and anything not understood ends the connection.
 */

const NBDMAGIC = Buffer.from("NBDMAGIC", "latin1");
const IHAVEOPT = 0x49484156454f5054n;
const OPTION_REPLY_MAGIC = 0x0003e889045565a9n;
const REQUEST_MAGIC = 0x25609513;
const SIMPLE_REPLY_MAGIC = 0x67446698;

const FLAG_FIXED_NEWSTYLE = 1;
const FLAG_NO_ZEROES = 2;

const OPT_EXPORT_NAME = 1;
const OPT_ABORT = 2;
const OPT_LIST = 3;
const OPT_INFO = 6;
const OPT_GO = 7;

const REP_ACK = 1;
const REP_SERVER = 2;
const REP_INFO = 3;
const REP_ERR_UNSUP = 0x80000001;
const REP_ERR_INVALID = 0x80000003;
const REP_ERR_UNKNOWN = 0x80000006;

const INFO_EXPORT = 0;
const INFO_BLOCK_SIZE = 3;

/** Has flags, read-only, can serve several connections at once (nothing changes). */
const TRANSMISSION_FLAGS = 1 | 2 | (1 << 8);

const CMD_READ = 0;
const CMD_WRITE = 1;
const CMD_DISC = 2;
const CMD_FLUSH = 3;

const EPERM = 1;
const EIO = 5;
const EINVAL = 22;

/** The longest option a client may send (an export name and a few info requests). */
const MAX_OPTION_BYTES = 4096;
/** The longest read or write a request may ask for: QEMU's own limit. */
export const MAX_REQUEST_BYTES = 32 * 1024 * 1024;

export interface NbdExport {
  readonly name: string;
  readonly size: number;
}

export interface NbdConnectionHooks {
  readonly exports: readonly NbdExport[];
  /** The bytes of `length` at `offset` of export `index`: exactly that many, or a rejection. */
  readonly read: (index: number, offset: number, length: number) => Promise<Buffer>;
  readonly send: (bytes: Buffer) => void;
  /** The connection is over (the client left, or said something this server does not accept). */
  readonly close: (why: string | null) => void;
  /** A read that failed: its error, for the browse to report (the client gets EIO). */
  readonly onReadError?: (error: unknown) => void;
}

type Phase = "client-flags" | "options" | "transmission" | "closed";

/** One client's connection: starts by sending the server's greeting. */
export class NbdConnection {
  #phase: Phase = "client-flags";
  #buffer: Buffer = Buffer.alloc(0);
  #noZeroes = false;
  #export = -1;
  /** Replies go out whole and in the order they finish; a reply is never interleaved. */
  #inFlight = 0;
  #disconnecting = false;

  constructor(private readonly hooks: NbdConnectionHooks) {
    const greeting = Buffer.alloc(18);
    NBDMAGIC.copy(greeting, 0);
    greeting.writeBigUInt64BE(IHAVEOPT, 8);
    greeting.writeUInt16BE(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES, 16);
    hooks.send(greeting);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  feed(chunk: Buffer): void {
    if (this.#phase === "closed") {
      return;
    }
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      const before = this.#buffer.length;
      if (this.#phase === "client-flags") {
        this.#clientFlags();
      } else if (this.#phase === "options") {
        this.#option();
      } else if (this.#phase === "transmission") {
        this.#request();
      }
      if ((this.#phase as Phase) === "closed" || this.#buffer.length === before) {
        return;
      }
    }
  }

  #end(why: string | null): void {
    if (this.#phase !== "closed") {
      this.#phase = "closed";
      this.#buffer = Buffer.alloc(0);
      this.hooks.close(why);
    }
  }

  #clientFlags(): void {
    if (this.#buffer.length < 4) {
      return;
    }
    const flags = this.#buffer.readUInt32BE(0);
    this.#buffer = this.#buffer.subarray(4);
    if ((flags & FLAG_FIXED_NEWSTYLE) === 0 || (flags & ~(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)) !== 0) {
      this.#end(`the NBD client sent flags ${flags} this server does not take`);
      return;
    }
    this.#noZeroes = (flags & FLAG_NO_ZEROES) !== 0;
    this.#phase = "options";
  }

  #option(): void {
    if (this.#buffer.length < 16) {
      return;
    }
    if (this.#buffer.readBigUInt64BE(0) !== IHAVEOPT) {
      this.#end("the NBD client sent an option without its magic");
      return;
    }
    const option = this.#buffer.readUInt32BE(8);
    const length = this.#buffer.readUInt32BE(12);
    if (length > MAX_OPTION_BYTES) {
      this.#end(`the NBD client sent an option of ${length} bytes`);
      return;
    }
    if (this.#buffer.length < 16 + length) {
      return;
    }
    const data = this.#buffer.subarray(16, 16 + length);
    this.#buffer = this.#buffer.subarray(16 + length);
    switch (option) {
      case OPT_EXPORT_NAME: {
        const index = this.#exportNamed(data.toString("latin1"));
        if (index < 0) {
          // This option has no error reply: the connection just ends.
          this.#end("the NBD client asked for an export that is not served");
          return;
        }
        const reply = Buffer.alloc(this.#noZeroes ? 10 : 134);
        reply.writeBigUInt64BE(BigInt(this.hooks.exports[index]?.size ?? 0), 0);
        reply.writeUInt16BE(TRANSMISSION_FLAGS, 8);
        this.hooks.send(reply);
        this.#export = index;
        this.#phase = "transmission";
        return;
      }
      case OPT_ABORT:
        this.#reply(option, REP_ACK);
        this.#end(null);
        return;
      case OPT_LIST:
        if (data.length > 0) {
          this.#reply(option, REP_ERR_INVALID);
          return;
        }
        for (const e of this.hooks.exports) {
          const name = Buffer.from(e.name, "latin1");
          const entry = Buffer.alloc(4 + name.length);
          entry.writeUInt32BE(name.length, 0);
          name.copy(entry, 4);
          this.#reply(option, REP_SERVER, entry);
        }
        this.#reply(option, REP_ACK);
        return;
      case OPT_INFO:
      case OPT_GO:
        this.#infoOrGo(option, data);
        return;
      default:
        this.#reply(option, REP_ERR_UNSUP);
    }
  }

  #infoOrGo(option: number, data: Buffer): void {
    const nameLength = data.length >= 4 ? data.readUInt32BE(0) : -1;
    const infos = nameLength >= 0 && data.length >= 6 + nameLength ? data.readUInt16BE(4 + nameLength) : -1;
    if (nameLength < 0 || infos < 0 || data.length !== 6 + nameLength + 2 * infos) {
      this.#reply(option, REP_ERR_INVALID);
      return;
    }
    const index = this.#exportNamed(data.subarray(4, 4 + nameLength).toString("latin1"));
    const served = this.hooks.exports[index];
    if (served === undefined) {
      this.#reply(option, REP_ERR_UNKNOWN);
      return;
    }
    const info = Buffer.alloc(12);
    info.writeUInt16BE(INFO_EXPORT, 0);
    info.writeBigUInt64BE(BigInt(served.size), 2);
    info.writeUInt16BE(TRANSMISSION_FLAGS, 10);
    this.#reply(option, REP_INFO, info);
    const sizes = Buffer.alloc(14);
    sizes.writeUInt16BE(INFO_BLOCK_SIZE, 0);
    sizes.writeUInt32BE(1, 2);
    sizes.writeUInt32BE(4096, 6);
    sizes.writeUInt32BE(MAX_REQUEST_BYTES, 10);
    this.#reply(option, REP_INFO, sizes);
    this.#reply(option, REP_ACK);
    if (option === OPT_GO) {
      this.#export = index;
      this.#phase = "transmission";
    }
  }

  /** The export named `name`; an empty name is the first one (the protocol's default export). */
  #exportNamed(name: string): number {
    return name === "" && this.hooks.exports.length > 0
      ? 0
      : this.hooks.exports.findIndex((e) => e.name === name);
  }

  #reply(option: number, type: number, data: Buffer = Buffer.alloc(0)): void {
    const head = Buffer.alloc(20);
    head.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
    head.writeUInt32BE(option, 8);
    head.writeUInt32BE(type, 12);
    head.writeUInt32BE(data.length, 16);
    this.hooks.send(Buffer.concat([head, data]));
  }

  #request(): void {
    if (this.#buffer.length < 28) {
      return;
    }
    if (this.#buffer.readUInt32BE(0) !== REQUEST_MAGIC) {
      this.#end("the NBD client sent a request without its magic");
      return;
    }
    const type = this.#buffer.readUInt16BE(6);
    const cookie = this.#buffer.subarray(8, 16);
    const offset = this.#buffer.readBigUInt64BE(16);
    const length = this.#buffer.readUInt32BE(24);
    if (type === CMD_WRITE) {
      // Read-only: the payload is taken off the wire and the write refused.
      if (length > MAX_REQUEST_BYTES) {
        this.#end("the NBD client sent a write larger than any request may be");
        return;
      }
      if (this.#buffer.length < 28 + length) {
        return;
      }
      this.#buffer = this.#buffer.subarray(28 + length);
      this.#simple(Buffer.from(cookie), EPERM);
      return;
    }
    this.#buffer = this.#buffer.subarray(28);
    switch (type) {
      case CMD_READ:
        this.#read(Buffer.from(cookie), offset, length);
        return;
      case CMD_DISC:
        // Reads still being answered are answered first (the protocol's rule), then it ends.
        this.#disconnecting = true;
        if (this.#inFlight === 0) {
          this.#end(null);
        }
        return;
      case CMD_FLUSH:
        this.#simple(Buffer.from(cookie), 0);
        return;
      default:
        this.#simple(Buffer.from(cookie), EINVAL);
    }
  }

  #read(cookie: Buffer, offset: bigint, length: number): void {
    const size = BigInt(this.hooks.exports[this.#export]?.size ?? 0);
    if (length === 0 || length > MAX_REQUEST_BYTES || offset + BigInt(length) > size) {
      this.#simple(cookie, EINVAL);
      return;
    }
    this.#inFlight++;
    this.hooks.read(this.#export, Number(offset), length).then(
      (data) => {
        this.#inFlight--;
        if (data.length !== length) {
          this.hooks.onReadError?.(new Error(`a read gave ${data.length} bytes of ${length}`));
          this.#simple(cookie, EIO);
          return;
        }
        this.#simple(cookie, 0, data);
      },
      (error: unknown) => {
        this.#inFlight--;
        this.hooks.onReadError?.(error);
        this.#simple(cookie, EIO);
      },
    );
  }

  #simple(cookie: Buffer, error: number, data?: Buffer): void {
    if (this.#phase === "closed") {
      return;
    }
    const head = Buffer.alloc(16);
    head.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
    head.writeUInt32BE(error, 4);
    cookie.copy(head, 8);
    this.hooks.send(data === undefined ? head : Buffer.concat([head, data]));
    if (this.#disconnecting && this.#inFlight === 0) {
      this.#end(null);
    }
  }
}

/**
 * The browse session's conversation with guestfish (core/app/files.ts), against a stand-in that
 * speaks guestfish's line protocol over the runner port: output cut into chunks of every size
 * (a marker split across chunks, file bytes that look like a marker, NULs), a tar stream of
 * unknown length, guestfish ending on an error; and the UI's browse registry: one-time, short-lived
 * download tickets and at most three open browses. The real guestfish is in the integration tests.
 */
import type { Readable } from "node:stream";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";

import { Files, GuestFilesSession } from "../../core/app/files.js";
import type { Hosts } from "../../core/app/hosts.js";
import type { Vms } from "../../core/app/vms.js";
import type { VmWithSnapshots } from "../../core/domain/types.js";
import type { CommandRunner, RunOptions, RunResult } from "../../core/infra/runner/types.js";

interface FakeFile {
  readonly mode: number;
  readonly content: Buffer;
}

/** guestfish's quoted argument back to its bytes (the inverse of gfString). */
function unquote(word: string): string {
  const body = word.startsWith('"') ? word.slice(1, -1) : word;
  return Buffer.from(
    body.replace(/\\x([0-9a-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))),
    "latin1",
  ).toString("utf8");
}

/** A stand-in for the host's script + guestfish: answers each command line, in chunks of `chunk` bytes. */
class FakeGuestfish implements CommandRunner {
  readonly label = "fake host";
  readonly sessions: { ended: boolean }[] = [];
  constructor(
    private readonly files: ReadonlyMap<string, FakeFile>,
    private readonly chunk: number,
    private readonly failOn: string | null = null,
  ) {}

  run(_argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const record = { ended: false };
    this.sessions.push(record);
    const stdin = options.stdin as Readable;
    let pending = "";
    let out: Buffer[] = [];
    const send = (bytes: Buffer | string): void => {
      out.push(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
    };
    const flush = (): void => {
      const all = Buffer.concat(out);
      out = [];
      for (let at = 0; at < all.length; at += this.chunk) {
        // As the runners do: piped to stdoutTo (never collected) when it is given.
        const piece = all.subarray(at, at + this.chunk);
        if (options.stdoutTo !== undefined) {
          options.stdoutTo.write(piece);
        } else {
          options.onStdout?.(piece);
        }
      }
    };
    return new Promise<RunResult>((resolve) => {
      const end = (code: number, stderr = ""): void => {
        flush();
        record.ended = true;
        if (stderr !== "") {
          options.onStderr?.(Buffer.from(stderr));
        }
        resolve({ code, signal: null, stdout: "", stderr });
      };
      stdin.on("data", (data: Buffer) => {
        pending += data.toString();
        let newline = pending.indexOf("\n");
        while (newline >= 0) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          const [command = "", ...args] = line.split(" ");
          if (this.failOn !== null && command === this.failOn) {
            end(1, `*stdin*:9: libguestfs: error: ${command}: No such file or directory\n`);
            stdin.destroy();
            return;
          }
          this.#answer(command, args.map(unquote), send);
          newline = pending.indexOf("\n");
        }
        flush();
      });
      stdin.on("end", () => end(0));
    });
  }

  #answer(command: string, args: string[], send: (b: Buffer | string) => void): void {
    const [path = ""] = args;
    const file = this.files.get(path);
    const under = (dir: string): string[] =>
      [...this.files.keys()]
        .filter((p) => p !== dir && p.startsWith(dir === "/" ? "/" : `${dir}/`))
        .map((p) => p.slice(dir === "/" ? 1 : dir.length + 1))
        .filter((rest) => !rest.includes("/"));
    switch (command) {
      case "echo":
        send(`${args.join(" ")}\n`);
        return;
      case "list-filesystems":
        send("/dev/sda1: ext4\n");
        return;
      case "inspect-os":
      case "mount-ro":
        return;
      case "is-dir":
        send(`${file !== undefined && (file.mode & 0o170000) === 0o040000}\n`);
        return;
      case "exists":
        send(`${file !== undefined}\n`);
        return;
      case "is-symlink":
        send("false\n");
        return;
      case "ls0":
        send(Buffer.concat(under(path).map((n) => Buffer.from(`${n}\0`))));
        return;
      case "lstatns":
        send(
          `st_dev: 1\nst_mode: ${file?.mode ?? 0}\nst_uid: 0\nst_gid: 0\nst_size: ${file?.content.length ?? 0}\nst_mtime_sec: 1793701230\n`,
        );
        return;
      case "download":
        send(file?.content ?? Buffer.alloc(0));
        return;
      case "tar-out":
        // Stands in for a tar stream: bytes of no known length, then guestfish's next output.
        send(
          Buffer.concat(under(path).map((n) => this.files.get(`${path}/${n}`)?.content ?? Buffer.alloc(0))),
        );
        return;
      default:
        throw new Error(`the fake does not know ${command}`);
    }
  }

  dispose(): Promise<void> {
    return Promise.resolve();
  }
}

const FILE = 0o100644;
const DIR = 0o040755;
/** Bytes that look like a marker line and a NUL-separated listing: only the count frames them. */
const tricky = Buffer.concat([
  Buffer.from("SNAPKEEP_0000000000000000000000000000000\n\0\0"),
  Buffer.from([0, 255, 10, 13]),
  Buffer.alloc(70_000, 7),
]);
const tree = new Map<string, FakeFile>([
  ["/", { mode: DIR, content: Buffer.alloc(0) }],
  ["/etc", { mode: DIR, content: Buffer.alloc(0) }],
  ["/etc/new\nline", { mode: FILE, content: Buffer.from("odd") }],
  ["/etc/tricky.bin", { mode: 0o100600, content: tricky }],
  ["/empty", { mode: DIR, content: Buffer.alloc(0) }],
]);

function collect(): { stream: PassThrough; bytes: () => Buffer } {
  const stream = new PassThrough();
  const parts: Buffer[] = [];
  stream.on("data", (b: Buffer) => parts.push(b));
  return { stream, bytes: () => Buffer.concat(parts) };
}

describe("a browse session's conversation with guestfish", () => {
  for (const chunk of [1, 2, 3, 7, 64, 65_536]) {
    it(`lists and sends exact bytes when output comes in ${chunk}-byte pieces`, async () => {
      const runner = new FakeGuestfish(tree, chunk);
      const { session, mounted } = await GuestFilesSession.open(runner, {
        kind: "block",
        device: "/dev/vg/snap",
      });
      expect(mounted.mounts).toEqual([{ mountpoint: "/", device: "/dev/sda1", type: "ext4" }]);
      const listed = await session.list("/etc");
      expect(listed.map((e) => [e.name, e.type, e.size, e.mode])).toEqual([
        ["new\nline", "file", 3, FILE],
        ["tricky.bin", "file", tricky.length, 0o100600],
      ]);
      const out = collect();
      const item = await session.fetchable("/etc/tricky.bin");
      expect(await session.streamTo(item, out.stream)).toBe(tricky.length);
      expect(out.bytes().equals(tricky)).toBe(true);
      // The conversation goes on after the binary bytes: the framing held.
      expect((await session.list("/empty")).length).toBe(0);
      const archive = collect();
      const folder = await session.fetchable("/etc");
      expect(folder).toMatchObject({ kind: "archive", name: "etc.tar", size: null });
      await session.streamTo(folder, archive.stream);
      expect(archive.bytes().equals(Buffer.concat([Buffer.from("odd"), tricky]))).toBe(true);
      await session.close();
      expect(runner.sessions[0]?.ended).toBe(true);
    });
  }

  it("refuses a path it does not understand, and what the snapshot does not have", async () => {
    const { session } = await GuestFilesSession.open(new FakeGuestfish(tree, 5), {
      kind: "block",
      device: "/dev/vg/snap",
    });
    await expect(session.list("/etc/../root")).rejects.toMatchObject({ code: "INVALID_INPUT" });
    await expect(session.list("/nope")).rejects.toMatchObject({
      code: "NOT_FOUND",
      message: "/nope is not in that snapshot.",
    });
    await expect(session.list("/etc/tricky.bin")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await session.close();
  });

  it("says guestfish's own error when it ends, and every later call gets it too", async () => {
    const { session } = await GuestFilesSession.open(new FakeGuestfish(tree, 5, "ls0"), {
      kind: "block",
      device: "/dev/vg/snap",
    });
    const failed = session.list("/etc");
    await expect(failed).rejects.toMatchObject({
      code: "COMMAND_FAILED",
      message: "libguestfs: ls0: No such file or directory",
    });
    await expect(session.list("/")).rejects.toMatchObject({ code: "COMMAND_FAILED" });
    await session.close();
  });
});

describe("the UI's browses", () => {
  const vm = {
    host: "h",
    name: "web",
    uuid: "u",
    disks: [{ target: "vda", role: "root", source: "/dev/vg/web", format: "raw", type: "block" }],
    snapshots: [
      {
        tag: "snapkeep:manual:t",
        name: "tuesday",
        disks: [{ target: "vda", imageSnapshotId: "x", lv: { thin: false, path: "/dev/vg/web-snap" } }],
      },
    ],
  } as unknown as VmWithSnapshots;

  function files(runner: FakeGuestfish, now: { ms: number }): Files {
    return new Files({
      vms: { get: () => Promise.resolve(vm) } as unknown as Vms,
      hosts: { libvirt: () => ({ runner }) } as unknown as Hosts,
      now: () => new Date(now.ms),
    });
  }

  it("answers a download ticket once, and not after two minutes", async () => {
    const now = { ms: Date.parse("2026-12-07T10:00:00Z") };
    const browses = files(new FakeGuestfish(tree, 11), now);
    const { session } = await browses.open({ host: "h", vm: "web", snapshot: "tuesday" });
    const first = await browses.ticket(session, "/etc/tricky.bin");
    expect(first).toMatchObject({ name: "tricky.bin", kind: "file", size: tricky.length });
    const taken = browses.take(first.ticket);
    expect(taken).not.toBeNull();
    expect(browses.take(first.ticket)).toBeNull();
    const out = collect();
    expect(await taken?.send(out.stream)).toBe(tricky.length);
    // A ticket whose browse closed before the download: the send rejects (the download fails).
    const orphan = await browses.ticket(session, "/etc/tricky.bin");
    const taking = browses.take(orphan.ticket);
    const other = await browses.open({ host: "h", vm: "web", snapshot: "tuesday" });
    await browses.close(session);
    await expect(taking?.send(collect().stream)).rejects.toMatchObject({ code: "NOT_FOUND" });
    const late = await browses.ticket(other.session, "/etc/new\nline");
    now.ms += 2 * 60_000 + 1;
    expect(browses.take(late.ticket)).toBeNull();
    expect(browses.take("0".repeat(32))).toBeNull();
    await browses.dispose();
  });

  it("keeps three browses open at most: a fourth closes the one used longest ago", async () => {
    const runner = new FakeGuestfish(tree, 11);
    const browses = files(runner, { ms: 0 });
    const opened = [];
    for (let i = 0; i < 3; i++) {
      opened.push((await browses.open({ host: "h", vm: "web", snapshot: "tuesday" })).session);
    }
    // The first is used again: the second is now the one used longest ago.
    await browses.browse(opened[0] ?? "", "/");
    await browses.open({ host: "h", vm: "web", snapshot: "tuesday" });
    expect(runner.sessions.map((s) => s.ended)).toEqual([false, true, false, false]);
    await expect(browses.browse(opened[1] ?? "", "/")).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect((await browses.browse(opened[0] ?? "", "/etc")).entries).toHaveLength(2);
    await browses.dispose();
    expect(runner.sessions.every((s) => s.ended)).toBe(true);
  });
});

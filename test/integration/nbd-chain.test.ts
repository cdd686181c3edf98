/**
 * An export's qcow2 chain read where it is (issue 19, browsing an export): Snapkeep's NBD server
 * serving the images (a file here through its descriptor, or the block reader's dd over a command
 * runner), and real QEMU (`qemu-img convert --image-opts`, as qemu-nbd is given the chain in a
 * browse) reading the chain link by link. The bytes must be the chain's, byte for byte, whatever
 * a link's header names as its backing file; a file that changes under the reader fails the read.
 */
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { chainBlockdevArgs } from "../../core/drivers/sh/files-script.js";
import { openLocalBlocks, RemoteBlockReader } from "../../core/infra/block-source.js";
import { serveNbd } from "../../core/infra/nbd-server.js";
import { LocalRunner } from "../../core/infra/runner/local.js";

const MiB = 1024 * 1024;

function qemuIo(image: string, ...commands: string[]): void {
  execFileSync("qemu-io", ["-f", "qcow2", ...commands.flatMap((c) => ["-c", c]), image], {
    stdio: "ignore",
  });
}

describe("an export's chain served over NBD to QEMU", () => {
  const work = mkdtempSync(join(tmpdir(), "snapkeep-nbd-test-"));
  // As on a target: <id>/vda.qcow2, a link naming ../<basis>/vda.qcow2.
  const base = join(work, "e1", "vda.qcow2");
  const mid = join(work, "e2", "vda.qcow2");
  const top = join(work, "e3", "vda.qcow2");
  const expected = join(work, "expected.raw");
  const runner = new LocalRunner();

  beforeAll(() => {
    for (const d of ["e1", "e2", "e3"]) {
      mkdirSync(join(work, d));
    }
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", base, "16M"]);
    qemuIo(base, "write -P 0x11 0 16M");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "../e1/vda.qcow2", "-F", "qcow2", mid]);
    qemuIo(mid, "write -P 0x22 1M 64k", "write -P 0x23 5M 3M");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "../e2/vda.qcow2", "-F", "qcow2", top]);
    qemuIo(top, "write -P 0x33 6M 128k", "write -z 15M 1M");
    execFileSync("qemu-img", ["convert", "-f", "qcow2", "-O", "raw", top, expected]);
  });

  afterAll(async () => {
    await runner.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  /**
   * The chain as a browse opens it: qemu-storage-daemon with the links' nodes, its top exported
   * over NBD, read whole by qemu-img. Asynchronously: the server answering QEMU is this process.
   */
  async function readChain(socket: string, links: number, out: string): Promise<void> {
    const dir = mkdtempSync(join(work, "qsd-"));
    const run = promisify(execFile);
    await run("qemu-storage-daemon", [
      "--daemonize",
      "--pidfile",
      join(dir, "pid"),
      ...chainBlockdevArgs(socket, links),
      "--nbd-server",
      `addr.type=unix,addr.path=${join(dir, "sock")}`,
      "--export",
      "type=nbd,id=top,node-name=l0,name=top,writable=off",
    ]);
    try {
      await run("qemu-img", [
        "convert",
        "-f",
        "raw",
        `nbd+unix:///top?socket=${join(dir, "sock")}`,
        "-O",
        "raw",
        out,
      ]);
    } finally {
      process.kill(Number(readFileSync(join(dir, "pid"), "utf8")));
    }
  }

  it("gives QEMU the chain's bytes from files here, each link from its own export", async () => {
    const files = [top, mid, base];
    const sources = await Promise.all(files.map((f) => openLocalBlocks(f, statSync(f).size)));
    const server = await serveNbd(sources);
    try {
      const out = join(work, "local.raw");
      await readChain(server.socket, 3, out);
      expect(readFileSync(out).equals(readFileSync(expected))).toBe(true);
      expect(server.readError()).toBeNull();
    } finally {
      await server.close();
      await Promise.all(sources.map((s) => s.close()));
    }
    expect(() => statSync(server.socket)).toThrow();
  });

  it("gives the same bytes through the block reader (dd over a command runner)", async () => {
    const files = [top, mid, base].map((path) => ({ path, size: statSync(path).size }));
    const reader = new RemoteBlockReader(runner, files);
    await reader.ready();
    const server = await serveNbd(files.map((_, i) => reader.source(i)));
    try {
      const out = join(work, "remote.raw");
      await readChain(server.socket, 3, out);
      expect(readFileSync(out).equals(readFileSync(expected))).toBe(true);
      // Only what QEMU asked for crossed: at most the three images, far less than the disk.
      expect(reader.bytesRead).toBeGreaterThan(0);
      expect(reader.bytesRead).toBeLessThanOrEqual(files.reduce((s, f) => s + f.size, 0));
    } finally {
      await server.close();
      await reader.close();
    }
  });

  it("ignores what a link's header names: the chain is the one Snapkeep spelled out", async () => {
    // A top link whose header names a host file: with the chain spelled out, QEMU reads the base
    // through the server's export 1, never /etc/passwd.
    const hostile = join(work, "e3", "hostile.qcow2");
    execFileSync("qemu-img", [
      "create",
      "-q",
      "-f",
      "qcow2",
      "-b",
      "/etc/passwd",
      "-F",
      "raw",
      hostile,
      "16M",
    ]);
    const files = [hostile, base];
    const sources = await Promise.all(files.map((f) => openLocalBlocks(f, statSync(f).size)));
    const server = await serveNbd(sources);
    try {
      const out = join(work, "hostile.raw");
      await readChain(server.socket, 2, out);
      const bytes = readFileSync(out);
      expect(bytes.length).toBe(16 * MiB);
      expect(bytes.every((b) => b === 0x11)).toBe(true);
    } finally {
      await server.close();
      await Promise.all(sources.map((s) => s.close()));
    }
  });

  it("refuses a link that is not a regular file, and a file that shrank while it was read", async () => {
    const link = join(work, "e2", "link.qcow2");
    execFileSync("ln", ["-s", base, link]);
    await expect(openLocalBlocks(link, statSync(base).size)).rejects.toThrow(/not a regular file/);
    // A FIFO (or a device) in a target's folder is never opened: opening a FIFO would hang.
    const fifo = join(work, "e2", "fifo.qcow2");
    execFileSync("mkfifo", [fifo]);
    await expect(openLocalBlocks(fifo, 0)).rejects.toThrow(/not a regular file/);
    const linked = new RemoteBlockReader(runner, [{ path: link, size: statSync(base).size }]);
    await expect(linked.ready()).rejects.toThrow(/not a regular file/);
    await linked.close();

    const copy = join(work, "shrinks.qcow2");
    execFileSync("cp", [base, copy]);
    const size = statSync(copy).size;
    const reader = new RemoteBlockReader(runner, [{ path: copy, size }]);
    await reader.ready();
    const source = reader.source(0);
    expect((await source.read(0, 4)).toString("latin1")).toBe("QFI\xfb");
    truncateSync(copy, 8192);
    await expect(source.read(size - 65536, 65536)).rejects.toThrow(/became shorter/);
    // The reader is done after that: no later read is answered with someone else's bytes.
    await expect(source.read(0, 4)).rejects.toThrow(/became shorter/);
    await reader.close();
  });
});

/**
 * A read-only NBD server on a Unix socket in a private folder of this computer, serving block
 * sources (an export's images where they are) to qemu-nbd, which reads them as a qcow2 chain for
 * an export browse (issue 19). The protocol is drivers/nbd/protocol.ts; this is its socket.
 *
 * The folder is `snapkeep-nbd-PID-XXXX` under the temporary folder, mode 0700; one left by a
 * process that is gone (killed outright) is removed by the next server.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { NbdConnection } from "../drivers/nbd/protocol.js";
import { describeError } from "../errors.js";
import type { BlockSource } from "./block-source.js";

export interface NbdServer {
  readonly socket: string;
  /** The first read that failed, if any: why the browse saw an I/O error. */
  readonly readError: () => unknown;
  close(): Promise<void>;
}

const PREFIX = "snapkeep-nbd-";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes the folders of servers whose process is gone. */
async function sweep(): Promise<void> {
  for (const name of await readdir(tmpdir()).catch(() => [] as string[])) {
    const pid = Number(/^snapkeep-nbd-(\d+)-/.exec(name)?.[1] ?? NaN);
    if (Number.isInteger(pid) && pid !== process.pid && !alive(pid)) {
      await rm(join(tmpdir(), name), { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

/** Serves `sources` as exports named "0", "1", ... until closed. */
export async function serveNbd(sources: readonly BlockSource[]): Promise<NbdServer> {
  await sweep();
  const dir = await mkdtemp(join(tmpdir(), `${PREFIX}${process.pid}-`));
  const socket = join(dir, "nbd.sock");
  const exports = sources.map((s, i) => ({ name: String(i), size: s.size }));
  const clients = new Set<Socket>();
  let readError: unknown = null;
  const server: Server = createServer((client) => {
    clients.add(client);
    const connection = new NbdConnection({
      exports,
      read: (index, offset, length) => {
        const source = sources[index];
        return source === undefined
          ? Promise.reject(new Error("no such export"))
          : source.read(offset, length);
      },
      send: (bytes) => {
        if (!client.destroyed) {
          client.write(bytes);
        }
      },
      close: () => client.end(),
      onReadError: (error) => {
        readError ??= error;
      },
    });
    client.on("data", (chunk: Buffer) => connection.feed(chunk));
    client.on("error", () => client.destroy());
    client.on("close", () => clients.delete(client));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(socket, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`Could not serve the export's images here: ${describeError(error)}`);
  }
  return {
    socket,
    readError: () => readError,
    close: async () => {
      for (const client of clients) {
        client.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Browsing an export where it is (issue 19, `files ... --export TARGET ID`): the export's image
 * of the disk — with the exports an incremental one is built on — is read in place, a byte range
 * at a time, and only what the browse touches crosses: a config file out of a 100 GiB export on
 * a NAS is megabytes, not a restore.
 *
 * The bytes are a target's, so nothing in them chooses anything on this computer:
 * - the chain is the one the manifests name (Exports.chain), each link's header read as bytes
 *   and checked (a qcow2 with no external data file, naming exactly `../<basis>/<disk>.qcow2` as
 *   its backing, or nothing at the base) and its size against its manifest;
 * - QEMU (qemu-storage-daemon, on this computer) is given the chain node by node, each link's
 *   file an export of Snapkeep's own NBD server (infra/nbd-server.ts): no path or backing name
 *   from the target is ever opened;
 * - the file systems are read inside libguestfs' appliance, as for a snapshot.
 * Files of a folder target are read through a descriptor each (infra/block-source.ts), an SSH
 * target's by dd over its connection. Hashes are not checked before a browse (that reads every
 * byte): `exports verify` does that; a browse of a damaged export shows what the damage left.
 */
import { posix } from "node:path";

import type { FilesOpened } from "../domain/files.js";
import type { ManifestDisk } from "../drivers/bundle/bundle.js";
import { checkStandaloneHeader, HEADER_BYTES } from "../drivers/qemu-img/standalone.js";
import { SnapkeepError } from "../errors.js";
import {
  openLocalBlocks,
  RemoteBlockReader,
  withPinnedHead,
  type BlockSource,
} from "../infra/block-source.js";
import { serveNbd } from "../infra/nbd-server.js";
import { LocalRunner } from "../infra/runner/local.js";
import type { CommandRunner } from "../infra/runner/types.js";
import type { Exports } from "./exports/exports.js";
import { restorableManifest } from "./exports/steps/import-plan.js";
import { GuestFilesSession } from "./files.js";
import type { Targets } from "./targets.js";

export interface ExportBrowseRequest {
  /** The VM the export must be of (its name or UUID). */
  readonly vm: string;
  readonly target: string;
  readonly id: string;
  readonly disk?: string | undefined;
  readonly fs?: string | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface ExportBrowseDeps {
  readonly targets: Targets;
  readonly exports: Exports;
}

interface Link {
  readonly id: string;
  readonly path: string;
  readonly disk: ManifestDisk;
}

/** Opens a browse of an export's disk; closing the session stops the reading too. */
export async function openExportBrowse(
  deps: ExportBrowseDeps,
  request: ExportBrowseRequest,
): Promise<{ session: GuestFilesSession; opened: FilesOpened }> {
  const { target, entry } = await deps.exports.find(request.target, request.id);
  const manifest = restorableManifest(entry);
  const { vm, snapshot } = manifest.source;
  if (vm.name !== request.vm && vm.uuid !== request.vm) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `Export ${entry.id} on ${target.name} is of VM ${vm.name}, not ${request.vm}.`,
    );
  }
  const disk =
    request.disk === undefined
      ? (manifest.disks.find((d) => d.role === "root") ?? manifest.disks[0])
      : manifest.disks.find((d) => d.target === request.disk);
  if (disk === undefined) {
    throw new SnapkeepError("NOT_FOUND", `Export ${entry.id} has no disk ${request.disk ?? ""}.`, {
      hint: `It has: ${manifest.disks.map((d) => d.target).join(", ")}`,
    });
  }
  const below = disk.backing === undefined ? [] : await deps.exports.chain(target, entry, disk.target);
  if (below.length + 1 > MAX_LINKS) {
    throw new SnapkeepError(
      "DISK_UNSUPPORTED",
      `Export ${entry.id} is built on ${below.length} others; a browse reads at most ${MAX_LINKS} images.`,
      { hint: "Browse a full export, or restore this one." },
    );
  }
  const links: Link[] = [entry, ...below].map((e) => ({
    id: e.id,
    path: posix.join(target.path, e.folder, disk.name),
    disk: e.manifest?.disks.find((d) => d.target === disk.target) as ManifestDisk,
  }));
  const runner = deps.targets.fsOf(target).runner;
  const opened: Closer[] = [];
  try {
    const sources = await openSources(runner, links, request.signal, opened);
    const heads = await requireHeaders(links, sources);
    // QEMU reads the headers that were checked, never a second answer from the target.
    const server = await serveNbd(sources.map((s, i) => withPinnedHead(s, heads[i] as Buffer)));
    opened.unshift(() => server.close());
    const { session, mounted } = await GuestFilesSession.open(
      new LocalRunner(),
      { kind: "chain", socket: server.socket, links: links.length },
      {
        fs: request.fs,
        signal: request.signal,
        onClose: () => closeAll(opened),
        describe: () => {
          const why = server.readError();
          return why === null ? null : `reading export ${entry.id} on ${target.name} failed: ${String(why)}`;
        },
      },
    );
    return {
      session,
      opened: {
        snapshot: snapshot.name,
        disk: disk.target,
        mounts: mounted.mounts,
        export: { target: target.name, id: entry.id, links: links.length },
      },
    };
  } catch (error) {
    await closeAll(opened);
    throw error;
  }
}

type Closer = () => Promise<void>;

/** The longest chain a browse gives QEMU (retention merges chains long before this). */
const MAX_LINKS = 64;

async function closeAll(closers: readonly Closer[]): Promise<void> {
  for (const close of closers) {
    await close().catch(() => undefined);
  }
}

async function openSources(
  runner: CommandRunner,
  links: readonly Link[],
  signal: AbortSignal | undefined,
  opened: Closer[],
): Promise<BlockSource[]> {
  if (runner.isLocal === true) {
    const sources = [];
    for (const link of links) {
      const source = await openLocalBlocks(link.path, link.disk.size);
      opened.push(() => source.close());
      sources.push(source);
    }
    return sources;
  }
  const reader = new RemoteBlockReader(
    runner,
    links.map((l) => ({ path: l.path, size: l.disk.size })),
    signal,
  );
  opened.push(() => reader.close());
  await reader.ready();
  return links.map((_, i) => reader.source(i));
}

/**
 * Each link's header, read as bytes: the image its manifest describes, linked as it says.
 * Returns the bytes checked (the header and its extensions end inside them, or it is refused).
 */
async function requireHeaders(links: readonly Link[], sources: readonly BlockSource[]): Promise<Buffer[]> {
  const heads: Buffer[] = [];
  for (const [i, link] of links.entries()) {
    const source = sources[i] as BlockSource;
    const what = `${link.disk.name} of export ${link.id}`;
    const bytes = await source.read(0, Math.min(HEADER_BYTES, source.size));
    const below = links[i + 1];
    if ((below === undefined) !== (link.disk.backing === undefined)) {
      throw new SnapkeepError(
        "VERIFY_FAILED",
        `${what} does not link as its manifest says; nothing was read.`,
      );
    }
    const { virtualSize } = checkStandaloneHeader(
      bytes,
      what,
      link.disk.backing === undefined ? undefined : { backing: link.disk.backing },
      "nothing was read",
    );
    if (link.disk.virtualSize !== null && virtualSize !== link.disk.virtualSize) {
      throw new SnapkeepError(
        "VERIFY_FAILED",
        `${what} is not the image its manifest describes (virtual size ${virtualSize}, the manifest says ${link.disk.virtualSize}); nothing was read.`,
      );
    }
    heads.push(bytes);
  }
  return heads;
}

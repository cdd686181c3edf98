/**
 * File-level restore (issue 19): list and fetch files of a snapshot's disk, read-only, on the
 * VM's host, local or over SSH, through one guestfish session per browse (the appliance starts
 * once: about 15 s under software emulation, a few seconds under KVM).
 *
 * The session is a conversation on guestfish's stdin and stdout: each command is followed by
 * `echo MARKER`, a random word of this session, and its output is what comes before the marker.
 * guestfish ends at its first error, so every command is one that cannot fail on a good session:
 * a path is checked (`is-dir`, `exists`) before it is listed or read. Guest names are data
 * (drivers/guestfs/guestfish.ts quotes them); fetched files land under the folder the person
 * named, created new (never over an existing file or through a link), and a fetch that stops
 * halfway removes what it wrote.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";

import { resolveSnapshot } from "../domain/selection.js";
import type { FilesOpened, GuestEntry, GuestMount } from "../domain/files.js";
import type { Snapshot, VmWithSnapshots } from "../domain/types.js";
import {
  fileTypeOf,
  gfMarkerCommand,
  gfString,
  normalizeGuestPath,
  parseFilesystems,
  parseLs0,
  parseLstatns,
  parseMountpoints,
} from "../drivers/guestfs/guestfish.js";
import { filesScriptProblem, filesSessionArgs, type FilesSource } from "../drivers/sh/files-script.js";
import { SnapkeepError } from "../errors.js";
import { openLvSnapshotReadable } from "../hypervisor/lvm.js";
import { createNewFile } from "../infra/new-file.js";
import type { CommandRunner, RunResult } from "../infra/runner/types.js";
import type { Exports } from "./exports/exports.js";
import { openExportBrowse } from "./files-export.js";
import type { Hosts } from "./hosts.js";
import type { Targets } from "./targets.js";
import type { Vms } from "./vms.js";

/** A file or folder a fetch sends: its name on this computer, and its size when known. */
export interface Fetchable {
  readonly entry: GuestEntry;
  readonly kind: "file" | "archive";
  readonly name: string;
  /** A file's bytes; null for an archive (its size is known when it has been made). */
  readonly size: number | null;
}

export interface Mounted {
  /** What was mounted where: the guest's own layout when libguestfs found an OS, else one file system. */
  readonly mounts: readonly GuestMount[];
}

/** Longest start of the appliance before a browse is given up (software emulation is slow). */
const START_MS = 5 * 60_000;
/** File systems that hold no files to browse. */
const NOT_BROWSABLE = new Set(["swap", "unknown", "LVM2_member", "crypto_LUKS", "linux_raid_member"]);

type Pending =
  | { kind: "text"; resolve: (out: Buffer) => void; reject: (e: unknown) => void }
  | {
      kind: "stream";
      to: Writable;
      /** Bytes expected before the marker: exactly this many, or unknown (a tar stream). */
      size: number | null;
      written: number;
      onBytes: (n: number) => void;
      resolve: (written: number) => void;
      reject: (e: unknown) => void;
    };

export class GuestFilesSession {
  readonly #marker = `SNAPKEEP_${randomBytes(16).toString("hex")}`;
  readonly #input = new PassThrough();
  readonly #queue: Pending[] = [];
  #buffer: Buffer = Buffer.alloc(0);
  #stderr = "";
  #ended: Promise<RunResult>;
  #endError: unknown = null;

  #onClose: (() => Promise<void>) | undefined;
  #describe: (() => string | null) | undefined;

  private constructor(
    private readonly runner: CommandRunner,
    source: FilesSource,
    signal: AbortSignal | undefined,
  ) {
    this.#ended = runner.run(
      filesSessionArgs(source, (device) => `add-drive ${gfString(device)} format:raw readonly:true`),
      {
        stdin: this.#input,
        // Fed through, never collected: a fetch may be gigabytes.
        stdoutTo: new Writable({
          write: (chunk: Buffer, _encoding, done) => {
            this.#feed(chunk);
            done();
          },
        }),
        onStderr: (chunk) => {
          this.#stderr = (this.#stderr + chunk.toString()).slice(-8000);
        },
        ...(signal === undefined ? {} : { signal }),
      },
    );
    this.#ended.then(
      (result) => this.#fail(this.#problem(result)),
      (error: unknown) => this.#fail(error),
    );
  }

  /** Starts the appliance on the host with the disk, and mounts its file systems read-only. */
  static async open(
    runner: CommandRunner,
    source: FilesSource,
    options: {
      fs?: string | undefined;
      signal?: AbortSignal | undefined;
      /** Run once the session has ended (what served it stops). */
      onClose?: () => Promise<void>;
      /** Why the disk could not be read, when something serving it knows better than libguestfs. */
      describe?: () => string | null;
    } = {},
  ): Promise<{ session: GuestFilesSession; mounted: Mounted }> {
    const session = new GuestFilesSession(runner, source, options.signal);
    session.#onClose = options.onClose;
    session.#describe = options.describe;
    try {
      const timer = setTimeout(
        () =>
          session.#fail(
            new SnapkeepError("TIMEOUT", `libguestfs did not start on ${runner.label} in 5 minutes.`),
          ),
        START_MS,
      );
      try {
        await session.#text([]);
      } finally {
        clearTimeout(timer);
      }
      const mounted = await session.#mount(options.fs);
      return { session, mounted };
    } catch (error) {
      await session.close();
      throw error;
    }
  }

  /** A folder's entries (not followed into links), sorted by name. */
  async list(path: string): Promise<GuestEntry[]> {
    const dir = guestPath(path);
    if ((await this.#text([`is-dir ${gfString(dir)}`])).toString().trim() !== "true") {
      const exists = (await this.#text([`exists ${gfString(dir)}`])).toString().trim() === "true";
      throw new SnapkeepError(
        "NOT_FOUND",
        exists ? `${dir} is not a folder in that snapshot.` : `${dir} is not in that snapshot.`,
      );
    }
    const names = parseLs0(await this.#text([`ls0 ${gfString(dir)} /dev/stdout`]));
    const entries: GuestEntry[] = [];
    for (const name of names) {
      const full = dir === "/" ? `/${name}` : `${dir}/${name}`;
      entries.push(await this.#entry(full, name));
    }
    return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** One path's entry, or null when the snapshot has nothing there. */
  async stat(path: string): Promise<GuestEntry | null> {
    const full = guestPath(path);
    if (full !== "/" && (await this.#text([`exists ${gfString(full)}`])).toString().trim() !== "true") {
      // `exists` follows links: a dangling link is still an entry.
      if ((await this.#text([`is-symlink ${gfString(full)}`])).toString().trim() !== "true") {
        return null;
      }
    }
    return this.#entry(full, full.split("/").pop() ?? "/");
  }

  /**
   * What a fetch of `path` gives: a file as it is, a folder as a tar archive (NAME.tar); links and
   * special files are refused with what to fetch instead.
   */
  async fetchable(path: string): Promise<Fetchable> {
    const entry = await this.stat(path);
    if (entry === null) {
      throw new SnapkeepError("NOT_FOUND", `${guestPath(path)} is not in that snapshot.`);
    }
    if (entry.type !== "file" && entry.type !== "dir") {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `${entry.path} is a ${entry.type === "symlink" ? `link to ${entry.target ?? "?"}` : "special file"}; fetch what it points to, or its folder.`,
      );
    }
    const base = entry.path === "/" ? "root" : entry.name;
    return entry.type === "file"
      ? { entry, kind: "file", name: base, size: entry.size }
      : { entry, kind: "archive", name: `${base}.tar`, size: null };
  }

  /** Sends a fetchable's bytes into `to` (not ended here); resolves with how many. */
  streamTo(item: Fetchable, to: Writable, onBytes: (n: number) => void = () => undefined): Promise<number> {
    const command =
      item.kind === "file"
        ? `download ${gfString(item.entry.path)} -`
        : `tar-out ${gfString(item.entry.path)} - numericowner:true`;
    return this.#stream(command, to, item.size, onBytes);
  }

  /**
   * Copies a file (its bytes) or a folder (as a tar archive, NAME.tar) into `toDir` on this
   * computer. Never overwrites: an existing name there is an error before anything is read.
   */
  async fetch(
    path: string,
    toDir: string,
    onBytes: (n: number) => void = () => undefined,
  ): Promise<{ saved: string; bytes: number; kind: "file" | "archive" }> {
    const item = await this.fetchable(path);
    const saved = join(toDir, item.name);
    const file = await createNewFile(saved, item.kind === "file" ? item.entry.mode & 0o777 : 0o600);
    try {
      const bytes = await this.streamTo(item, file.stream, onBytes);
      await file.finish();
      return { saved, bytes, kind: item.kind };
    } catch (error) {
      await file.discard();
      throw error;
    }
  }

  /** Ends guestfish (which unmounts and stops the appliance); the host's script removes the rest. */
  async close(): Promise<void> {
    this.#input.end();
    try {
      await this.#ended;
    } catch {
      // Its error, if any, was given to whatever was waiting.
    }
    const onClose = this.#onClose;
    this.#onClose = undefined;
    await onClose?.();
  }

  // ---- internals ----------------------------------------------------------------------------------

  async #mount(fs: string | undefined): Promise<Mounted> {
    const filesystems = parseFilesystems((await this.#text(["list-filesystems"])).toString());
    const typeOf = new Map(filesystems.map((f) => [f.device, f.type]));
    if (fs !== undefined) {
      const type = typeOf.get(fs);
      if (type === undefined || NOT_BROWSABLE.has(type)) {
        throw noSuchFs(fs, filesystems);
      }
      await this.#text([`mount-ro ${gfString(fs)} /`]);
      return { mounts: [{ mountpoint: "/", device: fs, type }] };
    }
    const roots = (await this.#text(["inspect-os"]))
      .toString()
      .split("\n")
      .filter((l) => l.startsWith("/dev/"));
    const root = roots.length === 1 ? roots[0] : undefined;
    if (root !== undefined) {
      const mounts: GuestMount[] = [];
      for (const m of parseMountpoints(
        (await this.#text([`inspect-get-mountpoints ${gfString(root)}`])).toString(),
      )) {
        const type = typeOf.get(m.device);
        // A mount point under one already mounted must exist there; guestfish would end on it.
        const there =
          m.mountpoint === "/" ||
          (await this.#text([`is-dir ${gfString(m.mountpoint)}`])).toString().trim() === "true";
        if (type !== undefined && !NOT_BROWSABLE.has(type) && there) {
          await this.#text([`mount-ro ${gfString(m.device)} ${gfString(m.mountpoint)}`]);
          mounts.push({ ...m, type });
        }
      }
      if (mounts.some((m) => m.mountpoint === "/")) {
        return { mounts };
      }
    }
    const browsable = filesystems.filter((f) => !NOT_BROWSABLE.has(f.type));
    const only = browsable.length === 1 ? browsable[0] : undefined;
    if (only === undefined) {
      throw browsable.length === 0
        ? new SnapkeepError("DISK_UNSUPPORTED", "That disk has no file system libguestfs can read.", {
            details: { filesystems },
          })
        : new SnapkeepError(
            "INVALID_INPUT",
            "That disk has several file systems and no OS that says how they mount.",
            {
              action: { do: "choose-filesystem", filesystems: browsable },
              details: { filesystems: browsable },
            },
          );
    }
    await this.#text([`mount-ro ${gfString(only.device)} /`]);
    return { mounts: [{ mountpoint: "/", device: only.device, type: only.type }] };
  }

  async #entry(path: string, name: string): Promise<GuestEntry> {
    const stat = parseLstatns((await this.#text([`lstatns ${gfString(path)}`])).toString());
    const type = fileTypeOf(stat.mode);
    const target =
      type === "symlink"
        ? (await this.#text([`readlink ${gfString(path)}`])).toString().replace(/\n$/, "")
        : undefined;
    return {
      name,
      path,
      type,
      mode: stat.mode,
      size: stat.size,
      uid: stat.uid,
      gid: stat.gid,
      mtime: new Date(stat.mtime * 1000).toISOString(),
      ...(target === undefined ? {} : { target }),
    };
  }

  /** Runs guestfish commands and resolves with what they printed before the marker. */
  #text(commands: readonly string[]): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      if (this.#endError !== null) {
        reject(this.#endError);
        return;
      }
      this.#queue.push({ kind: "text", resolve, reject });
      this.#input.write([...commands, gfMarkerCommand(this.#marker), ""].join("\n"));
    });
  }

  #stream(command: string, to: Writable, size: number | null, onBytes: (n: number) => void): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (this.#endError !== null) {
        reject(this.#endError);
        return;
      }
      this.#queue.push({ kind: "stream", to, size, written: 0, onBytes, resolve, reject });
      this.#input.write(`${command}\n${gfMarkerCommand(this.#marker)}\n`);
    });
  }

  #feed(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const markerLine = Buffer.from(`${this.#marker}\n`);
    for (;;) {
      const head = this.#queue[0];
      if (head === undefined) {
        return;
      }
      if (head.kind === "stream") {
        // File bytes go straight to the file: a large file never sits in memory whole.
        const keep = head.size === null ? markerLine.length : 0;
        const wanted =
          head.size === null
            ? Math.max(0, this.#buffer.length - keep)
            : Math.min(head.size - head.written, this.#buffer.length);
        // Only a stream of unknown length is framed by the marker; a file by its size.
        const end = head.size === null ? this.#buffer.indexOf(markerLine) : -1;
        const take = end >= 0 ? end : wanted;
        if (take > 0) {
          head.to.write(this.#buffer.subarray(0, take));
          head.written += take;
          head.onBytes(head.written);
          this.#buffer = this.#buffer.subarray(take);
        }
        const done = head.size === null ? end >= 0 : head.written === head.size;
        if (!done || this.#buffer.length < markerLine.length) {
          return;
        }
        if (!this.#buffer.subarray(0, markerLine.length).equals(markerLine)) {
          this.#fail(
            new SnapkeepError("UNEXPECTED_OUTPUT", "guestfish sent more bytes than the file holds."),
          );
          return;
        }
        this.#buffer = this.#buffer.subarray(markerLine.length);
        this.#queue.shift();
        head.resolve(head.written);
        continue;
      }
      const end = this.#buffer.indexOf(markerLine);
      if (end < 0) {
        return;
      }
      const out = this.#buffer.subarray(0, end);
      this.#buffer = this.#buffer.subarray(end + markerLine.length);
      this.#queue.shift();
      head.resolve(out);
    }
  }

  #fail(error: unknown): void {
    this.#endError ??= error;
    for (const pending of this.#queue.splice(0)) {
      pending.reject(this.#endError);
    }
  }

  /** Why the session ended, in words: its own exit codes, libguestfs' last error, or a plain end. */
  #problem(result: RunResult): SnapkeepError {
    const served = this.#describe?.() ?? null;
    if (served !== null) {
      return new SnapkeepError("COMMAND_FAILED", `The file browse stopped: ${served}.`);
    }
    const missing = filesScriptProblem(result.code);
    if (result.code === 20 || result.code === 21) {
      return new SnapkeepError("TOOL_MISSING", `${missing} on ${this.runner.label}.`, {
        hint: "Install libguestfs-tools and QEMU there (Debian/Ubuntu: apt-get install libguestfs-tools linux-image-amd64 qemu-utils qemu-system-common; Fedora: dnf install guestfs-tools qemu-img qemu-storage-daemon).",
      });
    }
    const said = this.#stderr
      .split("\n")
      .filter((l) => l.includes("error:") || l.includes("supermin"))
      .map((l) => l.replace(/^.*?libguestfs: error: /, ""))
      .pop();
    if (said !== undefined && /supermin|kernel/i.test(said)) {
      return new SnapkeepError(
        "TOOL_MISSING",
        `libguestfs on ${this.runner.label} has no kernel for its appliance: ${said}`,
        {
          hint: "Install a kernel package there (Debian: apt-get install linux-image-amd64); it is only read, not booted.",
        },
      );
    }
    return new SnapkeepError(
      "COMMAND_FAILED",
      (missing === null ? null : `The file browse on ${this.runner.label} stopped: ${missing}.`) ??
        (said === undefined
          ? `The file browse on ${this.runner.label} ended (exit ${result.code ?? result.signal}).`
          : `libguestfs: ${said}`),
      { details: { stderr: this.#stderr.slice(-2000) } },
    );
  }
}

function guestPath(path: string): string {
  const normal = normalizeGuestPath(path);
  if (normal === null) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `A path in the guest starts with / and has no "." or ".." parts: ${JSON.stringify(path)}.`,
    );
  }
  return normal;
}

function noSuchFs(fs: string, filesystems: readonly { device: string; type: string }[]): SnapkeepError {
  return new SnapkeepError("NOT_FOUND", `That disk has no file system ${fs} to browse.`, {
    hint: `It has: ${filesystems.map((f) => `${f.device} (${f.type})`).join(", ") || "none"}.`,
  });
}

/**
 * Which disk of a snapshot a browse reads, and how: a qcow2 file's internal snapshot, or a thick
 * LVM snapshot's device. The root disk unless one is named.
 */
export function filesSourceOf(
  vm: VmWithSnapshots,
  snapshotRef: string,
  diskName: string | undefined,
): { snapshot: Snapshot; disk: string; source: FilesSource; thinLv?: string } {
  const snapshot = resolveSnapshot(vm, snapshotRef);
  const target = diskName ?? vm.disks.find((d) => d.role === "root")?.target ?? snapshot.disks[0]?.target;
  const disk = vm.disks.find((d) => d.target === target);
  const image = snapshot.disks.find((d) => d.target === target);
  if (target === undefined || disk === undefined || image === undefined || disk.source === null) {
    throw new SnapkeepError(
      "NOT_FOUND",
      `Snapshot "${snapshot.name}" has no disk ${target ?? "to browse"}.`,
      {
        hint: `It has: ${snapshot.disks.map((d) => d.target).join(", ")}`,
      },
    );
  }
  if (image.lv !== undefined) {
    // A thin snapshot skips activation: the browse activates it for its time (Files.#open).
    return {
      snapshot,
      disk: target,
      source: { kind: "block", device: image.lv.path },
      ...(image.lv.thin ? { thinLv: image.imageSnapshotId } : {}),
    };
  }
  if (disk.format !== "qcow2" || disk.type !== "file") {
    throw new SnapkeepError("DISK_UNSUPPORTED", `${target} is not a qcow2 file or an LVM volume.`);
  }
  return {
    snapshot,
    disk: target,
    source: {
      kind: "qcow2",
      image: disk.source,
      snapshotId: image.imageSnapshotId,
      snapshotTag: snapshot.tag,
    },
  };
}

export interface FilesRequest {
  readonly host: string;
  readonly vm: string;
  /** A snapshot of the VM (on its host)... */
  readonly snapshot?: string | undefined;
  /** ...or an export of it on a target, read there. */
  readonly export?: { readonly target: string; readonly id: string } | undefined;
  readonly disk?: string | undefined;
  /** A file system of the disk to mount at / (a device libguestfs names), instead of the guest's layout. */
  readonly fs?: string | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** `files ls` and `files get`: one browse session per call, closed when it is done. */
export class Files {
  constructor(
    private readonly deps: {
      readonly vms: Vms;
      readonly hosts: Hosts;
      readonly now: () => Date;
      /** For browsing exports where they are; without them only snapshots can be browsed. */
      readonly targets?: Targets;
      readonly exports?: Exports;
    },
  ) {}

  async list(
    request: FilesRequest,
    path: string,
  ): Promise<FilesOpened & { path: string; entries: GuestEntry[] }> {
    // Refused before anything starts on the host.
    const dir = guestPath(path);
    return this.#with(request, async (session, opened) => ({
      ...opened,
      path: dir,
      entries: await session.list(dir),
    }));
  }

  async get(
    request: FilesRequest,
    paths: readonly string[],
    toDir: string,
    onProgress: (path: string, bytes: number) => void = () => undefined,
  ): Promise<
    FilesOpened & { saved: { path: string; saved: string; bytes: number; kind: "file" | "archive" }[] }
  > {
    const checked = paths.map(guestPath);
    return this.#with(request, async (session, opened) => {
      const saved = [];
      for (const path of checked) {
        saved.push({ path, ...(await session.fetch(path, toDir, (n) => onProgress(path, n))) });
      }
      return { ...opened, saved };
    });
  }

  // ---- browses that stay open (the UI's file browser) ------------------------------------------

  readonly #browses = new Map<string, Browse>();
  readonly #tickets = new Map<string, { browse: string; item: Fetchable; expires: number }>();

  /**
   * Starts a browse that stays open for `browse` and `download` calls, until closed or idle for
   * ten minutes (its appliance holds a gigabyte of memory on the host). At most three at a time:
   * a fourth closes the one used longest ago.
   */
  async open(request: FilesRequest): Promise<FilesOpened & { session: string }> {
    const opened = await this.#open(request);
    const id = randomBytes(12).toString("hex");
    const browse: Browse = { ...opened, timer: this.#idleTimer(id) };
    this.#browses.set(id, browse);
    if (this.#browses.size > MAX_BROWSES) {
      const [oldest] = this.#browses.keys();
      if (oldest !== undefined) {
        await this.close(oldest);
      }
    }
    return { ...opened.opened, session: id };
  }

  /** A folder of an open browse. */
  async browse(id: string, path: string): Promise<{ path: string; entries: GuestEntry[] }> {
    const dir = guestPath(path);
    const browse = this.#use(id);
    return { path: dir, entries: await browse.session.list(dir) };
  }

  /**
   * A one-time ticket for the bytes of a file or folder of an open browse, taken within two
   * minutes by a download request (`take`): a web page downloads it as a plain HTTP response.
   */
  async ticket(
    id: string,
    path: string,
  ): Promise<{ ticket: string; name: string; kind: Fetchable["kind"]; size: number | null }> {
    const checked = guestPath(path);
    const item = await this.#use(id).session.fetchable(checked);
    const ticket = randomBytes(16).toString("hex");
    const now = this.deps.now().getTime();
    for (const [key, t] of this.#tickets) {
      if (t.expires < now) {
        this.#tickets.delete(key);
      }
    }
    this.#tickets.set(ticket, { browse: id, item, expires: now + TICKET_MS });
    return { ticket, name: item.name, kind: item.kind, size: item.size };
  }

  /** Redeems a ticket once: what to call the download, and how to send it. Null when unknown or old. */
  take(
    ticket: string,
  ): { name: string; size: number | null; send: (to: Writable) => Promise<number> } | null {
    const found = this.#tickets.get(ticket);
    this.#tickets.delete(ticket);
    if (found === undefined || found.expires < this.deps.now().getTime()) {
      return null;
    }
    const browse = this.#browses.get(found.browse);
    if (browse === undefined) {
      return null;
    }
    return {
      name: found.item.name,
      size: found.item.size,
      // Async: a browse closed meanwhile rejects the send, never throws at the caller.
      send: async (to) => this.#use(found.browse).session.streamTo(found.item, to),
    };
  }

  async close(id: string): Promise<void> {
    const browse = this.#browses.get(id);
    if (browse === undefined) {
      return;
    }
    this.#browses.delete(id);
    clearTimeout(browse.timer);
    await browse.session.close();
  }

  /** Closes every open browse (the server or app is stopping). */
  async dispose(): Promise<void> {
    await Promise.all([...this.#browses.keys()].map((id) => this.close(id)));
  }

  #use(id: string): Browse {
    const browse = this.#browses.get(id);
    if (browse === undefined) {
      throw new SnapkeepError(
        "NOT_FOUND",
        "That file browser was closed (ten minutes unused, or another was opened).",
        {
          hint: "Open it again.",
        },
      );
    }
    // Used: to the back of the line for closing, and ten more minutes.
    this.#browses.delete(id);
    clearTimeout(browse.timer);
    browse.timer = this.#idleTimer(id);
    this.#browses.set(id, browse);
    return browse;
  }

  #idleTimer(id: string): NodeJS.Timeout {
    return setTimeout(() => void this.close(id), IDLE_MS).unref();
  }

  async #open(request: FilesRequest): Promise<{ session: GuestFilesSession; opened: FilesOpened }> {
    if ((request.snapshot === undefined) === (request.export === undefined)) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        "Say what to browse: a SNAPSHOT of the VM, or --export TARGET ID.",
      );
    }
    if (request.export !== undefined) {
      const { targets, exports } = this.deps;
      if (targets === undefined || exports === undefined) {
        throw new SnapkeepError("INVALID_INPUT", "Exports cannot be browsed here.");
      }
      return openExportBrowse(
        { targets, exports },
        { ...request.export, vm: request.vm, disk: request.disk, fs: request.fs, signal: request.signal },
      );
    }
    const vm = await this.deps.vms.get(request.host, request.vm);
    const { snapshot, disk, source, thinLv } = filesSourceOf(vm, request.snapshot ?? "", request.disk);
    const runner = this.deps.hosts.libvirt(request.host).runner;
    // Activated for the browse's time with a read-only device (guestfish adds it read-only too).
    const readable =
      thinLv === undefined ? null : await openLvSnapshotReadable(runner, disk, thinLv, { readOnly: true });
    const { session, mounted } = await GuestFilesSession.open(runner, source, {
      fs: request.fs,
      signal: request.signal,
      ...(readable === null ? {} : { onClose: readable.release }),
    }).catch(async (error: unknown) => {
      await readable?.release();
      throw error;
    });
    return { session, opened: { snapshot: snapshot.name, disk, mounts: mounted.mounts } };
  }

  async #with<T>(
    request: FilesRequest,
    use: (session: GuestFilesSession, opened: FilesOpened) => Promise<T>,
  ): Promise<T> {
    const { session, opened } = await this.#open(request);
    try {
      return await use(session, opened);
    } finally {
      await session.close();
    }
  }
}

interface Browse {
  readonly session: GuestFilesSession;
  readonly opened: FilesOpened;
  timer: NodeJS.Timeout;
}

const MAX_BROWSES = 3;
const IDLE_MS = 10 * 60_000;
const TICKET_MS = 2 * 60_000;

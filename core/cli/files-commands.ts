import { resolve } from "node:path";
import type { Command } from "commander";

import { modeString, type GuestEntry } from "../domain/files.js";
import { displayName, formatBytes, formatTime, table } from "./format.js";
import type { CliContext, CliIo } from "./main.js";
import { splitVmRef } from "./refs.js";

type Print = (value: unknown, json: boolean | undefined, human: () => string) => void;

interface FilesOptions {
  disk?: string;
  fs?: string;
  json?: boolean;
}

/** `files ls|get`: one file or folder back from a snapshot, read-only (issue 19). */
export function registerFilesCommands(
  program: Command,
  io: CliIo,
  context: () => CliContext,
  print: Print,
): void {
  const files = program
    .command("files")
    .description("list and fetch files in a snapshot's disk, read-only (needs libguestfs on the host)");
  const common = (command: Command): Command =>
    command
      .option("--disk <target>", "the disk, e.g. vdb (default: the root disk)")
      .option(
        "--fs <device>",
        "mount this file system at / (as `files ls` names them) instead of the guest's layout",
      )
      .option("--json", "machine-readable output");
  common(
    files
      .command("ls <host/vm> <snapshot> [path]")
      .description("list a folder of the snapshot (default: /), links not followed"),
  ).action(async (ref: string, snapshot: string, path: string | undefined, opts: FilesOptions) => {
    const [host, vm] = splitVmRef(ref);
    const listed = await context().files.list(
      { host, vm, snapshot, disk: opts.disk, fs: opts.fs },
      path ?? "/",
    );
    print(listed, opts.json, () => formatEntries(listed.entries) + formatMounts(listed.mounts));
  });
  common(
    files
      .command("get <host/vm> <snapshot> <paths...>")
      .description("copy files (as they are) and folders (as NAME.tar) to a folder here, never over a file")
      .requiredOption("--to <dir>", "the folder on this computer to copy into"),
  ).action(async (ref: string, snapshot: string, paths: string[], opts: FilesOptions & { to: string }) => {
    const [host, vm] = splitVmRef(ref);
    let shown = 0;
    const result = await context().files.get(
      { host, vm, snapshot, disk: opts.disk, fs: opts.fs },
      paths,
      resolve(opts.to),
      (path, bytes) => {
        // Progress on stderr, at most every 64 MiB: stdout stays the result.
        if (bytes - shown >= 64 * 1024 * 1024 || bytes < shown) {
          shown = bytes;
          io.err(`${displayName(path)}: ${formatBytes(bytes)}\n`);
        }
      },
    );
    print(result, opts.json, () =>
      result.saved
        .map(
          (s) =>
            `Saved ${displayName(s.path)} to ${displayName(s.saved)} (${formatBytes(s.bytes)}${s.kind === "archive" ? ", a tar archive" : ""}).\n`,
        )
        .join(""),
    );
  });
}

function formatEntries(entries: readonly GuestEntry[]): string {
  if (entries.length === 0) {
    return "An empty folder.\n";
  }
  return table(
    ["MODE", "SIZE", "CHANGED", "NAME"],
    entries.map((e) => [
      modeString(e.mode),
      e.type === "dir" ? "-" : formatBytes(e.size),
      formatTime(e.mtime),
      // Guest names are data: any control character shows escaped, never reaches the terminal.
      displayName(e.name) +
        (e.type === "dir" ? "/" : "") +
        (e.target === undefined ? "" : ` -> ${displayName(e.target)}`),
    ]),
  );
}

function formatMounts(mounts: readonly { mountpoint: string; device: string; type: string }[]): string {
  return `(${mounts.map((m) => `${m.device} ${m.type} at ${displayName(m.mountpoint)}`).join(", ")})\n`;
}

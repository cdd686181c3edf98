import { resolve } from "node:path";
import type { Command } from "commander";

import { modeString, type FilesOpened, type GuestEntry } from "../domain/files.js";
import { displayName, formatBytes, formatTime, table } from "./format.js";
import type { CliContext, CliIo } from "./main.js";
import { splitVmRef } from "./refs.js";

type Print = (value: unknown, json: boolean | undefined, human: () => string) => void;

interface FilesOptions {
  export?: string;
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
    .description(
      "list and fetch files in a snapshot's disk (needs libguestfs on the host) or an export's (read on its target; libguestfs here), read-only",
    );
  const common = (command: Command): Command =>
    command
      .option(
        "--export <target>",
        "an export on this target instead of a snapshot (its id in place of the snapshot)",
      )
      .option("--disk <target>", "the disk, e.g. vdb (default: the root disk)")
      .option(
        "--fs <device>",
        "mount this file system at / (as `files ls` names them) instead of the guest's layout",
      )
      .option("--json", "machine-readable output");
  common(
    files
      .command("ls <host/vm> <snapshot-or-export> [path]")
      .description("list a folder of the snapshot (default: /), links not followed"),
  ).action(async (ref: string, snapshot: string, path: string | undefined, opts: FilesOptions) => {
    const [host, vm] = splitVmRef(ref);
    const listed = await context().files.list(source(host, vm, snapshot, opts), path ?? "/");
    print(listed, opts.json, () => formatEntries(listed.entries) + formatMounts(listed));
  });
  common(
    files
      .command("get <host/vm> <snapshot-or-export> <paths...>")
      .description("copy files (as they are) and folders (as NAME.tar) to a folder here, never over a file")
      .requiredOption("--to <dir>", "the folder on this computer to copy into"),
  ).action(async (ref: string, snapshot: string, paths: string[], opts: FilesOptions & { to: string }) => {
    const [host, vm] = splitVmRef(ref);
    let shown = 0;
    const result = await context().files.get(
      source(host, vm, snapshot, opts),
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

/** What a command browses: the snapshot, or with --export the export of that id. */
function source(
  host: string,
  vm: string,
  which: string,
  opts: FilesOptions,
): Parameters<CliContext["files"]["list"]>[0] {
  return {
    host,
    vm,
    ...(opts.export === undefined ? { snapshot: which } : { export: { target: opts.export, id: which } }),
    disk: opts.disk,
    fs: opts.fs,
  };
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

function formatMounts(opened: FilesOpened): string {
  const from =
    opened.export === undefined
      ? ""
      : `; export ${opened.export.id} on ${opened.export.target}${opened.export.links > 1 ? `, read with the ${opened.export.links - 1} it is built on` : ""}`;
  return `(${opened.mounts.map((m) => `${m.device} ${m.type} at ${displayName(m.mountpoint)}`).join(", ")}${from})\n`;
}

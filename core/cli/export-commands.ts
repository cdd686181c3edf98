import { Option, type Command } from "commander";

import { MAX_EXPORTS_KEPT } from "../domain/limits.js";
import { validateNoControlCharacters } from "../domain/names.js";
import { SnapkeepError } from "../errors.js";
import type { ExportEntry } from "../drivers/bundle/bundle.js";
import type { ExportProgress } from "../app/exports/exports.js";
import { DEFAULT_IMAGE_DIR, restoreExport } from "../app/exports/restore.js";
import { commandLine } from "../domain/shell-quote.js";
import type { Target } from "../domain/settings.js";
import { displayName, formatBytes, formatTime, table } from "./format.js";
import { describeDamage } from "../drivers/bundle/chunks.js";
import { journaled } from "./journaled.js";
import type { CliContext, CliIo } from "./main.js";
import { bwlimitOption, diskList, numberOption, parseNumber } from "./options.js";
import { splitVmRef } from "./refs.js";

type Print = (value: unknown, json: boolean | undefined, human: () => string) => void;

const KEPT = { min: 1, max: MAX_EXPORTS_KEPT };
const keepOption = numberOption("--keep", KEPT);

/** `target ...`, `export`, `exports ...` and `import`: copies off the host and back. */
// eslint-disable-next-line max-lines-per-function -- a table: one short declaration per command.
export function registerExportCommands(
  program: Command,
  io: CliIo,
  context: () => CliContext,
  print: Print,
): void {
  const exports = (): CliContext["exports"] => context().exports;
  const targets = (): CliContext["targets"] => context().targets;

  const target = program.command("target").description("where exports go: a folder or an SSH host");
  target
    .command("add <name>")
    .description("add a folder (--dir) or an SSH target (--ssh user@host[:port]:/path)")
    .addOption(
      new Option("--dir <path>", "a folder on this computer (a disk, a mounted NAS)").conflicts("ssh"),
    )
    .option("--ssh <spec>", "user@host[:port]:/path or alias:/path")
    .option("--identity <file>", "private key file (else ssh-agent, ~/.ssh/config, ~/.ssh/id_*)")
    .option("--trust <fingerprint>", "the host key you expect (SHA256:...), pinned when it matches")
    .option("--keep <n>", "verified exports to keep per VM (older ones are removed)", keepOption)
    .option(
      "--bwlimit <MiB/s>",
      "limit scheduled copies to this target to this many MiB/s (e.g. 20 or 0.5)",
      bwlimitOption,
    )
    .option("--json", "machine-readable output")
    .action(
      async (
        name: string,
        opts: {
          dir?: string;
          ssh?: string;
          identity?: string;
          trust?: string;
          keep?: number;
          bwlimit?: number;
          json?: boolean;
        },
      ) => {
        const result = await targets().add({
          name,
          dir: opts.dir,
          ssh: opts.ssh,
          identityFile: opts.identity,
          trust: opts.trust,
          keep: opts.keep,
          bwlimitKiB: opts.bwlimit,
        });
        print(result, opts.json, () =>
          result.trusted
            ? `Added target ${name} (${describeTarget(result.target)}).\n${result.warning === null ? "" : `Warning: ${result.warning}\n`}`
            : `Added target ${name}, not trusted yet. It offers the host key\n  ${result.offeredFingerprint}\n` +
              `Check it on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then run:\n` +
              // An SSH target, the only kind that can be untrusted, always offers a key.
              `  ${commandLine`snapkeep target trust ${name} ${result.offeredFingerprint ?? "SHA256:..."}`}\n`,
        );
      },
    );
  target
    .command("list")
    .description("list export targets")
    .option("--json", "machine-readable output")
    .action((opts: { json?: boolean }) => {
      const listed = targets().list();
      print(listed, opts.json, () =>
        listed.length === 0
          ? "No targets. Add one with: snapkeep target add NAME --dir PATH\n"
          : table(
              ["NAME", "WHERE", "KEEP", "TRUST"],
              listed.map((t) => [
                t.name,
                describeTarget(t),
                t.keep === undefined ? "all" : String(t.keep),
                t.kind === "dir" ? "-" : (t.hostKey ?? "not trusted"),
              ]),
            ),
      );
    });
  target
    .command("remove <name>")
    .description("forget a target (the exports on it stay)")
    .action(async (name: string) => {
      await targets().remove(name);
      io.out(`Removed target ${name}; its exports were left where they are.\n`);
    });
  target
    .command("trust <name> [fingerprint]")
    .description("pin an SSH target's host key (without a fingerprint: show the one it offers)")
    .action(async (name: string, fingerprint: string | undefined) => {
      if (fingerprint === undefined) {
        const offered = await targets().offeredFingerprint(name);
        io.out(
          `${name} offers ${offered}\nCheck it on the host, then run: ${commandLine`snapkeep target trust ${name} ${offered}`}\n`,
        );
        return;
      }
      await targets().trust(name, fingerprint);
      io.out(`Trusted ${name} (${fingerprint}).\n`);
    });
  target
    .command("test <name>")
    .description(
      "check that a target is reachable and writable, how much room it has, and that its folder is on a disk of its own",
    )
    .option("--create", "make the folder if it does not exist (a missing folder is an error otherwise)")
    .option("--json", "machine-readable output")
    .action(async (name: string, opts: { create?: boolean; json?: boolean }) => {
      const result = await targets().test(name, { create: opts.create === true });
      if (result.state === "missing") {
        throw new SnapkeepError("TARGET_OFFLINE", `${result.message} ${result.detail}`, {
          action: { do: "mount-or-create-folder", target: name },
        });
      }
      print(result, opts.json, () =>
        [
          ...(result.created ? [`Created ${result.path}.`] : []),
          `${name} is writable, ${formatBytes(result.freeBytes)} free on ${result.mountPoint}, ${result.rsync ?? "no rsync"}.`,
          ...(result.warning === null ? [] : [`Warning: ${result.warning}`]),
          "",
        ].join("\n"),
      );
    });
  target
    .command("keep <name> <n>")
    .description('verified exports to keep per VM on this target ("all" to keep every one)')
    .action((name: string, n: string) => {
      const updated = targets().setKeep(
        name,
        n === "all" ? undefined : parseNumber(n, 'the number of exports to keep (or "all")', KEPT),
      );
      io.out(`${name} keeps ${updated.keep ?? "all"} exports per VM.\n`);
    });

  program
    .command("export <host/vm> <snapshot>")
    .description("copy a snapshot off the host as a verified bundle (progress on stderr)")
    .requiredOption("--to <target>", "the export target")
    .option("--disk <targets>", "only these disks, e.g. vda,vdb", diskList)
    .option("--bwlimit <MiB/s>", "limit the copy to this many MiB/s (e.g. 20 or 0.5)", bwlimitOption)
    .option("--keep <n>", "verified exports to keep for this VM on the target", keepOption)
    .option(
      "--compressed",
      "a standalone compressed image per disk (converted on the host, whole disk sent) instead of only the changes",
    )
    .option("--json", "machine-readable output")
    .action(
      async (
        ref: string,
        snapshotRef: string,
        opts: {
          to: string;
          disk?: string[];
          bwlimit?: number;
          keep?: number;
          compressed?: boolean;
          json?: boolean;
        },
      ) => {
        const [host, vm] = splitVmRef(ref);
        const stop = new AbortController();
        const onSignal = (): void => {
          io.err("\nsnapkeep: stopping; what arrived is kept, and the same command resumes it.\n");
          stop.abort(new SnapkeepError("CANCELLED", "The export was cancelled; it is not listed as good."));
        };
        process.once("SIGINT", onSignal);
        process.once("SIGTERM", onSignal);
        const show = progressPrinter(io);
        try {
          const job = {
            kind: "export" as const,
            title: `Export ${vm} “${snapshotRef}” to ${opts.to}`,
            host,
            vm,
          };
          const result = await journaled(context().home, job, () =>
            exports().export({
              host,
              vm,
              snapshot: snapshotRef,
              target: opts.to,
              disks: opts.disk,
              bwlimitKiB: opts.bwlimit,
              keep: opts.keep,
              engine: opts.compressed === true ? "convert" : undefined,
              signal: stop.signal,
              onProgress: show,
            }),
          );
          show.done();
          const size = result.manifest.disks.reduce((sum, d) => sum + d.size, 0);
          print(result, opts.json, () =>
            [
              `Exported ${displayName(result.manifest.source.snapshot.name)} of ${displayName(vm)} to ${opts.to}: ${result.id} (${formatBytes(size)}, verified).`,
              ...(result.resumed ? ["Resumed an interrupted export."] : []),
              ...result.notes.map((n) => `  ${n}`),
              ...(result.engine === "stream"
                ? [
                    `Read ${formatBytes(result.bytesRead ?? 0)} on ${host}, sent ${formatBytes(result.bytesSent)}${result.basis === null ? "" : `; built on export ${result.basis}`}.`,
                  ]
                : result.basis === null
                  ? []
                  : [
                      `Sent ${formatBytes(result.literalBytes)} of new data; the rest matched export ${result.basis}.`,
                    ]),
              ...(result.pruned.length > 0 ? [`Removed older exports: ${result.pruned.join(", ")}`] : []),
              "",
            ].join("\n"),
          );
        } finally {
          show.done();
          process.removeListener("SIGINT", onSignal);
          process.removeListener("SIGTERM", onSignal);
        }
      },
    );

  const list = program.command("exports").description("exports on the targets");
  list
    .command("list")
    .description("list exports; only verified ones are good, the others say why")
    .option("--target <name>", "only this target")
    .option("--vm <name>", "only this VM")
    .option("--json", "machine-readable output")
    .action(async (opts: { target?: string; vm?: string; json?: boolean }) => {
      const results = (await exports().list(opts.target)).map((r) => ({
        ...r,
        exports: r.exports.filter((e) => opts.vm === undefined || e.vmName === opts.vm),
      }));
      print(results, opts.json, () => formatExports(results));
    });
  list
    .command("verify <target> <export>")
    .description("hash every file of an export on the target again (what it added to its chain)")
    .option("--full", "also every export it is built on: all it takes to restore it")
    .option("--json", "machine-readable output")
    .action(async (targetName: string, ref: string, opts: { full?: boolean; json?: boolean }) => {
      const job = {
        kind: "verify" as const,
        title: `Verify export ${ref} on ${targetName}`,
        host: null,
        vm: null,
      };
      const result = await journaled(context().home, job, () =>
        opts.full === true ? exports().verifyChain(targetName, ref) : exports().verify(targetName, ref),
      );
      const named =
        result.id === ref || result.id === ref.split("/").at(-1)
          ? ""
          : ` (the only export whose id starts with "${ref}")`;
      print(result, opts.json, () =>
        result.ok
          ? `Export ${result.id}${named} on ${targetName} is intact: every checksum matches.\n`
          : `Export ${result.id}${named} on ${targetName} is damaged: ${result.badFiles.join(", ")} ${result.badFiles.length === 1 ? "does" : "do"} not match the manifest.\n${result.badRanges.length === 0 ? "" : `Where it differs: ${describeDamage(result.badRanges)}.\n`}`,
      );
      if (!result.ok) {
        process.exitCode = 1;
      }
    });
  registerImport(program, context, print);
  list
    .command("prune <target>")
    .description(
      "remove older verified exports beyond --keep per VM (the newest always stays); one that a kept export is built on is merged into it first. Unfinished exports that a newer verified one superseded go too, once nothing wrote to them for --quiet-hours",
    )
    .option("--keep <n>", "exports to keep per VM (default: the target's setting)", keepOption)
    .option(
      "--quiet-hours <n>",
      "an unfinished export a newer one superseded goes when nothing wrote to it for this many hours (at least 1)",
      numberOption("--quiet-hours", { min: 1, fraction: true }),
      24,
    )
    .option("--dry-run", "only say what would be removed and merged")
    .option("--json", "machine-readable output")
    .action(
      async (
        targetName: string,
        opts: { keep?: number; quietHours: number; dryRun?: boolean; json?: boolean },
      ) => {
        const result = await exports().prune(targetName, {
          keep: opts.keep,
          quietMs: opts.quietHours * 3600_000,
          dryRun: opts.dryRun === true,
        });
        print(result, opts.json, () => abandonedText(result) + removalText(result));
      },
    );
  list
    .command("remove <target> <ids...>")
    .description(
      "remove the exports named (ids or unique prefixes); an export built on one of them takes its data first, so it still restores",
    )
    .option("--dry-run", "only say what would be removed and merged")
    .option("--json", "machine-readable output")
    .action(async (targetName: string, ids: string[], opts: { dryRun?: boolean; json?: boolean }) => {
      const result = await exports().remove(targetName, ids, { dryRun: opts.dryRun === true });
      print(result, opts.json, () => removalText(result));
    });
  list
    .command("clean <host>")
    .description(
      "remove staging folders that interrupted exports left on a host (resuming them converts again)",
    )
    .option(
      "--quiet-hours <n>",
      "only folders nothing wrote to for this many hours (0: all)",
      numberOption("--quiet-hours", { min: 0, fraction: true }),
      24,
    )
    .option("--dry-run", "only say what would be removed")
    .option("--json", "machine-readable output")
    .action(async (host: string, opts: { quietHours: number; dryRun?: boolean; json?: boolean }) => {
      const result = await exports().cleanStaging(host, {
        quietMs: opts.quietHours * 3600_000,
        dryRun: opts.dryRun === true,
      });
      const bytes = result.removed.reduce((sum, f) => sum + f.bytes, 0);
      print(result, opts.json, () =>
        [
          result.removed.length === 0
            ? `No staging folder on ${host} has been left for ${opts.quietHours} h.\n`
            : `${result.dryRun ? "Would remove" : "Removed"} ${formatBytes(bytes)}:\n${result.removed
                .map(
                  (f) => `  ${f.path} (${formatBytes(f.bytes)}, last written ${formatTime(f.lastWriteAt)})\n`,
                )
                .join("")}`,
          ...(result.kept.length > 0
            ? [
                `Kept ${result.kept.length} written to in the last ${opts.quietHours} h (an export may be using them).\n`,
              ]
            : []),
        ].join(""),
      );
    });
}

function registerImport(program: Command, context: () => CliContext, print: Print): void {
  program
    .command("import <target> <export>")
    // The UI and the API call it restoring; both words work here.
    .alias("restore")
    .description("restore an export onto a host: a new VM (--name) or extra disks of a VM (--into)")
    .requiredOption("--to <host>", "the host to restore onto")
    .addOption(new Option("--name <vm>", "define a new VM with this name").conflicts("into"))
    .option("--into <vm>", "attach the export's disks to this existing VM")
    .option("--dir <path>", "folder for the images on the host", DEFAULT_IMAGE_DIR)
    .option("--disk <targets>", "only these disks of the export", diskList)
    .option("--start", "start the new VM")
    .option("--dry-run", "only say what would be created")
    .option("--json", "machine-readable output")
    .action(
      async (
        targetName: string,
        ref: string,
        opts: {
          to: string;
          name?: string;
          into?: string;
          dir: string;
          disk?: string[];
          start?: boolean;
          dryRun?: boolean;
          json?: boolean;
        },
      ) => {
        validateNoControlCharacters("folder", opts.dir);
        const core = context();
        const restore = (): ReturnType<typeof restoreExport> =>
          restoreExport(
            core,
            {
              target: targetName,
              export: ref,
              host: opts.to,
              name: opts.name,
              into: opts.into,
              dir: opts.dir,
              disks: opts.disk,
              start: opts.start,
              dryRun: opts.dryRun,
            },
            (made) => core.library.recordManaged(made),
          );
        // A dry run changes nothing: no job to remember.
        const job = {
          kind: "restore" as const,
          title: `Restore export ${ref} from ${targetName} to ${opts.to}`,
          host: opts.to,
          vm: opts.name ?? opts.into ?? null,
        };
        const result = opts.dryRun === true ? await restore() : await journaled(core.home, job, restore);
        print(result, opts.json, () => describeRestore(result, ref));
      },
    );
}

/** What `import` did (or would do, with --dry-run), in words. */
function describeRestore(result: Awaited<ReturnType<typeof restoreExport>>, ref: string): string {
  const files = result.disks
    .map(
      (d) => `  ${d.from} → ${d.file} (${d.target})
`,
    )
    .join("");
  const what =
    result.mode === "new-vm" ? `new VM ${displayName(result.vm)}` : `disks of ${displayName(result.vm)}`;
  const matched = result.byPrefix ? `(the only export whose id starts with "${ref}")\n` : "";
  const notes =
    result.definition === null
      ? ""
      : `The new VM gets: ${result.definition.kept.map((n) => n.what).join("; ")}.\n` +
        (result.definition.dropped.length === 0
          ? ""
          : `Left out of the saved definition:\n${result.definition.dropped
              .map((n) => `  ${n.what}: ${n.why}\n`)
              .join("")}`);
  return result.dryRun
    ? `Would restore ${result.export} on ${result.host} as ${what}:
${files}${matched}${notes}`
    : `Restored ${result.export} on ${result.host} as ${what}${result.start ? ", started" : ""}:
${files}${matched}${notes}`;
}

function describeTarget(t: Target): string {
  if (t.kind === "dir") {
    return t.path;
  }
  const who =
    t.alias ??
    `${t.user === undefined ? "" : `${t.user}@`}${t.host ?? ""}${t.port === undefined ? "" : `:${t.port}`}`;
  return `${who}:${t.path}`;
}

function formatExports(
  results: readonly { target: string; exports: readonly ExportEntry[]; error: string | null }[],
): string {
  const rows: string[][] = [];
  const problems: string[] = [];
  for (const r of results) {
    if (r.error !== null) {
      problems.push(`${r.target}: ${r.error}`);
    }
    for (const e of r.exports) {
      const size = e.manifest?.disks.reduce((sum, d) => sum + d.size, 0) ?? null;
      rows.push([
        r.target,
        e.id,
        displayName(e.vmName),
        displayName(e.snapshotName),
        e.state === "verified" ? "good" : e.state,
        formatBytes(size),
        e.createdAt === "" ? "-" : formatTime(e.createdAt),
      ]);
      if (e.reason !== null) {
        problems.push(`${r.target}/${e.id}: not good: ${e.reason}`);
      }
    }
  }
  const body =
    rows.length === 0
      ? "No exports.\n"
      : table(["TARGET", "EXPORT", "VM", "SNAPSHOT", "STATE", "SIZE", "CREATED"], rows);
  return body + problems.map((p) => `${p}\n`).join("");
}

/** Progress on stderr: one rewritten line on a terminal, a line per phase and every 10% otherwise. */
function progressPrinter(io: CliIo): ((p: ExportProgress) => void) & { done: () => void } {
  // Only the real process's stderr can be a terminal; tests pass their own io.
  const tty = process.stderr.isTTY === true && io.env === process.env;
  let lastKey = "";
  let lastLength = 0;
  const show = (p: ExportProgress): void => {
    const pct = Math.floor(p.fraction * 100);
    const rate = p.bytesPerSecond === null ? "" : ` ${formatBytes(p.bytesPerSecond)}/s`;
    const eta = p.etaSeconds === null || p.phase !== "transfer" ? "" : ` ETA ${formatEta(p.etaSeconds)}`;
    const line = `${p.phase}${p.disk === null ? "" : ` ${p.disk}`} ${pct}%${rate}${eta}`;
    if (tty) {
      io.err(`\r${line.padEnd(lastLength)}`);
      lastLength = line.length;
      return;
    }
    const key = `${p.phase} ${p.disk} ${Math.floor(pct / 10)}`;
    if (key !== lastKey) {
      lastKey = key;
      io.err(`${line}\n`);
    }
  };
  return Object.assign(show, {
    done: () => {
      if (tty && lastLength > 0) {
        io.err("\n");
        lastLength = 0;
      }
    },
  });
}

function formatEta(seconds: number): string {
  const s = Math.round(seconds);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

/** The unfinished exports a prune removed (or would), and those it had to leave, with why. */
function abandonedText(result: {
  abandoned: readonly { folder: string; reason: string }[];
  abandonedKept: readonly { folder: string; reason: string }[];
  dryRun: boolean;
}): string {
  const lines = (list: readonly { folder: string; reason: string }[]): string =>
    list.map((a) => `  ${a.folder} (${a.reason})\n`).join("");
  return (
    (result.abandoned.length === 0
      ? ""
      : `${result.dryRun ? "Would remove" : "Removed"} unfinished exports that will never be resumed:\n${lines(result.abandoned)}`) +
    (result.abandonedKept.length === 0
      ? ""
      : `Unfinished exports that will never be resumed, left where they are:\n${lines(result.abandonedKept)}`)
  );
}

/** What prune and remove did (or would do): merges first, then removals, then what stays. */
function removalText(result: {
  removed: readonly string[];
  /** A prune's abandoned attempts (abandonedText says them): when there were some, something went. */
  abandoned?: readonly unknown[];
  held: readonly { folder: string; reason: string }[];
  merged: readonly { into: string; from: readonly string[]; bytesWritten: number | null }[];
  dryRun: boolean;
}): string {
  const merged = result.merged.map(
    (m) =>
      `  ${m.into} takes in ${m.from.join(", ")}${m.bytesWritten === null ? "" : ` (${formatBytes(m.bytesWritten)} written on the target)`}\n`,
  );
  return (
    (merged.length === 0
      ? ""
      : `${result.dryRun ? "Would merge, so that what stays still restores" : "Merged, so that what stays still restores"}:\n${merged.join("")}`) +
    (result.removed.length === 0
      ? (result.abandoned?.length ?? 0) > 0
        ? ""
        : "Nothing to remove.\n"
      : `${result.dryRun ? "Would remove" : "Removed"}:\n${result.removed.map((f) => `  ${f}\n`).join("")}`) +
    (result.held.length === 0
      ? ""
      : `Kept for now (an export that is not verified, or still being written, is built on them):\n${result.held.map((h) => `  ${h.folder} (${h.reason})\n`).join("")}`)
  );
}

import { homedir } from "node:os";
import { Command, CommanderError, Option } from "commander";
import { SnapkeepError } from "../errors.js";
import { SNAPKEEP_VERSION } from "../app/exports/exports.js";
import { registerDoctorCommand } from "./doctor-command.js";
import { registerServiceCommands } from "./service-command.js";
import { registerNotifyCommands } from "./notify-commands.js";
import { registerServeCommand } from "./serve-command.js";
import { toErrorView } from "../domain/explain.js";
import { wordHint } from "../domain/hints.js";
import { MAX_SAFETY_KEPT, MAX_WAIT_SECONDS } from "../domain/limits.js";
import { validateNoControlCharacters } from "../domain/names.js";
import type { VmWithSnapshots } from "../domain/types.js";
import { sshEnvironmentFromProcess } from "../infra/runner/factory.js";
import { DEFAULT_LAB_DIR, DEMO_OWNER, labUp, removeLabVms } from "../app/lab/lab.js";
import { LocalRunner } from "../infra/runner/local.js";
import type { RevertProgress, RevertRequest, RevertResult } from "../app/revert.js";
import { openCoreContext, type CoreContext } from "../app/context.js";
import { snapkeepHome } from "../infra/store/home.js";
import type { Hook } from "../domain/settings.js";
import { registerScheduleCommands } from "./schedule-commands.js";
import { registerExportCommands } from "./export-commands.js";
import { commandLine } from "../domain/shell-quote.js";
import { registerLibraryCommands } from "./library-commands.js";
import { registerDrillCommands } from "./drill-commands.js";
import { registerFilesCommands } from "./files-commands.js";
import { diskList, numberOption, parseNumber } from "./options.js";
import { splitVmRef } from "./refs.js";
import { oldestRestorePoint, spaceUsed } from "../domain/space.js";
import { displayName, formatHosts, formatSnapshots, formatSpace, formatTime, formatVms } from "./format.js";

export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
};

/** Runs one CLI invocation and returns the exit code: 0 ok, 1 failed, 2 usage error. */
export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  let context: CliContext | undefined;
  const getContext = (): CliContext => {
    context ??= openContext(io);
    return context;
  };
  const program = buildProgram(io, getContext);
  // A command that ran but found something wrong (a verify that failed, a doctor that found a
  // FAIL) says so with process.exitCode; it is this invocation's code, not the process's.
  const before = process.exitCode;
  process.exitCode = undefined;
  try {
    await program.parseAsync([...argv], { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? 0 : 2;
    }
    reportError(error, io);
    return 1;
  } finally {
    process.exitCode = before;
    await context?.dispose();
  }
}

/** What every command works with, opened once per invocation and only when a command needs it. */
export type CliContext = CoreContext;

function openContext(io: CliIo): CliContext {
  const context = openCoreContext({
    home: snapkeepHome(process.platform, io.env, homedir()),
    ssh: sshEnvironmentFromProcess(io.env),
    path: io.env["PATH"],
    now: () => new Date(),
  });
  const { recovered } = context.store;
  if (recovered !== null) {
    io.err(`snapkeep: warning: ${recovered.message}\n`);
  }
  return context;
}

// eslint-disable-next-line max-lines-per-function -- a table: one short declaration per command.
function buildProgram(io: CliIo, context: () => CliContext): Command {
  const print = (value: unknown, json: boolean | undefined, human: () => string): void => {
    io.out(json === true ? `${JSON.stringify(value, null, 2)}\n` : human());
  };
  const program = new Command("snapkeep")
    .description("Snapshots and restores for your KVM/QEMU hosts, local or over SSH.")
    .exitOverride()
    .configureOutput({
      writeOut: io.out,
      writeErr: io.err,
      // commander's own usage errors ("error: unknown option '--x'") read like Snapkeep's.
      outputError: (text, write) => write(`snapkeep: ${sentence(text.replace(/^error: /, ""))}`),
    })
    .showHelpAfterError("(run snapkeep --help for usage)")
    .version(SNAPKEEP_VERSION, "-V, --version", "print Snapkeep's version");

  const host = program.command("host").description("manage the hypervisor hosts Snapkeep drives");
  host
    .command("add <name>")
    .description(
      "add this computer (--local) or an SSH host (--ssh user@host[:port] or an ~/.ssh/config alias)",
    )
    .addOption(new Option("--local", "this computer's libvirt").conflicts("ssh"))
    .option("--ssh <target>", "user@host[:port] or a Host alias from ~/.ssh/config")
    .option("--identity <file>", "private key file (else ssh-agent, ~/.ssh/config, ~/.ssh/id_*)")
    .option("--uri <uri>", "libvirt URI on that host", "qemu:///system")
    .option("--trust <fingerprint>", "the host key you expect (SHA256:...), pinned when it matches")
    .option("--json", "machine-readable output")
    .action(
      async (
        name: string,
        opts: {
          local?: boolean;
          ssh?: string;
          identity?: string;
          uri: string;
          trust?: string;
          json?: boolean;
        },
      ) => {
        if (opts.local === true) {
          const added = context().hosts.addLocal(name, opts.uri);
          print(added, opts.json, () => `Added host ${name} (this computer, ${opts.uri}).\n`);
          return;
        }
        if (opts.ssh === undefined) {
          throw new SnapkeepError("INVALID_INPUT", "Say which host: --local or --ssh USER@HOST[:PORT].");
        }
        const result = await context().hosts.addSsh({
          name,
          ssh: opts.ssh,
          uri: opts.uri,
          ...(opts.identity === undefined ? {} : { identityFile: opts.identity }),
          ...(opts.trust === undefined ? {} : { trust: opts.trust }),
        });
        print(result, opts.json, () =>
          result.trusted
            ? `Added host ${name}; its host key ${result.offeredFingerprint} is pinned.\n`
            : `Added host ${name}, not trusted yet: nothing runs on it until you trust its key.\n` +
              `It offers ${result.offeredFingerprint}\n` +
              `Compare it with the host's own (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then run:\n` +
              `  ${commandLine`snapkeep host trust ${name} ${result.offeredFingerprint}`}\n`,
        );
      },
    );
  host
    .command("list")
    .description("list hosts")
    .option("--json", "machine-readable output")
    .action((opts: { json?: boolean }) => {
      const hosts = context().hosts.list();
      print(hosts, opts.json, () =>
        hosts.length === 0 ? "No hosts yet. Add one with: snapkeep host add\n" : formatHosts(hosts),
      );
    });
  host
    .command("remove <name>")
    .description("forget a host (nothing on the host is touched)")
    .action(async (name: string) => {
      await context().hosts.remove(name);
      io.out(`Removed host ${name}; nothing on the host was changed.\n`);
    });
  host
    .command("trust <name> [fingerprint]")
    .description("pin the host key an SSH host offers; without a fingerprint, show what it offers")
    .action(async (name: string, fingerprint: string | undefined) => {
      if (fingerprint === undefined) {
        const offered = await context().hosts.offeredFingerprint(name);
        io.out(
          `Host ${name} offers ${offered}\nIf that is the key on the host, run:\n  ${commandLine`snapkeep host trust ${name} ${offered}`}\n`,
        );
        return;
      }
      const trusted = await context().hosts.trust(name, fingerprint);
      io.out(`Host ${name} is trusted; key ${trusted.hostKey ?? fingerprint} is pinned.\n`);
    });

  const vm = program.command("vm").description("virtual machines");
  vm.command("list")
    .description("list VMs with their disks and snapshots")
    .option("--host <name>", "only this host")
    .option("--json", "machine-readable output")
    .action(async (opts: { host?: string; json?: boolean }) => {
      const { schedules, home } = context();
      const listed = await context().vms.list(opts.host);
      // Loaded here only: the lock says whether a scheduler makes the copies the off-host RPO expects.
      const { schedulerOwner } = await import("../infra/scheduler-lock.js");
      const schedulerRunning = schedulerOwner(home) !== null;
      const results = listed.map((r) => {
        const offHost = schedules.offHostOf(r.vms, schedulerRunning);
        return {
          ...r,
          vms: schedules.rpoOf(r.vms, true).map((rpo, i) => {
            const listedVm = r.vms[i] as VmWithSnapshots;
            return {
              ...listedVm,
              rpo,
              offHost: offHost[i] ?? null,
              // As vms.list has them: from what the listing read, nothing more asked of the host.
              spaceUsedBytes: spaceUsed(listedVm.disks),
              oldestSnapshotAt: oldestRestorePoint(listedVm.snapshots),
            };
          }),
        };
      });
      const vms = results.flatMap((r) => r.vms);
      print(results, opts.json, () => (vms.length === 0 ? "No VMs found.\n" : formatVms(vms)));
      for (const failed of results.filter((r) => r.error !== null)) {
        io.err(`snapkeep: host ${failed.host} could not be listed: ${failed.error}\n`);
        const hint = failed.action === null ? failed.hint : wordHint(failed.action, "cli");
        if (hint !== null) {
          io.err(`  ${hint}\n`);
        }
      }
      if (results.length > 0 && results.every((r) => r.error !== null)) {
        throw new SnapkeepError("HOST_UNREACHABLE", "No host could be listed.");
      }
    });

  vm.command("consistency <host/vm>")
    .description("freeze the guest and run hooks around its snapshots (manual and scheduled)")
    .option("--freeze", "freeze the guest's filesystems when its agent answers (the default)")
    .option("--no-freeze", "never freeze")
    .option("--pre <command>", 'a command before the snapshot; "guest:" or "host:" prefix, split on spaces')
    .option("--post <command>", "a command after the snapshot (also after a failed one)")
    .option(
      "--hook-timeout <seconds>",
      "how long each hook may take",
      numberOption("--hook-timeout", { min: 1, max: MAX_WAIT_SECONDS }),
      300,
    )
    .option("--show", "only show the current settings")
    .action(
      async (
        ref: string,
        opts: { freeze: boolean; pre?: string; post?: string; hookTimeout: number; show?: boolean },
      ) => {
        const [hostName, vmName] = splitVmRef(ref);
        const newPre = opts.pre === undefined ? undefined : parseHook(opts.pre, opts.hookTimeout);
        const newPost = opts.post === undefined ? undefined : parseHook(opts.post, opts.hookTimeout);
        const current = await context().vms.get(hostName, vmName);
        if (opts.show === true) {
          io.out(
            `${JSON.stringify(context().annotations.consistencyOf(hostName, current.uuid) ?? { freeze: true }, null, 2)}\n`,
          );
          return;
        }
        // Options given change the current settings; hooks not mentioned stay as they were.
        const previous = context().annotations.consistencyOf(hostName, current.uuid);
        const pre = newPre ?? previous?.pre;
        const post = newPost ?? previous?.post;
        const settings = {
          freeze: opts.freeze,
          ...(pre === undefined ? {} : { pre }),
          ...(post === undefined ? {} : { post }),
        };
        context().annotations.setConsistency(hostName, current.uuid, settings);
        io.out(
          `Snapshots of ${displayName(current.name)}: ${settings.freeze ? "freeze when the guest agent answers" : "no freeze"}` +
            `${settings.pre === undefined ? "" : `; before: ${settings.pre.argv.join(" ")} (${settings.pre.where})`}` +
            `${settings.post === undefined ? "" : `; after: ${settings.post.argv.join(" ")} (${settings.post.where})`}.\n`,
        );
      },
    );

  const snapshot = program.command("snapshot").description("disk snapshots of a VM");
  snapshot
    .command("create <host/vm>")
    .description("snapshot the whole VM or chosen disks, running or shut off")
    .option("--disk <targets>", "comma-separated disk targets, e.g. vda,vdb", diskList)
    .option("--name <name>", "snapshot name (default: manual-<date>-<time>)")
    .option("--note <text>", "a note kept with the snapshot")
    .option("--json", "machine-readable output")
    .action(async (ref: string, opts: { disk?: string[]; name?: string; note?: string; json?: boolean }) => {
      const [hostName, vmName] = splitVmRef(ref);
      const created = await context().snapshots.create(hostName, vmName, {
        ...(opts.disk === undefined ? {} : { disks: opts.disk }),
        ...(opts.name === undefined ? {} : { name: opts.name }),
        ...(opts.note === undefined ? {} : { note: opts.note }),
      });
      print(
        created,
        opts.json,
        () =>
          `Created snapshot ${displayName(created.name)} of ${created.disks.map((d) => d.target).join(", ")}.\n`,
      );
    });
  snapshot
    .command("list <host/vm>")
    .description("list a VM's snapshots, oldest first")
    .option("--json", "machine-readable output")
    .action(async (ref: string, opts: { json?: boolean }) => {
      const [hostName, vmName] = splitVmRef(ref);
      // With what each would free (read from the images' metadata): the JSON carries it too.
      const { vm: measured, space } = await context().vms.space(hostName, vmName);
      const list = measured.snapshots;
      print(list, opts.json, () =>
        list.length === 0 ? "No snapshots.\n" : formatSnapshots(list) + formatSpace(space),
      );
    });
  snapshot
    .command("delete <host/vm> <snapshot>")
    .description("delete a snapshot Snapkeep made")
    .option("--dry-run", "only say what would be deleted")
    .action(async (ref: string, snapshotRef: string, opts: { dryRun?: boolean }) => {
      const [hostName, vmName] = splitVmRef(ref);
      const dryRun = opts.dryRun === true;
      const deleted = await context().snapshots.delete(hostName, vmName, snapshotRef, { dryRun });
      io.out(
        dryRun
          ? `Would delete snapshot ${displayName(deleted.name)} (${formatTime(deleted.createdAt)}) from ${deleted.disks.map((d) => d.target).join(", ")}.\n`
          : `Deleted snapshot ${displayName(deleted.name)}.\n`,
      );
    });
  const revert = snapshot
    .command("revert <host/vm> <snapshot>")
    .description("revert disks to a snapshot (a running VM is stopped and started again with --yes)")
    .option("--disk <targets>", "only these disks", diskList);
  withStopOptions(revert).action(
    async (ref: string, snapshotRef: string, opts: StopOptions & { disk?: string[] }) => {
      const [hostName, vmName] = splitVmRef(ref);
      const result = await context().revert.revert(hostName, vmName, snapshotRef, {
        ...revertRequest(opts, io),
        ...(opts.disk === undefined ? {} : { disks: opts.disk }),
      });
      io.out(describeRevert(result, ref));
    },
  );
  const undo = snapshot
    .command("undo <host/vm>")
    .description("undo the last revert: revert to the safety snapshot taken just before it");
  withStopOptions(undo).action(async (ref: string, opts: StopOptions) => {
    const [hostName, vmName] = splitVmRef(ref);
    const result = await context().revert.undo(hostName, vmName, revertRequest(opts, io));
    io.out(describeRevert(result, ref));
  });
  snapshot
    .command("safety-keep [n]")
    .description("how many safety snapshots (taken before each revert) to keep per VM")
    .action((n: string | undefined) => {
      if (n !== undefined) {
        context().revert.setSafetyKeep(
          parseNumber(n, "the number of safety snapshots to keep", { min: 1, max: MAX_SAFETY_KEPT }),
        );
      }
      io.out(`Snapkeep keeps the newest ${context().revert.safetyKeep()} safety snapshots per VM.\n`);
    });
  for (const [command, pinned] of [
    ["pin", true],
    ["unpin", false],
  ] as const) {
    snapshot
      .command(`${command} <host/vm> <snapshot>`)
      .description(pinned ? "protect a snapshot from deletion and pruning" : "remove the protection")
      .action(async (ref: string, snapshotRef: string) => {
        const [hostName, vmName] = splitVmRef(ref);
        const result = await context().snapshots.setPinned(hostName, vmName, snapshotRef, pinned);
        io.out(`Snapshot ${displayName(result.name)} is ${pinned ? "pinned" : "no longer pinned"}.\n`);
      });
  }

  registerScheduleCommands(program, io, context, print);
  registerExportCommands(program, io, context, print);
  registerDoctorCommand(program, context, print);
  registerServiceCommands(program, io, context, print);
  registerNotifyCommands(program, io, context, print);
  registerLibraryCommands(program, vm, io, context, print);
  registerFilesCommands(program, io, context, print);
  registerDrillCommands(program, io, context, print);

  registerServeCommand(program, io, context);

  program
    .command("metrics")
    .description("the backups' state in Prometheus' text format (what serve's /metrics answers)")
    .action(async () => {
      const { metricsText } = await import("../api/metrics.js");
      io.out(await metricsText({ ...context(), now: () => new Date() }));
    });

  const lab = program
    .command("lab")
    .description("two small demo VMs on this computer, to try Snapkeep safely");
  lab
    .command("up")
    .description("create the demo VMs (one running, one shut off) on qemu:///system")
    .option("--dir <path>", "where their disk images go", DEFAULT_LAB_DIR)
    .action(async (opts: { dir: string }) => {
      validateNoControlCharacters("folder", opts.dir);
      const runner = new LocalRunner();
      const made = await labUp(runner, "qemu:///system", opts.dir);
      const hosts = context().hosts.list();
      if (!hosts.some((h) => h.kind === "local")) {
        context().hosts.addLocal("local");
      }
      io.out(
        made.length === 0
          ? "The demo VMs are already there.\n"
          : `Created ${made.map((m) => m.name).join(" and ")}. Try: snapkeep vm list\n`,
      );
    });
  lab
    .command("down")
    .description("remove the demo VMs and their disks (only VMs that lab up made)")
    .option("--dry-run", "only say what would be removed")
    .action(async (opts: { dryRun?: boolean }) => {
      const removed = await removeLabVms(new LocalRunner(), "qemu:///system", DEMO_OWNER, {
        dryRun: opts.dryRun === true,
      });
      if (opts.dryRun !== true && removed.length > 0) {
        // Their notes, pins and schedules go with them, from every host entry for this computer.
        const uuids = new Set(removed.map((r) => r.uuid));
        const { forgetVms } = await import("../domain/forget-vms.js");
        const local = context()
          .hosts.list()
          .filter((h) => h.kind === "local" && (h.uri ?? "qemu:///system") === "qemu:///system");
        context().store.update((s) => local.reduce((next, h) => forgetVms(next, h.name, uuids), s));
      }
      const verb = opts.dryRun === true ? "Would remove" : "Removed";
      io.out(
        removed.length === 0
          ? "No demo VMs to remove.\n"
          : removed.map((r) => `${verb} ${r.name} and ${r.files.length} disk image(s).\n`).join(""),
      );
    });
  return program;
}

interface StopOptions {
  yes?: boolean;
  force?: boolean;
  powerOffNow?: boolean;
  shutdownTimeout: number;
  dryRun?: boolean;
}

/** The options revert and undo share: consent to stop a running VM, and a dry run. */
function withStopOptions(command: Command): Command {
  return command
    .option("--yes", "stop a running VM, revert, and start it again")
    .option("--force", "power the VM off if it is still running when the shutdown wait is over")
    .option(
      "--power-off-now",
      "power a running VM off at once, without a shutdown request (implies --yes; unwritten guest data is lost)",
    )
    .option(
      "--shutdown-timeout <seconds>",
      "how long to wait for a clean shutdown",
      numberOption("--shutdown-timeout", { min: 1, max: MAX_WAIT_SECONDS }),
      120,
    )
    .option("--dry-run", "only say what would happen");
}

function revertRequest(opts: StopOptions, io: CliIo): RevertRequest {
  let shown: RevertProgress["phase"] | null = null;
  return {
    dryRun: opts.dryRun === true,
    stopRunning: opts.yes === true || opts.powerOffNow === true,
    force: opts.force === true,
    powerOffNow: opts.powerOffNow === true,
    shutdownTimeoutMs: opts.shutdownTimeout * 1000,
    // One line per step on stderr; the wait for the shutdown says when it ends and what then.
    onProgress: (progress) => {
      if (progress.phase === shown) {
        return;
      }
      shown = progress.phase;
      io.err(
        progress.phase === "shutting-down"
          ? `Waiting up to ${progress.secondsLeft} s for the guest to shut down (until ${formatTime(progress.deadline)}); ${progress.then === "power-off" ? "then it is powered off" : "then the revert stops, changing nothing"}.\n`
          : progress.phase === "powering-off"
            ? "Powering the VM off.\n"
            : progress.phase === "reverting"
              ? "Reverting the disks.\n"
              : "Starting the VM again.\n",
      );
    },
  };
}

function describeRevert(result: RevertResult, ref: string): string {
  const target = `${displayName(result.snapshot.name)} (${formatTime(result.snapshot.createdAt)})`;
  const lines: string[] = [];
  if (result.dryRun) {
    lines.push(
      `Would ${result.restarted ? `shut down ${displayName(result.vm)}, ` : ""}take safety snapshot ${displayName(result.safety.name)} of ${result.disks.join(", ")}, revert them to ${target}${result.restarted ? ", and start it again" : ""}.`,
    );
    if (result.needsConsent) {
      lines.push("The VM is running: the real revert needs --yes.");
    }
    if (result.guestAgent === false) {
      lines.push(
        "No guest agent answers in it: if it also ignores a shutdown request (no OS, no ACPI support), the revert would wait for nothing; --power-off-now powers it off at once instead.",
      );
    }
    if (result.prunedSafety.length > 0) {
      lines.push(
        `It would delete the oldest safety snapshots: ${result.prunedSafety.map(displayName).join(", ")}`,
      );
    }
  } else {
    lines.push(
      `Reverted ${result.disks.join(", ")} to ${displayName(result.snapshot.name)}${result.restarted ? "; the VM was started again" : ""}.`,
      `Safety snapshot ${displayName(result.safety.name)} holds what was there before; undo with: ${commandLine`snapkeep snapshot undo ${ref}`}`,
    );
    if (result.prunedSafety.length > 0) {
      lines.push(`Deleted older safety snapshots: ${result.prunedSafety.map(displayName).join(", ")}`);
    }
  }
  if (result.definitionChanges === null) {
    lines.push("The VM's definition at snapshot time was not recorded, so changes to it cannot be shown.");
  } else if (result.definitionChanges.length > 0) {
    lines.push(
      "The VM's definition changed since the snapshot; reverting disks does not change it back:",
      ...result.definitionChanges.map((c) => `  ${c.description}`),
    );
  }
  return `${lines.join("\n")}\n`;
}

function reportError(error: unknown, io: CliIo): void {
  const view = toErrorView(error, "cli");
  io.err(`snapkeep: ${view.message}\n`);
  if (view.hint !== null) {
    io.err(`  ${view.hint}\n`);
  }
  if (view.code === "INTERNAL") {
    io.err(
      io.env["SNAPKEEP_DEBUG"] && error instanceof Error && error.stack
        ? `${error.stack}\n`
        : "  This is a bug in Snapkeep; run again with SNAPKEEP_DEBUG=1 to see where it happened.\n",
    );
  }
}

function sentence(text: string): string {
  const trimmed = text.trimEnd();
  const capitalized = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return `${/[.!?]$/.test(capitalized) ? capitalized : `${capitalized}.`}\n`;
}

/**
 * "guest:/usr/local/bin/db-dump --quick" or "host:/path/script": where it runs, then its argv split
 * on whitespace. Nothing goes through a shell; a command that needs quoting belongs in a script.
 */
export function parseHook(text: string, timeoutSeconds: number): Hook {
  const match = /^(guest|host):(.+)$/s.exec(text.trim());
  const argv = match?.[2]?.trim().split(/\s+/) ?? [];
  if (match === null || argv.length === 0 || argv[0] === "") {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `"${text}" is not a hook: write guest:COMMAND or host:COMMAND.`,
      {
        hint: 'For example --pre "guest:/usr/local/bin/dump-db --all".',
      },
    );
  }
  return { where: match[1] as "guest" | "host", argv, timeoutSeconds };
}

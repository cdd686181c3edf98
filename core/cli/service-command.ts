/**
 * `snapkeep service install|status|uninstall`: Snapkeep as a systemd service on this computer
 * (app/service.ts). Install and uninstall need root, as writing /etc/systemd/system does; their
 * dry runs print the unit file and the commands, and need nothing.
 */
import { userInfo } from "node:os";
import { existsSync, realpathSync } from "node:fs";
import type { Command } from "commander";

import { installService, isOwnUnit, planService, serviceState, uninstallService } from "../app/service.js";
import { UNIT_NAME, UNIT_PATH } from "../drivers/systemd/unit.js";
import { SnapkeepError } from "../errors.js";
import { schedulerOwner } from "../infra/scheduler-lock.js";
import { LocalRunner } from "../infra/runner/local.js";
import type { CliContext, CliIo } from "./main.js";
import { numberOption } from "./options.js";

/** The script node runs for this command (bin/snapkeep.js, through any npm link), resolved. */
function cliScript(): string {
  const script = process.argv[1];
  if (script === undefined || !existsSync(script)) {
    throw new SnapkeepError("NOT_FOUND", "Cannot tell where Snapkeep's command is installed.");
  }
  return realpathSync(script);
}

export function registerServiceCommands(
  program: Command,
  io: CliIo,
  context: () => CliContext,
  print: (value: unknown, json: boolean | undefined, human: () => string) => void,
): void {
  const service = program
    .command("service")
    .description("run Snapkeep as a systemd service on this computer (install, status, uninstall)");
  service
    .command("install")
    .description("write snapkeep.service (the daemon, or serve with --with-web), enable and start it")
    .option("--user <user>", "the user it runs as (default: you); its state folder is that user's")
    .option("--with-web", "run the web UI (on 127.0.0.1) with the scheduler in it, instead of the daemon")
    .option("--port <n>", "the web UI's port", numberOption("--port", { min: 1, max: 65535 }), 8484)
    .option("--json-logs", "one JSON object per log line in the journal")
    .option("--dry-run", "print the unit file and the commands; change nothing")
    .action((opts: InstallOptions) => install(io, context, opts));
  service
    .command("status")
    .description("whether snapkeep.service is installed, running and enabled, and who runs the schedules")
    .option("--json", "machine-readable output")
    .action(async (opts: { json?: boolean }) => {
      const own = isOwnUnit(UNIT_PATH);
      const state = own === null ? null : await serviceState(new LocalRunner());
      const owner = schedulerOwner(context().home);
      print({ installed: own !== null, writtenBySnapkeep: own, state, scheduler: owner }, opts.json, () =>
        [
          state === null
            ? `${UNIT_NAME} is not installed.`
            : `${UNIT_NAME}: ${state.active} (${state.sub}), ${state.enabled || "no unit file"}${state.mainPid === null ? "" : `, pid ${state.mainPid}`}${state.since === null ? "" : `, since ${state.since}`}${state.restarts > 0 ? `, restarted ${state.restarts} time(s)` : ""}${own === false ? " (not written by Snapkeep)" : ""}.`,
          owner === null
            ? "Nothing runs the schedules of this state folder now."
            : `Schedules are run by ${owner.app} (pid ${owner.pid}).`,
          "",
        ].join("\n"),
      );
    });
  service
    .command("uninstall")
    .description("stop, disable and remove snapkeep.service (only one Snapkeep wrote)")
    .option("--dry-run", "only say what would be done")
    .action(async (opts: { dryRun?: boolean }) => {
      const dryRun = opts.dryRun === true;
      if (!dryRun) {
        requireRoot("uninstall");
      }
      const result = await uninstallService(new LocalRunner(), { dryRun });
      io.out(
        result.removed === null
          ? `${UNIT_NAME} is not installed.\n`
          : `${dryRun ? "Would run" : "Ran"}:\n${result.commands.map((c) => `  ${c.join(" ")}\n`).join("")}${dryRun ? "Would remove" : "Removed"} ${result.removed}.\n`,
      );
    });
}

interface InstallOptions {
  user?: string;
  withWeb?: boolean;
  port: number;
  jsonLogs?: boolean;
  dryRun?: boolean;
}

async function install(io: CliIo, context: () => CliContext, opts: InstallOptions): Promise<void> {
  const runner = new LocalRunner();
  const me = userInfo().username;
  const plan = await planService(
    runner,
    {
      user: opts.user ?? me,
      webPort: opts.withWeb === true ? opts.port : null,
      jsonLogs: opts.jsonLogs === true,
    },
    { node: process.execPath, cli: cliScript(), currentUser: me, currentHome: context().home },
  );
  const warnings = plan.warnings.map((w) => `Warning: ${w}\n`).join("");
  if (opts.dryRun === true) {
    io.out(
      `Would write ${plan.unitPath}:\n\n${plan.unit}\nthen run:\n${plan.commands.map((c) => `  ${c.join(" ")}\n`).join("")}${warnings}`,
    );
    return;
  }
  requireRoot("install");
  const state = await installService(runner, plan);
  io.out(
    `${warnings}Wrote ${plan.unitPath}; ${UNIT_NAME} is ${state === null ? "installed" : `${state.active} (${state.sub}), ${state.enabled}`}.\nIts log: journalctl -u ${UNIT_NAME} -f\n`,
  );
}

function requireRoot(verb: string): void {
  if (process.getuid?.() !== 0) {
    throw new SnapkeepError("PERMISSION_DENIED", `Writing a system service needs root.`, {
      hint: `Run it as root: sudo snapkeep service ${verb} (with the same options).`,
    });
  }
}

/**
 * Snapkeep as a systemd service on a headless host (issue 17): one unit, `snapkeep.service`, that
 * runs the daemon (or `serve` with the scheduler in it), restarts on failure, logs to the journal
 * one line per job, and starts at boot. Only a unit file Snapkeep wrote is ever replaced or
 * removed; every step has a dry run that prints the file and the commands.
 */
import { SnapkeepError } from "../errors.js";
import { snapkeepHome } from "../infra/store/home.js";
import { replaceFiles } from "../infra/store/files.js";
import { readTextIfThere, removeFile, systemdRunning } from "../infra/system-files.js";
import { runChecked } from "../infra/runner/checked.js";
import type { CommandRunner } from "../infra/runner/types.js";
import {
  parseSystemctlShow,
  renderServiceUnit,
  systemctlShowArgs,
  UNIT_MARKER,
  UNIT_NAME,
  UNIT_PATH,
  type UnitState,
} from "../drivers/systemd/unit.js";

export interface ServiceRequest {
  /** The user the service runs as; its state folder is that user's. */
  readonly user: string;
  /** Run `serve` (the UI on loopback, port given) with the scheduler in it, not the daemon. */
  readonly webPort: number | null;
  readonly jsonLogs: boolean;
}

/** Where this Snapkeep is: the service runs the same node and CLI script, with absolute paths. */
export interface ServiceInstall {
  readonly node: string;
  readonly cli: string;
  /** The installing user's name and state folder (used when the service runs as that user). */
  readonly currentUser: string;
  readonly currentHome: string;
  readonly unitPath?: string | undefined;
}

export interface ServicePlan {
  readonly unitPath: string;
  readonly unit: string;
  readonly home: string;
  /** What install runs after writing the file, in order. */
  readonly commands: readonly (readonly string[])[];
  readonly warnings: readonly string[];
}

export async function planService(
  runner: CommandRunner,
  request: ServiceRequest,
  install: ServiceInstall,
): Promise<ServicePlan> {
  const home =
    request.user === install.currentUser ? install.currentHome : await homeOf(runner, request.user);
  const command =
    request.webPort === null
      ? ["daemon"]
      : ["serve", "--host", "127.0.0.1", "--port", String(request.webPort)];
  const unit = renderServiceUnit({
    execStart: [install.node, install.cli, ...command, ...(request.jsonLogs ? ["--json"] : [])],
    user: request.user,
    home,
    description:
      request.webPort === null
        ? "Snapkeep scheduler: VM snapshots and off-host copies"
        : "Snapkeep web UI and scheduler: VM snapshots and off-host copies",
  });
  return {
    unitPath: install.unitPath ?? UNIT_PATH,
    unit,
    home,
    commands: [
      ["systemctl", "daemon-reload"],
      ["systemctl", "enable", UNIT_NAME],
      ["systemctl", "restart", UNIT_NAME],
    ],
    warnings: await libvirtAccessWarnings(runner, request.user),
  };
}

/** Writes the unit (replacing only one Snapkeep wrote), reloads systemd, enables and (re)starts it. */
export async function installService(runner: CommandRunner, plan: ServicePlan): Promise<UnitState | null> {
  requireSystemd();
  requireOwnOrNone(plan.unitPath);
  replaceFiles([{ path: plan.unitPath, content: Buffer.from(plan.unit) }], 0o644);
  for (const argv of plan.commands) {
    await runChecked(runner, argv, `Running ${argv.join(" ")}`, { timeoutMs: 120_000 });
  }
  return serviceState(runner);
}

/** Stops and disables the unit and removes its file, when it is one Snapkeep wrote. */
export async function uninstallService(
  runner: CommandRunner,
  options: { dryRun: boolean; unitPath?: string | undefined },
): Promise<{ removed: string | null; commands: readonly (readonly string[])[] }> {
  const unitPath = options.unitPath ?? UNIT_PATH;
  if (readTextIfThere(unitPath) === null) {
    return { removed: null, commands: [] };
  }
  requireOwnOrNone(unitPath);
  const commands = [
    ["systemctl", "disable", "--now", UNIT_NAME],
    ["systemctl", "daemon-reload"],
  ] as const;
  if (options.dryRun) {
    return { removed: unitPath, commands };
  }
  requireSystemd();
  await runChecked(runner, commands[0], `Stopping ${UNIT_NAME}`, { timeoutMs: 6 * 3600_000 });
  removeFile(unitPath);
  await runChecked(runner, commands[1], "Reloading systemd", { timeoutMs: 120_000 });
  return { removed: unitPath, commands };
}

/** The unit's state, or null when it is not installed. */
export async function serviceState(runner: CommandRunner, unitPath = UNIT_PATH): Promise<UnitState | null> {
  if (readTextIfThere(unitPath) === null) {
    return null;
  }
  requireSystemd();
  const shown = await runChecked(runner, systemctlShowArgs(), `Asking systemd about ${UNIT_NAME}`, {
    timeoutMs: 30_000,
  });
  return parseSystemctlShow(shown.stdout);
}

/** Whether a file there is one Snapkeep wrote (null: there is none). */
export function isOwnUnit(unitPath: string): boolean | null {
  const text = readTextIfThere(unitPath);
  return text === null ? null : text.startsWith(`${UNIT_MARKER}\n`);
}

function requireOwnOrNone(unitPath: string): void {
  if (isOwnUnit(unitPath) === false) {
    throw new SnapkeepError(
      "ALREADY_EXISTS",
      `${unitPath} exists and was not written by Snapkeep; it was left as it is.`,
      { hint: "Move it away first if Snapkeep should manage this service." },
    );
  }
}

function requireSystemd(): void {
  if (!systemdRunning()) {
    throw new SnapkeepError(
      "TOOL_MISSING",
      "systemd is not running on this machine, so there is no service to manage.",
      {
        hint: "Run the daemon some other way (a container's own supervisor, or a terminal multiplexer).",
      },
    );
  }
}

async function homeOf(runner: CommandRunner, user: string): Promise<string> {
  const result = await runner.run(["getent", "passwd", user], { timeoutMs: 10_000 });
  const fields = result.stdout.trim().split(":");
  if (result.code !== 0 || fields.length < 7 || !fields[5]?.startsWith("/")) {
    throw new SnapkeepError("NOT_FOUND", `There is no user "${user}" on this computer.`);
  }
  return snapkeepHome("linux", {}, fields[5]);
}

/** libvirt's system connection needs root or the libvirt group; said, not refused (polkit may allow it). */
async function libvirtAccessWarnings(runner: CommandRunner, user: string): Promise<string[]> {
  if (user === "root") {
    return [];
  }
  const groups = await runner.run(["id", "-nG", user], { timeoutMs: 10_000 });
  if (groups.code !== 0) {
    throw new SnapkeepError("NOT_FOUND", `There is no user "${user}" on this computer.`);
  }
  return groups.stdout.split(/\s+/).includes("libvirt")
    ? []
    : [
        `${user} is not in the libvirt group: the service may not reach qemu:///system, and LVM snapshots need root.`,
      ];
}

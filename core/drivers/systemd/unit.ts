/**
 * The systemd unit `snapkeep service install` writes, and what `systemctl show` says about it.
 * Pure: text in, text out; the app layer writes the file and runs systemctl.
 *
 * Hardening is what leaves Snapkeep's work alone: it runs virsh, qemu-img, LVM (which writes
 * /etc/lvm/backup and reads /dev/mapper devices) and ssh, stages exports under /var/tmp and keeps
 * its state in the user's home. So no ProtectSystem=full (it makes /etc read-only), no
 * ProtectHome, no PrivateTmp (a staged export would vanish with the service's /var/tmp), no
 * PrivateDevices or ProtectClock (both close the device list), no MemoryDenyWriteExecute (Node's
 * JIT needs it). What is left denies what Snapkeep never does.
 */
import { SnapkeepError } from "../../errors.js";

export const UNIT_NAME = "snapkeep.service";
export const UNIT_PATH = `/etc/systemd/system/${UNIT_NAME}`;
/** The first line of every unit Snapkeep writes: it replaces or removes only a unit with it. */
export const UNIT_MARKER = "# Written by `snapkeep service install`; it replaces or removes only this file.";

export interface ServiceSpec {
  /** node, the CLI script, then the command: absolute paths. */
  readonly execStart: readonly string[];
  readonly user: string;
  /** The state folder the service uses (SNAPKEEP_HOME), the same the installing CLI used. */
  readonly home: string;
  readonly description: string;
}

const HARDENING = [
  "NoNewPrivileges=yes",
  "ProtectSystem=true",
  "ProtectKernelTunables=yes",
  "ProtectKernelLogs=yes",
  "ProtectControlGroups=yes",
  "ProtectHostname=yes",
  "RestrictSUIDSGID=yes",
  "RestrictRealtime=yes",
  "LockPersonality=yes",
  "SystemCallArchitectures=native",
  "UMask=0077",
];

export function renderServiceUnit(spec: ServiceSpec): string {
  if (!/^[a-z_][a-z0-9_-]{0,31}\$?$/i.test(spec.user)) {
    throw new SnapkeepError("INVALID_INPUT", `"${spec.user}" is not a user name systemd accepts.`);
  }
  return [
    UNIT_MARKER,
    "[Unit]",
    `Description=${oneLine(spec.description)}`,
    "After=network-online.target libvirtd.service",
    "Wants=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    `User=${spec.user}`,
    `Environment=${environmentWord("SNAPKEEP_HOME", spec.home)}`,
    `ExecStart=${spec.execStart.map(systemdQuote).join(" ")}`,
    // A crash or a lost lock restarts it; a clean stop (systemctl stop) does not.
    "Restart=on-failure",
    "RestartSec=10s",
    // Running jobs are waited for on stop (the daemon finishes them), up to a long export's end.
    "TimeoutStopSec=6h",
    "KillMode=mixed",
    "SyslogIdentifier=snapkeep",
    ...HARDENING,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/**
 * One word of an ExecStart= or Environment= line: bare when it is plain, else in double quotes
 * with systemd's escapes; `%` (specifiers) and `$` (variables) doubled so they stay literal.
 */
export function systemdQuote(word: string): string {
  if (hasControl(word)) {
    throw new SnapkeepError("INVALID_INPUT", "A control character cannot go into a systemd unit.");
  }
  const literal = word.replaceAll("%", "%%").replaceAll("$", "$$$$");
  return /^[A-Za-z0-9_@+=:,./-]+$/.test(literal) && word !== ""
    ? literal
    : `"${literal.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** Environment= expands specifiers but not variables: only `%` is doubled there. */
export function environmentWord(name: string, value: string): string {
  if (hasControl(value)) {
    throw new SnapkeepError("INVALID_INPUT", "A control character cannot go into a systemd unit.");
  }
  const literal = `${name}=${value}`.replaceAll("%", "%%");
  return `"${literal.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

function hasControl(text: string): boolean {
  return [...text].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
}

function oneLine(text: string): string {
  return [...text]
    .map((c) => (hasControl(c) ? " " : c))
    .join("")
    .replaceAll("%", "%%");
}

/** The unit's state as `systemctl show --property=...` prints it. */
export interface UnitState {
  readonly loaded: boolean;
  /** active, inactive, failed, activating, ... */
  readonly active: string;
  readonly sub: string;
  readonly mainPid: number | null;
  /** enabled, disabled, ... ("" when there is no unit file). */
  readonly enabled: string;
  readonly restarts: number;
  readonly since: string | null;
}

export const SHOW_PROPERTIES = [
  "LoadState",
  "ActiveState",
  "SubState",
  "MainPID",
  "UnitFileState",
  "NRestarts",
  "ActiveEnterTimestamp",
] as const;

export function systemctlShowArgs(): string[] {
  return ["systemctl", "show", UNIT_NAME, `--property=${SHOW_PROPERTIES.join(",")}`];
}

export function parseSystemctlShow(text: string): UnitState {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) {
      values.set(line.slice(0, at), line.slice(at + 1).trim());
    }
  }
  const get = (key: (typeof SHOW_PROPERTIES)[number]): string => {
    const value = values.get(key);
    if (value === undefined) {
      throw new SnapkeepError("UNEXPECTED_OUTPUT", `systemctl show did not print ${key}.`);
    }
    return value;
  };
  const pid = Number(get("MainPID"));
  const restarts = Number(values.get("NRestarts") ?? "0");
  return {
    loaded: get("LoadState") === "loaded",
    active: get("ActiveState"),
    sub: get("SubState"),
    mainPid: Number.isInteger(pid) && pid > 0 ? pid : null,
    enabled: values.get("UnitFileState") ?? "",
    restarts: Number.isInteger(restarts) ? restarts : 0,
    since: (values.get("ActiveEnterTimestamp") ?? "") || null,
  };
}

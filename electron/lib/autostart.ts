/**
 * Start on login. Linux: an XDG autostart entry, `$XDG_CONFIG_HOME/autostart/dev.snapkeep.app.desktop`
 * (Electron's setLoginItemSettings is macOS and Windows only); turning it off deletes the file.
 * The entry starts the app hidden, in the tray, so the schedules run without a window.
 */
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, posix } from "node:path";

import { SnapkeepError } from "../../core/errors.js";

export const APP_ID = "dev.snapkeep.app";
/** The argument that starts the app in the tray without opening its window. */
export const HIDDEN_FLAG = "--hidden";

export function autostartPath(env: NodeJS.ProcessEnv, homeDir: string): string {
  const config = env["XDG_CONFIG_HOME"] || posix.join(homeDir, ".config");
  return posix.join(config, "autostart", `${APP_ID}.desktop`);
}

/**
 * The command that starts this app again: an AppImage must be started through its own file
 * ($APPIMAGE; the binary inside is in a temporary mount), an installed app through its binary, and
 * a development checkout as `electron <app folder>`.
 */
export function autostartCommand(launch: {
  readonly execPath: string;
  readonly appImage: string | undefined;
  readonly isPackaged: boolean;
  readonly appPath: string;
}): string[] {
  if (!launch.isPackaged) {
    return [launch.execPath, launch.appPath, HIDDEN_FLAG];
  }
  return [launch.appImage ?? launch.execPath, HIDDEN_FLAG];
}

/** Reserved characters of the Desktop Entry spec: an argument holding one must be quoted. */
const RESERVED = /[\s"'\\><~|&;$*?#()`]/;

/**
 * One argument of an `Exec=` line, per the Desktop Entry spec: a literal `%` becomes `%%` (field
 * codes); an argument with a reserved character (or an empty one) is put in double quotes with
 * `"`, `` ` ``, `$` and `\` backslash-escaped. The string escapes of the whole value come after.
 */
export function quoteExecArgument(argument: string): string {
  const escaped = argument.replaceAll("%", "%%");
  if (escaped !== "" && !RESERVED.test(escaped)) {
    return escaped;
  }
  return `"${escaped.replace(/["`$\\]/g, (c) => `\\${c}`)}"`;
}

/**
 * The `Exec=` value: quoted arguments joined by spaces, then the string-value escapes, which the
 * spec applies before unquoting: a backslash is written `\\` (so a literal backslash inside a
 * quoted argument ends up as four), a newline `\n`, a carriage return `\r`.
 */
export function execValue(argv: readonly string[]): string {
  if (argv.length === 0) {
    throw new SnapkeepError("INVALID_INPUT", "An autostart entry needs a program to start.");
  }
  return argv
    .map(quoteExecArgument)
    .join(" ")
    .replace(/[\\\n\r]/g, (c) => (c === "\\" ? "\\\\" : c === "\n" ? "\\n" : "\\r"));
}

export function desktopEntry(argv: readonly string[]): string {
  return [
    "[Desktop Entry]",
    "Type=Application",
    "Version=1.5",
    "Name=Snapkeep",
    "Comment=Keeps the snapshot schedules of your KVM/QEMU hosts running, from the system tray",
    `Exec=${execValue(argv)}`,
    "Terminal=false",
    "X-GNOME-Autostart-enabled=true",
    "",
  ].join("\n");
}

/** Writes (atomically: a half-written entry must never be run) or removes the autostart entry. */
export async function setLinuxAutostart(path: string, argv: readonly string[] | null): Promise<void> {
  if (argv === null) {
    await rm(path, { force: true });
    return;
  }
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, desktopEntry(argv), { mode: 0o644 });
  await rename(temporary, path);
}

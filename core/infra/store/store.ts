import { chmodSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { SnapkeepError, describeError } from "../../errors.js";
import { removeIfThere, replaceFiles, settingsWriteError, TEMP_INFIX } from "./files.js";
import { withFileLock } from "./lock.js";
import { emptySettings, settingsSchema, SETTINGS_VERSION, type Settings } from "../../domain/settings.js";

export interface SettingsStore {
  read(): Settings;
  /**
   * Applies a change to the current settings; the result is validated, then written so that a
   * write that cannot complete (a full disk) leaves the file as it was and throws one sentence.
   * Read and write happen under a lock shared with every other Snapkeep process on this home.
   */
  update(change: (current: Settings) => Settings): Settings;
  /** True when this run created the file: the first start, when "This computer" gets added. */
  readonly createdNow: boolean;
  /**
   * Set when the settings file was unreadable and was moved aside: `message` says so and what
   * Snapkeep started with instead, and the CLI and UI must show it.
   */
  readonly recovered: { readonly movedTo: string; readonly reason: string; readonly message: string } | null;
  readonly path: string;
}

/**
 * Only this user may read the settings: they name hosts and keys (and a file from before the
 * desktop app had its own settings file may still hold its encrypted key passphrase).
 */
const FILE_MODE = 0o600;

/**
 * Opens the settings file `settings.json` in `home`. Every write also leaves a copy of what it wrote
 * in `settings.json.last-good`. A main file that does not parse or does not match the schema is
 * never silently replaced: it is kept as `settings.json.corrupt-<time>`, the last good copy takes
 * its place (or, when there is none, empty settings do), and `recovered` says so.
 *
 * A file written by a newer Snapkeep is refused and left alone (moving it aside would lose the
 * newer version's settings), and one that cannot be read at all (permissions, a directory in its
 * place) is reported as it is: neither is corrupt, and the person has to act.
 */
export function openSettingsStore(home: string, now: Date): SettingsStore {
  try {
    mkdirSync(home, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw settingsWriteError(error, home);
  }
  const files = settingsFiles(home);
  const { path, lastGood } = files;
  const write = (settings: Settings): void => {
    const content = Buffer.from(`${JSON.stringify(settings, null, "\t")}\n`);
    // The main file first: the copy may lag one write behind it after a crash, never run ahead.
    try {
      replaceFiles(
        [
          { path, content },
          { path: lastGood, content },
        ],
        FILE_MODE,
      );
    } catch (error) {
      throw settingsWriteError(error, home);
    }
  };

  let opened: Pick<SettingsStore, "createdNow" | "recovered"> = { createdNow: false, recovered: null };
  // A valid file is only read, so a full or read-only disk still lets every command that only reads
  // run. Creating or repairing it takes the lock, since another process may be doing the same.
  if (readSettingsFile(path).kind === "valid") {
    tightenMode(path);
  } else {
    opened = withFileLock(files.lock, () => {
      const found = readSettingsFile(path);
      if (found.kind === "valid") {
        return { createdNow: false, recovered: null };
      }
      if (found.kind === "missing") {
        write(emptySettings());
        return { createdNow: true, recovered: null };
      }
      return { createdNow: false, recovered: recover(files, found.reason, now, write) };
    });
  }

  const current = (): Settings => {
    const found = readSettingsFile(path);
    if (found.kind === "corrupt") {
      throw new SnapkeepError(
        "STORE_CORRUPT",
        `The settings file ${path} became unreadable while Snapkeep was running (${found.reason}).`,
        {
          hint: `Restart Snapkeep: it keeps the broken file aside and goes back to the last good settings in ${lastGood}.`,
        },
      );
    }
    return found.kind === "missing" ? emptySettings() : found.settings;
  };

  return {
    path,
    ...opened,
    read: current,
    update(change) {
      return withFileLock(files.lock, () => {
        const next = settingsSchema.parse(change(current()));
        sweepTemporaryFiles(home, [path, lastGood]);
        write(next);
        return next;
      });
    },
  };
}

interface SettingsFiles {
  readonly home: string;
  readonly path: string;
  /** A copy of what the last write that succeeded wrote. */
  readonly lastGood: string;
  readonly lock: string;
}

function settingsFiles(home: string): SettingsFiles {
  const path = join(home, "settings.json");
  return { home, path, lastGood: `${path}.last-good`, lock: `${path}.lock` };
}

/**
 * Puts the last good settings (or, without a readable copy, empty ones) in place of an unreadable
 * main file, which is kept under another name. The kept name is a hard link made before the file
 * is replaced, so `settings.json` exists at every instant: a crash here cannot look like a first
 * start, whose write would overwrite the last good copy.
 */
function recover(
  { home, path, lastGood }: SettingsFiles,
  reason: string,
  now: Date,
  write: (settings: Settings) => void,
): NonNullable<SettingsStore["recovered"]> {
  const fallback = readSettingsFile(lastGood);
  const movedTo = `${path}.corrupt-${now.toISOString().replaceAll(":", "-")}`;
  try {
    linkSync(path, movedTo);
  } catch (error) {
    throw settingsWriteError(error, home);
  }
  try {
    write(fallback.kind === "valid" ? fallback.settings : emptySettings());
  } catch (error) {
    removeIfThere(movedTo);
    throw error;
  }
  const instead =
    fallback.kind === "valid"
      ? `the last good settings were restored from ${lastGood}`
      : "Snapkeep started with empty settings";
  return {
    movedTo,
    reason,
    message: `The settings file could not be read (${reason}); it was moved to ${movedTo} and ${instead}.`,
  };
}

/**
 * Removes temporary files a writer left when it died mid-write. Called under the lock, when no
 * other writer can have one open; on a nearly full disk they hold the space the next write needs.
 */
function sweepTemporaryFiles(home: string, targets: readonly string[]): void {
  for (const name of readdirSync(home)) {
    const full = join(home, name);
    if (targets.some((target) => full.startsWith(`${target}${TEMP_INFIX}`))) {
      removeIfThere(full);
    }
  }
}

/**
 * Files written before Snapkeep wrote its settings 0600 (conf made them 0644) are narrowed when
 * opened. When that is not possible (a read-only file system, another owner) the file is still
 * read: the next write that succeeds replaces it with a 0600 one.
 */
function tightenMode(path: string): void {
  try {
    if ((statSync(path).mode & 0o077) !== 0) {
      chmodSync(path, FILE_MODE);
    }
  } catch {
    // Reading must not fail for this (see above).
  }
}

type Found =
  | { readonly kind: "missing" }
  | { readonly kind: "valid"; readonly settings: Settings }
  | { readonly kind: "corrupt"; readonly reason: string };

/**
 * Reads and checks a settings file, telling a newer version and an unreadable file apart from a
 * corrupt one.
 */
function readSettingsFile(path: string): Found {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      return { kind: "missing" };
    }
    throw new SnapkeepError(
      "STORE_CORRUPT",
      `Cannot read the settings file ${path}: ${describeError(error)}.`,
      {
        hint: "Check that it is a file that this user can read and write; Snapkeep has not changed it.",
        details: { path },
        cause: error,
      },
    );
  }
  let data: unknown;
  try {
    // Editors such as Notepad save UTF-8 with a byte order mark, which JSON.parse refuses.
    data = JSON.parse(text.startsWith("\uFEFF") ? text.slice(1) : text);
  } catch (error) {
    return { kind: "corrupt", reason: `not valid JSON: ${describeError(error)}` };
  }
  const version =
    typeof data === "object" && data !== null ? (data as { version?: unknown }).version : undefined;
  if (typeof version === "number" && version > SETTINGS_VERSION) {
    throw new SnapkeepError(
      "STORE_CORRUPT",
      `The settings file ${path} was written by a newer Snapkeep (settings version ${version}; this one reads version ${SETTINGS_VERSION}).`,
      {
        hint: "Upgrade Snapkeep to the version that wrote it; the file has been left as it is.",
        details: { path, version, supported: SETTINGS_VERSION },
      },
    );
  }
  const parsed = settingsSchema.safeParse(data);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .slice(0, 3)
      .map((issue) => `${issue.path.join(".") || "the file"}: ${issue.message}`);
    return { kind: "corrupt", reason: `not what Snapkeep expects: ${problems.join("; ")}` };
  }
  return { kind: "valid", settings: parsed.data };
}

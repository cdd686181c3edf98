/**
 * The desktop app's own settings: start on login, which notifications to show, the SSH key
 * passphrase the OS keyring encrypted, and the window's size and place. The CLI, the daemon and
 * `snapkeep serve` never act on them, so they are not in the core's settings.json but in
 * `desktop-settings.json` beside it, which electron-store keeps for the main process.
 *
 * electron-store loads Electron, so this module never imports it: the main process passes in a
 * function that makes one (`SettingsDocument`); tests pass conf, the Node class electron-store
 * extends, which reads and writes the file with the same code. Around it, this module does what
 * the core's store does for settings.json (core/infra/store/store.ts): every change and everything
 * read back is checked with the schema; a file that does not parse or match it is kept aside as
 * `desktop-settings.json.corrupt-<time>` and reported, and the last good copy
 * (`desktop-settings.json.last-good`) or, without one, the defaults take its place; a file from a
 * newer Snapkeep or one that cannot be read at all is refused and left as it is.
 *
 * Only this process writes the file (one desktop app per state folder, Electron's single-instance
 * lock), so it is read once and then served from memory, and it needs no lock.
 */
import { linkSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { z } from "zod";

import { desktopSettingsSchema } from "../../core/domain/settings.js";
import { SnapkeepError, describeError } from "../../core/errors.js";
import { removeIfThere, replaceFiles, settingsWriteError, TEMP_INFIX } from "../../core/infra/store/files.js";
import type { SettingsStore } from "../../core/infra/store/store.js";
import { windowStateSchema } from "./window-state.js";

export const DESKTOP_SETTINGS_VERSION = 1;
const FILE_NAME = "desktop-settings";
/** Only this user may read it: it holds the encrypted key passphrase. */
const FILE_MODE = 0o600;

/** The file: the core's schema of the desktop settings, with a version and the window's state. */
export const desktopSettingsFileSchema = desktopSettingsSchema.extend({
  version: z.literal(DESKTOP_SETTINGS_VERSION),
  window: windowStateSchema.optional(),
});

export type DesktopSettings = z.infer<typeof desktopSettingsFileSchema>;

export function defaultDesktopSettings(): DesktopSettings {
  return desktopSettingsFileSchema.parse({ version: DESKTOP_SETTINGS_VERSION });
}

export interface DesktopSettingsStore {
  read(): DesktopSettings;
  /**
   * Applies a change: the result is validated, then written (by electron-store: a temporary file,
   * flushed and renamed into place, at mode 0600), checked on disk, and copied to the last good
   * copy. A write that fails throws one sentence and changes nothing the app goes by.
   */
  update(change: (current: DesktopSettings) => DesktopSettings): DesktopSettings;
  readonly path: string;
  /** Set when the file was unreadable and was moved aside; the app must tell the user. */
  readonly recovered: { readonly movedTo: string; readonly reason: string; readonly message: string } | null;
}

/** electron-store's options for the file; conf takes the same with `configName` for `name`. */
export interface SettingsDocumentOptions {
  readonly cwd: string;
  readonly name: string;
  readonly fileExtension: "json";
  readonly configFileMode: number;
  /** Never: a file that does not parse must be kept and reported, not replaced by an empty one. */
  readonly clearInvalidConfig: false;
  readonly accessPropertiesByDotNotation: false;
  readonly serialize: (value: Record<string, unknown>) => string;
  readonly deserialize: (text: string) => Record<string, unknown>;
}

/** The part of an electron-store instance (or a conf one) used here. */
export interface SettingsDocument {
  readonly path: string;
  /**
   * Reading reads the file: `{}` when there is none, a SyntaxError when it is not JSON. Setting
   * writes all of it atomically.
   */
  store: Record<string, unknown>;
}

export interface DesktopSettingsOptions {
  /** SNAPKEEP_HOME: the file lives beside the core's settings.json. */
  readonly folder: string;
  /** For the name a corrupt file is kept under. */
  readonly now: Date;
  /** Makes the electron-store instance (main process) or its conf base (tests). */
  readonly openDocument: (options: SettingsDocumentOptions) => SettingsDocument;
  /** The core's settings, whose `desktop` slice, from before this file existed, moves here. */
  readonly core: Pick<SettingsStore, "read" | "update">;
  /** Says what happened to the user's settings that nobody asked about (a move, a failed one). */
  readonly log: (line: string) => void;
}

/** The options the file is opened with: the same in the app and in the tests. */
export function settingsDocumentOptions(folder: string): SettingsDocumentOptions {
  return {
    cwd: folder,
    name: FILE_NAME,
    fileExtension: "json",
    configFileMode: FILE_MODE,
    clearInvalidConfig: false,
    accessPropertiesByDotNotation: false,
    serialize: serialize,
    deserialize: (text) => parseJson(text) as Record<string, unknown>,
  };
}

/** Editors such as Notepad save UTF-8 with a byte order mark, which JSON.parse refuses. */
function parseJson(text: string): unknown {
  return JSON.parse(text.startsWith("\uFEFF") ? text.slice(1) : text);
}

function serialize(value: Record<string, unknown>): string {
  return `${JSON.stringify(value, null, "\t")}\n`;
}

/**
 * Opens the desktop settings in `folder`, moving the core's `desktop` slice here on the first
 * start after the move (see `migrate`), and repairing the file when it is unreadable.
 */
export function openDesktopSettings(options: DesktopSettingsOptions): DesktopSettingsStore {
  const { folder, core, log } = options;
  const path = resolve(folder, `${FILE_NAME}.json`);
  const files: SettingsFiles = { folder, path, lastGood: `${path}.last-good` };
  // What a write cut off by a crash left: electron-store names its temporary files `<file>.tmp-…`.
  sweepTemporaryFiles(folder, [path, files.lastGood]);

  const { opened, recovered } = openRepairing(files, options);
  const write = (next: DesktopSettings): void => writeSettings(opened.document, next, files, log);

  let current: DesktopSettings;
  /** Whether settings.json may still hold a `desktop` slice that has to go once this file holds it. */
  let leftover = true;
  const dropLeftover = (): void => {
    if (!leftover) {
      return;
    }
    try {
      if (core.read().desktop !== undefined) {
        core.update(({ desktop: _moved, ...rest }) => rest);
      }
      leftover = false;
    } catch (error) {
      log(
        `The desktop settings are in ${path} now, but their old copy could not be removed from settings.json (${describeError(error)}); Snapkeep tries again at the next start.`,
      );
    }
  };

  if (opened.kind === "valid") {
    current = opened.settings;
    // A move that could not finish removing the old slice, or an older Snapkeep that wrote one
    // back: this file is what the app has gone by since, so it wins.
    dropLeftover();
  } else {
    const legacy = legacySlice(core);
    current = legacy ?? defaultDesktopSettings();
    if (legacy === undefined) {
      leftover = false;
    } else if (migrate(legacy, { path, write, log })) {
      dropLeftover();
    }
  }

  return {
    path,
    recovered,
    read: () => structuredClone(current),
    update(change) {
      const next = desktopSettingsFileSchema.parse(change(structuredClone(current)));
      write(next);
      current = next;
      // A move whose write failed at start-up is complete once a change could be written.
      dropLeftover();
      return structuredClone(current);
    },
  };
}

interface SettingsFiles {
  readonly folder: string;
  readonly path: string;
  readonly lastGood: string;
}

/** Opens the file; an unreadable one is first replaced (see `recover`), which is reported. */
function openRepairing(
  files: SettingsFiles,
  options: DesktopSettingsOptions,
): { opened: Exclude<Opened, { kind: "corrupt" }>; recovered: DesktopSettingsStore["recovered"] } {
  const { path } = files;
  const documentOptions = settingsDocumentOptions(files.folder);
  const opened = openFile(path, () => options.openDocument(documentOptions));
  if (opened.kind !== "corrupt") {
    return { opened, recovered: null };
  }
  const recovered = recover(files, opened.reason, options.now, () => legacySlice(options.core));
  const reopened = openFile(path, () => options.openDocument(documentOptions));
  if (reopened.kind !== "valid") {
    throw new SnapkeepError("STORE_CORRUPT", `The desktop settings file ${path} could not be repaired.`, {
      hint: `Move it away and start Snapkeep again; what was in it is kept in ${recovered.movedTo}.`,
    });
  }
  return { opened: reopened, recovered };
}

/**
 * Writes the settings through electron-store, checks that the file holds all of them, and only
 * then refreshes the last good copy.
 */
function writeSettings(
  document: SettingsDocument,
  next: DesktopSettings,
  { folder, path, lastGood }: SettingsFiles,
  log: (line: string) => void,
): void {
  const content = serialize(next);
  try {
    document.store = next;
  } catch (error) {
    // atomically removes its temporary file later, asynchronously: a failed write leaves nothing.
    sweepTemporaryFiles(folder, [path]);
    throw settingsWriteError(error, folder);
  }
  // electron-store's writer (the `atomically` package) makes the temporary file with one write(2)
  // and does not look at how much it took: on a full disk a short file can be renamed into place
  // (core/infra/store/files.ts, issue 13). Read it back; the last good copy is only refreshed
  // from a file that is whole, so the next start can put it back.
  if (readText(path) !== content) {
    throw new SnapkeepError(
      "NO_SPACE",
      `The desktop settings could not be written in full to ${path} (is the disk that holds it full?), so the change was not saved.`,
      {
        hint: `Free some space, then try again; until then Snapkeep goes by the settings it had, kept in ${lastGood}.`,
        details: { path },
      },
    );
  }
  try {
    replaceFiles([{ path: lastGood, content: Buffer.from(content) }], FILE_MODE);
  } catch (error) {
    // The change is saved; only the copy lags one change behind, as after a crash between the two.
    log(
      `The desktop settings were saved, but their last good copy was not: ${describeError(settingsWriteError(error, folder))}`,
    );
  }
}

/**
 * The first start after the desktop settings left settings.json: they are written here first and
 * removed from settings.json only once this file holds them, so a failed write loses nothing. When
 * the write fails, the app goes by the old slice and the move is tried again at the next change or
 * start. Returns whether the write went through.
 */
function migrate(
  legacy: DesktopSettings,
  { path, write, log }: { path: string; write: (next: DesktopSettings) => void; log: (line: string) => void },
): boolean {
  try {
    write(legacy);
    log(`The desktop app's settings moved from settings.json to ${path}.`);
    return true;
  } catch (error) {
    log(
      `The desktop app's settings could not be moved from settings.json to ${path} (${describeError(error)}); they stay in settings.json and the move is tried again at the next change or start.`,
    );
    return false;
  }
}

function legacySlice(core: Pick<SettingsStore, "read">): DesktopSettings | undefined {
  const slice = core.read().desktop;
  return slice === undefined
    ? undefined
    : desktopSettingsFileSchema.parse({ ...slice, version: DESKTOP_SETTINGS_VERSION });
}

type Opened =
  | { readonly kind: "missing"; readonly document: SettingsDocument }
  | { readonly kind: "valid"; readonly document: SettingsDocument; readonly settings: DesktopSettings }
  | { readonly kind: "corrupt"; readonly reason: string };

/** Opens the file through electron-store and checks what it read. */
function openFile(path: string, open: () => SettingsDocument): Opened {
  const present = fileExists(path);
  let document: SettingsDocument;
  let data: unknown;
  try {
    document = open();
    data = document.store;
  } catch (error) {
    if (error instanceof SyntaxError) {
      return { kind: "corrupt", reason: `not valid JSON: ${error.message}` };
    }
    throw unreadable(path, error);
  }
  if (!present) {
    return { kind: "missing", document };
  }
  const checked = check(path, data);
  return checked.kind === "valid" ? { ...checked, document } : checked;
}

type Checked =
  | { readonly kind: "valid"; readonly settings: DesktopSettings }
  | { readonly kind: "corrupt"; readonly reason: string };

/** The schema's verdict on what a file held; a newer Snapkeep's file is refused, not corrupt. */
function check(path: string, data: unknown): Checked {
  const version =
    typeof data === "object" && data !== null ? (data as { version?: unknown }).version : undefined;
  if (typeof version === "number" && version > DESKTOP_SETTINGS_VERSION) {
    throw new SnapkeepError(
      "STORE_CORRUPT",
      `The desktop settings file ${path} was written by a newer Snapkeep (version ${version}; this one reads version ${DESKTOP_SETTINGS_VERSION}).`,
      {
        hint: "Upgrade Snapkeep to the version that wrote it; the file has been left as it is.",
        details: { path, version, supported: DESKTOP_SETTINGS_VERSION },
      },
    );
  }
  const parsed = desktopSettingsFileSchema.safeParse(data);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .slice(0, 3)
      .map((issue) => `${issue.path.join(".") || "the file"}: ${issue.message}`);
    return { kind: "corrupt", reason: `not what Snapkeep expects: ${problems.join("; ")}` };
  }
  return { kind: "valid", settings: parsed.data };
}

/**
 * Puts the last good copy (or, without a readable one, the old slice in settings.json or the
 * defaults) in place of an unreadable file, which is kept under another name: a hard link made
 * before the file is replaced, so the file exists at every instant and a crash here cannot look
 * like a first start. electron-store cannot open the broken file, so the core's writer does this.
 */
function recover(
  { folder, path, lastGood }: SettingsFiles,
  reason: string,
  now: Date,
  legacy: () => DesktopSettings | undefined,
): NonNullable<DesktopSettingsStore["recovered"]> {
  const copy = readLastGood(lastGood);
  const fallback = copy ?? legacy();
  const movedTo = `${path}.corrupt-${now.toISOString().replaceAll(":", "-")}`;
  try {
    linkSync(path, movedTo);
  } catch (error) {
    throw settingsWriteError(error, folder);
  }
  const content = Buffer.from(serialize(fallback ?? defaultDesktopSettings()));
  try {
    replaceFiles(
      [
        { path, content },
        { path: lastGood, content },
      ],
      FILE_MODE,
    );
  } catch (error) {
    removeIfThere(movedTo);
    throw settingsWriteError(error, folder);
  }
  const instead =
    copy !== undefined
      ? `the last good desktop settings were restored from ${lastGood}`
      : fallback !== undefined
        ? "the desktop settings kept in settings.json were used"
        : "the desktop app started with its default settings (no start on login, every notification, no stored key passphrase)";
  return {
    movedTo,
    reason,
    message: `The desktop settings file could not be read (${reason}); it was moved to ${movedTo} and ${instead}.`,
  };
}

function readLastGood(lastGood: string): DesktopSettings | undefined {
  let data: unknown;
  try {
    data = parseJson(readFileSync(lastGood, "utf8"));
  } catch {
    return undefined;
  }
  const parsed = desktopSettingsFileSchema.safeParse(data);
  return parsed.success ? parsed.data : undefined;
}

function unreadable(path: string, error: unknown): SnapkeepError {
  return new SnapkeepError(
    "STORE_CORRUPT",
    `Cannot read the desktop settings file ${path}: ${describeError(error)}.`,
    {
      hint: "Check that it is a file that this user can read and write; Snapkeep has not changed it.",
      details: { path },
      cause: error,
    },
  );
}

function fileExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      return false;
    }
    throw unreadable(path, error);
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Only this process writes these files, so any temporary file beside them is a leftover. */
function sweepTemporaryFiles(folder: string, targets: readonly string[]): void {
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return;
  }
  const prefixes = targets.map((target) => `${basename(target)}${TEMP_INFIX}`);
  for (const name of names) {
    if (prefixes.some((prefix) => name.startsWith(prefix))) {
      removeIfThere(join(folder, name));
    }
  }
}

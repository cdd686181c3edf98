import { mkdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import Conf from "conf";
import { SnapkeepError, describeError } from "../errors.js";
import { withFileLock } from "./lock.js";
import {
  emptySettings,
  settingsJsonSchemaProperties,
  settingsSchema,
  SETTINGS_VERSION,
  type Settings,
} from "./schema.js";

export interface SettingsStore {
  read(): Settings;
  /**
   * Applies a change to the current settings; the result is validated, then written atomically.
   * Read and write happen under a lock shared with every other Snapkeep process on this home.
   */
  update(change: (current: Settings) => Settings): Settings;
  /** True when this run created the file: the first start, when "This computer" gets added. */
  readonly createdNow: boolean;
  /** Set when an unreadable settings file was moved aside: the CLI and UI must tell the user. */
  readonly recovered: { readonly movedTo: string; readonly reason: string } | null;
  readonly path: string;
}

const CONFIG_NAME = "settings";

/**
 * Opens the settings file in `home` through conf (atomic writes, JSON Schema on every write). A file
 * that does not parse or does not match the schema is never silently replaced: it is renamed to
 * `settings.json.corrupt-<time>` and reported through `recovered`, and Snapkeep starts empty.
 *
 * A file written by a newer Snapkeep is refused and left alone (moving it aside would lose the
 * newer version's settings), and one that cannot be read at all (permissions, a directory in its
 * place) is reported as it is: neither is corrupt, and the person has to act.
 */
export function openSettingsStore(home: string, now: Date): SettingsStore {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const path = join(home, `${CONFIG_NAME}.json`);
  const lockPath = `${path}.lock`;
  const { conf, createdNow, recovered } = withFileLock(lockPath, () => {
    const found = readSettingsFile(path);
    let recovered: SettingsStore["recovered"] = null;
    if (found.kind === "corrupt") {
      recovered = moveAside(path, now, found.reason);
    }
    let conf: Conf<Settings>;
    try {
      conf = createConf(home, path);
    } catch (error) {
      // conf checks the file once more against the JSON Schema; the two schemas come from one zod
      // schema, so this is only a safety net.
      if (recovered !== null || !/schema violation/i.test(describeError(error))) {
        throw error;
      }
      recovered = moveAside(path, now, describeError(error));
      conf = createConf(home, path);
    }
    return { conf, createdNow: found.kind === "missing", recovered };
  });

  const current = (): Settings => {
    const found = readSettingsFile(path);
    if (found.kind === "corrupt") {
      throw new SnapkeepError(
        "STORE_CORRUPT",
        `The settings file ${path} became unreadable while Snapkeep was running (${found.reason}).`,
        { hint: "Restart Snapkeep: it moves the broken file aside and starts with empty settings." },
      );
    }
    return found.kind === "missing" ? emptySettings() : found.settings;
  };

  return {
    path,
    createdNow,
    recovered,
    read: current,
    update(change) {
      return withFileLock(lockPath, () => {
        const next = settingsSchema.parse(change(current()));
        writeSettings(conf, path, next);
        return next;
      });
    },
  };
}

type Found =
  | { readonly kind: "missing" }
  | { readonly kind: "valid"; readonly settings: Settings }
  | { readonly kind: "corrupt"; readonly reason: string };

/**
 * Reads and checks the settings file without conf, which would report a newer version as a plain
 * schema violation and an unreadable file as a bare errno.
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
    data = JSON.parse(text);
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

function moveAside(path: string, now: Date, reason: string): NonNullable<SettingsStore["recovered"]> {
  const movedTo = `${path}.corrupt-${now.toISOString().replaceAll(":", "-")}`;
  renameSync(path, movedTo);
  return { movedTo, reason };
}

function writeSettings(conf: Conf<Settings>, path: string, settings: Settings): void {
  try {
    conf.store = settings;
  } catch (error) {
    if (typeof (error as NodeJS.ErrnoException).code === "string") {
      throw new SnapkeepError(
        "STORE_CORRUPT",
        `Cannot write the settings file ${path}: ${describeError(error)}.`,
        {
          hint: "Check that its folder is writable by this user and the disk is not full.",
          details: { path },
          cause: error,
        },
      );
    }
    throw error;
  }
}

function createConf(home: string, path: string): Conf<Settings> {
  const defaults = emptySettings();
  try {
    return new Conf<Settings>({
      cwd: home,
      configName: CONFIG_NAME,
      projectName: "snapkeep",
      projectVersion: `${SETTINGS_VERSION}.0.0`,
      schema: settingsJsonSchemaProperties() as never,
      defaults,
      clearInvalidConfig: false,
      // Settings are small and written rarely; an immediate write keeps CLI runs and the daemon in step.
      watch: false,
    });
  } catch (error) {
    // conf writes the defaults on open, so a read-only file or folder fails here.
    if (typeof (error as NodeJS.ErrnoException).code === "string") {
      throw new SnapkeepError(
        "STORE_CORRUPT",
        `Cannot open the settings file ${path}: ${describeError(error)}.`,
        {
          hint: "Check that it and its folder are readable and writable by this user.",
          details: { path },
          cause: error,
        },
      );
    }
    throw error;
  }
}

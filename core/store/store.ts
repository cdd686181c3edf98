import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import Conf from "conf";
import { describeError } from "../errors.js";
import {
  emptySettings,
  settingsJsonSchemaProperties,
  settingsSchema,
  SETTINGS_VERSION,
  type Settings,
} from "./schema.js";

export interface SettingsStore {
  read(): Settings;
  /** Applies a change to the current settings; the result is validated, then written atomically. */
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
 */
export function openSettingsStore(home: string, now: Date): SettingsStore {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const path = join(home, `${CONFIG_NAME}.json`);
  const createdNow = !existsSync(path);
  let recovered: SettingsStore["recovered"] = null;
  let conf: Conf<Settings>;
  try {
    conf = createConf(home);
    settingsSchema.parse(conf.store);
  } catch (error) {
    const movedTo = `${path}.corrupt-${now.toISOString().replaceAll(":", "-")}`;
    renameSync(path, movedTo);
    recovered = { movedTo, reason: describeError(error) };
    conf = createConf(home);
  }
  return {
    path,
    createdNow,
    recovered,
    read: () => settingsSchema.parse(conf.store),
    update(change) {
      const next = settingsSchema.parse(change(settingsSchema.parse(conf.store)));
      conf.store = next;
      return next;
    },
  };
}

function createConf(home: string): Conf<Settings> {
  const defaults = emptySettings();
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
}

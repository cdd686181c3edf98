/**
 * The desktop settings' file without Electron: electron-store loads Electron, which cannot run in
 * tests, and extends conf, which reads and writes the file with the same code. electron-store
 * only renames its `name` option to conf's `configName` (and defaults `cwd` to Electron's userData,
 * which the app's options always set).
 */
import Conf from "conf";

import type { SettingsDocument, SettingsDocumentOptions } from "../../electron/lib/desktop-settings.js";

export function confDocument({ name, ...options }: SettingsDocumentOptions): SettingsDocument {
  return new Conf<Record<string, unknown>>({ ...options, configName: name });
}

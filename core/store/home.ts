import { join } from "node:path";

/**
 * Where Snapkeep keeps its state. `SNAPKEEP_HOME` wins (tests and multiple profiles rely on it);
 * otherwise the same folder Electron uses as userData for an app named "Snapkeep", so the desktop
 * app, the daemon and the CLI share one state directory.
 */
export function snapkeepHome(platform: NodeJS.Platform, env: NodeJS.ProcessEnv, homeDir: string): string {
  if (env["SNAPKEEP_HOME"]) {
    return env["SNAPKEEP_HOME"];
  }
  if (platform === "darwin") {
    return join(homeDir, "Library", "Application Support", "Snapkeep");
  }
  if (platform === "win32") {
    return join(env["APPDATA"] ?? join(homeDir, "AppData", "Roaming"), "Snapkeep");
  }
  return join(env["XDG_CONFIG_HOME"] || join(homeDir, ".config"), "Snapkeep");
}

import { posix, win32 } from "node:path";

/**
 * Where Snapkeep keeps its state. `SNAPKEEP_HOME` wins (tests and multiple profiles rely on it);
 * otherwise the same folder Electron uses as userData for an app named "Snapkeep", so the desktop
 * app, the daemon and the CLI share one state directory.
 */
export function snapkeepHome(platform: NodeJS.Platform, env: NodeJS.ProcessEnv, homeDir: string): string {
  if (env["SNAPKEEP_HOME"]) {
    return env["SNAPKEEP_HOME"];
  }
  // Joined with the given platform's separators, not those of the platform this runs on.
  if (platform === "win32") {
    return win32.join(env["APPDATA"] || win32.join(homeDir, "AppData", "Roaming"), "Snapkeep");
  }
  if (platform === "darwin") {
    return posix.join(homeDir, "Library", "Application Support", "Snapkeep");
  }
  return posix.join(env["XDG_CONFIG_HOME"] || posix.join(homeDir, ".config"), "Snapkeep");
}

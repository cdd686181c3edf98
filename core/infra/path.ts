import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** Whether `tool` is an executable in one of the folders of `path` (a PATH value). */
export function onPath(tool: string, path: string | undefined): boolean {
  return (path ?? "").split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

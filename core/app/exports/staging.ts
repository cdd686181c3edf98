/**
 * Staging folders left by exports that never finished. An interrupted export keeps its converted
 * images on the source host on purpose (running it again resumes without converting again), but
 * one that is never run again would keep them for ever. `snapkeep exports clean` removes the
 * ones nothing has written to for a while; only folders named the way Snapkeep names them
 * (`<vm uuid>-<12 hex>`) are candidates, anything else under the root is left alone.
 */
import { posix } from "node:path";

import { SnapkeepError } from "../../errors.js";
import { RemoteFs } from "../../infra/remote-fs.js";

export interface StagedFolder {
  readonly path: string;
  readonly bytes: number;
  /** The newest write inside it (ISO). */
  readonly lastWriteAt: string;
}

/** Snapkeep's staging folder names: the VM's UUID, then a hash of snapshot and target. */
const STAGING_NAME = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-[0-9a-f]{12}$/;

/**
 * Lists the folders under $1: size in bytes, newest write (epoch seconds, the folder's own time
 * when it is empty) and the folder's name (not its path: the root's own name may hold anything),
 * tab-separated, one per line. A root that does not exist lists nothing.
 */
export const STAGING_LIST_SCRIPT = `[ -d "$1" ] || exit 0
cd -- "$1" || exit 1
for d in */; do
  [ -d "$d" ] || continue
  d=\${d%/}
  size=$(du -sb -- "$d" | head -n 1 | cut -f1)
  newest=$(find "./$d" -printf '%T@\\n' | sort -n | tail -n 1)
  printf '%s\\t%s\\t%s\\n' "$size" "\${newest%.*}" "$d"
done`;

/** Reads STAGING_LIST_SCRIPT's output for `root`: Snapkeep's folders only. Pure. */
export function parseStaging(root: string, stdout: string): StagedFolder[] {
  return stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .flatMap((line): StagedFolder[] => {
      const [size, epoch, name = ""] = line.split("\t");
      const bytes = Number(size);
      const seconds = Number(epoch);
      if (!STAGING_NAME.test(name) || !Number.isFinite(bytes) || !Number.isFinite(seconds)) {
        return [];
      }
      return [{ path: posix.join(root, name), bytes, lastWriteAt: new Date(seconds * 1000).toISOString() }];
    });
}

export interface CleanResult {
  readonly removed: readonly StagedFolder[];
  /** Written to within the quiet period: an export may still be using them. */
  readonly kept: readonly StagedFolder[];
  readonly dryRun: boolean;
}

/**
 * Removes the staging folders under `root` that nothing wrote to for `quietMs`: an export that
 * runs writes to its folder all the time, so a quiet one belongs to an export that stopped.
 */
export async function cleanStaging(
  fs: RemoteFs,
  root: string,
  options: { readonly quietMs: number; readonly now: Date; readonly dryRun: boolean },
): Promise<CleanResult> {
  if (!(options.quietMs >= 0)) {
    throw new SnapkeepError("INVALID_INPUT", "Say how long a staging folder must have been left alone.");
  }
  const listed = await fs.run(["sh", "-c", STAGING_LIST_SCRIPT, "snapkeep-staging", root], {
    timeoutMs: 120_000,
  });
  if (listed.code !== 0) {
    throw new SnapkeepError(
      "COMMAND_FAILED",
      `Listing ${root} on ${fs.label} failed: ${listed.stderr.trim()}`,
    );
  }
  const cutoff = options.now.getTime() - options.quietMs;
  const folders = parseStaging(root, listed.stdout);
  const removed = folders.filter((f) => Date.parse(f.lastWriteAt) <= cutoff);
  const kept = folders.filter((f) => Date.parse(f.lastWriteAt) > cutoff);
  if (!options.dryRun) {
    for (const folder of removed) {
      await fs.removeTree(folder.path);
    }
  }
  return { removed, kept, dryRun: options.dryRun };
}

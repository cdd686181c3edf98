/**
 * The folders of a target as exports see them: every export listed with its state, and a new
 * export's folder claimed. Both refuse what Snapkeep did not make (a link where a folder should be,
 * a name that is taken), because a target is not trusted.
 */
import { posix } from "node:path";

import { SnapkeepError } from "../../errors.js";
import type { Target } from "../../domain/settings.js";
import { markBrokenChains } from "../../domain/plans/chain-plan.js";
import { SCAN_SCRIPT, parseScan, type ExportEntry } from "../../drivers/bundle/bundle.js";
import { parseSpace, spaceArgs } from "../../drivers/sh/export-scripts.js";
import { writeFailure, type RemoteFs } from "../../infra/remote-fs.js";

const QUICK_MS = 60_000;

/**
 * Every export on the target; with `create`, that folder is made first (an export starts). The
 * seal key is asked for only once the target answered, so a target that cannot be read never
 * makes one.
 */
export async function scanExports(
  fs: RemoteFs,
  target: Target,
  sealKey: () => Uint8Array,
  create?: string,
): Promise<ExportEntry[]> {
  const result = await fs.run(["sh", "-c", SCAN_SCRIPT, "snapkeep-scan", target.path, create ?? ""], {
    timeoutMs: QUICK_MS,
  });
  if (result.code === 5) {
    throw new SnapkeepError(
      "TARGET_OFFLINE",
      `The folder ${target.path} of target ${target.name} is not there on ${fs.label}: if it is on a disk or share mounted there, that is not mounted now; nothing was written.`,
      {
        action: { do: "mount-or-create-folder", target: target.name },
      },
    );
  }
  if (result.code === 4) {
    throw new SnapkeepError(
      "TARGET_UNWRITABLE",
      `${create ?? target.path} on ${fs.label} is a link, not a folder: Snapkeep does not export through links it did not make; nothing was written.`,
      { hint: "Remove the link on the target (or choose another target), then export again." },
    );
  }
  if (result.code !== 0) {
    throw writeFailure(fs.label, create ?? target.path, result.stderr);
  }
  return markBrokenChains(parseScan(result.stdout, sealKey())).filter(
    (e) => create === undefined || e.vmFolder === posix.basename(create),
  );
}

/**
 * Before an export's images are sent: claims its folder (`claim`; undefined when it resumes one
 * of its own), refusing a name that anything on the target already has (a folder planted there,
 * with links inside, is not one Snapkeep made), writes its small files, and reads the free space there and the size of each image
 * an earlier attempt left (`present`), in one command on the target.
 */
export async function prepareExportFolder(
  dest: RemoteFs,
  claim: { readonly vmFolder: string; readonly name: string } | undefined,
  dir: string,
  present: readonly string[],
  files: readonly { path: string; content: string }[],
): Promise<{ freeBytes: number; sizes: (number | undefined)[] }> {
  const result = await dest.run(spaceArgs(dir, present, files, claim), { timeoutMs: QUICK_MS });
  if (result.code === 3 && claim !== undefined) {
    throw new SnapkeepError(
      "ALREADY_EXISTS",
      `${posix.join(claim.vmFolder, claim.name)} already exists on ${dest.label} but is not an export Snapkeep can resume; nothing was written.`,
      { hint: "Look at it on the target and remove it if nobody needs it, then export again." },
    );
  }
  if (result.code !== 0) {
    throw writeFailure(dest.label, dir, result.stderr);
  }
  return parseSpace(result.stdout, present.length);
}

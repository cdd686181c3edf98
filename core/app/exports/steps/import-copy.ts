/**
 * The images of a restore, from the target onto the host: the bundle checked against its manifest
 * where it is, each image copied into a staging folder beside its final place, checked again there
 * (its hash, then that it is a standalone qcow2 of the size the manifest says), and only then
 * moved in, never over a file that appeared meanwhile.
 */
import { posix } from "node:path";

import { SnapkeepError } from "../../../errors.js";
import type { ManifestDisk } from "../../../drivers/bundle/bundle.js";
import {
  checkPinnedInfo,
  checkStandaloneHeader,
  headerArgs,
  parseOdHex,
  pinnedInfoArgs,
} from "../../../drivers/qemu-img/standalone.js";
import { relayRsync } from "../../../infra/relay.js";
import type { RemoteFs } from "../../../infra/remote-fs.js";
import { runChecked } from "../../../infra/runner/checked.js";
import type { Exports } from "../exports.js";
import { QUICK_MS } from "./context.js";
import { readBundleDefinition, type PlannedImport } from "./import-plan.js";

/**
 * The bundle as it is on the target now must match its manifest. Checked, not recorded: a restore
 * must work from a backup disk mounted read-only.
 */
export async function requireBundleIntact(exports: Exports, p: PlannedImport): Promise<void> {
  const check = await exports.verify(p.target.name, p.entry.id, p.request.signal, false);
  if (!check.ok) {
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `Export ${p.entry.id} is damaged on ${p.target.name}: ${check.badFiles.join(", ")} ${check.badFiles.length === 1 ? "does" : "do"} not match its manifest; nothing was restored.`,
    );
  }
  // The definition read for the plan must be the one that was just verified.
  if (p.definitionXml !== null && (await readBundleDefinition(p)) !== p.definitionXml) {
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `domain.xml of export ${p.entry.id} changed while it was read; nothing was restored.`,
    );
  }
}

/** Every chosen image copied into `staging` and checked there. */
export async function copyIntoStaging(p: PlannedImport, staging: string): Promise<void> {
  const { host, chosen, request } = p;
  // The images' folder as any folder QEMU must traverse; the staging folder inside it private.
  await runChecked(host.runner, ["mkdir", "-p", "--", p.dir], `Making ${p.dir}`, { timeoutMs: QUICK_MS });
  await host.mkdirs(staging);
  const total = chosen.reduce((sum, d) => sum + d.size, 0);
  let before = 0;
  for (const disk of chosen) {
    const sentBefore = before;
    await relayRsync({
      sender: p.source.runner,
      receiver: host.runner,
      // The bundle's side runs the rsync client here, and it may not be trusted with choosing
      // where the host writes: the destination goes on the server's command line, where the
      // relay checks it is exactly this one, instead of through the protocol (-s).
      send: {
        source: posix.join(p.bundleDir, disk.name),
        destination: posix.join(staging, disk.name),
        secluded: false,
      },
      expectedDestination: posix.join(staging, disk.name),
      signal: request.signal,
      onProgress: (progress) => request.onProgress?.(sentBefore + Math.min(progress.bytes, disk.size), total),
    });
    before += disk.size;
  }
  const sums = await host.sha256(
    chosen.map((d) => posix.join(staging, d.name)),
    request.signal,
  );
  const bad = chosen.filter((d, i) => sums[i] !== d.sha256).map((d) => d.name);
  if (bad.length > 0) {
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `${bad.join(", ")} arrived on ${request.host} damaged; nothing was restored.`,
      { hint: "Run the import again; if it happens again, check the host's disk and memory." },
    );
  }
  // The images are what the manifest says; now whether the manifest describes standalone images.
  for (const disk of chosen) {
    await requireStandaloneImage(host, posix.join(staging, disk.name), disk, p.entry.id);
  }
}

/** Each staged image moved to its final name; `moved` learns each one as it lands. */
export async function moveIntoPlace(p: PlannedImport, staging: string, moved: string[]): Promise<void> {
  const { host, plan, chosen, request } = p;
  for (const [i, disk] of plan.disks.entries()) {
    // mv -n never replaces a file that appeared meanwhile; it skips quietly when the name was
    // taken, which the source still being there says.
    const result = await host.run(
      [
        "sh",
        "-c",
        'mv -n -- "$1" "$2" && [ ! -e "$1" ]',
        "snapkeep-place",
        posix.join(staging, chosen[i]?.name ?? ""),
        disk.file,
      ],
      { timeoutMs: QUICK_MS },
    );
    if (result.code !== 0) {
      throw new SnapkeepError(
        "ALREADY_EXISTS",
        `${disk.file} appeared on ${request.host} during the import; it was left alone and nothing was restored.`,
      );
    }
    moved.push(disk.file);
  }
  const landed = await host.sha256(plan.disks.map((d) => d.file));
  if (landed.some((sum, i) => sum !== chosen[i]?.sha256)) {
    throw new SnapkeepError(
      "ALREADY_EXISTS",
      `Another file took one of the image names on ${request.host} during the import; nothing was restored.`,
    );
  }
}

/**
 * An imported image must be a standalone qcow2 of the size the manifest says: its header is read
 * as bytes first (a backing file or external data file would make QEMU open a host path for the
 * guest), then qemu-img confirms it with the format pinned.
 */
async function requireStandaloneImage(
  host: RemoteFs,
  path: string,
  disk: ManifestDisk,
  id: string,
): Promise<void> {
  const what = `${disk.name} of export ${id}`;
  const header = await runChecked(host.runner, headerArgs(path), `Reading the header of ${what}`, {
    timeoutMs: QUICK_MS,
  });
  const { virtualSize } = checkStandaloneHeader(parseOdHex(header.stdout), what);
  if (disk.virtualSize !== null && virtualSize !== disk.virtualSize) {
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `${what} is not the image its manifest describes: its virtual size is ${virtualSize} bytes, the manifest says ${disk.virtualSize}; nothing was restored.`,
    );
  }
  const info = await runChecked(host.runner, pinnedInfoArgs(path), `Checking ${what}`, {
    timeoutMs: QUICK_MS,
  });
  checkPinnedInfo(info.stdout, { virtualSize: disk.virtualSize }, what);
}

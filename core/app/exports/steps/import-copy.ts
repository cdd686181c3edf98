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
  // The export, then every export an incremental disk of it is built on.
  const ids = [p.entry.id, ...new Set([...p.links.values()].flatMap((links) => links.map((l) => l.id)))];
  for (const id of ids) {
    const check = await exports.verify(p.target.name, id, p.request.signal, false);
    if (!check.ok) {
      throw new SnapkeepError(
        "VERIFY_FAILED",
        `Export ${id}${id === p.entry.id ? "" : `, which ${p.entry.id} is built on,`} is damaged on ${p.target.name}: ${check.badFiles.join(", ")} ${check.badFiles.length === 1 ? "does" : "do"} not match its manifest; nothing was restored.`,
      );
    }
  }
  // The definition read for the plan must be the one that was just verified.
  if (p.definitionXml !== null && (await readBundleDefinition(p)) !== p.definitionXml) {
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `domain.xml of export ${p.entry.id} changed while it was read; nothing was restored.`,
    );
  }
}

/**
 * Every chosen image copied into `staging` and checked there; returns each one's hash as staged.
 * An incremental disk comes with the exports it is built on, each link into its own folder
 * (`staging/<id>/`, so the relative backing names hold), each checked against its manifest and
 * its header, then flattened into one standalone image with qemu-img.
 */
export async function copyIntoStaging(p: PlannedImport, staging: string): Promise<string[]> {
  const { host, chosen, request } = p;
  // The images' folder as any folder QEMU must traverse; the staging folder inside it private.
  await runChecked(host.runner, ["mkdir", "-p", "--", p.dir], `Making ${p.dir}`, { timeoutMs: QUICK_MS });
  await host.mkdirs(staging);
  const copies = chosen.flatMap((disk) => {
    const links = p.links.get(disk.target);
    if (links === undefined) {
      return [{ from: p.bundleDir, to: posix.join(staging, disk.name), disk }];
    }
    return [{ id: p.entry.id, dir: p.bundleDir, disk }, ...links].map((l) => ({
      from: l.dir,
      to: posix.join(staging, l.id, disk.name),
      disk: l.disk,
    }));
  });
  const total = copies.reduce((sum, c) => sum + c.disk.size, 0);
  let before = 0;
  for (const copy of copies) {
    const sentBefore = before;
    await host.mkdirs(posix.dirname(copy.to));
    await relayRsync({
      sender: p.source.runner,
      receiver: host.runner,
      // The bundle's side runs the rsync client here, and it may not be trusted with choosing
      // where the host writes: the destination goes on the server's command line, where the
      // relay checks it is exactly this one, instead of through the protocol (-s).
      send: { source: posix.join(copy.from, copy.disk.name), destination: copy.to, secluded: false },
      expectedDestination: copy.to,
      signal: request.signal,
      onProgress: (progress) =>
        request.onProgress?.(sentBefore + Math.min(progress.bytes, copy.disk.size), total),
    });
    before += copy.disk.size;
  }
  const sums = await host.sha256(
    copies.map((c) => c.to),
    request.signal,
  );
  const bad = copies.filter((c, i) => sums[i] !== c.disk.sha256).map((c) => c.to.slice(staging.length + 1));
  if (bad.length > 0) {
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `${bad.join(", ")} arrived on ${request.host} damaged; nothing was restored.`,
      { hint: "Run the import again; if it happens again, check the host's disk and memory." },
    );
  }
  // The images are what the manifests say; now whether they describe what Snapkeep writes.
  for (const copy of copies) {
    await requireImageHeader(host, copy.to, copy.disk, p.entry.id);
  }
  const staged: string[] = [];
  for (const disk of chosen) {
    const path = posix.join(staging, disk.name);
    if (p.links.has(disk.target)) {
      await flatten(p, posix.join(staging, p.entry.id, disk.name), path);
      // The joined image's header, read as bytes like every copied one: standalone now.
      await requireImageHeader(host, path, { ...disk, backing: undefined }, p.entry.id);
      staged.push((await host.sha256([path], request.signal))[0] ?? "");
    } else {
      staged.push(disk.sha256);
    }
    await requirePinnedInfo(host, path, disk, p.entry.id);
  }
  return staged;
}

/** An incremental chain made into one standalone image: qemu-img follows the checked links. */
async function flatten(p: PlannedImport, top: string, output: string): Promise<void> {
  const result = await p.host.run(["qemu-img", "convert", "-f", "qcow2", "-O", "qcow2", "--", top, output], {
    timeoutMs: 6 * 60 * 60_000,
    ...(p.request.signal === undefined ? {} : { signal: p.request.signal }),
  });
  if (result.code !== 0) {
    throw new SnapkeepError(
      "COMMAND_FAILED",
      `Joining the chain of ${posix.basename(output)} on ${p.request.host} failed: ${result.stderr.trim().split("\n").at(-1) ?? ""}; nothing was restored.`,
    );
  }
  // The links stay until the staging folder goes: another disk's chain may share their folders.
}

/** Each staged image moved to its final name; `moved` learns each one as it lands. */
export async function moveIntoPlace(
  p: PlannedImport,
  staging: string,
  staged: readonly string[],
  moved: string[],
): Promise<void> {
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
  if (landed.some((sum, i) => sum !== staged[i])) {
    throw new SnapkeepError(
      "ALREADY_EXISTS",
      `Another file took one of the image names on ${request.host} during the import; nothing was restored.`,
    );
  }
}

/**
 * An imported image must be a qcow2 of the size the manifest says, standalone or a link naming
 * exactly its base: its header is read as bytes first (any other backing file or an external
 * data file would make QEMU open a host path for the guest).
 */
async function requireImageHeader(
  host: RemoteFs,
  path: string,
  disk: ManifestDisk,
  id: string,
): Promise<void> {
  const what = `${disk.name} of export ${id}`;
  const header = await runChecked(host.runner, headerArgs(path), `Reading the header of ${what}`, {
    timeoutMs: QUICK_MS,
  });
  const link = disk.backing === undefined ? undefined : { backing: disk.backing };
  const { virtualSize } = checkStandaloneHeader(parseOdHex(header.stdout), what, link);
  if (disk.virtualSize !== null && virtualSize !== disk.virtualSize) {
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `${what} is not the image its manifest describes: its virtual size is ${virtualSize} bytes, the manifest says ${disk.virtualSize}; nothing was restored.`,
    );
  }
}

/** The image to be used, checked again by qemu-img with the format pinned: standalone, that size. */
async function requirePinnedInfo(
  host: RemoteFs,
  path: string,
  disk: ManifestDisk,
  id: string,
): Promise<void> {
  const what = `${disk.name} of export ${id}`;
  const info = await runChecked(host.runner, pinnedInfoArgs(path), `Checking ${what}`, {
    timeoutMs: QUICK_MS,
  });
  checkPinnedInfo(info.stdout, { virtualSize: disk.virtualSize }, what);
}

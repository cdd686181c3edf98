/**
 * Export targets: a folder on this computer or a folder on an SSH host, with the same key choice
 * and host-key pinning as hypervisor hosts (endpoints.ts). The only writer of the settings'
 * `targets`. Adding, trusting, testing and removing them, and the file operations on each.
 */
import { posix } from "node:path";

import { validateName, validateNoControlCharacters } from "../domain/names.js";
import { SnapkeepError, quoteInput } from "../errors.js";
import { LocalRunner } from "../infra/runner/local.js";
import { parseSshSpec } from "../infra/ssh/config.js";
import type { SshTarget, Target, TargetTest } from "../domain/settings.js";
import type { SshHostConfig } from "../domain/types.js";
import { type FolderProbe, folderProbeArgs, parseFolderProbe } from "../drivers/sh/target-scripts.js";
import { RemoteFs } from "../infra/remote-fs.js";
import { runChecked } from "../infra/runner/checked.js";
import { EndpointRegistry, type EndpointDeps, type EndpointKind } from "./endpoints.js";

const QUICK_MS = 60_000;

const targetKind: EndpointKind<Target> = {
  noun: "target",
  read: (s) => s.targets,
  write: (s, targets) => ({ ...s, targets }),
  notFound: (name) =>
    new SnapkeepError("NOT_FOUND", `There is no export target named ${quoteInput(name)}.`, {
      action: { do: "list-targets" },
    }),
  alreadyExists: (name) =>
    new SnapkeepError("ALREADY_EXISTS", `A target named ${quoteInput(name)} already exists.`),
  untrusted: (name) =>
    new SnapkeepError(
      "HOST_KEY_UNKNOWN",
      `Target ${name} is not trusted yet; nothing is sent to it until it is.`,
      { action: { do: "trust", noun: "target", name } },
    ),
  noHostKey: (name) =>
    new SnapkeepError("INVALID_INPUT", `${name} is a folder on this computer; it has no host key.`),
  sshAddress: asSshHost,
  localRunner: () => new LocalRunner(),
};

export class Targets {
  readonly #registry: EndpointRegistry<Target>;

  constructor(deps: EndpointDeps<Target>) {
    this.#registry = new EndpointRegistry(targetKind, deps);
  }

  list(): Target[] {
    return this.#registry.list();
  }

  get(name: string): Target {
    return this.#registry.get(name);
  }

  /**
   * Adds a folder or SSH target. An SSH target's host key is fetched first and pinned only when it
   * matches `trust`; without it the target is saved untrusted and the offered key returned.
   */
  async add(request: {
    name: string;
    dir?: string | undefined;
    ssh?: string | undefined;
    identityFile?: string | undefined;
    trust?: string | undefined;
    keep?: number | undefined;
    bwlimitKiB?: number | undefined;
  }): Promise<{
    target: Target;
    offeredFingerprint: string | null;
    trusted: boolean;
    /** Set when the folder is on the system disk (see TargetTest's warning); null when not, or not reached. */
    warning: string | null;
  }> {
    // Checked here so that the sentence names what was typed, whichever front end typed it; the
    // settings file refuses these too.
    validateName("target name", request.name);
    for (const [what, typed] of [
      ["folder", request.dir],
      ["SSH address", request.ssh],
    ] as const) {
      if (typed !== undefined) {
        validateNoControlCharacters(what, typed);
      }
    }
    if (this.#registry.has(request.name)) {
      throw targetKind.alreadyExists(request.name);
    }
    if ((request.dir === undefined) === (request.ssh === undefined)) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        "Give a target either --dir PATH or --ssh USER@HOST[:PORT]:/PATH.",
      );
    }
    const keep = {
      ...(request.keep === undefined ? {} : { keep: request.keep }),
      ...(request.bwlimitKiB === undefined ? {} : { bwlimitKiB: request.bwlimitKiB }),
    };
    if (request.dir !== undefined) {
      const target: Target = { name: request.name, kind: "dir", path: posix.resolve(request.dir), ...keep };
      validateFolder(target);
      // Made now, while the person is here: later, a missing folder means the disk is not mounted.
      const warning = await this.#makeFolderOnAdd(target);
      this.#registry.add(target);
      return { target, offeredFingerprint: null, trusted: true, warning };
    }
    const spec = request.ssh ?? "";
    const split = spec.indexOf(":/");
    if (split === -1) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `${quoteInput(spec)} has no folder: write it as user@host[:port]:/path.`,
      );
    }
    const target: SshTarget = {
      name: request.name,
      kind: "ssh",
      ...parseSshSpec(spec.slice(0, split)),
      path: posix.normalize(spec.slice(split + 1)),
      ...(request.identityFile === undefined ? {} : { identityFile: posix.resolve(request.identityFile) }),
      ...keep,
    };
    validateFolder(target);
    const added = await this.#registry.addSsh(target, request.trust);
    let warning: string | null = null;
    if (added.trusted) {
      // As for a folder target, all or nothing: a folder that cannot be made there (no permission,
      // a read-only share) is said now, and the target is not kept.
      try {
        warning = await this.#makeFolderOnAdd(added.saved);
      } catch (error) {
        await this.#registry.remove(added.saved.name);
        throw error;
      }
    }
    return {
      target: added.saved,
      offeredFingerprint: added.offeredFingerprint,
      trusted: added.trusted,
      warning,
    };
  }

  /** Makes a new target's folder, and says when it is on the system disk. */
  async #makeFolderOnAdd(target: Target): Promise<string | null> {
    const fs = this.fsOf(target);
    await fs.mkdirs(target.path);
    return systemDiskWarning(fs.label, target.path, await probeFolder(fs, target.path));
  }

  async trust(name: string, fingerprint: string): Promise<Target> {
    const trusted = await this.#registry.trust(name, fingerprint);
    await this.#makeFolder(trusted);
    return trusted;
  }

  /**
   * Makes the folder of an SSH target trusted after it was added. A failure leaves it trusted: its
   * first export says the folder is missing, and testing the target says so too, and why it cannot
   * be made when asked to make it.
   */
  async #makeFolder(target: Target): Promise<void> {
    await this.fsOf(target)
      .mkdirs(target.path)
      .catch(() => undefined);
  }

  offeredFingerprint(name: string): Promise<string> {
    return this.#registry.offeredFingerprint(name);
  }

  /** Forgets a target. The exports on it stay where they are. */
  remove(name: string): Promise<void> {
    return this.#registry.remove(name);
  }

  setKeep(name: string, keep: number | undefined): Target {
    const { keep: _old, ...rest } = this.get(name);
    const updated: Target = keep === undefined ? rest : { ...rest, keep };
    this.#registry.replace(updated);
    return updated;
  }

  /**
   * Checks that the target is reachable, writable, has rsync, how much room it has, and whether
   * its folder is on a file system of its own. A missing folder is reported, not made: it is made
   * only with `create`, once the person has been told (usually it is a disk that is not mounted).
   */
  async test(name: string, options: { create?: boolean } = {}): Promise<TargetTest> {
    const target = this.get(name);
    const fs = this.fsOf(target);
    let folder = await probeFolder(fs, target.path);
    const created = folder.state === "missing";
    if (created) {
      if (options.create !== true) {
        return missingFolder(name, fs.label, target.path, folder);
      }
      await fs.mkdirs(target.path);
      folder = await probeFolder(fs, target.path);
    }
    if (folder.state !== "present") {
      throw new SnapkeepError("INVALID_INPUT", `${target.path} on ${fs.label} is not a folder.`, {
        hint: "Choose a folder for the target: remove it and add it again with another path.",
      });
    }
    const probe = posix.join(target.path, `.snapkeep-write-test-${process.pid}`);
    await fs.writeFile(probe, "snapkeep\n");
    await fs.removeFiles([probe]);
    const version = await fs.run(["rsync", "--version"], { timeoutMs: QUICK_MS });
    const rsync = version.code === 0 ? (version.stdout.split("\n")[0]?.trim() ?? null) : null;
    if (rsync === null && target.kind === "ssh") {
      throw new SnapkeepError("TOOL_MISSING", `rsync is not installed on ${fs.label}.`, {
        hint: "Install it there with: apt-get install rsync",
        details: { tool: "rsync" },
      });
    }
    return {
      target: name,
      state: "ok",
      path: target.path,
      created,
      freeBytes: folder.freeBytes,
      rsync,
      mountPoint: folder.mountPoint,
      onRootFileSystem: folder.onRootFileSystem,
      warning: systemDiskWarning(fs.label, target.path, folder),
    };
  }

  /** The file operations on a target, through its pooled runner; an untrusted SSH target refuses. */
  fs(name: string): RemoteFs {
    return this.fsOf(this.get(name));
  }

  fsOf(target: Target): RemoteFs {
    return new RemoteFs(this.#registry.runner(target));
  }

  /** Closes every target's connection. */
  dispose(): Promise<void> {
    return this.#registry.dispose();
  }
}

async function probeFolder(fs: RemoteFs, path: string): Promise<FolderProbe> {
  const result = await runChecked(fs.runner, folderProbeArgs(path), `Looking at ${path}`, {
    timeoutMs: QUICK_MS,
  });
  return parseFolderProbe(result.stdout, fs.label);
}

/** A folder on the file system of /: where an unmounted disk or share leaves its mount point. */
function systemDiskWarning(label: string, path: string, folder: FolderProbe): string | null {
  return folder.onRootFileSystem
    ? `${path} is on the system disk of ${label} (the file system of /), not on a disk or share of its own: if one should be mounted there, it is not, and exports would fill the system disk.`
    : null;
}

function missingFolder(name: string, label: string, path: string, nearest: FolderProbe): TargetTest {
  return {
    target: name,
    state: "missing",
    path,
    message: `The folder ${path} does not exist on ${label}; nothing was created.`,
    detail: nearest.onRootFileSystem
      ? `${nearest.measured}, the nearest folder above it, is on the system disk (the file system of /): if a disk or share should be mounted there, it is not, and a folder made now would fill the system disk.`
      : `${nearest.measured}, the nearest folder above it, is on the file system mounted at ${nearest.mountPoint}.`,
  };
}

function validateFolder(target: Target): void {
  if (target.path === "/" || target.path.length < 2) {
    throw new SnapkeepError("INVALID_INPUT", "Choose a folder for exports, not the root of a filesystem.");
  }
}

function asSshHost(target: SshTarget): SshHostConfig {
  return {
    name: target.name,
    kind: "ssh",
    uri: "",
    ...(target.alias === undefined ? {} : { alias: target.alias }),
    ...(target.host === undefined ? {} : { host: target.host }),
    ...(target.user === undefined ? {} : { user: target.user }),
    ...(target.port === undefined ? {} : { port: target.port }),
    ...(target.identityFile === undefined ? {} : { identityFile: target.identityFile }),
  };
}

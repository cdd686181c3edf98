/**
 * Export targets: a folder on this computer or a folder on an SSH host, with the same key choice
 * and host-key pinning as hypervisor hosts. Adding, trusting, testing and removing them, and the
 * pooled runner (and file operations) for each.
 */
import { posix } from "node:path";

import { validateName, validateNoControlCharacters } from "../../domain/names.js";
import { SnapkeepError, quoteInput } from "../../errors.js";
import { commandLine } from "../../domain/shell-quote.js";
import { createSshRunner, type SshEnvironment } from "../../infra/runner/factory.js";
import { LocalRunner } from "../../infra/runner/local.js";
import type { CommandRunner } from "../../infra/runner/types.js";
import { requireOfferedFingerprint } from "../../infra/ssh/hostkey.js";
import { parseSshSpec } from "../../infra/ssh/config.js";
import type { SettingsStore } from "../../infra/store/store.js";
import type { SshTarget, Target } from "../../domain/settings.js";
import { RemoteFs } from "../../infra/remote-fs.js";

const QUICK_MS = 60_000;

export interface TargetDeps {
  readonly store: SettingsStore;
  readonly ssh: SshEnvironment;
  /** Tests swap the runner for a target (a network namespace, a failing wrapper). */
  readonly targetRunner?: (target: Target) => CommandRunner | undefined;
}

export class Targets {
  readonly #targetRunners = new Map<string, CommandRunner>();
  readonly #local = new LocalRunner();

  constructor(protected readonly targetDeps: TargetDeps) {}

  // ---- targets -------------------------------------------------------------------------------

  listTargets(): Target[] {
    return this.targetDeps.store.read().targets;
  }

  getTarget(name: string): Target {
    const target = this.listTargets().find((t) => t.name === name);
    if (target === undefined) {
      throw new SnapkeepError("NOT_FOUND", `There is no export target named ${quoteInput(name)}.`, {
        hint: "See them with: snapkeep target list",
      });
    }
    return target;
  }

  /**
   * Adds a folder or SSH target. An SSH target's host key is fetched first and pinned only when it
   * matches `trust`; without it the target is saved untrusted and the offered key returned.
   */
  async addTarget(request: {
    name: string;
    dir?: string | undefined;
    ssh?: string | undefined;
    identityFile?: string | undefined;
    trust?: string | undefined;
    keep?: number | undefined;
  }): Promise<{ target: Target; offeredFingerprint: string | null; trusted: boolean }> {
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
    if (this.listTargets().some((t) => t.name === request.name)) {
      throw new SnapkeepError("ALREADY_EXISTS", `A target named ${quoteInput(request.name)} already exists.`);
    }
    if ((request.dir === undefined) === (request.ssh === undefined)) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        "Give a target either --dir PATH or --ssh USER@HOST[:PORT]:/PATH.",
      );
    }
    const keep = request.keep === undefined ? {} : { keep: request.keep };
    if (request.dir !== undefined) {
      const target: Target = { name: request.name, kind: "dir", path: posix.resolve(request.dir), ...keep };
      this.#save(target);
      return { target, offeredFingerprint: null, trusted: true };
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
    this.#validate(target);
    const offered = await this.#probe(target);
    if (request.trust !== undefined) {
      requireOfferedFingerprint("Target", target.name, request.trust, offered);
    }
    const saved: SshTarget = request.trust === undefined ? target : { ...target, hostKey: offered };
    this.#save(saved);
    return { target: saved, offeredFingerprint: offered, trusted: request.trust !== undefined };
  }

  async trustTarget(name: string, fingerprint: string): Promise<Target> {
    const target = this.getTarget(name);
    if (target.kind !== "ssh") {
      throw new SnapkeepError("INVALID_INPUT", `${name} is a folder on this computer; it has no host key.`);
    }
    const offered = await this.#probe(target);
    requireOfferedFingerprint("Target", name, fingerprint, offered);
    const updated: SshTarget = { ...target, hostKey: offered };
    this.targetDeps.store.update((s) => ({
      ...s,
      targets: s.targets.map((t) => (t.name === name ? updated : t)),
    }));
    await this.#dropRunner(name);
    return updated;
  }

  async offeredFingerprint(name: string): Promise<string> {
    const target = this.getTarget(name);
    if (target.kind !== "ssh") {
      throw new SnapkeepError("INVALID_INPUT", `${name} is a folder on this computer; it has no host key.`);
    }
    return this.#probe(target);
  }

  /** Forgets a target. The exports on it stay where they are. */
  async removeTarget(name: string): Promise<void> {
    this.getTarget(name);
    this.targetDeps.store.update((s) => ({ ...s, targets: s.targets.filter((t) => t.name !== name) }));
    await this.#dropRunner(name);
  }

  setKeep(name: string, keep: number | undefined): Target {
    const target = this.getTarget(name);
    const { keep: _old, ...rest } = target;
    const updated: Target = keep === undefined ? rest : { ...rest, keep };
    this.targetDeps.store.update((s) => ({
      ...s,
      targets: s.targets.map((t) => (t.name === name ? updated : t)),
    }));
    return updated;
  }

  /** Checks that the target is reachable, writable, has rsync, and how much room it has. */
  async testTarget(name: string): Promise<{ target: string; freeBytes: number; rsync: string | null }> {
    const target = this.getTarget(name);
    const fs = this.targetFsOf(target);
    await fs.mkdirs(target.path);
    const probe = posix.join(target.path, `.snapkeep-write-test-${process.pid}`);
    await fs.writeFile(probe, "snapkeep\n");
    await fs.removeFiles([probe]);
    const freeBytes = await fs.freeBytes(target.path);
    const version = await fs.run(["rsync", "--version"], { timeoutMs: QUICK_MS });
    const rsync = version.code === 0 ? (version.stdout.split("\n")[0]?.trim() ?? null) : null;
    if (rsync === null && target.kind === "ssh") {
      throw new SnapkeepError("TOOL_MISSING", `rsync is not installed on ${fs.label}.`, {
        hint: "Install it there with: apt-get install rsync",
        details: { tool: "rsync" },
      });
    }
    return { target: name, freeBytes, rsync };
  }

  /** The runner and file operations for a target; an untrusted SSH target refuses to connect. */
  targetFs(name: string): RemoteFs {
    return this.targetFsOf(this.getTarget(name));
  }

  /** The file operations on a target, through its (pooled) runner. */
  protected targetFsOf(target: Target): RemoteFs {
    let runner = this.#targetRunners.get(target.name);
    if (runner === undefined) {
      runner = this.targetDeps.targetRunner?.(target) ?? this.#newRunner(target);
      this.#targetRunners.set(target.name, runner);
    }
    return new RemoteFs(runner);
  }

  #newRunner(target: Target): CommandRunner {
    if (target.kind === "dir") {
      return this.#local;
    }
    if (target.hostKey === undefined) {
      throw new SnapkeepError(
        "HOST_KEY_UNKNOWN",
        `Target ${target.name} is not trusted yet; nothing is sent to it until it is.`,
        {
          hint: `Check its fingerprint and run: ${commandLine`snapkeep target trust ${target.name}`} SHA256:...`,
        },
      );
    }
    return createSshRunner(asSshHost(target), this.targetDeps.ssh, target.hostKey, "target");
  }

  async #dropRunner(name: string): Promise<void> {
    const runner = this.#targetRunners.get(name);
    this.#targetRunners.delete(name);
    if (runner !== this.#local) {
      await runner?.dispose();
    }
  }

  async #probe(target: SshTarget): Promise<string> {
    const runner = createSshRunner(asSshHost(target), this.targetDeps.ssh, undefined, "target");
    try {
      return await runner.probeHostKey();
    } finally {
      await runner.dispose();
    }
  }

  #validate(target: Target): void {
    if (target.path === "/" || target.path.length < 2) {
      throw new SnapkeepError("INVALID_INPUT", "Choose a folder for exports, not the root of a filesystem.");
    }
  }

  #save(target: Target): void {
    this.#validate(target);
    this.targetDeps.store.update((s) => {
      if (s.targets.some((t) => t.name === target.name)) {
        throw new SnapkeepError(
          "ALREADY_EXISTS",
          `A target named ${quoteInput(target.name)} already exists.`,
        );
      }
      return { ...s, targets: [...s.targets, target] };
    });
  }

  /** Closes every target's connection. */
  async dispose(): Promise<void> {
    const runners = [...this.#targetRunners.values()];
    this.#targetRunners.clear();
    await Promise.all([
      ...runners.filter((r) => r !== this.#local).map((r) => r.dispose()),
      this.#local.dispose(),
    ]);
  }
}

function asSshHost(target: SshTarget): Parameters<typeof createSshRunner>[0] {
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

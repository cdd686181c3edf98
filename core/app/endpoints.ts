/**
 * Hypervisor hosts and export targets are the same thing twice over: a named place on this computer
 * or behind SSH, whose host key is fetched, shown, pinned on trust and refused when it changes, and
 * whose connection is pooled. This registry does that once; `Hosts` and `Targets` say only what is
 * their own (a libvirt URI, a folder and a keep count).
 */
import { SnapkeepError } from "../errors.js";
import type { Settings } from "../domain/settings.js";
import type { SshHostConfig } from "../domain/types.js";
import { createSshRunner, type SshEnvironment } from "../infra/runner/factory.js";
import type { CommandRunner } from "../infra/runner/types.js";
import { requireOfferedFingerprint } from "../infra/ssh/hostkey.js";
import type { SettingsStore } from "../infra/store/store.js";

/** What every endpoint has: a name, and SSH ones a pinned key once trusted. */
export type Endpoint = { readonly name: string } & (
  { readonly kind: "local" | "dir" } | { readonly kind: "ssh"; readonly hostKey?: string | undefined }
);

/** What differs between hosts and targets: their slice of the settings and their sentences. */
export interface EndpointKind<E extends Endpoint> {
  /** "host" or "target": how SSH failures name it. */
  readonly noun: "host" | "target";
  read(settings: Settings): readonly E[];
  write(settings: Settings, endpoints: E[]): Settings;
  notFound(name: string): SnapkeepError;
  alreadyExists(name: string): SnapkeepError;
  /** The refusal for an SSH endpoint whose key nobody has checked yet: nothing runs on it. */
  untrusted(name: string): SnapkeepError;
  /** The refusal to trust or fingerprint an endpoint on this computer. */
  noHostKey(name: string): SnapkeepError;
  /** The SSH address of an SSH endpoint, in the shape the SSH runner takes. */
  sshAddress(endpoint: E & { kind: "ssh" }): SshHostConfig;
  /** The runner for an endpoint on this computer. */
  localRunner(endpoint: E): CommandRunner;
}

export interface EndpointDeps<E extends Endpoint> {
  readonly store: SettingsStore;
  readonly ssh: SshEnvironment;
  /** Overrides how runners are made (benchmarks count calls; tests route through a namespace). */
  readonly runnerFor?: ((endpoint: E) => CommandRunner | undefined) | undefined;
}

type Ssh<E extends Endpoint> = E & { readonly kind: "ssh" };

export class EndpointRegistry<E extends Endpoint> {
  readonly #runners = new Map<string, CommandRunner>();

  constructor(
    private readonly kind: EndpointKind<E>,
    private readonly deps: EndpointDeps<E>,
  ) {}

  list(): E[] {
    return [...this.kind.read(this.deps.store.read())];
  }

  get(name: string): E {
    const endpoint = this.list().find((e) => e.name === name);
    if (endpoint === undefined) {
      throw this.kind.notFound(name);
    }
    return endpoint;
  }

  has(name: string): boolean {
    return this.list().some((e) => e.name === name);
  }

  /** Saves a new endpoint; the name is checked again under the store's lock. */
  add(endpoint: E): void {
    this.deps.store.update((s) => {
      const current = this.kind.read(s);
      if (current.some((e) => e.name === endpoint.name)) {
        throw this.kind.alreadyExists(endpoint.name);
      }
      return this.kind.write(s, [...current, endpoint]);
    });
  }

  /** Replaces a saved endpoint by name (its address stays; a new key goes through `trust`). */
  replace(updated: E): void {
    this.deps.store.update((s) =>
      this.kind.write(
        s,
        this.kind.read(s).map((e) => (e.name === updated.name ? updated : e)),
      ),
    );
  }

  /**
   * Adds an SSH endpoint: its host key is fetched first and pinned only when it equals `trust`
   * (checked out of band); without `trust` it is saved untrusted and the offered key returned.
   */
  async addSsh(
    endpoint: Ssh<E>,
    trust: string | undefined,
  ): Promise<{ saved: Ssh<E>; offeredFingerprint: string; trusted: boolean }> {
    if (this.has(endpoint.name)) {
      throw this.kind.alreadyExists(endpoint.name);
    }
    const offered = await this.#probe(endpoint);
    if (trust !== undefined) {
      requireOfferedFingerprint(this.#label(), endpoint.name, trust, offered);
    }
    const saved = trust === undefined ? endpoint : ({ ...endpoint, hostKey: offered } as Ssh<E>);
    this.add(saved);
    return { saved, offeredFingerprint: offered, trusted: trust !== undefined };
  }

  /** Pins the key the endpoint offers now, which must equal `fingerprint` (checked out of band). */
  async trust(name: string, fingerprint: string): Promise<Ssh<E>> {
    const endpoint = this.#ssh(name);
    const offered = await this.#probe(endpoint);
    requireOfferedFingerprint(this.#label(), name, fingerprint, offered);
    const updated = { ...endpoint, hostKey: offered } as Ssh<E>;
    this.replace(updated);
    await this.#dropRunner(name);
    return updated;
  }

  /** The fingerprint an SSH endpoint offers right now, without trusting it. */
  async offeredFingerprint(name: string): Promise<string> {
    return this.#probe(this.#ssh(name));
  }

  async remove(name: string): Promise<void> {
    this.get(name);
    this.deps.store.update((s) =>
      this.kind.write(
        s,
        this.kind.read(s).filter((e) => e.name !== name),
      ),
    );
    await this.#dropRunner(name);
  }

  /** The pooled runner of an endpoint; an SSH endpoint nobody trusted yet refuses to connect. */
  runner(endpoint: E): CommandRunner {
    if (endpoint.kind === "ssh" && endpoint.hostKey === undefined) {
      throw this.kind.untrusted(endpoint.name);
    }
    let runner = this.#runners.get(endpoint.name);
    if (runner === undefined) {
      runner = this.deps.runnerFor?.(endpoint) ?? this.#newRunner(endpoint);
      this.#runners.set(endpoint.name, runner);
    }
    return runner;
  }

  /** Closes every connection. */
  async dispose(): Promise<void> {
    const runners = [...this.#runners.values()];
    this.#runners.clear();
    await Promise.all(runners.map((r) => r.dispose()));
  }

  #newRunner(endpoint: E): CommandRunner {
    if (endpoint.kind !== "ssh") {
      return this.kind.localRunner(endpoint);
    }
    return createSshRunner(
      this.kind.sshAddress(endpoint as Ssh<E>),
      this.deps.ssh,
      endpoint.hostKey,
      this.kind.noun,
    );
  }

  #ssh(name: string): Ssh<E> {
    const endpoint = this.get(name);
    if (endpoint.kind !== "ssh") {
      throw this.kind.noHostKey(name);
    }
    return endpoint as Ssh<E>;
  }

  async #probe(endpoint: Ssh<E>): Promise<string> {
    const runner = createSshRunner(this.kind.sshAddress(endpoint), this.deps.ssh, undefined, this.kind.noun);
    try {
      return await runner.probeHostKey();
    } finally {
      await runner.dispose();
    }
  }

  async #dropRunner(name: string): Promise<void> {
    const runner = this.#runners.get(name);
    this.#runners.delete(name);
    await runner?.dispose();
  }

  #label(): "Host" | "Target" {
    return this.kind.noun === "host" ? "Host" : "Target";
  }
}

/**
 * Hypervisor hosts: this computer or a machine over SSH, each with a libvirt URI. The only writer of
 * the settings' `hosts`. Notes and pins are not dropped with a host: adding it again under the same
 * name brings them back, so a mistaken remove cannot make pinned snapshots deletable.
 */
import { resolve } from "node:path";

import { SnapkeepError, quoteInput } from "../errors.js";
import { validateName } from "../domain/names.js";
import { validateLibvirtUri } from "../domain/selection.js";
import type { HostConfig, SshHostConfig } from "../domain/types.js";
import { LibvirtHost } from "../hypervisor/libvirt.js";
import { LocalRunner } from "../infra/runner/local.js";
import { parseSshSpec } from "../infra/ssh/config.js";
import { EndpointRegistry, type EndpointDeps, type EndpointKind } from "./endpoints.js";

const hostKind: EndpointKind<HostConfig> = {
  noun: "host",
  read: (s) => s.hosts,
  write: (s, hosts) => ({ ...s, hosts }),
  notFound: (name) =>
    new SnapkeepError("NOT_FOUND", `There is no host named ${quoteInput(name)}.`, {
      action: { do: "list-hosts" },
    }),
  alreadyExists: (name) => new SnapkeepError("ALREADY_EXISTS", `A host named "${name}" already exists.`),
  untrusted: (name) =>
    new SnapkeepError(
      "HOST_KEY_UNKNOWN",
      `Host ${name} is not trusted yet; nothing runs on it until it is.`,
      { action: { do: "trust", noun: "host", name } },
    ),
  noHostKey: (name) => new SnapkeepError("INVALID_INPUT", `${name} is this computer; it has no host key.`),
  sshAddress: (host) => host,
  localRunner: () => new LocalRunner(),
};

export class Hosts {
  readonly #registry: EndpointRegistry<HostConfig>;

  constructor(deps: EndpointDeps<HostConfig>) {
    this.#registry = new EndpointRegistry(hostKind, deps);
  }

  list(): HostConfig[] {
    return this.#registry.list();
  }

  get(name: string): HostConfig {
    return this.#registry.get(name);
  }

  addLocal(name: string, uri = "qemu:///system"): HostConfig {
    validateName("host name", name);
    validateLibvirtUri(uri);
    const host: HostConfig = { name, kind: "local", uri };
    this.#registry.add(host);
    return host;
  }

  /**
   * Adds an SSH host. The host key is fetched first: with `trust` it must match and is pinned;
   * without it the host is saved untrusted, nothing runs on it, and the offered fingerprint is
   * returned so the user can check it and run `snapkeep host trust`.
   */
  async addSsh(request: {
    name: string;
    ssh: string;
    identityFile?: string;
    uri?: string;
    trust?: string;
  }): Promise<{ host: SshHostConfig; offeredFingerprint: string; trusted: boolean }> {
    validateName("host name", request.name);
    if (request.uri !== undefined) {
      validateLibvirtUri(request.uri);
    }
    const host: SshHostConfig = {
      name: request.name,
      kind: "ssh",
      uri: request.uri ?? "qemu:///system",
      ...parseSshSpec(request.ssh),
      // Stored absolute: the CLI may run from another folder next time.
      ...(request.identityFile === undefined ? {} : { identityFile: resolve(request.identityFile) }),
    };
    const added = await this.#registry.addSsh(host, request.trust);
    return { host: added.saved, offeredFingerprint: added.offeredFingerprint, trusted: added.trusted };
  }

  /** Pins the host key the host offers now, which must equal `fingerprint` (checked out of band). */
  trust(name: string, fingerprint: string): Promise<SshHostConfig> {
    return this.#registry.trust(name, fingerprint);
  }

  /** The fingerprint a host offers right now, without trusting it. */
  offeredFingerprint(name: string): Promise<string> {
    return this.#registry.offeredFingerprint(name);
  }

  remove(name: string): Promise<void> {
    return this.#registry.remove(name);
  }

  /** libvirt on a trusted host, through its pooled runner: every call to a hypervisor starts here. */
  libvirt(name: string): LibvirtHost {
    const host = this.get(name);
    return new LibvirtHost(host.name, host.uri, this.#registry.runner(host));
  }

  /** Closes every SSH connection. */
  dispose(): Promise<void> {
    return this.#registry.dispose();
  }
}

/**
 * Pure argv builders for virsh. VMs are addressed by UUID, never by name, so a name that looks like
 * an id, a UUID or an option can never select the wrong domain.
 */
export function virsh(uri: string, ...args: string[]): string[] {
  return ["virsh", "-q", "-c", uri, ...args];
}

export type DomainListFilter = "all" | "running" | "paused" | "shutoff";

export function listDomainUuidsArgs(uri: string, filter: DomainListFilter): string[] {
  const filterArgs = filter === "all" ? ["--all"] : [`--state-${filter}`];
  return virsh(uri, "list", "--uuid", ...filterArgs);
}

export function dumpXmlArgs(uri: string, uuid: string, inactive = false): string[] {
  return virsh(uri, "dumpxml", "--domain", uuid, ...(inactive ? ["--inactive"] : []));
}

/** virsh looks a domain up by id, then UUID, then name: callers must check the name they get back. */
export function domUuidArgs(uri: string, name: string): string[] {
  return virsh(uri, "domuuid", "--domain", name);
}

export function domStateArgs(uri: string, uuid: string): string[] {
  return virsh(uri, "domstate", "--domain", uuid);
}

/** QMP through libvirt: the only safe way to snapshot disks a running QEMU holds open. */
export function qmpArgs(uri: string, uuid: string, command: object): string[] {
  return virsh(uri, "qemu-monitor-command", "--domain", uuid, JSON.stringify(command));
}

export function startArgs(uri: string, uuid: string): string[] {
  return virsh(uri, "start", "--domain", uuid);
}

export function shutdownArgs(uri: string, uuid: string): string[] {
  return virsh(uri, "shutdown", "--domain", uuid);
}

export function destroyArgs(uri: string, uuid: string): string[] {
  return virsh(uri, "destroy", "--domain", uuid);
}

export function defineArgs(uri: string, xmlPath: string): string[] {
  return virsh(uri, "define", "--file", xmlPath);
}

export function undefineArgs(uri: string, uuid: string): string[] {
  return virsh(uri, "undefine", "--domain", uuid, "--nvram");
}

export function versionArgs(uri: string): string[] {
  return virsh(uri, "version");
}

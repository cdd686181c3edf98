/**
 * Pure argv builders for virsh. VMs are addressed by UUID, never by name, so a name that looks like
 * an id, a UUID or an option can never select the wrong domain.
 */
export function virsh(uri: string, ...args: string[]): string[] {
  return ["virsh", "-q", "-c", uri, ...args];
}

export type DomainListFilter = "all" | "running" | "paused" | "shutoff" | "other";

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

export function startArgs(uri: string, uuid: string, paused = false): string[] {
  return virsh(uri, "start", "--domain", uuid, ...(paused ? ["--paused"] : []));
}

export function shutdownArgs(uri: string, uuid: string): string[] {
  return virsh(uri, "shutdown", "--domain", uuid);
}

export function destroyArgs(uri: string, uuid: string): string[] {
  return virsh(uri, "destroy", "--domain", uuid);
}

/** Pauses the vCPUs: several disks snapshotted one after another still show one instant. */
export function suspendArgs(uri: string, uuid: string): string[] {
  return virsh(uri, "suspend", "--domain", uuid);
}

export function resumeArgs(uri: string, uuid: string): string[] {
  return virsh(uri, "resume", "--domain", uuid);
}

export function defineArgs(uri: string, xmlPath: string): string[] {
  return virsh(uri, "define", "--file", xmlPath);
}

export function undefineArgs(uri: string, uuid: string): string[] {
  return virsh(uri, "undefine", "--domain", uuid, "--nvram");
}

/** What a libvirt UUID looks like; only such strings are ever written into a virsh command line. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isUuid(text: string): boolean {
  return UUID.test(text);
}

/**
 * Several virsh commands in one process and one libvirt connection: `virsh "cmd1; echo SEP; cmd2"`.
 * Over SSH this turns a hundred sessions into one. virsh parses that string itself, so only fixed
 * words and validated UUIDs may go in; a name never does. Each command's output is one segment.
 */
export function batchArgs(
  uri: string,
  commands: readonly (readonly string[])[],
  separator: string,
): string[] {
  for (const command of commands) {
    for (const word of command) {
      if (!/^[A-Za-z0-9_:./{}"-]+$/.test(word) && !isUuid(word)) {
        throw new Error(`virsh batch word ${JSON.stringify(word)} is not a fixed word or a UUID`);
      }
    }
  }
  if (!/^@@[A-Za-z0-9-]+@@$/.test(separator)) {
    throw new Error(`virsh batch separator ${JSON.stringify(separator)} is not a plain marker`);
  }
  const joined = commands.map((c) => c.map(quoteForVirsh).join(" ")).join(` ; echo ${separator} ; `);
  return virsh(uri, joined);
}

/** virsh's own parser keeps a single-quoted word as is; the words above never contain a quote. */
function quoteForVirsh(word: string): string {
  return /^[A-Za-z0-9_./-]+$/.test(word) ? word : `'${word}'`;
}

export const QUERY_BLOCK_JSON = '{"execute":"query-block"}';

export function listCommand(filter: DomainListFilter): string[] {
  return ["list", "--uuid", ...(filter === "all" ? ["--all"] : [`--state-${filter}`])];
}

export function dumpXmlCommand(uuid: string): string[] {
  return ["dumpxml", "--domain", uuid];
}

export function domStateCommand(uuid: string): string[] {
  return ["domstate", "--domain", uuid];
}

export function queryBlockCommand(uuid: string): string[] {
  return ["qemu-monitor-command", "--domain", uuid, QUERY_BLOCK_JSON];
}

/** A guest agent command, answered within `timeoutSeconds` or failed (no agent, agent stuck). */
export function agentCommandArgs(
  uri: string,
  uuid: string,
  command: object,
  timeoutSeconds: number,
): string[] {
  return virsh(
    uri,
    "qemu-agent-command",
    "--domain",
    uuid,
    "--timeout",
    String(timeoutSeconds),
    JSON.stringify(command),
  );
}

export function fsFreezeArgs(uri: string, uuid: string): string[] {
  return virsh(uri, "domfsfreeze", "--domain", uuid);
}

export function fsThawArgs(uri: string, uuid: string): string[] {
  return virsh(uri, "domfsthaw", "--domain", uuid);
}

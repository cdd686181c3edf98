/**
 * A second machine for export tests: a network namespace joined to this one by a veth pair, with
 * its own address, so a target sshd there is reached over a real link that a test can cut, and
 * everything in it can be killed at once like a host that lost power. Traffic stays on the pair.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";

export interface TestNetns {
  readonly name: string;
  /** This side's address on the link. */
  readonly hostAddress: string;
  /** The namespace's address: where its sshd listens. */
  readonly address: string;
  /** SIGKILLs every process in the namespace (sshd, its sessions, rsync). */
  killAll(): void;
  dispose(): void;
}

function ip(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8" });
}

/** Tries a few random names and subnets: one may be left over from a run that was killed. */
export function createNetns(): TestNetns {
  for (let attempt = 1; ; attempt++) {
    try {
      return createNetnsOnce(randomBytes(2).toString("hex"));
    } catch (error) {
      if (attempt >= 5) {
        throw error;
      }
    }
  }
}

function createNetnsOnce(id: string): TestNetns {
  const name = `sk-t-${id}`;
  const outer = `sk-h-${id}`;
  // A /30 from a block no real network here uses; the id keeps parallel runs apart. A /30 already
  // on a link here (another run's, or one a killed run left) is never taken again: two links with
  // the same subnet would route this run's packets into the other namespace.
  const octet = (parseInt(id, 16) % 60) * 4;
  if (ip("-o", "-4", "addr", "show").includes(`10.231.${octet}.`)) {
    throw new Error(`10.231.${octet}.0/30 is in use here already`);
  }
  const hostAddress = `10.231.${octet}.1`;
  const address = `10.231.${octet}.2`;
  ip("netns", "add", name);
  try {
    ip("link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", name);
    ip("addr", "add", `${hostAddress}/30`, "dev", outer);
    ip("link", "set", outer, "up");
    ip("netns", "exec", name, "ip", "addr", "add", `${address}/30`, "dev", "eth0");
    ip("netns", "exec", name, "ip", "link", "set", "eth0", "up");
    ip("netns", "exec", name, "ip", "link", "set", "lo", "up");
  } catch (error) {
    ip("netns", "del", name);
    throw error;
  }
  const killAll = (): void => {
    const pids = ip("netns", "pids", name)
      .split("\n")
      .filter((p) => /^\d+$/.test(p));
    for (const pid of pids) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  };
  return {
    name,
    hostAddress,
    address,
    killAll,
    dispose() {
      killAll();
      try {
        ip("link", "del", outer);
      } catch {
        // Gone with the namespace already.
      }
      ip("netns", "del", name);
    },
  };
}

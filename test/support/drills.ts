import { execFileSync } from "node:child_process";

import { parseMarker } from "../../core/app/drill.js";
import { URI } from "./libvirt.js";

export function virsh(...args: string[]): string {
  return execFileSync("virsh", ["-q", "-c", URI, ...args], { encoding: "utf8" });
}

/** The drills' throwaway VMs whose marker names this process (other runs may drill meanwhile). */
export function drillVmsOf(pid: number): string[] {
  return virsh("list", "--all", "--name")
    .split("\n")
    .map((l) => l.trim())
    .filter((name) => /^snapkeep-drill-[0-9a-f]{12}$/.test(name))
    .filter((name) => parseMarker(virsh("dumpxml", "--domain", name))?.owner?.pid === pid);
}

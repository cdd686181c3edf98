import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { createLabVm, removeLabVms, type LabVm, type LabVmRequest } from "../../core/app/lab/lab.js";
import { LocalRunner } from "../../core/infra/runner/local.js";

/** Where test VMs keep their images: under libvirt's images folder, which QEMU may open. */
export const TEST_IMAGE_DIR = "/var/lib/libvirt/images/snapkeep-test";
export const URI = "qemu:///system";

/**
 * Throwaway VMs for one test file, all carrying one owner mark, so `dispose` removes exactly
 * these (and their images) and never a VM some other run or person made.
 */
export class TestVms {
  readonly owner = `test-${process.pid}-${randomBytes(3).toString("hex")}`;
  readonly runner = new LocalRunner();
  readonly #made: LabVm[] = [];

  async create(request: Omit<LabVmRequest, "owner" | "dir">): Promise<LabVm> {
    const vm = await createLabVm(this.runner, URI, { ...request, owner: this.owner, dir: TEST_IMAGE_DIR });
    this.#made.push(vm);
    return vm;
  }

  async dispose(): Promise<void> {
    await removeLabVms(this.runner, URI, this.owner, { dryRun: false });
    await this.runner.dispose();
  }
}

/** A unique, short suffix for names in one test. */
export function uniqueSuffix(): string {
  return randomBytes(3).toString("hex");
}

/** qemu-io on an image no VM holds: writes or verifies a byte pattern; throws on mismatch. */
export function qemuIo(path: string, command: string): string {
  return execFileSync("qemu-io", ["-f", "qcow2", "-c", command, path], { encoding: "utf8" });
}

/** An internal snapshot's id and name as `qemu-img info` lists them, found by name. */
export function snapshotKey(image: string, name: string): { id: string; name: string } {
  const info = JSON.parse(
    execFileSync("qemu-img", ["info", "--output=json", image], { encoding: "utf8" }),
  ) as {
    snapshots?: { id: string; name: string }[];
  };
  const found = info.snapshots?.find((s) => s.name === name);
  if (found === undefined) {
    throw new Error(`${image} has no snapshot ${name}`);
  }
  return { id: found.id, name: found.name };
}

export function hasPattern(path: string, pattern: number, offset = 0, length = "64k"): boolean {
  const out = qemuIo(path, `read -P 0x${pattern.toString(16)} ${offset} ${length}`);
  return !/Pattern verification failed/.test(out);
}

/**
 * Writes a pattern through the running QEMU itself (HMP qemu-io on the guest device), the only
 * safe way to change a disk a VM holds open. Its output goes to the VM log, so callers verify the
 * content later with the VM stopped.
 */
export function writeLive(uuid: string, alias: string, pattern: number, offset = 0, length = "64k"): void {
  const hmp = `qemu-io -d /machine/peripheral/${alias}/virtio-backend "write -P 0x${pattern.toString(16)} ${offset} ${length}"`;
  execFileSync("virsh", ["-q", "-c", URI, "qemu-monitor-command", "--hmp", uuid, hmp], { encoding: "utf8" });
}

export function virshOut(...args: string[]): string {
  return execFileSync("virsh", ["-q", "-c", URI, ...args], { encoding: "utf8" });
}

import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";

const MiB = 1024 * 1024;

/** libguestfs' appliance in tests: software emulation (a Linux kernel under KVM hangs on these machines). */
export const APPLIANCE_ENV = { LIBGUESTFS_BACKEND: "direct", LIBGUESTFS_BACKEND_SETTINGS: "force_tcg" };

/** A raw disk made without any mount: GPT, one partition from 1 MiB, an ext4 file system of `tree`. */
export function partitionedDisk(path: string, tree: string, sizeMiB: number): void {
  rmSync(path, { force: true });
  execFileSync("truncate", ["-s", `${sizeMiB}M`, path]);
  execFileSync("sfdisk", ["--quiet", path], { input: "label: gpt\nstart=2048, type=L\n" });
  execFileSync("mkfs.ext4", ["-q", "-F", "-E", `offset=${MiB}`, "-d", tree, path, `${sizeMiB - 4}M`]);
}

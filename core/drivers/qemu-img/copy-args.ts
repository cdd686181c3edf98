/**
 * Pure argv builders for qemu-img commands that write a new image: a snapshot copied out of its
 * disk, and a VM's disk made from a template (an overlay on it, or a full copy).
 */
import { convertSnapshotArgs, type ConvertSnapshotOptions } from "./args.js";

/**
 * A snapshot copied out into a standalone image, written owner-only: the image is a whole VM disk,
 * and whoever makes it readable to others does so on purpose once it is complete.
 */
export function copyOutArgs(options: ConvertSnapshotOptions): string[] {
  return ["sh", "-c", 'umask 077 && exec "$@"', "snapkeep-convert", ...convertSnapshotArgs(options)];
}

/** A linked clone: a new qcow2 whose unchanged clusters are read from the template. */
export function overlayArgs(backing: string, path: string): string[] {
  return ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", backing, path];
}

/** A full copy of a qcow2 image, independent of it from then on. */
export function fullCopyArgs(from: string, to: string): string[] {
  return ["qemu-img", "convert", "-q", "-O", "qcow2", from, to];
}

/**
 * Pure argv builders for qemu-img. These commands are only ever run on images no QEMU process holds
 * open (the VM is shut off): the man page warns that modifying an image in use may destroy it.
 */

/**
 * `--image-opts` pins the format to qcow2 instead of letting qemu-img probe it (a guest can write a
 * qcow2 header into a raw disk), and a filename is one option value, so commas are doubled.
 */
export function qcow2ImageOpts(path: string): string {
  return `driver=qcow2,file.driver=file,file.filename=${path.replaceAll(",", ",,")}`;
}

export function snapshotCreateArgs(path: string, tag: string): string[] {
  return ["qemu-img", "snapshot", "-q", "--image-opts", "-c", tag, qcow2ImageOpts(path)];
}

/** By id, not tag: qcow2 ids are unique per image while tags need not be. */
export function snapshotApplyArgs(path: string, imageSnapshotId: string): string[] {
  return ["qemu-img", "snapshot", "-q", "--image-opts", "-a", imageSnapshotId, qcow2ImageOpts(path)];
}

/** By tag: unlike -a, qemu-img's -d looks snapshots up by name only (checked on QEMU 7.2). */
export function snapshotDeleteArgs(path: string, tag: string): string[] {
  return ["qemu-img", "snapshot", "-q", "--image-opts", "-d", tag, qcow2ImageOpts(path)];
}

export function createImageArgs(path: string, format: "qcow2" | "raw", sizeBytes: number): string[] {
  return ["qemu-img", "create", "-q", "-f", format, path, String(sizeBytes)];
}

export const INFO_BATCH_MARKER = "@@snapkeep-info";

/**
 * `qemu-img info` for many images in one process start (and one SSH session). The script is a
 * constant: formats and paths reach it only as positional arguments ("$1" "$2"), which the runner
 * passes as argv locally and quotes one by one over SSH. Each image's JSON (or its error text) is
 * followed by a marker line carrying qemu-img's exit status.
 */
const INFO_BATCH_SCRIPT = [
  'while [ "$#" -ge 2 ]; do',
  '  qemu-img info -f "$1" --output=json "$2" 2>&1',
  `  printf '\\n${INFO_BATCH_MARKER} %s@@\\n' "$?"`,
  "  shift 2",
  "done",
].join("\n");

export function imageInfoBatchArgs(
  images: readonly { readonly path: string; readonly format: string }[],
): string[] {
  return ["sh", "-c", INFO_BATCH_SCRIPT, "snapkeep-info", ...images.flatMap((i) => [i.format, i.path])];
}

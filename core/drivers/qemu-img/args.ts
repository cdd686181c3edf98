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

/**
 * What is copied: an internal snapshot of a qcow2 image, or a device that is the snapshot (an LVM
 * snapshot LV, read as raw).
 */
export type ConvertSnapshotOptions = ConvertOutput &
  (
    | {
        readonly source: string;
        /** qcow2's id of the snapshot in this image and its tag: both must match, so a snapshot deleted
         * and re-made under the same name in the meantime is not exported by mistake. */
        readonly snapshotId: string;
        readonly snapshotTag: string;
      }
    | { readonly device: string }
  );

interface ConvertOutput {
  readonly output: string;
  /** The VM runs: QEMU holds the image, so open it shared (read-only, never written). */
  readonly shared: boolean;
  /** zstd needs QEMU 5.1 or newer on the writer and on every later reader; else zlib. "none" for
   * images that are used in place (templates, volumes), where compressed clusters would slow reads. */
  readonly compression: "zstd" | "zlib" | "none";
}

/**
 * A standalone, compressed qcow2 holding exactly one internal snapshot's content. `-p` prints
 * `(NN.NN/100%)` progress even without a terminal.
 */
export function convertSnapshotArgs(o: ConvertSnapshotOptions): string[] {
  const compression = [
    ...(o.compression === "none" ? [] : ["-c"]),
    ...(o.compression === "zstd" ? ["-o", "compression_type=zstd"] : []),
  ];
  if ("device" in o) {
    return ["qemu-img", "convert", "-p", "-f", "raw", "-O", "qcow2", ...compression, o.device, o.output];
  }
  const snapshot = `snapshot.id=${o.snapshotId.replaceAll(",", ",,")},snapshot.name=${o.snapshotTag.replaceAll(",", ",,")}`;
  return [
    "qemu-img",
    "convert",
    "-p",
    ...(o.shared ? ["-U"] : []),
    "--image-opts",
    "-l",
    snapshot,
    "-O",
    "qcow2",
    ...compression,
    qcow2ImageOpts(o.source),
    o.output,
  ];
}

/** The last `(NN.NN/100%)` in qemu-img's -p output, as a fraction. */
export function parseConvertProgress(text: string): number | undefined {
  const all = [...text.matchAll(/\((\d{1,3}\.\d{2})\/100%\)/g)];
  const last = all.at(-1)?.[1];
  return last === undefined ? undefined : Number(last) / 100;
}

/** "qemu-img version 7.2.19 (Debian ...)" → [7, 2]; undefined when unrecognised. */
export function parseQemuImgVersion(text: string): [number, number] | undefined {
  const m = /qemu-img version (\d+)\.(\d+)/.exec(text);
  return m === null ? undefined : [Number(m[1]), Number(m[2])];
}

/**
 * Is an image that came from an export target a standalone qcow2, as Snapkeep writes them? A
 * hostile bundle can carry a qcow2 whose header names a backing file or an external data file —
 * a path on the host (`/etc/shadow`, `/dev/sda`) that QEMU would open for the restored guest to
 * read or write. So before qemu-img (or libvirt) opens an imported image at all, its header is read
 * as bytes and judged here; only then does `qemu-img info` with the format pinned confirm it.
 *
 * The header layout is QEMU's docs/interop/qcow2.txt: big-endian fields, header extensions after
 * the header (v3: `header_length` bytes; v2: 72), each a 4-byte type, 4-byte length and padded data.
 */
import { z } from "zod";

import { SnapkeepError } from "../../errors.js";
import { parseJson } from "./parse.js";

/** Enough of the file for the header and its extensions in any image Snapkeep writes. */
export const HEADER_BYTES = 4096;

/** `od` prints the first HEADER_BYTES as hex, with no line a file's bytes could shape. */
export function headerArgs(path: string): string[] {
  return ["od", "-An", "-v", "-tx1", "-N", String(HEADER_BYTES), "--", path];
}

/** The bytes `od -An -tx1` printed. */
export function parseOdHex(output: string): Buffer {
  if (!/^[0-9a-f\s]*$/.test(output)) {
    throw new SnapkeepError(
      "UNEXPECTED_OUTPUT",
      "Reading an image header printed something that is not od's hex.",
    );
  }
  return Buffer.from(output.replace(/\s+/g, ""), "hex");
}

const QCOW2_MAGIC = 0x514649fb;
const INCOMPATIBLE_EXTERNAL_DATA_FILE = 1n << 2n;
/** Dirty, corrupt, external data, compression type, extended L2: the bits QEMU 8 knows. */
const KNOWN_INCOMPATIBLE = 0b11111n;
const EXTENSION_END = 0x00000000;
const EXTENSION_DATA_FILE = 0x44415441;
const EXTENSION_BACKING_FORMAT = 0xe2792aca;
const EXTENSION_ENCRYPTION = 0x0537be77;

export interface Qcow2Header {
  readonly version: number;
  readonly virtualSize: number;
}

/**
 * Refuses anything but a plain, unencrypted qcow2 with no backing file and no external data file.
 * `what` names the image in the error ("vda.qcow2 of export X"). A link of an incremental chain
 * may name one backing file, `link.backing` exactly (`../<id>/<disk>.qcow2`, which the caller
 * has checked), in qcow2 format and nothing else.
 */
export function checkStandaloneHeader(
  bytes: Buffer,
  what: string,
  link?: { readonly backing: string },
  outcome = "nothing was restored",
): Qcow2Header {
  const refuse = (why: string): SnapkeepError =>
    new SnapkeepError("VERIFY_FAILED", `${what} is not a standalone qcow2 image: ${why}; ${outcome}.`, {
      details: { reason: why },
    });
  if (bytes.length < 72 || bytes.readUInt32BE(0) !== QCOW2_MAGIC) {
    throw refuse("it does not start with the qcow2 magic");
  }
  const version = bytes.readUInt32BE(4);
  if (version !== 2 && version !== 3) {
    throw refuse(`its qcow2 version is ${version}`);
  }
  checkBacking(bytes, link, refuse);
  if (bytes.readUInt32BE(32) !== 0) {
    throw refuse("it is encrypted");
  }
  const virtualSize = bytes.readBigUInt64BE(24);
  let extensionsAt = 72;
  if (version === 3) {
    if (bytes.length < 104) {
      throw refuse("its header is cut short");
    }
    const incompatible = bytes.readBigUInt64BE(72);
    if ((incompatible & INCOMPATIBLE_EXTERNAL_DATA_FILE) !== 0n) {
      throw refuse("it keeps its data in an external file");
    }
    if ((incompatible & ~KNOWN_INCOMPATIBLE) !== 0n) {
      throw refuse("it uses qcow2 features this check does not know");
    }
    extensionsAt = bytes.readUInt32BE(100);
    if (extensionsAt < 104 || extensionsAt > bytes.length) {
      throw refuse("its header length is out of range");
    }
  }
  // Header extensions: none may name a file. Walked to their end marker, inside what was read.
  let namedFormat = false;
  for (let at = extensionsAt; ;) {
    if (at + 8 > bytes.length) {
      throw refuse("its header extensions do not end where Snapkeep can read them");
    }
    const type = bytes.readUInt32BE(at);
    const length = bytes.readUInt32BE(at + 4);
    if (type === EXTENSION_END) {
      break;
    }
    const linkFormat =
      link !== undefined &&
      type === EXTENSION_BACKING_FORMAT &&
      bytes.subarray(at + 8, at + 8 + length).toString("latin1") === "qcow2";
    if (type === EXTENSION_DATA_FILE || (type === EXTENSION_BACKING_FORMAT && !linkFormat)) {
      throw refuse(
        type === EXTENSION_DATA_FILE ? "it names an external data file" : "it names a backing file format",
      );
    }
    namedFormat ||= linkFormat;
    if (type === EXTENSION_ENCRYPTION) {
      throw refuse("it is encrypted");
    }
    at += 8 + Math.ceil(length / 8) * 8;
  }
  if (link !== undefined && !namedFormat) {
    // Without it QEMU would probe what the backing file is; a link always says qcow2.
    throw refuse("it does not name its backing file's format");
  }
  if (virtualSize > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw refuse("its virtual size is out of range");
  }
  return { version, virtualSize: Number(virtualSize) };
}

/** No backing file, or (a chain's link) exactly the one expected. */
function checkBacking(
  bytes: Buffer,
  link: { readonly backing: string } | undefined,
  refuse: (why: string) => SnapkeepError,
): void {
  const backingAt = bytes.readBigUInt64BE(8);
  const backingLength = bytes.readUInt32BE(16);
  if (link === undefined && (backingAt !== 0n || backingLength !== 0)) {
    throw refuse("it names a backing file");
  }
  if (link !== undefined) {
    const at = Number(backingAt);
    const name =
      at + backingLength <= bytes.length ? bytes.subarray(at, at + backingLength).toString("latin1") : "";
    if (backingAt === 0n || name !== link.backing) {
      throw refuse(`its backing file is not ${link.backing}`);
    }
  }
}

/** `qemu-img info -f qcow2 --output=json FILE`: the format pinned, so a raw file is never probed. */
export function pinnedInfoArgs(path: string): string[] {
  return ["qemu-img", "info", "-f", "qcow2", "--output=json", "--", path];
}

const pinnedInfoSchema = z.object({
  format: z.string(),
  "virtual-size": z.number(),
  "backing-filename": z.string().optional(),
  "full-backing-filename": z.string().optional(),
  "format-specific": z
    .object({ data: z.object({ "data-file": z.string().optional() }).passthrough().optional() })
    .passthrough()
    .optional(),
});

/** What qemu-img says, held against the manifest: the second look, after the header's. */
export function checkPinnedInfo(json: string, expected: { virtualSize: number | null }, what: string): void {
  const info = parseJson(json, pinnedInfoSchema, "qemu-img info");
  const refuse = (why: string): SnapkeepError =>
    new SnapkeepError(
      "VERIFY_FAILED",
      `${what} is not the image its manifest describes: ${why}; nothing was restored.`,
      {
        details: { reason: why },
      },
    );
  if (info.format !== "qcow2") {
    throw refuse(`qemu-img reads it as ${info.format}`);
  }
  if (info["backing-filename"] !== undefined || info["full-backing-filename"] !== undefined) {
    throw refuse("it has a backing file");
  }
  if (info["format-specific"]?.data?.["data-file"] !== undefined) {
    throw refuse("it has an external data file");
  }
  if (expected.virtualSize !== null && info["virtual-size"] !== expected.virtualSize) {
    throw refuse(
      `its virtual size is ${info["virtual-size"]} bytes, the manifest says ${expected.virtualSize}`,
    );
  }
}

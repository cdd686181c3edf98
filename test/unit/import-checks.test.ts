/**
 * The pure checks an import makes on what comes from a target: the qcow2 header of each image
 * (no backing file, no external data file, not encrypted), what qemu-img says with the format
 * pinned, the rsync server options a sender may ask for, and the host's networks.
 */
import { describe, expect, it } from "vitest";

import {
  checkPinnedInfo,
  checkStandaloneHeader,
  parseOdHex,
} from "../../core/drivers/qemu-img/standalone.js";
import { validateServerArgv } from "../../core/drivers/rsync/parse.js";
import { parseHostNetworks } from "../../core/app/exports/restore.js";

const MiB = 1024 * 1024;

/** A qcow2 v3 header as qemu-img 7 writes it (112 bytes), then the given extensions and an end. */
function header(
  options: {
    version?: number;
    backingOffset?: bigint;
    cryptMethod?: number;
    incompatible?: bigint;
    size?: bigint;
    extensions?: { type: number; data: Buffer }[];
  } = {},
): Buffer {
  const fixed = Buffer.alloc(112);
  fixed.writeUInt32BE(0x514649fb, 0);
  fixed.writeUInt32BE(options.version ?? 3, 4);
  fixed.writeBigUInt64BE(options.backingOffset ?? 0n, 8);
  fixed.writeUInt32BE(options.backingOffset === undefined ? 0 : 11, 16);
  fixed.writeUInt32BE(16, 20);
  fixed.writeBigUInt64BE(options.size ?? BigInt(16 * MiB), 24);
  fixed.writeUInt32BE(options.cryptMethod ?? 0, 32);
  fixed.writeBigUInt64BE(options.incompatible ?? 0n, 72);
  fixed.writeUInt32BE(4, 96);
  fixed.writeUInt32BE(112, 100);
  const extensions = (options.extensions ?? []).map(({ type, data }) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(type, 0);
    head.writeUInt32BE(data.length, 4);
    return Buffer.concat([head, data, Buffer.alloc((8 - (data.length % 8)) % 8)]);
  });
  return Buffer.concat([fixed, ...extensions, Buffer.alloc(8), Buffer.alloc(512)]);
}

const refusal = (bytes: Buffer): string => {
  try {
    checkStandaloneHeader(bytes, "vda.qcow2 of export X");
    return "accepted";
  } catch (error) {
    return (error as Error).message;
  }
};

describe("an imported image's header", () => {
  it("accepts a standalone qcow2 and reads its virtual size", () => {
    expect(checkStandaloneHeader(header(), "x")).toEqual({ version: 3, virtualSize: 16 * MiB });
    // Extensions that name no file are fine: feature names, the bitmaps extension.
    const features = { type: 0x6803f857, data: Buffer.alloc(48) };
    expect(checkStandaloneHeader(header({ extensions: [features] }), "x").virtualSize).toBe(16 * MiB);
  });

  it("refuses whatever would make QEMU open another file, or what it cannot judge", () => {
    expect(refusal(header({ backingOffset: 0x200n }))).toMatch(/names a backing file/);
    expect(refusal(header({ incompatible: 1n << 2n }))).toMatch(/external file/);
    const dataFile = { type: 0x44415441, data: Buffer.from("/dev/sda") };
    expect(refusal(header({ extensions: [dataFile] }))).toMatch(/external data file/);
    expect(refusal(header({ extensions: [{ type: 0xe2792aca, data: Buffer.from("raw") }] }))).toMatch(
      /backing file format/,
    );
    expect(refusal(header({ cryptMethod: 2 }))).toMatch(/encrypted/);
    expect(refusal(header({ incompatible: 1n << 40n }))).toMatch(/does not know/);
    expect(refusal(header({ version: 4 }))).toMatch(/version is 4/);
    expect(refusal(Buffer.alloc(4096))).toMatch(/magic/);
    expect(refusal(Buffer.from("QFI"))).toMatch(/magic/);
    // Extensions that run past what was read are not trusted to end well.
    expect(
      refusal(header({ extensions: [{ type: 0x6803f857, data: Buffer.alloc(3000) }] }).subarray(0, 1024)),
    ).toMatch(/do not end/);
    expect(refusal(header())).toBe("accepted");
  });

  it("reads od's hex and nothing else", () => {
    expect(parseOdHex(" 51 46 49 fb\n 00 00\n")).toEqual(Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0]));
    expect(() => parseOdHex("51 46\nBackingFile=/etc\n")).toThrow(/not od's hex/);
  });

  it("holds qemu-img's pinned view against the manifest", () => {
    const info = (extra: Record<string, unknown>): string =>
      JSON.stringify({ format: "qcow2", "virtual-size": 16 * MiB, ...extra });
    expect(() => checkPinnedInfo(info({}), { virtualSize: 16 * MiB }, "x")).not.toThrow();
    expect(() => checkPinnedInfo(info({}), { virtualSize: 8 * MiB }, "x")).toThrow(/manifest says 8388608/);
    expect(() =>
      checkPinnedInfo(info({ "backing-filename": "/etc/shadow" }), { virtualSize: null }, "x"),
    ).toThrow(/backing file/);
    expect(() =>
      checkPinnedInfo(
        info({ "format-specific": { type: "qcow2", data: { "data-file": "/dev/sda" } } }),
        { virtualSize: null },
        "x",
      ),
    ).toThrow(/external data file/);
    expect(() => checkPinnedInfo(info({ format: "raw" }), { virtualSize: null }, "x")).toThrow(
      /reads it as raw/,
    );
  });
});

describe("an untrusted sender's rsync server command", () => {
  const dest = "/var/lib/libvirt/images/.snapkeep-import-x/vda.qcow2";
  const ours = [
    "snapkeep-target",
    "rsync",
    "--server",
    "-Ie.LsfxCIvu",
    "--timeout=120",
    "--stats",
    "--inplace",
    ".",
    dest,
  ];

  it("passes exactly what Snapkeep's own client asks for", () => {
    expect(validateServerArgv(ours, dest)).toEqual(ours.slice(1));
  });

  it("refuses every option a hostile sender could want", () => {
    for (const options of [
      ["-lIe.LsfxCIvu"], // links
      ["-DIe.LsfxCIvu"], // devices
      ["-oge.LsfxCIvu"], // owner and group
      ["-Ie.LsfxCIvu", "--delete"],
      ["-Ie.LsfxCIvu", "--backup-dir=/etc"],
      ["-Ie.LsfxCIvu", "--log-file=/etc/passwd"],
      ["-Ie.LsfxCIvu", "--chmod=u+s"],
      ["-Ie.LsfxCIvu", "--remove-source-files"],
      ["-Ie.LsfxCIvu", "--temp-dir=/etc"],
    ]) {
      expect(() => validateServerArgv(["h", "rsync", "--server", ...options, ".", dest], dest)).toThrow(
        /options Snapkeep does not use/,
      );
    }
    expect(() =>
      validateServerArgv(["h", "rsync", "--server", "-Ie.LsfxCIvu", ".", "/etc/passwd"], dest),
    ).toThrow(/not \/var\/lib/);
  });
});

describe("the host's networks", () => {
  it("reads libvirt networks and bridges, and nothing that is not a plain name", () => {
    expect(parseHostNetworks("default\nlan2\n\n@@snapkeep-bridges\nbr0\nvirbr0\n$(x)\n")).toEqual({
      networks: ["default", "lan2"],
      bridges: ["br0", "virbr0"],
    });
  });
});

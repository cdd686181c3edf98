import { crc32, deflateSync, inflateSync } from "node:zlib";

import { SnapkeepError } from "../../errors.js";

/**
 * A VM's screen as libvirt hands it over (`virsh screenshot`: QEMU's screendump, a PNG where QEMU
 * was built with libpng, else a binary PPM), turned into a PNG a browser shows. The bytes come from a host, so they are parsed
 * strictly and bounded, and the PNG is written anew from the pixels: nothing of the input but its
 * pixel values reaches the file the UI serves.
 */

/** Larger than any console QEMU draws (its VGA tops out at 2560×1600; virtio-gpu at 16384 is not a console). */
export const MAX_SCREEN_SIDE = 8192;

export interface Pixels {
  readonly width: number;
  readonly height: number;
  /** width × height RGB triples, row by row. */
  readonly rgb: Uint8Array;
}

function badScreenshot(why: string): SnapkeepError {
  return new SnapkeepError("INVALID_INPUT", `The screenshot is not a picture Snapkeep reads: ${why}.`);
}

/** Parses a binary PPM (P6) with 8-bit samples; comments in the header are allowed, as the format says. */
export function parsePpm(bytes: Uint8Array): Pixels {
  let at = 0;
  const token = (): string => {
    for (;;) {
      while (at < bytes.length && isSpace(bytes[at] ?? 0)) {
        at += 1;
      }
      if (bytes[at] !== 0x23) {
        break;
      } // '#' comment to the end of the line
      while (at < bytes.length && bytes[at] !== 0x0a) {
        at += 1;
      }
    }
    const start = at;
    while (at < bytes.length && !isSpace(bytes[at] ?? 0) && at - start < 16) {
      at += 1;
    }
    return Buffer.from(bytes.subarray(start, at)).toString("latin1");
  };
  if (token() !== "P6") {
    throw badScreenshot("it is not a binary PPM (P6)");
  }
  const [width, height, maxval] = [token(), token(), token()].map((t) =>
    /^[0-9]{1,6}$/.test(t) ? Number(t) : NaN,
  );
  if (width === undefined || height === undefined || maxval === undefined) {
    throw badScreenshot("its header is cut short");
  }
  if (!(width >= 1 && width <= MAX_SCREEN_SIDE && height >= 1 && height <= MAX_SCREEN_SIDE)) {
    throw badScreenshot(`its size ${String(width)}×${String(height)} is not a screen's`);
  }
  if (maxval !== 255) {
    throw badScreenshot("it does not have 8-bit samples");
  }
  // Exactly one whitespace byte ends the header.
  at += 1;
  const size = width * height * 3;
  if (bytes.length - at !== size) {
    throw badScreenshot(`it holds ${String(bytes.length - at)} bytes of pixels, not ${String(size)}`);
  }
  return { width, height, rgb: bytes.subarray(at, at + size) };
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Reads a screenshot in either format libvirt hands over. */
export function parseScreenshot(bytes: Uint8Array): Pixels {
  return Buffer.from(bytes.subarray(0, 8)).equals(PNG_SIGNATURE) ? parsePng(bytes) : parsePpm(bytes);
}

/**
 * Decodes the PNGs QEMU writes: 8-bit RGB or RGBA, not interlaced. Every chunk's CRC is checked,
 * and the inflated data must be exactly as long as the header says (inflate stops there, so a
 * "zip bomb" costs no more memory than the picture).
 */
export function parsePng(bytes: Uint8Array): Pixels {
  const data = Buffer.from(bytes);
  let at = 8;
  let header: { width: number; height: number; channels: number } | null = null;
  const idat: Buffer[] = [];
  for (;;) {
    if (at + 12 > data.length) {
      throw badScreenshot("its PNG data ends before its last chunk");
    }
    const length = data.readUInt32BE(at);
    const type = data.toString("latin1", at + 4, at + 8);
    if (length > data.length - at - 12) {
      throw badScreenshot(`its PNG chunk ${JSON.stringify(type)} runs past the end`);
    }
    const body = data.subarray(at + 8, at + 8 + length);
    if (crc32(data.subarray(at + 4, at + 8 + length)) !== data.readUInt32BE(at + 8 + length)) {
      throw badScreenshot(`its PNG chunk ${JSON.stringify(type)} is damaged`);
    }
    at += 12 + length;
    if (type === "IHDR") {
      header = pngHeader(body);
    } else if (type === "IDAT") {
      idat.push(body);
    } else if (type === "IEND") {
      break;
    } else if ((type.charCodeAt(0) & 0x20) === 0) {
      throw badScreenshot(`it has a PNG chunk ${JSON.stringify(type)} that must be understood`);
    }
  }
  if (header === null) {
    throw badScreenshot("its PNG has no header");
  }
  const { width, height, channels } = header;
  const stride = width * channels;
  let raw: Buffer;
  try {
    raw = inflateSync(Buffer.concat(idat), { maxOutputLength: (stride + 1) * height });
  } catch {
    throw badScreenshot("its PNG pixels do not inflate to the size its header says");
  }
  if (raw.length !== (stride + 1) * height) {
    throw badScreenshot("its PNG pixels do not inflate to the size its header says");
  }
  return { width, height, rgb: toRgb(unfilter(raw, stride, height, channels), width * height, channels) };
}

function pngHeader(body: Buffer): { width: number; height: number; channels: number } {
  if (body.length !== 13) {
    throw badScreenshot("its PNG header is not 13 bytes");
  }
  const width = body.readUInt32BE(0);
  const height = body.readUInt32BE(4);
  const [depth, colour, compression, filter, interlace] = [...body.subarray(8, 13)];
  if (!(width >= 1 && width <= MAX_SCREEN_SIDE && height >= 1 && height <= MAX_SCREEN_SIDE)) {
    throw badScreenshot(`its size ${String(width)}×${String(height)} is not a screen's`);
  }
  if (depth !== 8 || (colour !== 2 && colour !== 6) || compression !== 0 || filter !== 0 || interlace !== 0) {
    throw badScreenshot("its PNG is not 8-bit RGB or RGBA without interlacing");
  }
  return { width, height, channels: colour === 2 ? 3 : 4 };
}

/** Undoes PNG's per-row filters (None, Sub, Up, Average, Paeth). */
function unfilter(raw: Buffer, stride: number, height: number, bpp: number): Buffer {
  const out = Buffer.alloc(stride * height);
  for (let row = 0; row < height; row += 1) {
    const filter = raw[row * (stride + 1)];
    const line = raw.subarray(row * (stride + 1) + 1, (row + 1) * (stride + 1));
    const base = row * stride;
    for (let i = 0; i < stride; i += 1) {
      const left = i >= bpp ? (out[base + i - bpp] ?? 0) : 0;
      const up = row > 0 ? (out[base - stride + i] ?? 0) : 0;
      const upLeft = row > 0 && i >= bpp ? (out[base - stride + i - bpp] ?? 0) : 0;
      const x = line[i] ?? 0;
      let value: number;
      switch (filter) {
        case 0:
          value = x;
          break;
        case 1:
          value = x + left;
          break;
        case 2:
          value = x + up;
          break;
        case 3:
          value = x + ((left + up) >> 1);
          break;
        case 4:
          value = x + paeth(left, up, upLeft);
          break;
        default:
          throw badScreenshot(`its PNG row ${String(row)} has an unknown filter`);
      }
      out[base + i] = value & 0xff;
    }
  }
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

function toRgb(pixels: Buffer, count: number, channels: number): Uint8Array {
  if (channels === 3) {
    return pixels;
  }
  const rgb = new Uint8Array(count * 3);
  for (let i = 0; i < count; i += 1) {
    rgb[i * 3] = pixels[i * 4] ?? 0;
    rgb[i * 3 + 1] = pixels[i * 4 + 1] ?? 0;
    rgb[i * 3 + 2] = pixels[i * 4 + 2] ?? 0;
  }
  return rgb;
}

function isSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09 || byte === 0x0b || byte === 0x0c;
}

/** An 8-bit RGB PNG of the pixels (no filter: consoles are mostly flat colour and deflate well). */
export function encodePng(pixels: Pixels): Buffer {
  const { width, height, rgb } = pixels;
  const stride = width * 3;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let row = 0; row < height; row += 1) {
    raw[row * (stride + 1)] = 0; // filter type None
    raw.set(rgb.subarray(row * stride, (row + 1) * stride), row * (stride + 1) + 1);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8 bits, truecolour, deflate, adaptive filtering, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const tail = Buffer.alloc(4);
  tail.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, tail]);
}

/** The share of pixels that differ from the most common colour: a blank screen is close to 0. */
export function inkShare(pixels: Pixels): number {
  const counts = new Map<number, number>();
  const total = pixels.width * pixels.height;
  for (let i = 0; i < total; i += 1) {
    const key =
      ((pixels.rgb[i * 3] ?? 0) << 16) | ((pixels.rgb[i * 3 + 1] ?? 0) << 8) | (pixels.rgb[i * 3 + 2] ?? 0);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  // A loop, not Math.max(...): a desktop has more colours than a call takes arguments.
  let most = 0;
  for (const count of counts.values()) {
    most = Math.max(most, count);
  }
  return total === 0 ? 0 : (total - most) / total;
}

/**
 * guestfish, driven line by line: the commands Snapkeep writes to its stdin and the parsers of
 * what it prints (file restore, issue 19).
 *
 * Why libguestfs: a guest's file systems are read by a kernel inside libguestfs' own small VM
 * (the appliance), never by the hypervisor's kernel. A disk image is input from the guest or from
 * a target, and a crafted file system mounted on the host is an attack on the host's kernel; a
 * guest's LVM volume group with the host's VG name would collide with the host's. Neither can
 * happen in the appliance. Nothing is mounted on the host at all.
 *
 * Names in a guest's file system are data: every path goes to guestfish inside double quotes with
 * every byte but a few plain ones written as `\xHH`, so no name can end the string, start a new
 * command or reach a shell (guestfish runs none: the commands below are its own).
 */
import type { GuestFileType } from "../../domain/files.js";

/** Bytes guestfish may see as themselves inside a quoted string; all else is `\xHH`. */
const PLAIN = /^[A-Za-z0-9/._+,:@=-]$/;

/** One argument for a guestfish command: quoted, every byte of `value`'s UTF-8 escaped but plain ones. */
export function gfString(value: string): string {
  if (value.includes("\0")) {
    throw new Error("A guest path cannot contain a NUL byte.");
  }
  let out = '"';
  for (const byte of Buffer.from(value, "utf8")) {
    const char = String.fromCharCode(byte);
    out += byte < 0x80 && PLAIN.test(char) ? char : `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return `${out}"`;
}

/** The end-of-output line Snapkeep asks guestfish to print after each command: random per session. */
export function gfMarkerCommand(marker: string): string {
  if (!/^[A-Za-z0-9_]{16,}$/.test(marker)) {
    throw new Error("A guestfish marker is a long random word.");
  }
  return `echo ${marker}`;
}

/** What `lstatns` says of one file, the fields Snapkeep keeps (others are ignored). */
export interface GuestStat {
  readonly mode: number;
  readonly size: number;
  readonly uid: number;
  readonly gid: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
}

const STAT_FIELDS = {
  st_mode: "mode",
  st_size: "size",
  st_uid: "uid",
  st_gid: "gid",
  st_mtime_sec: "mtime",
} as const;

/**
 * `lstatns PATH` output: "st_dev: 2048" lines. Every kept field must be there and be a whole
 * number; anything else is refused (a guestfish that prints something else is not one this
 * parser understands).
 */
export function parseLstatns(text: string): GuestStat {
  const found: Partial<Record<(typeof STAT_FIELDS)[keyof typeof STAT_FIELDS], number>> = {};
  for (const line of text.split("\n")) {
    const match = /^(st_\w+): (-?\d+)$/.exec(line.trim());
    if (match === null) {
      if (line.trim() !== "") {
        throw new Error(`guestfish printed an unexpected stat line: ${JSON.stringify(line.slice(0, 80))}`);
      }
      continue;
    }
    const key = STAT_FIELDS[match[1] as keyof typeof STAT_FIELDS] as keyof typeof found | undefined;
    if (key !== undefined) {
      const value = Number(match[2]);
      if (!Number.isSafeInteger(value)) {
        throw new Error(`guestfish printed ${match[1]} out of range`);
      }
      found[key] = value;
    }
  }
  const { mode, size, uid, gid, mtime } = found;
  if (
    mode === undefined ||
    size === undefined ||
    uid === undefined ||
    gid === undefined ||
    mtime === undefined
  ) {
    throw new Error("guestfish's stat output lacks a field Snapkeep needs");
  }
  return { mode, size, uid, gid, mtime };
}

/** The kind of file a stat's mode says (S_IFMT). */
export function fileTypeOf(mode: number): GuestFileType {
  switch (mode & 0o170000) {
    case 0o100000:
      return "file";
    case 0o040000:
      return "dir";
    case 0o120000:
      return "symlink";
    default:
      return "other";
  }
}

/**
 * `ls0 DIR /dev/stdout`: each name ends with a NUL. Names are bytes in the guest; they are read as
 * UTF-8 (one that is not shows U+FFFD and cannot be fetched by its name, only within its folder).
 * "." and ".." and names with a slash are not names in a folder and are refused.
 */
export function parseLs0(output: Buffer): string[] {
  if (output.length === 0) {
    return [];
  }
  if (output[output.length - 1] !== 0) {
    throw new Error("guestfish's listing does not end with a NUL");
  }
  const names = output.subarray(0, -1).toString("utf8").split("\0");
  for (const name of names) {
    if (name === "" || name === "." || name === ".." || name.includes("/")) {
      throw new Error(`guestfish listed a name no folder can hold: ${JSON.stringify(name)}`);
    }
  }
  return names;
}

/** `list-filesystems`: "DEVICE: TYPE" lines, e.g. "/dev/sda1: ext4", "/dev/vg0/root: xfs". */
export function parseFilesystems(text: string): { device: string; type: string }[] {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const match = /^(\/dev\/[^\s:]+): (\S+)$/.exec(line.trim());
      if (match?.[1] === undefined || match[2] === undefined) {
        throw new Error(
          `guestfish printed an unexpected file system line: ${JSON.stringify(line.slice(0, 80))}`,
        );
      }
      return { device: match[1], type: match[2] };
    });
}

/**
 * `inspect-get-mountpoints ROOT`: "MOUNTPOINT: DEVICE" lines from the guest's fstab (guest data,
 * only ever given back to guestfish quoted), shortest mount point first so "/" mounts before
 * "/boot".
 */
export function parseMountpoints(text: string): { mountpoint: string; device: string }[] {
  const rows = text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const match = /^(\/\S*): (\/dev\/\S+)$/.exec(line.trim());
      if (match?.[1] === undefined || match[2] === undefined) {
        throw new Error(
          `guestfish printed an unexpected mount point line: ${JSON.stringify(line.slice(0, 80))}`,
        );
      }
      return { mountpoint: match[1], device: match[2] };
    });
  return rows.sort((a, b) => a.mountpoint.length - b.mountpoint.length);
}

/** A guest path as Snapkeep accepts it: absolute, no NUL, no "." or ".." parts; normalized. */
export function normalizeGuestPath(path: string): string | null {
  if (!path.startsWith("/") || path.includes("\0")) {
    return null;
  }
  const parts = path.split("/").filter((p) => p !== "");
  if (parts.some((p) => p === "." || p === "..")) {
    return null;
  }
  return `/${parts.join("/")}`;
}

/** What a file browse of a snapshot shows (issue 19): the same for the CLI's --json and the UI. */

export type GuestFileType = "file" | "dir" | "symlink" | "other";

/** One entry of a folder in a snapshot's file system. Names and link targets are guest data. */
export interface GuestEntry {
  readonly name: string;
  readonly path: string;
  readonly type: GuestFileType;
  /** Permission bits and type, as st_mode. */
  readonly mode: number;
  readonly size: number;
  readonly uid: number;
  readonly gid: number;
  /** ISO time of the last change to its content. */
  readonly mtime: string;
  /** Where a symbolic link points (never followed). */
  readonly target?: string;
}

/** A file system mounted (read-only, in libguestfs' appliance) for a browse. */
export interface GuestMount {
  readonly mountpoint: string;
  readonly device: string;
  readonly type: string;
}

/** A browse's disk, as opened: which snapshot and disk, and what is mounted where. */
export interface FilesOpened {
  readonly snapshot: string;
  readonly disk: string;
  readonly mounts: readonly GuestMount[];
  /** Set when the files are an export's on a target (read there): which, and how many images it took. */
  readonly export?: { readonly target: string; readonly id: string; readonly links: number };
}

/** "drwxr-xr-x" from st_mode. */
export function modeString(mode: number): string {
  const kind: Record<number, string> = {
    0o040000: "d",
    0o120000: "l",
    0o100000: "-",
    0o020000: "c",
    0o060000: "b",
    0o010000: "p",
    0o140000: "s",
  };
  let out = kind[mode & 0o170000] ?? "?";
  for (const shift of [6, 3, 0]) {
    const bits = (mode >> shift) & 7;
    out += `${bits & 4 ? "r" : "-"}${bits & 2 ? "w" : "-"}${bits & 1 ? "x" : "-"}`;
  }
  return out;
}

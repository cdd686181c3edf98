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
}

/**
 * Pure argv builders for rsync run "over ssh2".
 *
 * rsync cannot speak ssh2 itself; it only spawns a remote shell and talks its protocol over that
 * process's stdin and stdout. So the rsync client always runs on the side that has the file
 * (the sender), and its remote shell is {@link RELAY_RSH}: a two-`cat` script that hands the
 * protocol stream to Snapkeep through the client's inherited file descriptors 3 and 4, after one
 * header naming the server command rsync wants. Snapkeep then starts that `rsync --server` on the
 * receiving side through its own runner (a local spawn, or an ssh2 exec with the pinned host key)
 * and pipes the two together. The hosts never need keys for each other, nothing listens on a
 * port, and the same code covers push, pull and host-to-host.
 */

/**
 * The remote shell rsync spawns. rsync calls it as `RSH host rsync --server ...`; it writes the
 * argument count and each argument on its own line to fd 4 (the header), then relays fd 3 → rsync
 * and rsync → fd 4. Like ssh, it ends when the other side's output ends (the server is done), not
 * when rsync closes its input: rsync only does that after its remote shell has exited, so waiting
 * for it would deadlock. rsync splits `-e` on spaces and honours quotes but not backslashes, hence
 * the double quotes inside single ones.
 */
export const RELAY_RSH = `sh -c 'printf "%s\\n" "$#" "$@" >&4; exec 5<&0; cat <&5 >&4 & cat <&3; kill $! 2>/dev/null; exit 0' snapkeep-rsh`;

/**
 * Wraps the rsync client: the relay's stdin and stdout become fds 3 and 4 (inherited by the remote
 * shell), rsync's own stdout goes to stderr (progress and statistics, parsed there), and rsync's
 * stdin is closed. The script is a constant; rsync's argv follows as "$@".
 */
export const RELAY_WRAPPER = 'exec 3<&0 4>&1 1>&2 0</dev/null; exec "$@"';

/** The host part rsync passes to the remote shell; ignored by the relay, shown in rsync messages. */
export const RELAY_HOST = "snapkeep-target";

/**
 * Runs a checked `rsync --server` argv with the owner-only umask: without --perms rsync gives a
 * new file the sender's mode masked by the receiver's umask, and what arrives is a whole VM disk.
 */
export function rsyncServerArgs(serverArgv: readonly string[]): string[] {
  return ["sh", "-c", 'umask 077 && exec "$@"', "snapkeep-rsync-server", ...serverArgv];
}

export interface RsyncSendOptions {
  /** Absolute path of the file to send, on the side where the client runs. */
  readonly source: string;
  /** Absolute path the file gets on the receiving side. */
  readonly destination: string;
  /**
   * A folder on the receiving side holding an earlier copy under the same name: rsync uses it as
   * the basis for its delta (`--copy-dest`), so only changed blocks travel, and never writes it.
   */
  readonly basisDir?: string | undefined;
  /** KiB per second, rsync's --bwlimit unit. */
  readonly bwlimitKiB?: number | undefined;
  /** Seconds without progress before rsync gives up (exit 30) instead of hanging on a dead link. */
  readonly ioTimeoutSeconds?: number | undefined;
  /**
   * Paths through the protocol (-s, the default) or on the server's command line, where the relay
   * can check the destination; the latter when the sending side is not trusted (an import).
   */
  readonly secluded?: boolean | undefined;
}

/**
 * The relayed rsync client command.
 *
 * - `-s` (--secluded-args) sends paths through the protocol, so the server command line that
 *   passes through the relay holds only options, which {@link validateServerArgv} can check.
 * - `-I --no-whole-file`: a re-export can have the same size and an mtime in the same second as
 *   the basis, and the quick check would then skip it; rsync must always compare blocks.
 * - `--inplace`: the file is written where it ends up, so an interrupted transfer leaves what
 *   arrived in place even when the receiver was killed outright (a host losing power; `--partial`
 *   only saves a transfer the receiver survives), and the next attempt uses it as its basis. The
 *   file lives in the export's .partial folder until it is verified, so nobody sees it half done.
 * - `--info=progress2 --stats`: one progress line per update and the literal-data count at the end.
 */
export function rsyncSendArgs(options: RsyncSendOptions): string[] {
  return [
    "sh",
    "-c",
    RELAY_WRAPPER,
    "snapkeep-relay",
    "rsync",
    ...(options.secluded === false ? [] : ["-s"]),
    "-I",
    "--no-whole-file",
    "--inplace",
    "--info=progress2",
    "--stats",
    `--timeout=${options.ioTimeoutSeconds ?? 120}`,
    ...(options.basisDir === undefined ? [] : [`--copy-dest=${options.basisDir}`]),
    ...(options.bwlimitKiB === undefined ? [] : [`--bwlimit=${options.bwlimitKiB}`]),
    "-e",
    RELAY_RSH,
    "--",
    options.source,
    `${RELAY_HOST}:${options.destination}`,
  ];
}

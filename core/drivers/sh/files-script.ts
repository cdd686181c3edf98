/**
 * The host's half of a file browse (issue 19): a constant script, every name an argument.
 *
 * It gives guestfish one disk, read-only, and passes the rest of its stdin (Snapkeep's guestfish
 * commands, drivers/guestfs/guestfish.ts) on to it:
 * - a qcow2 internal snapshot through `qemu-nbd --read-only --load-snapshot` on a Unix socket in a
 *   private folder: QEMU's own reading of the snapshot's tables, the image never opened for
 *   writing, and no image lock taken (`file.locking=off`), so a running VM keeps running and
 *   keeps its lock. The snapshot's clusters do not change while it exists (copy-on-write);
 * - a block device (an LVM snapshot) added to guestfish directly, read-only.
 * libguestfs puts a throwaway overlay over the read-only disk, so a journal the guest left dirty
 * is replayed there, never on the snapshot.
 *
 * Every browse has a folder under ROOT holding the script's pid and qemu-nbd's. A browse killed
 * outright (SIGKILL, a crash) leaves them; the next browse on the host ends that qemu-nbd (only
 * when its command line names that folder's socket: a reused pid is someone else's) and removes
 * the folder. An ordinary end (the commands end, the SSH channel closes, a signal) cleans up at once.
 *
 * ROOT is per user (`/var/tmp/snapkeep-files-UID`) and must be a real folder that user owns: in
 * /var/tmp anyone may make a name first, and a folder or link planted there must not choose where
 * a browse keeps its socket or what the sweep removes.
 *
 * Exit 20: guestfish is not installed; 21: qemu-nbd is not; 22: qemu-nbd did not start; 23: ROOT
 * is not the user's own folder.
 */
export const FILES_ROOT_PREFIX = "/var/tmp/snapkeep-files-";

/** The browse folder of the user with this uid (the tests look there for leftovers). */
export function filesRoot(uid: number): string {
  return `${FILES_ROOT_PREFIX}${uid}`;
}

export const FILES_SCRIPT = [
  "set -u",
  `root=${FILES_ROOT_PREFIX}$(id -u)`,
  "command -v guestfish >/dev/null 2>&1 || exit 20",
  "umask 077",
  'mkdir -p "$root" 2>/dev/null',
  '[ -d "$root" ] && [ ! -L "$root" ] && [ -O "$root" ] || exit 23',
  'chmod 700 "$root" || exit 23',
  'for d in "$root"/b.*; do',
  '  [ -d "$d" ] || continue',
  '  owner=$(cat "$d/owner" 2>/dev/null || true)',
  '  if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null; then continue; fi',
  '  nbd=$(cat "$d/nbd.pid" 2>/dev/null || true)',
  '  if [ -n "$nbd" ] && tr "\\0" "\\n" < "/proc/$nbd/cmdline" 2>/dev/null | grep -qxF -e "--socket=$d/nbd.sock" -e "addr.type=unix,addr.path=$d/nbd.sock"; then',
  '    kill "$nbd" 2>/dev/null',
  "  fi",
  '  rm -rf -- "$d"',
  "done",
  'dir=$(mktemp -d "$root/b.XXXXXXXX") || exit 1',
  'echo $$ > "$dir/owner"',
  "cleanup() {",
  '  nbd=$(cat "$dir/nbd.pid" 2>/dev/null || true)',
  '  [ -z "$nbd" ] || kill "$nbd" 2>/dev/null',
  '  rm -rf -- "$dir"',
  "}",
  "trap cleanup EXIT",
  "trap 'exit 129' HUP",
  "trap 'exit 130' INT",
  "trap 'exit 143' TERM",
  'if [ "$1" = qcow2 ]; then',
  "  command -v qemu-nbd >/dev/null 2>&1 || exit 21",
  '  qemu-nbd --read-only --fork --persistent --shared=4 --pid-file="$dir/nbd.pid" --socket="$dir/nbd.sock" -l "$3" --image-opts "$2" || exit 22',
  '  add="add-drive \\"\\" protocol:nbd server:unix:$dir/nbd.sock format:raw readonly:true"',
  'elif [ "$1" = chain ]; then',
  "  command -v qemu-storage-daemon >/dev/null 2>&1 || exit 21",
  "  shift",
  '  qemu-storage-daemon --daemonize --pidfile "$dir/nbd.pid" "$@" --nbd-server "addr.type=unix,addr.path=$dir/nbd.sock" --export type=nbd,id=top,node-name=l0,name=top,writable=off || exit 22',
  '  add="add-drive \\"top\\" protocol:nbd server:unix:$dir/nbd.sock format:raw readonly:true"',
  "else",
  "  add=$2",
  "fi",
  "export LIBGUESTFS_BACKEND=direct",
  "{ printf '%s\\nrun\\n' \"$add\"; cat; } | guestfish --ro",
].join("\n");

/** QEMU's option syntax: a comma inside a value is written twice. */
function qemuValue(value: string): string {
  return value.replaceAll(",", ",,");
}

export type FilesSource =
  | {
      readonly kind: "qcow2";
      readonly image: string;
      readonly snapshotId: string;
      readonly snapshotTag: string;
    }
  | { readonly kind: "block"; readonly device: string }
  /**
   * An export's image chain, each link an NBD export of this computer's server (its images where
   * they are): the chain is spelled out link by link, so no backing name in a target's bytes is
   * ever followed.
   */
  | { readonly kind: "chain"; readonly socket: string; readonly links: number };

/**
 * The script's argv. A block device's add-drive line is built here, its path quoted for guestfish
 * by the caller's `addDriveLine`; the qcow2 socket's line is the script's (only it knows the folder).
 */
export function filesSessionArgs(source: FilesSource, addDriveLine: (device: string) => string): string[] {
  if (source.kind === "qcow2") {
    return [
      "sh",
      "-c",
      FILES_SCRIPT,
      "snapkeep-files",
      "qcow2",
      `driver=qcow2,file.driver=file,file.filename=${qemuValue(source.image)},file.locking=off`,
      `snapshot.id=${qemuValue(source.snapshotId)},snapshot.name=${qemuValue(source.snapshotTag)}`,
    ];
  }
  if (source.kind === "chain") {
    return [
      "sh",
      "-c",
      FILES_SCRIPT,
      "snapkeep-files",
      "chain",
      ...chainBlockdevArgs(source.socket, source.links),
    ];
  }
  return ["sh", "-c", FILES_SCRIPT, "snapkeep-files", "block", addDriveLine(source.device)];
}

/**
 * qemu-storage-daemon's nodes for a chain of `links` qcow2 images served as NBD exports "0" (the
 * newest) to "links - 1" (the full one at its base) by Snapkeep's server at `socket`: `l0` is the
 * image to browse. Each link's backing is the next link's node, named, and the last one's none
 * (`null`), whatever the headers say: QEMU never follows (nor even works out) a backing file name
 * from a target's bytes. (qemu-nbd cannot name a node as a backing: given options for a backing
 * it still resolves the header's name, which fails on NBD and would open an absolute host path.)
 */
export function chainBlockdevArgs(socket: string, links: number): string[] {
  if (!Number.isInteger(links) || links < 1 || links > 64) {
    throw new RangeError(`a chain of ${links} links`);
  }
  const args: string[] = [];
  for (let i = links - 1; i >= 0; i--) {
    const file = {
      driver: "nbd",
      "node-name": `f${i}`,
      server: { type: "unix", path: socket },
      export: String(i),
      "read-only": true,
    };
    const link = {
      driver: "qcow2",
      "node-name": `l${i}`,
      file: `f${i}`,
      backing: i + 1 < links ? `l${i + 1}` : null,
      "read-only": true,
    };
    args.push("--blockdev", JSON.stringify(file), "--blockdev", JSON.stringify(link));
  }
  return args;
}

/** The exit codes above, in words with what to install. */
export function filesScriptProblem(code: number | null): string | null {
  switch (code) {
    case 20:
      return "guestfish is not installed";
    case 21:
      return "qemu-nbd (or qemu-storage-daemon, for an export) is not installed";
    case 22:
      return "QEMU could not open the snapshot (or the export's images)";
    case 23:
      return "its browse folder under /var/tmp is not a folder of its own (someone else made that name first)";
    default:
      return null;
  }
}

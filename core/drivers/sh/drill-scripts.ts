/**
 * Host-side scripts of a restore drill (core/app/drill.ts). Each is a fixed `sh -c` text whose
 * inputs arrive as positional arguments, never spliced in.
 */

/** Where a drill's images live on the host: a hidden folder named by the drill's id. */
export function drillFolder(dir: string, id: string): string {
  return `${dir.replace(/\/+$/, "")}/.snapkeep-drill-${id}`;
}

export const DRILL_FOLDER = /^\.snapkeep-drill-([0-9a-f]{12})$/;

/**
 * Makes a drill's isolated network or transient VM from an XML text on stdin. virsh reads a
 * file, and /dev/stdin is not openable when stdin is a socket (Node's spawn, an SSH channel).
 * Arguments: URI, "net-create" or "create".
 */
export const CREATE_FROM_XML_SCRIPT = [
  "set -u",
  "f=$(mktemp --tmpdir snapkeep-drill-XXXXXX.xml) || exit 1",
  "trap 'rm -f -- \"$f\"' EXIT",
  'cat >"$f" || exit 1',
  'virsh -q -c "$1" "$2" --file "$f"',
].join("\n");

/**
 * The VM's screen as virsh hands it over, on stdout (at most $3 bytes). Exit 2: virsh refused.
 * Arguments: URI, domain, byte limit.
 */
export const SCREENSHOT_SCRIPT = [
  "set -u",
  "f=$(mktemp --tmpdir snapkeep-screen-XXXXXX) || exit 1",
  "trap 'rm -f -- \"$f\"' EXIT",
  'virsh -q -c "$1" screenshot --domain "$2" --file "$f" >/dev/null || exit 2',
  'head -c "$3" -- "$f"',
].join("\n");

/**
 * What a drill needs to know about the room on a host: MemAvailable in KiB, then the free bytes
 * of the nearest existing folder of $1.
 */
export const DRILL_ROOM_SCRIPT = [
  "set -u",
  "awk '$1 == \"MemAvailable:\" { print $2 }' /proc/meminfo",
  'd=$1; while [ ! -d "$d" ]; do d=$(dirname -- "$d"); done',
  "df -P -B1 -- \"$d\" | awk 'NR == 2 { print $4 }'",
].join("\n");

export function parseDrillRoom(output: string): { availableKiB: number; freeBytes: number } | null {
  const [memory, free] = output
    .trim()
    .split("\n")
    .map((l) => l.trim());
  if (
    memory === undefined ||
    free === undefined ||
    !/^[0-9]{1,15}$/.test(memory) ||
    !/^[0-9]{1,19}$/.test(free)
  ) {
    return null;
  }
  return { availableKiB: Number(memory), freeBytes: Number(free) };
}

/**
 * Drill folders in $1: each `.snapkeep-drill-<id>` folder (not a link) with the first line of its
 * drill.json (who made it, until when; empty when it has none). Lines: "<id> <json>".
 */
export const DRILL_FOLDERS_SCRIPT = [
  "set -u",
  '[ -d "$1" ] || exit 0',
  'for d in "$1"/.snapkeep-drill-*; do',
  '  [ -d "$d" ] && [ ! -L "$d" ] || continue',
  "  n=${d##*/}",
  '  o=$(head -c 1024 -- "$d/drill.json" 2>/dev/null | head -n 1)',
  '  printf \'%s %s\\n\' "${n#.snapkeep-drill-}" "$o"',
  "done",
].join("\n");

export function parseDrillFolders(output: string): { id: string; owner: string }[] {
  return output
    .split("\n")
    .map((line) => /^([0-9a-f]{12})(?: (.*))?$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ id: m[1] ?? "", owner: m[2] ?? "" }));
}

/** The isolated network of a drill: a bridge with no address on the host, no DHCP, no forward. */
export function drillNetworkXml(name: string, bridge: string): string {
  return `<network>\n  <name>${name}</name>\n  <bridge name='${bridge}' stp='off'/>\n</network>\n`;
}

/** A bridge name the kernel takes (at most 15 bytes), unique per drill. */
export function drillBridge(id: string): string {
  return `skd${id.slice(0, 12)}`;
}

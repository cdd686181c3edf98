/**
 * Host-side scripts of a restore drill (core/app/drill.ts). Each is a fixed `sh -c` text whose
 * inputs arrive as positional arguments, never spliced in.
 */

/** Where a drill's images live on the host: a hidden folder named by the drill's id. */
export function drillFolder(dir: string, id: string): string {
  return `${dir.replace(/\/+$/, "")}/.snapkeep-drill-${id}`;
}

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
 * The drills of this user on a host, one JSON file each in a private folder: which process runs
 * the drill, until when, and where its folder is. Written before anything else of a drill is
 * made and removed after its teardown, so a sweep finds every piece of a drill that was killed,
 * and only those (a network or folder named like a drill without an entry is left alone).
 * The folder must be a real folder this user owns: one planted first in /var/tmp (a link, another
 * user's folder) stops the drill (exit 23).
 * Arguments: "put" ID LINE | "drop" ID | "list".
 */
export const DRILL_REGISTRY_SCRIPT = [
  "set -u",
  'd="/var/tmp/snapkeep-drills-$(id -u)"',
  'if [ -e "$d" ] || [ -L "$d" ]; then',
  '  { [ -d "$d" ] && [ ! -L "$d" ] && [ -O "$d" ]; } || exit 23',
  'elif [ "$1" = put ]; then',
  '  mkdir -m 700 -- "$d" || exit 1',
  "else",
  "  exit 0",
  "fi",
  'case "$1" in',
  '  put) printf \'%s\\n\' "$3" >"$d/.$2.tmp" && mv -f -- "$d/.$2.tmp" "$d/$2.json" ;;',
  '  drop) rm -f -- "$d/$2.json" ;;',
  "  list)",
  '    for f in "$d"/*.json; do',
  '      [ -f "$f" ] && [ ! -L "$f" ] || continue',
  "      n=${f##*/}",
  '      printf \'%s %s\\n\' "${n%.json}" "$(head -c 2048 -- "$f" | head -n 1)"',
  "    done ;;",
  "esac",
].join("\n");

export function parseDrillRegistry(output: string): { id: string; entry: string }[] {
  return output
    .split("\n")
    .map((line) => /^([0-9a-f]{12}) (.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ id: m[1] ?? "", entry: m[2] ?? "" }));
}

/** The isolated network of a drill: a bridge with no address on the host, no DHCP, no forward. */
export function drillNetworkXml(name: string, bridge: string): string {
  return `<network>\n  <name>${name}</name>\n  <bridge name='${bridge}' stp='off'/>\n</network>\n`;
}

/** A bridge name the kernel takes (at most 15 bytes), unique per drill. */
export function drillBridge(id: string): string {
  return `skd${id.slice(0, 12)}`;
}

/**
 * The probe `snapkeep doctor` runs on a host (issue 17): one constant script, one SSH session, that
 * prints what the README's prerequisites ask for as `key=value` lines. Arguments: URI STAGING.
 * Nothing is changed on the host; a missing tool prints "-".
 *
 * Every value is one line (`head -n 1`, newlines stripped), so no tool's output can add a key.
 */
export const DOCTOR_SCRIPT = [
  "uri=$1 staging=$2",
  'one() { tr -d "\\r" | head -n 1; }',
  'has() { command -v "$1" >/dev/null 2>&1; }',
  'say() { printf "%s=%s\\n" "$1" "$2"; }',
  'if has virsh; then say virsh "$(virsh --version 2>&1 | one)"; else say virsh -; fi',
  'if has virsh; then out=$(virsh -c "$uri" uri 2>&1); rc=$?; say libvirt_rc "$rc"; say libvirt "$(printf "%s\\n" "$out" | grep -v "^$" | tail -n 1 | one)"; fi',
  'if has qemu-img; then say qemu_img "$(qemu-img --version 2>&1 | one)"; else say qemu_img -; fi',
  'if has rsync; then say rsync "$(rsync --version 2>&1 | one)"; else say rsync -; fi',
  "if has dd; then say dd yes; else say dd -; fi",
  "if has openssl || has sha256sum; then say sha256 yes; else say sha256 -; fi",
  "if [ -c /dev/kvm ]; then say kvm present; else say kvm -; fi",
  "if has lvs; then say lvm yes; else say lvm -; fi",
  "if has thin_check; then say thin_tools yes; else say thin_tools -; fi",
  "if has guestfish; then say guestfish yes; else say guestfish -; fi",
  "if has qemu-nbd; then say qemu_nbd yes; else say qemu_nbd -; fi",
  "if has qemu-storage-daemon; then say qemu_storage_daemon yes; else say qemu_storage_daemon -; fi",
  'k=-; for f in /boot/vmlinuz-*; do [ -r "$f" ] && k=yes; done; say appliance_kernel "$k"',
  'd=$staging; while [ ! -d "$d" ]; do d=$(dirname -- "$d"); done',
  'say staging_dir "$d"',
  'say staging_free_kib "$(df -Pk -- "$d" 2>/dev/null | tail -n 1 | awk "{print \\$4}" | one)"',
  'say tz_abbrev "$(date +%Z%z | one)"',
  'if has timedatectl; then say tz "$(timedatectl show -p Timezone --value 2>/dev/null | one)"; say ntp "$(timedatectl show -p NTPSynchronized --value 2>/dev/null | one)"; fi',
  'say user "$(id -un 2>/dev/null | one)"',
  'say groups "$(id -Gn 2>/dev/null | one)"',
].join("\n");

export function doctorArgs(uri: string, staging: string): string[] {
  return ["sh", "-c", DOCTOR_SCRIPT, "snapkeep-doctor", uri, staging];
}

/** The probe's lines as a map; lines that are not `key=value` with a known-shaped key are dropped. */
export function parseDoctorProbe(output: string): ReadonlyMap<string, string> {
  const found = new Map<string, string>();
  for (const line of output.split("\n")) {
    const match = /^([a-z0-9_]{1,24})=(.*)$/.exec(line);
    if (match?.[1] !== undefined && !found.has(match[1])) {
      found.set(match[1], (match[2] ?? "").slice(0, 300));
    }
  }
  return found;
}

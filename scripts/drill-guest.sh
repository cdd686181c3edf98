#!/usr/bin/env bash
# A bootable Debian disk for the restore-drill tests: what a drill restores must boot from its own
# disk (a restored definition never keeps a kernel path of the host), so unlike scripts/lvm-guest.sh
# (kernel and initrd given by the host) this image carries its boot loader. Built without mounting
# anything: an MBR disk image made by sfdisk, SYSLINUX on a FAT partition (mtools, no mount) with the
# kernel and initrd, and the root file system made by `mkfs.ext4 -d` from the Debian tree that
# `scripts/lvm-guest.sh rootfs` debootstraps (the same cache, so the two guests cost one debootstrap).
#
#   scripts/drill-guest.sh build    build once, cached under $SNAPKEEP_TEST_CACHE (default
#                                   /var/cache/snapkeep-test), keyed by this script's and the
#                                   rootfs' identity; prints the qcow2 image's path
#
# Inside: qemu-guest-agent (started by udev when the agent's port appears), a login prompt on the
# screen (tty1) so a console screenshot shows the booted system, /etc/hostname "sk-drill-guest" (a
# drill's check command reads it). No sshd, libvirtd or network services are started: a drill waits
# for the agent only, and a shorter boot under software emulation keeps the test fast.
set -euo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
HERE="$(dirname "$SELF")"
CACHE_ROOT="${SNAPKEEP_TEST_CACHE:-/var/cache/snapkeep-test}"
HOST_PACKAGES=(syslinux syslinux-common mtools dosfstools fdisk e2fsprogs qemu-utils)

# Partition 1: FAT with SYSLINUX, the kernel and the initrd; partition 2: the ext4 root.
BOOT_START=2048
BOOT_SECTORS=262144
ROOT_START=$((BOOT_START + BOOT_SECTORS))
ROOT_MIB=2560

log() { printf 'drill-guest: %s\n' "$*" >&2; }

install_host_packages() {
  local missing=()
  for pkg in "${HOST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || { log "missing packages: ${missing[*]}; run as root"; exit 1; }
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

configure_guest() {
  local root="$1"
  echo sk-drill-guest >"$root/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 sk-drill-guest\n' >"$root/etc/hosts"
  echo 'LABEL=sk-drill-root / ext4 rw,errors=remount-ro 0 1' >"$root/etc/fstab"
  # What the drill does not need and what only slows a boot under software emulation.
  for unit in libvirtd libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket virtlogd virtlogd.socket \
    virtlockd virtlockd.socket ssh ssh.socket sk-lvm-setup lvm2-monitor systemd-networkd \
    serial-getty@ttyS0 apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
    case "$unit" in *.*) ;; *) unit="$unit.service" ;; esac
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  rm -f "$root/etc/systemd/system/getty@tty1.service"
  rm -f "$root"/etc/ssh/ssh_host_*
}

build() {
  install_host_packages
  local base key dir work
  base="$(bash "$HERE/lvm-guest.sh" rootfs)"
  key="$( (sha256sum "$SELF" | cut -c1-16; echo "$base") | sha256sum | cut -c1-16)"
  dir="$CACHE_ROOT/drill-guest-$key"
  if [ -f "$dir/.complete" ]; then
    echo "$dir/disk.qcow2"
    return 0
  fi
  local started=$SECONDS
  work="$dir.partial"
  rm -rf "$work"
  mkdir -p "$work"
  log "configuring the drill guest's root file system"
  cp -a "$base" "$work/root"
  rm -f "$work/root/.complete"
  configure_guest "$work/root"
  cp "$(readlink -f "$work/root/vmlinuz")" "$work/vmlinuz"
  cp "$(readlink -f "$work/root/initrd.img")" "$work/initrd.img"
  # Both consoles: the screen (what a drill's screenshot shows) and the serial port.
  cat >"$work/syslinux.cfg" <<'EOF'
DEFAULT debian
PROMPT 0
TIMEOUT 0
LABEL debian
  KERNEL vmlinuz
  INITRD initrd.img
  APPEND root=/dev/vda2 rw console=ttyS0 console=tty0 net.ifnames=0
EOF
  # -h: the partition's first sector, which SYSLINUX's boot sector reads to find itself on the disk.
  mkfs.fat -C -h "$BOOT_START" -n SKBOOT "$work/boot.img" $((BOOT_SECTORS / 2)) >/dev/null
  mcopy -i "$work/boot.img" "$work/vmlinuz" "$work/initrd.img" "$work/syslinux.cfg" ::/
  syslinux --install "$work/boot.img"
  mkfs.ext4 -q -L sk-drill-root -d "$work/root" "$work/root.img" "${ROOT_MIB}M"
  truncate -s $(((ROOT_START * 512) + ROOT_MIB * 1024 * 1024)) "$work/disk.raw"
  printf 'label: dos\nstart=%s, size=%s, type=c, bootable\nstart=%s, type=83\n' \
    "$BOOT_START" "$BOOT_SECTORS" "$ROOT_START" | sfdisk -q "$work/disk.raw"
  dd if=/usr/lib/syslinux/mbr/mbr.bin of="$work/disk.raw" bs=440 count=1 conv=notrunc status=none
  dd if="$work/boot.img" of="$work/disk.raw" bs=512 seek="$BOOT_START" conv=notrunc,sparse status=none
  dd if="$work/root.img" of="$work/disk.raw" bs=1M seek=$((ROOT_START / 2048)) conv=notrunc,sparse status=none
  qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$work/disk.qcow2"
  rm -rf "$work/root" "$work/root.img" "$work/boot.img" "$work/disk.raw"
  chmod 755 "$work" && chmod 644 "$work/disk.qcow2"
  touch "$work/.complete"
  mv "$work" "$dir"
  log "built $dir in $((SECONDS - started)) s"
  echo "$dir/disk.qcow2"
}

case "${1:-}" in
  build) build ;;
  *)
    echo "usage: $0 build" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Makes this machine a real test host for Snapkeep: libvirtd + QEMU (KVM when /dev/kvm exists),
# qemu-img, OpenSSH and rsync. Used by the integration tests (vitest globalSetup), CI and people.
#
#   scripts/test-host.sh up     install what is missing (as root, apt-get), start virtlogd/libvirtd
#                               when they are not running, wait until qemu:///system answers
#   scripts/test-host.sh down   stop the daemons that `up` started (by pid), nothing else, and only
#                               when no other run that called `up` is still alive
#
# Throwaway VMs and sshd instances are made and removed by the tests themselves (test/support/).
set -euo pipefail

STATE_DIR="${SNAPKEEP_TEST_HOST_STATE:-/tmp/snapkeep-test-host}"
# ovmf: restored UEFI VMs get this host's firmware (the import tests boot one).
# libguestfs-tools and a kernel for its appliance (never booted here): file restore; fdisk: sfdisk.
PACKAGES=(systemd qemu-utils qemu-system-x86 ovmf libvirt-daemon-system libvirt-clients openssh-server openssh-client rsync openssl python3-prometheus-client iproute2 procps chromium libguestfs-tools libguestfs-xfs linux-image-amd64 fdisk)

log() { printf 'test-host: %s\n' "$*" >&2; }

install_packages() {
  local missing=()
  for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing packages: ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# QEMU runs as libvirt-qemu (group kvm). Without udev the node can be root-only; with no /dev/kvm
# at all the tests define domains with type='qemu' (software emulation) instead.
prepare_kvm() {
  if [ -e /dev/kvm ] && [ "$(id -u)" -eq 0 ] && getent group kvm >/dev/null; then
    chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
  fi
}

start_daemon() {
  local name="$1"
  if pgrep -x "$name" >/dev/null; then
    return 0
  fi
  if [ -d /run/systemd/system ] && systemctl start "$name" 2>/dev/null; then
    return 0
  fi
  "/usr/sbin/$name" -d
  sleep 0.3
  local pid
  pid="$(pgrep -nx "$name" || true)"
  [ -n "$pid" ] || { log "$name did not start"; exit 1; }
  echo "$pid" >>"$STATE_DIR/started.pids"
  log "started $name (pid $pid)"
}

wait_for_libvirt() {
  for _ in $(seq 1 60); do
    virsh -q -c qemu:///system version >/dev/null 2>&1 && return 0
    # A daemon seen by start_daemon may have been on its way out (another run's `down` had just
    # signalled it): start our own once it is gone.
    pgrep -x virtlogd >/dev/null || start_daemon virtlogd
    pgrep -x libvirtd >/dev/null || start_daemon libvirtd
    sleep 0.5
  done
  log "libvirtd does not answer on qemu:///system"
  exit 1
}

case "${1:-}" in
  up)
    mkdir -p "$STATE_DIR/users"
    # Each run that needs the daemons registers (by the pid that called us): several test runs
    # share one libvirtd, and the last one out stops what an `up` started, never one still in use.
    touch "$STATE_DIR/users/${SNAPKEEP_TEST_HOST_USER:-$PPID}"
    install_packages
    prepare_kvm
    mkdir -p /run/sshd
    start_daemon virtlogd
    start_daemon libvirtd
    wait_for_libvirt
    ;;
  down)
    rm -f "$STATE_DIR/users/${SNAPKEEP_TEST_HOST_USER:-$PPID}"
    for user in "$STATE_DIR"/users/*; do
      [ -e "$user" ] || continue
      if kill -0 "${user##*/}" 2>/dev/null; then
        log "another test run (pid ${user##*/}) still uses the daemons; leaving them running"
        exit 0
      fi
      rm -f "$user"
    done
    if [ -f "$STATE_DIR/started.pids" ]; then
      # Newest first: libvirtd before the virtlogd it writes to.
      tac "$STATE_DIR/started.pids" | while read -r pid; do
        kill "$pid" 2>/dev/null || continue
        # libvirtd takes a while to shut down; a run that calls `up` right after must not find
        # the dying daemon and wait on it. Wait until it is gone (15 s, then SIGKILL).
        for _ in $(seq 1 30); do
          kill -0 "$pid" 2>/dev/null || break
          sleep 0.5
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
        log "stopped pid $pid"
      done
      rm -f "$STATE_DIR/started.pids"
    fi
    ;;
  *)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac

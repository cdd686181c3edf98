#!/usr/bin/env bash
# A real LVM host for Snapkeep's tests. The kernel of the test machines has no device-mapper, so
# LVM runs inside a small Debian guest with its own kernel, booted as a domain on this machine's
# libvirt (qemu:///system). The same guest has qemu-guest-agent, so it is also the real VM that
# freeze/thaw and in-guest hooks are tested on. Snapkeep reaches the guest's sshd like any SSH host.
#
#   scripts/lvm-guest.sh build   build the image once; cached under $SNAPKEEP_TEST_CACHE
#                                (default /var/cache/snapkeep-test), keyed by this script's hash
#   scripts/lvm-guest.sh up      build when missing, boot domain sk-lvm-guest on fresh overlays,
#                                wait for sshd and the in-guest setup, write guest.json (below)
#   scripts/lvm-guest.sh down    destroy and undefine sk-lvm-guest, remove its overlays
#   scripts/lvm-guest.sh ssh [CMD...]   a root shell in the running guest (for people)
#   scripts/lvm-guest.sh rootfs  debootstrap the guest's Debian once (cached) and print its folder
#                                (scripts/drill-guest.sh builds its bootable disk from it)
#
# Inside: volume group vgsk on /dev/vdb with thick LVs vm1-root, vm1-data, a thin pool vgsk/pool
# with thin LV vm2-root, and shut-off domains whose disks are those LVs (sk-lvm-vm1, sk-lvm-vm2;
# sk-lvm-mixed has a qcow2 file and an LV). Every `up` starts from the same state: the root file
# system is a qcow2 overlay on the cached image and the LVM disk is new and empty, so the LVs are
# made again by the guest's first-boot unit.
#
# guest.json (in $SNAPKEEP_LVM_RUN, default /var/lib/libvirt/images/sk-lvm-guest):
#   {"domain","host","port","user","identityFile","hostFingerprint","accel"}
set -euo pipefail

URI=qemu:///system
DOMAIN=sk-lvm-guest
SUITE=bookworm
SELF="$(readlink -f "${BASH_SOURCE[0]}")"
CACHE_ROOT="${SNAPKEEP_TEST_CACHE:-/var/cache/snapkeep-test}"
RUN_DIR="${SNAPKEEP_LVM_RUN:-/var/lib/libvirt/images/sk-lvm-guest}"
# The guest's packages (debootstrap ignores alternative dependencies, so dbus, logind and iptables
# are named). lvm2 needs thin-provisioning-tools to activate thin pools (thin_check);
# libvirt inside needs a QEMU binary to accept domain definitions; qemu-utils, rsync and coreutils
# are what Snapkeep's export path runs on a source host.
GUEST_PACKAGES=linux-image-amd64,systemd-sysv,udev,kmod,dbus,libpam-systemd,iptables,dbus,libpam-systemd,iptables,iproute2,openssh-server,lvm2,thin-provisioning-tools,qemu-guest-agent,libvirt-daemon-system,libvirt-daemon-system-systemd,libvirt-clients,qemu-system-x86,qemu-utils,rsync,e2fsprogs,procps
HOST_PACKAGES=(debootstrap e2fsprogs qemu-utils openssh-client)

log() { printf 'lvm-guest: %s\n' "$*" >&2; }

image_hash() { sha256sum "$SELF" | cut -c1-16; }
image_dir() { echo "$CACHE_ROOT/lvm-guest-$(image_hash)"; }

# The Debian mirror this machine's apt already uses (deb822 or one-line sources), so the build
# needs no other network access than apt does.
debian_mirror() {
  local uri
  uri="$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v -e security -e '^$' | grep -m1 debian || true)"
  if [ -z "$uri" ]; then
    uri="$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -v security | grep -m1 debian || true)"
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

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

# The slow, network-bound part, cached on its own (keyed by suite, mirror and package list) so that
# a change to the guest's configuration below costs a copy and mkfs, not a new debootstrap.
rootfs() {
  local key dir
  key="$(printf '%s %s %s' "$SUITE" "$(debian_mirror)" "$GUEST_PACKAGES" | sha256sum | cut -c1-16)"
  dir="$CACHE_ROOT/lvm-rootfs-$key"
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir" "$dir.partial"
    log "debootstrap $SUITE from $(debian_mirror) (a few minutes)"
    debootstrap --variant=minbase --include="$GUEST_PACKAGES" "$SUITE" "$dir.partial" "$(debian_mirror)" >"$CACHE_ROOT/debootstrap.log" 2>&1 ||
      { tail -20 "$CACHE_ROOT/debootstrap.log" >&2; log "debootstrap failed (log: $CACHE_ROOT/debootstrap.log)"; exit 1; }
    touch "$dir.partial/.complete"
    mv "$dir.partial" "$dir"
  fi
  echo "$dir"
}

# Files written into the guest's root file system.
configure_guest() {
  local root="$1" keys="$2"
  echo sk-lvm-guest >"$root/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 sk-lvm-guest\n' >"$root/etc/hosts"
  echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$root/etc/fstab"
  # QEMU's user-mode network hands out 10.0.2.15 by DHCP and forwards a host port to sshd.
  cat >"$root/etc/systemd/network/10-wired.network" <<'EOF'
[Match]
Name=en* eth*
[Network]
DHCP=ipv4
EOF
  ln -sf /lib/systemd/system/systemd-networkd.service "$root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
  # Only the host key generated here, so the tests can pin it; root logs in with the test key only.
  rm -f "$root"/etc/ssh/ssh_host_*
  cp "$keys/ssh_host_ed25519_key" "$keys/ssh_host_ed25519_key.pub" "$root/etc/ssh/"
  chmod 600 "$root/etc/ssh/ssh_host_ed25519_key"
  cat >"$root/etc/ssh/sshd_config.d/snapkeep-test.conf" <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
MaxStartups 100
MaxSessions 20
EOF
  install -d -m 700 "$root/root/.ssh"
  install -m 600 "$keys/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
  # No dnsmasq in the guest, and the inner domains need no network: do not start libvirt's default one.
  rm -f "$root/etc/libvirt/qemu/networks/autostart/default.xml"
  # A serial console that logs in nobody but shows boot progress in the console log.
  ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
  ln -sf /dev/null "$root/etc/systemd/system/getty@tty1.service"
  # Snapshot autoextension stays off (lvm.conf's default), so a full COW snapshot really goes invalid.
  install -d "$root/usr/local/share/sk-lvm"
  inner_domain sk-lvm-vm1 1 "block:/dev/vgsk/vm1-root:vda" "block:/dev/vgsk/vm1-data:vdb" >"$root/usr/local/share/sk-lvm/sk-lvm-vm1.xml"
  inner_domain sk-lvm-vm2 2 "block:/dev/vgsk/vm2-root:vda" >"$root/usr/local/share/sk-lvm/sk-lvm-vm2.xml"
  inner_domain sk-lvm-mixed 3 "file:/var/lib/libvirt/images/sk-lvm-mixed.qcow2:vda" "block:/dev/vgsk/mixed-data:vdb" >"$root/usr/local/share/sk-lvm/sk-lvm-mixed.xml"
  cat >"$root/usr/local/sbin/sk-lvm-setup" <<'EOF'
#!/bin/sh
# First boot of a fresh `up`: the LVM layout and the inner domains Snapkeep's tests start from.
set -eu
export LVM_SUPPRESS_FD_WARNINGS=1
# Each step on the console (the unit sends output there too), so a boot that never gets ready
# shows in the host's console log which step it stopped at.
step() { echo "sk-lvm-setup: $* (uptime $(cut -d' ' -f1 /proc/uptime) s)"; }
step "loading device-mapper modules"
modprobe -a dm_mod dm_snapshot dm_thin_pool
if ! vgs vgsk >/dev/null 2>&1; then
  step "making volume group vgsk and its volumes"
  pvcreate -q /dev/vdb
  vgcreate -q vgsk /dev/vdb
  lvcreate -q -y -L 64m -n vm1-root vgsk
  lvcreate -q -y -L 32m -n vm1-data vgsk
  lvcreate -q -y -L 16m -n mixed-data vgsk
  lvcreate -q -y -L 256m -T vgsk/pool
  lvcreate -q -y -V 128m -T vgsk/pool -n vm2-root
fi
[ -f /var/lib/libvirt/images/sk-lvm-mixed.qcow2 ] || qemu-img create -q -f qcow2 /var/lib/libvirt/images/sk-lvm-mixed.qcow2 16M
for xml in /usr/local/share/sk-lvm/*.xml; do
  step "defining $(basename "$xml" .xml)"
  virsh -q -c qemu:///system define "$xml" >/dev/null
done
touch /run/sk-lvm-ready
step "ready"
EOF
  chmod 755 "$root/usr/local/sbin/sk-lvm-setup"
  cat >"$root/etc/systemd/system/sk-lvm-setup.service" <<'EOF'
[Unit]
Description=Snapkeep test LVM layout and inner domains
After=local-fs.target systemd-udevd.service lvm2-monitor.service libvirtd.service
Wants=libvirtd.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/sk-lvm-setup
StandardOutput=journal+console
StandardError=journal+console
[Install]
WantedBy=multi-user.target
EOF
  ln -sf /etc/systemd/system/sk-lvm-setup.service "$root/etc/systemd/system/multi-user.target.wants/sk-lvm-setup.service"
}

# A shut-off domain inside the guest (software emulation: no nested KVM there) with the given disks,
# each "block:DEV:TARGET" or "file:PATH:TARGET".
inner_domain() {
  local name="$1" index="$2"
  shift 2
  printf "<domain type='qemu'>\n  <name>%s</name>\n  <uuid>5e1f0000-0000-4000-8000-00000000000%s</uuid>\n" "$name" "$index"
  printf "  <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n  <os><type arch='x86_64' machine='pc'>hvm</type></os>\n  <devices>\n"
  local spec kind src target
  for spec in "$@"; do
    IFS=: read -r kind src target <<<"$spec"
    if [ "$kind" = block ]; then
      printf "    <disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='%s'/><target dev='%s' bus='virtio'/></disk>\n" "$src" "$target"
    else
      printf "    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/><target dev='%s' bus='virtio'/></disk>\n" "$src" "$target"
    fi
  done
  printf "  </devices>\n</domain>\n"
}

build() {
  local dir
  dir="$(image_dir)"
  [ -f "$dir/.complete" ] && { log "image cached: $dir"; return 0; }
  [ "$(id -u)" -eq 0 ] || { log "building the guest image needs root (debootstrap)"; exit 1; }
  install_host_packages
  mkdir -p "$CACHE_ROOT"
  local started=$SECONDS base work
  base="$(rootfs)"
  work="$dir.partial"
  rm -rf "$work"
  mkdir -p "$work/keys"
  ssh-keygen -q -t ed25519 -N '' -C sk-lvm-guest-host -f "$work/keys/ssh_host_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -C snapkeep-test -f "$work/keys/id_ed25519"
  log "configuring the guest's root file system"
  cp -a "$base" "$work/root"
  rm -f "$work/root/.complete"
  configure_guest "$work/root" "$work/keys"
  cp "$(readlink -f "$work/root/vmlinuz")" "$work/vmlinuz"
  cp "$(readlink -f "$work/root/initrd.img")" "$work/initrd.img"
  mkfs.ext4 -q -L sk-lvm-root -d "$work/root" "$work/root.raw" 3G
  qemu-img convert -f raw -O qcow2 "$work/root.raw" "$work/root.qcow2"
  rm -rf "$work/root" "$work/root.raw"
  ssh-keygen -lf "$work/keys/ssh_host_ed25519_key.pub" | awk '{print $2}' >"$work/host-fingerprint"
  printf 'sk-lvm-guest %s\n' "$(cut -d' ' -f1-2 "$work/keys/ssh_host_ed25519_key.pub")" >"$work/known_hosts"
  # QEMU runs as libvirt-qemu and reads the kernel, initrd and the base image in place.
  chmod 755 "$work" && chmod 644 "$work/vmlinuz" "$work/initrd.img" "$work/root.qcow2"
  touch "$work/.complete"
  mv "$work" "$dir"
  log "built $dir in $((SECONDS - started)) s"
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

accel() {
  if [ -n "${SNAPKEEP_LVM_ACCEL:-}" ]; then
    echo "$SNAPKEEP_LVM_ACCEL"
  elif [ -e /dev/kvm ]; then
    echo kvm
  else
    echo qemu
  fi
}

domain_xml() {
  local dir="$1" port="$2" type="$3"
  cat <<EOF
<domain type='$type' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$DOMAIN</name>
  <description>Snapkeep test LVM host (scripts/lvm-guest.sh)</description>
  <memory unit='MiB'>1024</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$dir/vmlinuz</kernel>
    <initrd>$dir/initrd.img</initrd>
    <cmdline>root=/dev/vda rw console=ttyS0 net.ifnames=0</cmdline>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$RUN_DIR/root.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$RUN_DIR/lvm.qcow2'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <serial type='file'><source path='$RUN_DIR/console.log'/><target port='0'/></serial>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-netdev'/>
    <qemu:arg value='user,id=sknet,hostfwd=tcp:127.0.0.1:$port-:22'/>
    <qemu:arg value='-device'/>
    <qemu:arg value='virtio-net-pci,netdev=sknet,bus=pci.0,addr=0x1e'/>
  </qemu:commandline>
</domain>
EOF
}

# Each step checked by hand: called as an `if` condition, the function runs without `set -e`.
start_domain() {
  local dir="$1" port="$2" type="$3"
  qemu-img create -q -f qcow2 -F qcow2 -b "$dir/root.qcow2" "$RUN_DIR/root.qcow2" || return 1
  qemu-img create -q -f qcow2 "$RUN_DIR/lvm.qcow2" 2G || return 1
  : >"$RUN_DIR/console.log" || return 1
  domain_xml "$dir" "$port" "$type" >"$RUN_DIR/domain.xml" || return 1
  virsh -q -c "$URI" create "$RUN_DIR/domain.xml" >/dev/null || return 1
  log "booting $DOMAIN ($type), sshd forwarded to 127.0.0.1:$port"
}

kernel_speaks() {
  local seconds="$1"
  for _ in $(seq 1 "$seconds"); do
    grep -q "Linux version" "$RUN_DIR/console.log" 2>/dev/null && return 0
    sleep 1
  done
  return 1
}

guest_ssh() {
  local port="$1"
  shift
  # ConnectTimeout covers the TCP connect only, which QEMU's port forward accepts at once even when
  # the guest is stalled: the keepalives end a login that hangs half way.
  ssh -q -i "$(image_dir)/keys/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o HostKeyAlias=sk-lvm-guest -o UserKnownHostsFile="$(image_dir)/known_hosts" -o StrictHostKeyChecking=yes \
    -o ConnectTimeout=5 -o ServerAliveInterval=5 -o ServerAliveCountMax=3 -p "$port" root@127.0.0.1 "$@"
}

# Whether the guest's setup unit has finished: one probe, never longer than 30 s.
guest_ready() {
  timeout 30 "$SELF" ssh-port "$1" test -e /run/sk-lvm-ready 2>/dev/null
}

# What the guest was doing when it did not get ready: the domain's state, the console's last lines
# and, when sshd still answers, the setup unit, the boot's journal and the processes (each bounded,
# so a hung guest cannot hang this).
diagnose() {
  local port="$1"
  log "state: $(virsh -q -c "$URI" domstate --reason "$DOMAIN" 2>&1 || true)"
  log "last console lines:"
  tail -25 "$RUN_DIR/console.log" >&2 || true
  log "inside the guest (if sshd answers):"
  timeout 30 "$SELF" guest-diagnose "$port" >&2 || log "(the guest's sshd did not answer in full within 30 s)"
}

# Boots the guest and waits for its setup unit. On a KVM host that hides CPU features (nested,
# restricted CPUID: this project's CI machines) a Linux guest can hang before printing its first
# line, so KVM gets a grace period before software emulation (TCG) takes over. Under TCG a boot
# has been seen to stall for good with setup half done (10 minutes, where 40 s is usual), so a boot
# that is not ready within its time is diagnosed, destroyed and tried again on fresh overlays.
up() {
  build
  down
  local dir port type started=$SECONDS attempt attempts limit deadline
  dir="$(image_dir)"
  type="$(accel)"
  attempts="${SNAPKEEP_LVM_BOOT_ATTEMPTS:-3}"
  limit="${SNAPKEEP_LVM_BOOT_TIMEOUT:-240}"
  mkdir -p "$RUN_DIR"
  rm -f "$RUN_DIR"/console-attempt-*.log
  for attempt in $(seq 1 "$attempts"); do
    port="$(free_port)"
    # A start that fails (the port taken meanwhile, a domain left over) is an attempt too.
    if ! start_domain "$dir" "$port" "$type"; then
      log "$DOMAIN did not start (attempt $attempt of $attempts)"
      down
      continue
    fi
    if [ "$type" = kvm ] && [ -z "${SNAPKEEP_LVM_ACCEL:-}" ] && ! kernel_speaks 30; then
      log "no kernel output under KVM within 30 s; booting with software emulation (TCG) instead"
      down
      type=qemu
      if ! start_domain "$dir" "$port" "$type"; then
        log "$DOMAIN did not start under TCG (attempt $attempt of $attempts)"
        down
        continue
      fi
    fi
    deadline=$((SECONDS + limit))
    until guest_ready "$port"; do
      if ! virsh -q -c "$URI" domstate "$DOMAIN" 2>/dev/null | grep -qx running; then
        log "$DOMAIN is not running while booting (attempt $attempt of $attempts)"
        break
      fi
      if [ $SECONDS -ge $deadline ]; then
        log "$DOMAIN did not get ready within $limit s (attempt $attempt of $attempts)"
        break
      fi
      sleep 2
    done
    if guest_ready "$port"; then
      cat >"$RUN_DIR/guest.json" <<JSON
{"domain":"$DOMAIN","host":"127.0.0.1","port":$port,"user":"root","identityFile":"$dir/keys/id_ed25519","hostFingerprint":"$(cat "$dir/host-fingerprint")","accel":"$type"}
JSON
      log "$DOMAIN ready in $((SECONDS - started)) s (attempt $attempt, $type)"
      return 0
    fi
    diagnose "$port"
    # Kept for whoever reads a CI log after the run: `down` removes the console of the attempt.
    cp "$RUN_DIR/console.log" "$RUN_DIR/console-attempt-$attempt.log" 2>/dev/null || true
    down
  done
  log "$DOMAIN did not get ready in $attempts attempts ($((SECONDS - started)) s)"
  exit 1
}

down() {
  # A transient domain: destroy removes it; undefine covers one a person defined by hand.
  virsh -q -c "$URI" destroy "$DOMAIN" >/dev/null 2>&1 || true
  virsh -q -c "$URI" undefine "$DOMAIN" >/dev/null 2>&1 || true
  rm -f "$RUN_DIR/root.qcow2" "$RUN_DIR/lvm.qcow2" "$RUN_DIR/guest.json" "$RUN_DIR/domain.xml" "$RUN_DIR/console.log"
}

case "${1:-}" in
  build) build ;;
  rootfs)
    [ "$(id -u)" -eq 0 ] || { log "debootstrap needs root"; exit 1; }
    install_host_packages
    mkdir -p "$CACHE_ROOT"
    rootfs
    ;;
  up) up ;;
  down) down ;;
  ssh-port)
    # Run by guest_ready (under `timeout`): a command in the guest reached on the given port.
    port="$2"
    shift 2
    guest_ssh "$port" "$@" </dev/null
    ;;
  guest-diagnose)
    # Run by diagnose (under `timeout`): the setup unit, the boot's journal and what runs.
    guest_ssh "$2" </dev/null 'systemctl status --no-pager -l sk-lvm-setup libvirtd 2>&1 | tail -30;
      journalctl -b --no-pager -o short-monotonic 2>&1 | tail -40;
      ps -eo pid,stat,etime,wchan:24,args --sort=start_time 2>&1 | tail -30'
    ;;
  ssh)
    shift
    port="$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$RUN_DIR/guest.json")"
    guest_ssh "$port" "$@"
    ;;
  *)
    echo "usage: $0 build|rootfs|up|down|ssh [CMD...]|ssh-port PORT [CMD...]|guest-diagnose PORT" >&2
    exit 2
    ;;
esac

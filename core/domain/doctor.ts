/**
 * What `snapkeep doctor` concludes from a host's probe (drivers/sh/doctor-script.ts): each
 * prerequisite the README names, met or not, and in one sentence what to do about it, with the
 * Debian package to install. Pure: the probe's values in, checks out.
 */

export type CheckState = "ok" | "warn" | "fail";

export interface DoctorCheck {
  readonly id: string;
  readonly title: string;
  readonly state: CheckState;
  /** What was found. */
  readonly detail: string;
  /** What to do, when it is not ok. */
  readonly fix?: string;
}

/** Staging is used by `--compressed` exports (and templates and volumes): less than this is warned. */
export const LOW_STAGING_BYTES = 10 * 1024 ** 3;
/** QEMU versions below this are not tested (Debian 11 has 5.2; Debian 12 7.2). */
const OLDEST_QEMU_MAJOR = 5;

export function judgeProbe(probe: ReadonlyMap<string, string>): DoctorCheck[] {
  const get = (key: string): string | undefined => {
    const value = probe.get(key);
    return value === undefined || value === "-" || value === "" ? undefined : value;
  };
  return [
    virshCheck(get("virsh")),
    ...(get("virsh") === undefined
      ? []
      : [libvirtCheck(probe.get("libvirt_rc"), get("libvirt"), get("user"))]),
    qemuImgCheck(get("qemu_img")),
    tool("dd", "dd and a SHA-256 tool", get("dd") !== undefined && get("sha256") !== undefined, "fail", {
      detail: "coreutils' dd and sha256sum (or openssl)",
      fix: "Install coreutils: streamed exports read with dd and every export is hashed.",
    }),
    tool("rsync", "rsync", get("rsync") !== undefined, "warn", {
      detail: get("rsync") ?? "not installed",
      fix: "Install rsync (apt-get install rsync): `--compressed` exports and copies from LVM volumes send with it.",
    }),
    tool("kvm", "KVM", get("kvm") !== undefined, "warn", {
      detail: get("kvm") === undefined ? "/dev/kvm is missing" : "/dev/kvm is there",
      fix: "Enable VT-x/AMD-V in the firmware and load kvm_intel or kvm_amd: without it VMs run emulated, many times slower.",
    }),
    lvmCheck(get("lvm") !== undefined, get("thin_tools") !== undefined),
    filesCheck(
      get("guestfish") !== undefined,
      get("qemu_nbd") !== undefined,
      get("appliance_kernel") !== undefined,
      get("qemu_storage_daemon") !== undefined,
    ),
    stagingCheck(get("staging_dir"), get("staging_free_kib")),
    clockCheck(get("tz"), get("tz_abbrev"), get("ntp")),
  ];
}

function tool(
  id: string,
  title: string,
  present: boolean,
  missing: CheckState,
  words: { detail: string; fix: string },
): DoctorCheck {
  return present
    ? { id, title, state: "ok", detail: words.detail }
    : { id, title, state: missing, detail: words.detail, fix: words.fix };
}

function virshCheck(version: string | undefined): DoctorCheck {
  return version === undefined
    ? {
        id: "virsh",
        title: "virsh",
        state: "fail",
        detail: "not installed",
        fix: "Install libvirt's client (apt-get install libvirt-clients): Snapkeep drives every hypervisor through virsh.",
      }
    : { id: "virsh", title: "virsh", state: "ok", detail: `version ${version}` };
}

function libvirtCheck(
  rc: string | undefined,
  said: string | undefined,
  user: string | undefined,
): DoctorCheck {
  const base = { id: "libvirt", title: "libvirt connection" };
  if (rc === "0") {
    return { ...base, state: "ok", detail: `connected to ${said ?? "libvirt"}` };
  }
  const text = said ?? "no answer";
  if (/permission denied|authentication/i.test(text)) {
    return {
      ...base,
      state: "fail",
      detail: text,
      fix: `Run Snapkeep as root, or add ${user ?? "the user"} to the libvirt group (usermod -aG libvirt ${user ?? "USER"}) and log in again.`,
    };
  }
  if (/no such file|failed to connect|connection refused/i.test(text)) {
    return {
      ...base,
      state: "fail",
      detail: text,
      fix: "Install and start libvirt's daemon (apt-get install libvirt-daemon-system; systemctl enable --now libvirtd).",
    };
  }
  return {
    ...base,
    state: "fail",
    detail: text,
    fix: "Check the host's libvirt URI and that libvirtd runs.",
  };
}

function qemuImgCheck(version: string | undefined): DoctorCheck {
  const base = { id: "qemu-img", title: "qemu-img" };
  if (version === undefined) {
    return {
      ...base,
      state: "fail",
      detail: "not installed",
      fix: "Install qemu-utils (apt-get install qemu-utils): snapshots of shut-off VMs, exports and imports use qemu-img.",
    };
  }
  const major = Number(/version (\d+)\./.exec(version)?.[1] ?? Number.NaN);
  if (Number.isFinite(major) && major < OLDEST_QEMU_MAJOR) {
    return {
      ...base,
      state: "warn",
      detail: version,
      fix: `QEMU ${major} is older than Snapkeep is tested with (${OLDEST_QEMU_MAJOR} or later): upgrade qemu-utils if anything fails.`,
    };
  }
  return { ...base, state: "ok", detail: version };
}

function lvmCheck(lvm: boolean, thin: boolean): DoctorCheck {
  const base = { id: "lvm", title: "LVM tools" };
  if (!lvm) {
    return { ...base, state: "ok", detail: "not installed: only needed for VMs whose disks are LVM volumes" };
  }
  return thin
    ? { ...base, state: "ok", detail: "lvm2 and thin-provisioning-tools" }
    : {
        ...base,
        state: "warn",
        detail: "lvm2 without thin-provisioning-tools",
        fix: "Install thin-provisioning-tools if any VM disk is a thin LV: LVM needs it to activate thin pools.",
      };
}

/** `files ls|get` (and nothing else) read snapshots through libguestfs' appliance. */
function filesCheck(
  guestfish: boolean,
  qemuNbd: boolean,
  kernel: boolean,
  storageDaemon: boolean,
): DoctorCheck {
  const base = { id: "files", title: "File restore" };
  if (!guestfish || !qemuNbd) {
    return {
      ...base,
      state: "warn",
      detail: `${[!guestfish && "guestfish", !qemuNbd && "qemu-nbd"].filter(Boolean).join(" and ")} not installed`,
      fix: "Install libguestfs-tools and qemu-utils (apt-get install libguestfs-tools qemu-utils linux-image-amd64) to fetch single files from snapshots; nothing else needs them.",
    };
  }
  if (!kernel) {
    return {
      ...base,
      state: "warn",
      detail: "no kernel in /boot for libguestfs' appliance",
      fix: "Install a kernel package (apt-get install linux-image-amd64): libguestfs builds its small VM from it; it is not booted on the host.",
    };
  }
  if (!storageDaemon) {
    return {
      ...base,
      state: "warn",
      detail: "qemu-storage-daemon not installed: snapshots can be browsed here, exports on targets cannot",
      fix: "Install qemu-system-common (apt-get install qemu-system-common) where Snapkeep runs, to browse exports on targets from there.",
    };
  }
  return {
    ...base,
    state: "ok",
    detail: "libguestfs, qemu-nbd, qemu-storage-daemon and a kernel for the appliance",
  };
}

function stagingCheck(dir: string | undefined, freeKiB: string | undefined): DoctorCheck {
  const base = { id: "staging", title: "Staging space" };
  const free = Number(freeKiB) * 1024;
  if (dir === undefined || !Number.isFinite(free)) {
    return {
      ...base,
      state: "warn",
      detail: "could not be measured",
      fix: "Check that df works on the host.",
    };
  }
  const words = `${(free / 1024 ** 3).toFixed(1)} GiB free at ${dir}`;
  return free < LOW_STAGING_BYTES
    ? {
        ...base,
        state: "warn",
        detail: words,
        fix: "Free space there if you export with --compressed or make templates and volumes: they stage a copy of the disk there first.",
      }
    : { ...base, state: "ok", detail: words };
}

function clockCheck(
  tz: string | undefined,
  abbrev: string | undefined,
  ntp: string | undefined,
): DoctorCheck {
  const base = { id: "clock", title: "Clock and time zone" };
  const zone = [tz, abbrev].filter((x) => x !== undefined).join(", ") || "unknown";
  if (ntp === "no") {
    return {
      ...base,
      state: "warn",
      detail: `${zone}; not synchronised`,
      fix: "Turn on time synchronisation (timedatectl set-ntp true): schedules run by the clock, and snapshot times are compared across hosts.",
    };
  }
  return { ...base, state: "ok", detail: ntp === "yes" ? `${zone}; synchronised` : zone };
}

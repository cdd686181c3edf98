/**
 * `snapkeep doctor`'s judgement on hand-made probes: what is ok, what warns, what fails, and the
 * sentence that says what to do; and the probe parser's refusal of lines it does not expect.
 */
import { describe, expect, it } from "vitest";

import { judgeProbe, type DoctorCheck } from "../../core/domain/doctor.js";
import { parseDoctorProbe } from "../../core/drivers/sh/doctor-script.js";

const HEALTHY = [
  "virsh=9.0.0",
  "libvirt_rc=0",
  "libvirt=qemu:///system",
  "qemu_img=qemu-img version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)",
  "rsync=rsync  version 3.2.7  protocol version 31",
  "dd=yes",
  "sha256=yes",
  "kvm=present",
  "lvm=yes",
  "thin_tools=yes",
  "guestfish=yes",
  "qemu_nbd=yes",
  "qemu_storage_daemon=yes",
  "appliance_kernel=yes",
  "staging_dir=/var/tmp",
  "staging_free_kib=73400320",
  "tz_abbrev=CET+0100",
  "tz=Europe/Berlin",
  "ntp=yes",
  "user=ops",
  "groups=ops libvirt",
].join("\n");

function judge(edit: Record<string, string | null> = {}): Map<string, DoctorCheck> {
  const probe = new Map(parseDoctorProbe(HEALTHY));
  for (const [key, value] of Object.entries(edit)) {
    if (value === null) {
      probe.delete(key);
    } else {
      probe.set(key, value);
    }
  }
  return new Map(judgeProbe(probe).map((c) => [c.id, c]));
}

describe("judgeProbe", () => {
  it("finds a healthy host healthy, with what it found", () => {
    const checks = judge();
    expect([...checks.values()].every((c) => c.state === "ok")).toBe(true);
    expect(checks.get("staging")?.detail).toBe("70.0 GiB free at /var/tmp");
    expect(checks.get("clock")?.detail).toBe("Europe/Berlin, CET+0100; synchronised");
  });

  it("warns, only, when file restore lacks libguestfs or a kernel for its appliance, naming the packages", () => {
    expect(judge().get("files")).toMatchObject({ state: "ok" });
    expect(judge({ guestfish: "-" }).get("files")).toMatchObject({
      state: "warn",
      detail: "guestfish not installed",
      fix: expect.stringContaining("libguestfs-tools"),
    });
    expect(judge({ guestfish: "-", qemu_nbd: "-" }).get("files")?.detail).toBe(
      "guestfish and qemu-nbd not installed",
    );
    expect(judge({ appliance_kernel: "-" }).get("files")).toMatchObject({
      state: "warn",
      fix: expect.stringContaining("linux-image-amd64"),
    });
    // Exports on targets are read through qemu-storage-daemon where Snapkeep runs.
    expect(judge({ qemu_storage_daemon: "-" }).get("files")).toMatchObject({
      state: "warn",
      detail: expect.stringContaining("exports on targets cannot"),
      fix: expect.stringContaining("qemu-system-common"),
    });
  });

  it("fails a host without virsh or qemu-img, naming the package to install", () => {
    const checks = judge({ virsh: "-", libvirt_rc: null, libvirt: null, qemu_img: "-" });
    expect(checks.get("virsh")).toMatchObject({
      state: "fail",
      fix: expect.stringContaining("libvirt-clients"),
    });
    expect(checks.has("libvirt")).toBe(false);
    expect(checks.get("qemu-img")).toMatchObject({
      state: "fail",
      fix: expect.stringContaining("qemu-utils"),
    });
  });

  it("tells a user libvirt refuses to join the libvirt group, and a host without libvirtd to install it", () => {
    const denied = judge({
      libvirt_rc: "1",
      libvirt: "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': Permission denied",
    });
    expect(denied.get("libvirt")).toMatchObject({
      state: "fail",
      fix: expect.stringContaining("usermod -aG libvirt ops"),
    });
    const absent = judge({
      libvirt_rc: "1",
      libvirt:
        "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory",
    });
    expect(absent.get("libvirt")?.fix).toContain("libvirt-daemon-system");
  });

  it("warns about what costs speed or safety but does not stop Snapkeep", () => {
    const checks = judge({
      kvm: "-",
      rsync: "-",
      thin_tools: "-",
      staging_free_kib: String(2 * 1024 * 1024),
      ntp: "no",
      qemu_img: "qemu-img version 4.2.1",
    });
    for (const id of ["kvm", "rsync", "lvm", "staging", "clock", "qemu-img"]) {
      expect(checks.get(id)?.state, id).toBe("warn");
      expect(checks.get(id)?.fix, id).toMatch(/\.$/);
    }
    expect(checks.get("clock")?.fix).toContain("timedatectl set-ntp true");
  });

  it("fails when dd or a hash tool is missing: every export needs them", () => {
    expect(judge({ sha256: "-" }).get("dd")?.state).toBe("fail");
  });
});

describe("parseDoctorProbe", () => {
  it("keeps the first value of a key and drops what is not key=value", () => {
    const probe = parseDoctorProbe("virsh=9.0.0\nvirsh=evil\n\nnot a line\nUPPER=x\nuser=ops\n");
    expect([...probe.entries()]).toEqual([
      ["virsh", "9.0.0"],
      ["user", "ops"],
    ]);
  });
});

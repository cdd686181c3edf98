/**
 * The argv builders behind copy-out, templates, volumes and imports: exact argv, so that a change
 * to what runs on a host shows up here first.
 */
import { describe, expect, it } from "vitest";

import {
  attachDiskArgs,
  detachDiskArgs,
  inactiveDefinitionArgs,
} from "../../core/drivers/libvirt/domain-args.js";
import { copyOutArgs, fullCopyArgs, overlayArgs } from "../../core/drivers/qemu-img/copy-args.js";

const uri = "qemu:///system";
const uuid = "13f71cc3-b118-4340-a65b-6c39d1ff9a3e";

describe("qemu-img argv for new images", () => {
  it("copies a qcow2 snapshot out owner-only, by id and tag, shared while the VM runs", () => {
    expect(
      copyOutArgs({
        source: "/img/a,b.qcow2",
        snapshotId: "3",
        snapshotTag: "snapkeep:manual:x",
        output: "/out/vda.qcow2",
        shared: true,
        compression: "zstd",
      }),
    ).toEqual([
      "sh",
      "-c",
      'umask 077 && exec "$@"',
      "snapkeep-convert",
      "qemu-img",
      "convert",
      "-p",
      "-U",
      "--image-opts",
      "-l",
      "snapshot.id=3,snapshot.name=snapkeep:manual:x",
      "-O",
      "qcow2",
      "-c",
      "-o",
      "compression_type=zstd",
      "driver=qcow2,file.driver=file,file.filename=/img/a,,b.qcow2",
      "/out/vda.qcow2",
    ]);
  });

  it("copies an LVM snapshot device out as raw, uncompressed for a template", () => {
    expect(
      copyOutArgs({ device: "/dev/vg/snap", output: "/t/x.tmp", shared: false, compression: "none" }),
    ).toEqual([
      "sh",
      "-c",
      'umask 077 && exec "$@"',
      "snapkeep-convert",
      "qemu-img",
      "convert",
      "-p",
      "-f",
      "raw",
      "-O",
      "qcow2",
      "/dev/vg/snap",
      "/t/x.tmp",
    ]);
  });

  it("makes a linked clone on a template, or a full copy of it", () => {
    expect(overlayArgs("/t/base.qcow2", "/img/new-vda.qcow2")).toEqual([
      "qemu-img",
      "create",
      "-q",
      "-f",
      "qcow2",
      "-F",
      "qcow2",
      "-b",
      "/t/base.qcow2",
      "/img/new-vda.qcow2",
    ]);
    expect(fullCopyArgs("/t/base.qcow2", "/img/new-vda.qcow2")).toEqual([
      "qemu-img",
      "convert",
      "-q",
      "-O",
      "qcow2",
      "/t/base.qcow2",
      "/img/new-vda.qcow2",
    ]);
  });
});

describe("virsh argv for a domain's disks", () => {
  it("attaches a qcow2 image as a virtio disk: read-only on request, into the running VM when it runs", () => {
    const disk = { uuid, source: "/v/data.qcow2", target: "vdb" };
    const common = [
      "virsh",
      "-q",
      "-c",
      uri,
      "attach-disk",
      "--domain",
      uuid,
      "--source",
      "/v/data.qcow2",
      "--target",
      "vdb",
      "--driver",
      "qemu",
      "--subdriver",
      "qcow2",
      "--targetbus",
      "virtio",
    ];
    expect(attachDiskArgs(uri, { ...disk, readonly: true, live: true })).toEqual([
      ...common,
      "--mode",
      "readonly",
      "--persistent",
    ]);
    expect(attachDiskArgs(uri, { ...disk, readonly: false, live: false })).toEqual([...common, "--config"]);
  });

  it("detaches from the definition, and from the running VM when it runs", () => {
    expect(detachDiskArgs(uri, uuid, "vdb", true)).toEqual([
      "virsh",
      "-q",
      "-c",
      uri,
      "detach-disk",
      "--domain",
      uuid,
      "--target",
      "vdb",
      "--persistent",
    ]);
    expect(detachDiskArgs(uri, uuid, "vdb", false).at(-1)).toBe("--config");
  });

  it("reads the definition kept for the next start", () => {
    expect(inactiveDefinitionArgs(uri, uuid)).toEqual([
      "virsh",
      "-q",
      "-c",
      uri,
      "dumpxml",
      "--inactive",
      "--domain",
      uuid,
    ]);
  });
});

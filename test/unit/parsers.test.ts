import { readFileSync } from "node:fs";

const BATCH_SEPARATOR = "@@snapkeep-0123456789abcdef@@";
import { describe, expect, it } from "vitest";
import {
  parseDomainXml,
  parseDomState,
  parseUuidList,
  snapshotBlocker,
  splitBatch,
} from "../../core/drivers/libvirt/parse.js";
import { batchArgs, dumpXmlCommand, isUuid, queryBlockCommand } from "../../core/drivers/libvirt/args.js";
import { parseImageInfo, parseImageInfoBatch } from "../../core/drivers/qemu-img/parse.js";
import { parseQmpReply, parseQueryBlock, snapshotTransaction } from "../../core/drivers/qmp/commands.js";
import {
  imageInfoBatchArgs,
  INFO_BATCH_MARKER,
  qcow2ImageOpts,
  snapshotApplyArgs,
} from "../../core/drivers/qemu-img/args.js";
import { buildLabDomainXml } from "../../core/drivers/libvirt/lab-xml.js";

const fixture = (path: string): string =>
  readFileSync(new URL(`../fixtures/${path}`, import.meta.url), "utf8");

describe("domain XML (real virsh dumpxml output)", () => {
  it("reads an inactive domain: no runtime id, disks with roles", () => {
    const domain = parseDomainXml(fixture("virsh/dumpxml-shutoff-two-disks.xml"));
    expect(domain).toMatchObject({
      name: "sk-probe",
      uuid: "13f71cc3-b118-4340-a65b-6c39d1ff9a3e",
      active: false,
      labOwner: null,
    });
    expect(domain.disks.map((d) => [d.target, d.role, d.format, d.source, d.bootOrder, d.alias])).toEqual([
      ["vda", "root", "qcow2", "/var/lib/libvirt/images/t/root.qcow2", 1, null],
      ["vdb", "additional", "qcow2", "/var/lib/libvirt/images/t/data.qcow2", null, null],
    ]);
  });

  it("reads a running domain's live XML: runtime id and device aliases", () => {
    const domain = parseDomainXml(fixture("virsh/dumpxml-running-two-disks.xml"));
    expect(domain.active).toBe(true);
    expect(domain.disks.map((d) => d.alias)).toEqual(["virtio-disk0", "virtio-disk1"]);
    expect(domain.guestAgentChannel).toBe(false);
    const withAgent = fixture("virsh/dumpxml-running-two-disks.xml").replace(
      "</devices>",
      "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel></devices>",
    );
    expect(parseDomainXml(withAgent).guestAgentChannel).toBe(true);
  });

  it("keeps names exactly, entities decoded, digits and spaces preserved", () => {
    const xml = buildLabDomainXml({
      name: ` 007 it's "<x>" & $(y) `,
      virtType: "kvm",
      memoryMiB: 32,
      owner: "o'wner",
      uuid: "00000000-0000-0000-0000-000000000001",
      disks: [{ path: "/i/a,b.qcow2", target: "vda", format: "qcow2" }],
    });
    const domain = parseDomainXml(xml);
    expect(domain.name).toBe(` 007 it's "<x>" & $(y) `);
    expect(domain.labOwner).toBe("o'wner");
    expect(domain.labFiles).toEqual(["/i/a,b.qcow2"]);
    // A copy under another UUID (virt-clone keeps the metadata) is not the lab's VM.
    expect(
      parseDomainXml(
        xml.replace(
          "<uuid>00000000-0000-0000-0000-000000000001</uuid>",
          "<uuid>00000000-0000-0000-0000-000000000002</uuid>",
        ),
      ).labOwner,
    ).toBeNull();
    expect(domain.disks[0]?.source).toBe("/i/a,b.qcow2");
  });

  it("picks the root disk by boot order, else the first hard disk; CD-ROMs are never root", () => {
    const xml = `<domain><name>v</name><uuid>u</uuid><devices>
      <disk type='file' device='cdrom'><source file='/iso'/><target dev='sda'/><readonly/></disk>
      <disk type='file' device='disk'><driver type='qcow2'/><source file='/a'/><target dev='vda'/></disk>
      <disk type='file' device='disk'><driver type='qcow2'/><source file='/b'/><target dev='vdb'/><boot order='2'/></disk>
    </devices></domain>`;
    expect(parseDomainXml(xml).disks.map((d) => [d.target, d.role])).toEqual([
      ["sda", "additional"],
      ["vda", "additional"],
      ["vdb", "root"],
    ]);
    const noBoot = xml.replace("<boot order='2'/>", "");
    expect(parseDomainXml(noBoot).disks.find((d) => d.role === "root")?.target).toBe("vda");
  });

  it("says why a disk cannot be snapshotted", () => {
    const base = {
      target: "vdb",
      device: "disk",
      type: "file",
      source: "/x.img",
      format: "qcow2",
      readonly: false,
      bootOrder: null,
      alias: null,
      role: "additional" as const,
    };
    expect(snapshotBlocker(base)).toBeNull();
    expect(snapshotBlocker({ ...base, format: "raw" })).toMatch(/^vdb is in raw format/);
    expect(snapshotBlocker({ ...base, device: "cdrom" })).toMatch(/CD-ROM/);
    expect(snapshotBlocker({ ...base, type: "block", source: "/dev/vg/lv" })).toBeNull();
    expect(snapshotBlocker({ ...base, readonly: true })).toMatch(/read-only/);
    expect(snapshotBlocker({ ...base, source: "nbd:host:1" })).toMatch(/absolute path/);
  });

  it("rejects output that is not a domain", () => {
    expect(() => parseDomainXml("<network/>")).toThrow(/domain/);
  });
});

describe("virsh lists and states", () => {
  it("parses --uuid lists with the trailing blank line", () => {
    expect(parseUuidList("13f71cc3-b118-4340-a65b-6c39d1ff9a3e\n\n")).toEqual([
      "13f71cc3-b118-4340-a65b-6c39d1ff9a3e",
    ]);
    expect(parseUuidList("\n")).toEqual([]);
  });
  it("maps domstate words and unknown text", () => {
    expect(parseDomState("shut off\n\n")).toBe("shut off");
    expect(parseDomState("running\n")).toBe("running");
    expect(parseDomState("something new\n")).toBe("unknown");
  });
});

describe("qemu-img info JSON", () => {
  it("reads snapshots with ids as strings and times from sec+nsec", () => {
    const info = parseImageInfo(fixture("qemu-img/info-with-snapshot.json"));
    expect(info.snapshots).toHaveLength(1);
    expect(info.snapshots[0]).toMatchObject({ id: "1", name: "snapkeep:manual:a b $(x)", vmStateSize: 0 });
    expect(info.snapshots[0]?.createdAt.toISOString()).toBe("2026-11-26T10:00:12.073Z");
    expect(info.virtualSize).toBe(33554432);
  });
  it("treats a missing snapshots key as none", () => {
    expect(parseImageInfo(fixture("qemu-img/info-no-snapshots.json")).snapshots).toEqual([]);
  });
  it("refuses non-JSON and wrong shapes with a clear error", () => {
    expect(() => parseImageInfo("qemu-img: Could not open")).toThrow(/did not print JSON/);
    expect(() => parseImageInfo('{"format":"qcow2"}')).toThrow(/unexpected shape/);
  });
});

describe("QMP", () => {
  it("maps query-block devices to aliases and node names", () => {
    const devices = parseQueryBlock(fixture("qmp/query-block-two-disks.json"));
    expect(devices.map((d) => [d.alias, d.nodeName, d.file])).toEqual([
      ["virtio-disk0", "libvirt-2-format", "/var/lib/libvirt/images/t/root.qcow2"],
      ["virtio-disk1", "libvirt-1-format", "/var/lib/libvirt/images/t/data.qcow2"],
    ]);
  });
  it("turns a QMP error reply into a typed error (virsh itself exits 0)", () => {
    const reply = '{"id":"libvirt-418","error":{"class":"GenericError","desc":"Cannot find device=\'x\'"}}';
    expect(() => parseQmpReply(reply, "the snapshot")).toThrow(
      /QEMU refused the snapshot: Cannot find device/,
    );
  });
  it("builds one transaction with an action per disk", () => {
    expect(snapshotTransaction(["n1", "n2"], "t")).toEqual({
      execute: "transaction",
      arguments: {
        actions: [
          { type: "blockdev-snapshot-internal-sync", data: { device: "n1", name: "t" } },
          { type: "blockdev-snapshot-internal-sync", data: { device: "n2", name: "t" } },
        ],
      },
    });
  });
});

describe("qemu-img argv", () => {
  it("pins the qcow2 format and escapes commas in file names", () => {
    expect(qcow2ImageOpts("/a,b/c.qcow2")).toBe("driver=qcow2,file.driver=file,file.filename=/a,,b/c.qcow2");
    expect(snapshotApplyArgs("/x.qcow2", "3")).toEqual([
      "qemu-img",
      "snapshot",
      "-q",
      "--image-opts",
      "-a",
      "3",
      "driver=qcow2,file.driver=file,file.filename=/x.qcow2",
    ]);
  });
});

describe("batched calls", () => {
  it("parses one result per image from the qemu-img batch, telling a missing file from data", () => {
    const results = parseImageInfoBatch(fixture("qemu-img/info-batch.txt"), INFO_BATCH_MARKER, 3);
    expect(
      results.map((r) => (r.ok ? ["ok", r.image.format, r.image.snapshots.length] : ["failed", r.missing])),
    ).toEqual([
      ["ok", "qcow2", 1],
      ["failed", true],
      ["ok", "raw", 0],
    ]);
    expect(() => parseImageInfoBatch(fixture("qemu-img/info-batch.txt"), INFO_BATCH_MARKER, 4)).toThrow(
      /3 results for 4 images/,
    );
  });

  it("passes image paths to the constant script only as positional arguments", () => {
    const args = imageInfoBatchArgs([{ path: "/a/'$(x)'.qcow2", format: "qcow2" }]);
    expect(args.slice(0, 2)).toEqual(["sh", "-c"]);
    expect(args[2]).not.toContain("$(x)");
    expect(args.slice(3)).toEqual(["snapkeep-info", "qcow2", "/a/'$(x)'.qcow2"]);
  });

  it("joins virsh commands with separators, and refuses anything but fixed words and UUIDs", () => {
    const uuid = "13f71cc3-b118-4340-a65b-6c39d1ff9a3e";
    expect(
      batchArgs("qemu:///system", [dumpXmlCommand(uuid), queryBlockCommand(uuid)], BATCH_SEPARATOR),
    ).toEqual([
      "virsh",
      "-q",
      "-c",
      "qemu:///system",
      `dumpxml --domain ${uuid} ; echo ${BATCH_SEPARATOR} ; qemu-monitor-command --domain ${uuid} '{"execute":"query-block"}'`,
    ]);
    expect(() => batchArgs("u", [["dumpxml", "--domain", "web; destroy x"]], BATCH_SEPARATOR)).toThrow(
      /not a fixed word or a UUID/,
    );
    expect(() => batchArgs("u", [["dumpxml", "--domain", "it's"]], BATCH_SEPARATOR)).toThrow();
    expect(isUuid(uuid)).toBe(true);
    expect(isUuid(`${uuid} `)).toBe(false);
  });

  it("splits a batch into one segment per command, empty for a failed one", () => {
    expect(splitBatch(`a\n${BATCH_SEPARATOR}${BATCH_SEPARATOR}c`, BATCH_SEPARATOR, 3)).toEqual([
      "a\n",
      "",
      "c",
    ]);
    expect(() => splitBatch("a", BATCH_SEPARATOR, 2)).toThrow(/1 results for 2 commands/);
  });
});

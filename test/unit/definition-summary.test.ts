import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  definitionSummarySchema,
  diffDefinitions,
  summariseDefinition,
  type DefinitionSummary,
} from "../../core/domain/definition-summary.js";

const fixture = (path: string): string =>
  readFileSync(new URL(`../fixtures/${path}`, import.meta.url), "utf8");

const LAB = fixture("virsh/dumpxml-running-uefi-lab.xml");
const RUNNING = fixture("virsh/dumpxml-running-two-disks.xml");
const SHUTOFF = fixture("virsh/dumpxml-shutoff-two-disks.xml");

/** A small inactive definition in libvirt's layout; each part replaces the default one. */
function domainXml(parts: { memory?: string; vcpu?: string; os?: string; devices?: string } = {}): string {
  return `<domain type='kvm'>
  <name>t</name>
  <uuid>00000000-0000-0000-0000-0000000000aa</uuid>
  ${parts.memory ?? "<memory unit='KiB'>2097152</memory>"}
  ${parts.vcpu ?? "<vcpu placement='static'>2</vcpu>"}
  ${parts.os ?? "<os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>"}
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    ${parts.devices ?? ""}
  </devices>
</domain>
`;
}

const disk = (target: string, file: string, format = "qcow2"): string => `
    <disk type='file' device='disk'>
      <driver name='qemu' type='${format}'/>
      <source file='${file}'/>
      <target dev='${target}' bus='virtio'/>
    </disk>`;

const nic = (type: string, source: string, mac: string | null, model = "virtio"): string => `
    <interface type='${type}'>
      ${mac === null ? "" : `<mac address='${mac}'/>`}
      <source ${source}/>
      <model type='${model}'/>
    </interface>`;

/** A summary with nothing in it but what a test sets. */
const summary = (over: Partial<DefinitionSummary> = {}): DefinitionSummary => ({
  memoryKiB: 2097152,
  vcpus: 2,
  firmware: "bios",
  machine: "pc-q35-7.2",
  disks: [],
  nics: [],
  ...over,
});

const descriptions = (then: DefinitionSummary, now: DefinitionSummary): string[] =>
  diffDefinitions(then, now).map((change) => change.description);

describe("summariseDefinition (real virsh dumpxml output)", () => {
  it("summarises an inactive BIOS domain with two disks and no NIC", () => {
    expect(summariseDefinition(SHUTOFF)).toEqual({
      memoryKiB: 65536,
      vcpus: 1,
      firmware: "bios",
      machine: "pc-i440fx-7.2",
      disks: [
        {
          target: "vda",
          device: "disk",
          source: "/var/lib/libvirt/images/t/root.qcow2",
          format: "qcow2",
          bus: "virtio",
        },
        {
          target: "vdb",
          device: "disk",
          source: "/var/lib/libvirt/images/t/data.qcow2",
          format: "qcow2",
          bus: "virtio",
        },
      ],
      nics: [],
    });
  });

  it("summarises the live XML of the same domain identically (runtime details are left out)", () => {
    expect(summariseDefinition(RUNNING)).toEqual(summariseDefinition(SHUTOFF));
    expect(diffDefinitions(summariseDefinition(RUNNING), summariseDefinition(SHUTOFF))).toEqual([]);
  });

  it("summarises a running UEFI lab VM: block disk, CD-ROM, network and bridge NICs", () => {
    expect(summariseDefinition(LAB)).toEqual({
      memoryKiB: 1048576,
      vcpus: 2,
      firmware: "uefi",
      machine: "pc-q35-7.2",
      disks: [
        {
          target: "vda",
          device: "disk",
          source: "/var/lib/libvirt/images/sk-lab/web-root.qcow2",
          format: "qcow2",
          bus: "virtio",
        },
        { target: "vdb", device: "disk", source: "/dev/vg0/web-data", format: "raw", bus: "virtio" },
        {
          target: "sda",
          device: "cdrom",
          source: "/var/lib/libvirt/images/iso/debian-12.7.0-amd64-netinst.iso",
          format: "raw",
          bus: "sata",
        },
      ],
      // The live XML adds bridge='virbr0' to the network NIC's source: the network's name wins.
      nics: [
        { mac: "52:54:00:3a:91:0c", model: "virtio", network: "default" },
        { mac: "52:54:00:7e:14:b2", model: "virtio", network: "br0" },
      ],
    });
  });

  it("stays compact enough for the settings file", () => {
    expect(JSON.stringify(summariseDefinition(LAB)).length).toBeLessThan(700);
  });
});

describe("summariseDefinition: memory units", () => {
  it.each([
    ["", "1048576", 1048576],
    ["unit='KiB'", "1048576", 1048576],
    ["unit='k'", "4096", 4096],
    ["unit='K'", "4096", 4096],
    ["unit='KB'", "1000", 977],
    ["unit='b'", "1048576", 1024],
    ["unit='bytes'", "1048576", 1024],
    // libvirt rounds up to whole KiB.
    ["unit='bytes'", "1500", 2],
    ["unit='MiB'", "512", 524288],
    ["unit='M'", "512", 524288],
    ["unit='mib'", "512", 524288],
    ["unit='MB'", "1", 977],
    ["unit='GiB'", "2", 2097152],
    ["unit='G'", "4", 4194304],
    ["unit='GB'", "1", 976563],
    ["unit='TiB'", "1", 1073741824],
    ["unit='T'", "2", 2147483648],
    ["unit='TB'", "1", 976562500],
  ])("<memory %s>%s</memory> is %d KiB", (unit, value, kib) => {
    expect(summariseDefinition(domainXml({ memory: `<memory ${unit}>${value}</memory>` })).memoryKiB).toBe(
      kib,
    );
  });

  it.each([
    ["an unknown unit", "<memory unit='furlong'>2</memory>"],
    ["a value that is not a number", "<memory unit='GiB'>lots</memory>"],
    ["a negative value", "<memory unit='GiB'>-2</memory>"],
    ["no <memory> at all", ""],
  ])("is null for %s", (_case, memory) => {
    expect(summariseDefinition(domainXml({ memory })).memoryKiB).toBeNull();
  });
});

describe("summariseDefinition: vCPUs and machine", () => {
  it("reads the <vcpu> count (the maximum), whatever the attributes", () => {
    const xml = domainXml({ vcpu: "<vcpu placement='static' current='2'>4</vcpu>" });
    expect(summariseDefinition(xml).vcpus).toBe(4);
    expect(summariseDefinition(domainXml({ vcpu: "<vcpu>8</vcpu>" })).vcpus).toBe(8);
  });

  it("is null for a missing or unreadable count or machine type", () => {
    const xml = domainXml({ vcpu: "<vcpu>many</vcpu>", os: "<os><type arch='x86_64'>hvm</type></os>" });
    expect(summariseDefinition(xml)).toMatchObject({ vcpus: null, machine: null });
    expect(summariseDefinition(domainXml({ vcpu: "" })).vcpus).toBeNull();
  });
});

describe("summariseDefinition: firmware", () => {
  const firmwareOf = (os: string): string => summariseDefinition(domainXml({ os })).firmware;
  const type = "<type arch='x86_64' machine='pc-q35-7.2'>hvm</type>";

  it("is bios without a firmware request or a pflash loader", () => {
    expect(firmwareOf(`<os>${type}<boot dev='hd'/></os>`)).toBe("bios");
    expect(firmwareOf(`<os firmware='bios'>${type}</os>`)).toBe("bios");
    // A custom SeaBIOS image is still BIOS.
    expect(firmwareOf(`<os>${type}<loader type='rom'>/usr/share/seabios/bios.bin</loader></os>`)).toBe(
      "bios",
    );
  });

  it("is uefi for <os firmware='efi'> and for a pflash loader", () => {
    expect(firmwareOf(`<os firmware='efi'>${type}</os>`)).toBe("uefi");
    expect(
      firmwareOf(
        `<os>${type}<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader></os>`,
      ),
    ).toBe("uefi");
  });

  it("adds secure-boot for a secure loader", () => {
    const loader =
      "<loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.ms.fd</loader>";
    expect(firmwareOf(`<os>${type}${loader}</os>`)).toBe("uefi secure-boot");
    expect(firmwareOf(`<os firmware='efi'>${type}${loader}</os>`)).toBe("uefi secure-boot");
    expect(
      firmwareOf(`<os>${type}<loader readonly='yes' type='pflash' secure='no'>/x.fd</loader></os>`),
    ).toBe("uefi");
  });

  it("adds secure-boot for a requested firmware feature, as an unresolved inactive definition has it", () => {
    const features = (enabled: string): string =>
      `<firmware><feature enabled='${enabled}' name='enrolled-keys'/><feature enabled='${enabled}' name='secure-boot'/></firmware>`;
    expect(firmwareOf(`<os firmware='efi'>${type}${features("yes")}</os>`)).toBe("uefi secure-boot");
    expect(firmwareOf(`<os firmware='efi'>${type}${features("no")}</os>`)).toBe("uefi");
  });
});

describe("summariseDefinition: disks and NICs", () => {
  it("reads CD-ROMs with and without a medium, and volume and network sources", () => {
    const devices = `
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='sdb' bus='sata'/>
      <readonly/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/iso/virtio-win.iso'/>
      <target dev='sdc' bus='sata'/>
      <readonly/>
    </disk>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source pool='default' volume='data.qcow2'/>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='rbd' name='rbd-pool/vm-disk'/>
      <target dev='vdd'/>
    </disk>`;
    expect(summariseDefinition(domainXml({ devices })).disks).toEqual([
      { target: "sdb", device: "cdrom", source: null, format: "raw", bus: "sata" },
      { target: "sdc", device: "cdrom", source: "/iso/virtio-win.iso", format: "raw", bus: "sata" },
      { target: "vdc", device: "disk", source: "default/data.qcow2", format: "qcow2", bus: "virtio" },
      { target: "vdd", device: "disk", source: "rbd-pool/vm-disk", format: "raw", bus: null },
    ]);
  });

  it("reads a single disk and a single NIC (not lists in the parsed XML)", () => {
    const xml = domainXml({ devices: disk("vda", "/a.qcow2") + nic("network", "network='default'", null) });
    expect(summariseDefinition(xml)).toMatchObject({
      disks: [{ target: "vda", source: "/a.qcow2" }],
      nics: [{ mac: null, model: "virtio", network: "default" }],
    });
  });

  it("names the network, bridge or host device of network, bridge and direct NICs", () => {
    const devices = [
      nic("network", "network='default'", "52:54:00:00:00:01"),
      nic(
        "network",
        "network='isolated' portid='0b6b1a4e-5d0e-4f0e-9a55-2d6c4f3e8a71' bridge='virbr1'",
        "52:54:00:00:00:02",
      ),
      nic("bridge", "bridge='br0'", "52:54:00:00:00:03", "e1000e"),
      nic("direct", "dev='enp3s0' mode='bridge'", "52:54:00:00:00:04"),
      "<interface type='user'><mac address='52:54:00:00:00:05'/></interface>",
    ].join("");
    expect(summariseDefinition(domainXml({ devices })).nics).toEqual([
      { mac: "52:54:00:00:00:01", model: "virtio", network: "default" },
      { mac: "52:54:00:00:00:02", model: "virtio", network: "isolated" },
      { mac: "52:54:00:00:00:03", model: "e1000e", network: "br0" },
      { mac: "52:54:00:00:00:04", model: "virtio", network: "enp3s0" },
      { mac: "52:54:00:00:00:05", model: null, network: null },
    ]);
  });

  it("keeps values as written: entities decoded, nothing parsed as a number", () => {
    const xml = domainXml({
      devices: disk("vda", "/vm/a&amp;b&#10;c.qcow2") + nic("bridge", "bridge='0100'", null),
    });
    expect(summariseDefinition(xml)).toMatchObject({
      disks: [{ source: "/vm/a&b\nc.qcow2" }],
      nics: [{ network: "0100" }],
    });
  });
});

describe("summariseDefinition: not a domain", () => {
  const invalid = expect.objectContaining({ name: "SnapkeepError", code: "INVALID_INPUT" });

  it.each([
    ["an empty string", ""],
    ["a network definition", "<network><name>default</name></network>"],
    ["a snapshot's XML, which holds a domain", `<domainsnapshot><name>s1</name>${SHUTOFF}</domainsnapshot>`],
    ["an empty domain", "<domain/>"],
    ["truncated XML", SHUTOFF.slice(0, SHUTOFF.indexOf("</devices>"))],
    ["two root elements", `${SHUTOFF}${SHUTOFF}`],
    ["not XML", '{"memoryKiB": 1}'],
  ])("refuses %s", (_case, xml) => {
    expect(() => summariseDefinition(xml)).toThrow(invalid);
    expect(() => summariseDefinition(xml)).toThrow("The VM definition is not a libvirt domain XML.");
  });

  it("accepts an XML declaration and comments around the domain", () => {
    const xml = `<?xml version="1.0"?>\n<!-- saved by virsh -->\n${SHUTOFF}`;
    expect(summariseDefinition(xml)).toEqual(summariseDefinition(SHUTOFF));
  });
});

describe("diffDefinitions", () => {
  it("finds nothing between identical summaries", () => {
    expect(diffDefinitions(summariseDefinition(LAB), summariseDefinition(LAB))).toEqual([]);
    expect(diffDefinitions(summary(), summary())).toEqual([]);
  });

  it("describes memory in the largest unit that shows it exactly", () => {
    expect(descriptions(summary({ memoryKiB: 2097152 }), summary({ memoryKiB: 4194304 }))).toEqual([
      "memory: 2 GiB then, 4 GiB now",
    ]);
    expect(descriptions(summary({ memoryKiB: 65536 }), summary({ memoryKiB: 1572864 }))).toEqual([
      "memory: 64 MiB then, 1.5 GiB now",
    ]);
    // 2 GiB and 4 KiB more must not read as "2 GiB": the two amounts would look the same.
    expect(descriptions(summary({ memoryKiB: 1126400 }), summary({ memoryKiB: 2097156 }))).toEqual([
      "memory: 1100 MiB then, 2097156 KiB now",
    ]);
    expect(descriptions(summary({ memoryKiB: null }), summary({ memoryKiB: 1000 }))).toEqual([
      "memory: unknown then, 1000 KiB now",
    ]);
  });

  it("describes vCPUs, firmware and machine type", () => {
    expect(
      diffDefinitions(
        summary({ vcpus: 2, firmware: "bios", machine: "pc-i440fx-7.2" }),
        summary({ vcpus: 4, firmware: "uefi secure-boot", machine: "pc-q35-8.2" }),
      ),
    ).toEqual([
      { what: "vcpus", description: "vCPUs: 2 then, 4 now" },
      { what: "firmware", description: "firmware: bios then, uefi secure-boot now" },
      { what: "machine", description: "machine type: pc-i440fx-7.2 then, pc-q35-8.2 now" },
    ]);
  });

  it("matches disks by target and reports added, removed and changed ones", () => {
    const then = summariseDefinition(
      domainXml({
        devices: disk("vda", "/a.qcow2") + disk("vdb", "/data.qcow2") + disk("vdc", "/old.raw", "raw"),
      }),
    );
    const now = summariseDefinition(
      domainXml({
        // A different order in the XML is no change.
        devices:
          disk("vdc", "/old.qcow2") +
          disk("vdd", "/var/lib/libvirt/images/x.qcow2") +
          disk("vda", "/b.qcow2"),
      }),
    );
    expect(diffDefinitions(then, now)).toEqual([
      { what: "disk", description: "disk vda: source /a.qcow2 then, /b.qcow2 now" },
      { what: "disk", description: "disk vdb was removed since the snapshot" },
      { what: "disk", description: "disk vdc: source /old.raw then, /old.qcow2 now" },
      { what: "disk", description: "disk vdc: format raw then, qcow2 now" },
      {
        what: "disk",
        description: "disk vdd was added since the snapshot (/var/lib/libvirt/images/x.qcow2)",
      },
    ]);
  });

  it("reports CD-ROM media and a drive that became a disk", () => {
    const cdrom = (target: string, source: string | null) => ({
      target,
      device: "cdrom",
      source,
      format: "raw",
      bus: "sata",
    });
    const then = summary({ disks: [cdrom("sda", "/iso/debian.iso"), cdrom("sdb", null)] });
    const now = summary({
      disks: [
        cdrom("sda", null),
        { target: "sdb", device: "disk", source: "/b.qcow2", format: "qcow2", bus: "sata" },
        cdrom("sdc", null),
      ],
    });
    expect(descriptions(then, now)).toEqual([
      "CD-ROM sda: source /iso/debian.iso then, no medium now",
      "CD-ROM sdb: device cdrom then, disk now",
      "CD-ROM sdb: source no medium then, /b.qcow2 now",
      "CD-ROM sdb: format raw then, qcow2 now",
      "CD-ROM sdc was added since the snapshot",
    ]);
  });

  it("orders disks by target as libvirt counts them: sda before vda, vdz before vdaa", () => {
    const d = (target: string) => ({ target, device: "disk", source: null, format: null, bus: null });
    const now = summary({ disks: ["vdaa", "vdb", "xvda", "vdz", "sda", "hdc"].map(d) });
    expect(descriptions(summary(), now).map((text) => text.split(" ")[1])).toEqual([
      "hdc",
      "sda",
      "vdb",
      "vdz",
      "vdaa",
      "xvda",
    ]);
  });

  it("matches NICs by MAC address, in any order and case", () => {
    const then = summariseDefinition(LAB);
    const reordered = { ...then, nics: [...then.nics].reverse() };
    expect(diffDefinitions(then, reordered)).toEqual([]);
    const upper = { ...then, nics: then.nics.map((n) => ({ ...n, mac: n.mac?.toUpperCase() ?? null })) };
    expect(diffDefinitions(then, upper)).toEqual([]);
  });

  it("reports added, removed and changed NICs", () => {
    const then = summary({
      nics: [
        { mac: "52:54:00:3a:91:0c", model: "virtio", network: "default" },
        { mac: "52:54:00:00:00:09", model: "virtio", network: "default" },
      ],
    });
    const now = summary({
      nics: [
        { mac: "52:54:00:3a:91:0c", model: "e1000e", network: "br0" },
        { mac: "52:54:00:aa:bb:cc", model: "virtio", network: "enp3s0" },
      ],
    });
    expect(diffDefinitions(then, now)).toEqual([
      { what: "nic", description: "NIC 52:54:00:3a:91:0c: network default then, br0 now" },
      { what: "nic", description: "NIC 52:54:00:3a:91:0c: model virtio then, e1000e now" },
      { what: "nic", description: "NIC 52:54:00:00:00:09 was removed since the snapshot" },
      { what: "nic", description: "NIC 52:54:00:aa:bb:cc was added since the snapshot (on enp3s0)" },
    ]);
  });

  it("matches NICs without a MAC by their position among those without one", () => {
    const n = (mac: string | null, network: string | null) => ({ mac, model: "virtio", network });
    const then = summary({ nics: [n(null, "default"), n("52:54:00:00:00:01", "br0"), n(null, "br1")] });
    const now = summary({
      nics: [n("52:54:00:00:00:01", "br0"), n(null, "default"), n(null, "br2"), n(null, null)],
    });
    expect(descriptions(then, now)).toEqual([
      "NIC #2 without a MAC address: network br1 then, br2 now",
      "NIC #3 without a MAC address was added since the snapshot",
    ]);
  });

  it("lists memory, vCPUs, firmware, machine, disks, NICs in that order", () => {
    const changes = diffDefinitions(summariseDefinition(SHUTOFF), summariseDefinition(LAB));
    expect(changes.map((change) => change.what)).toEqual([
      "memory",
      "vcpus",
      "firmware",
      "machine",
      "disk",
      "disk",
      "disk",
      "disk",
      "nic",
      "nic",
    ]);
    expect(changes.map((change) => change.description)).toEqual([
      "memory: 64 MiB then, 1 GiB now",
      "vCPUs: 1 then, 2 now",
      "firmware: bios then, uefi now",
      "machine type: pc-i440fx-7.2 then, pc-q35-7.2 now",
      "CD-ROM sda was added since the snapshot (/var/lib/libvirt/images/iso/debian-12.7.0-amd64-netinst.iso)",
      "disk vda: source /var/lib/libvirt/images/t/root.qcow2 then, /var/lib/libvirt/images/sk-lab/web-root.qcow2 now",
      "disk vdb: source /var/lib/libvirt/images/t/data.qcow2 then, /dev/vg0/web-data now",
      // Its bus stayed virtio, so only source and format are named.
      "disk vdb: format qcow2 then, raw now",
      "NIC 52:54:00:3a:91:0c was added since the snapshot (on default)",
      "NIC 52:54:00:7e:14:b2 was added since the snapshot (on br0)",
    ]);
  });
});

describe("definitionSummarySchema", () => {
  it("reads back a summary written to the settings file as JSON", () => {
    for (const xml of [LAB, SHUTOFF]) {
      const written = summariseDefinition(xml);
      const read = definitionSummarySchema.parse(JSON.parse(JSON.stringify(written)));
      expect(read).toEqual(written);
      expect(diffDefinitions(written, read)).toEqual([]);
    }
  });

  it("keeps nulls and drops keys a later version may add", () => {
    const stored = {
      ...summary({ memoryKiB: null, machine: null, nics: [{ mac: null, model: null, network: null }] }),
      cpuModel: "host-passthrough",
    };
    expect(definitionSummarySchema.parse(JSON.parse(JSON.stringify(stored)))).toEqual(
      summary({ memoryKiB: null, machine: null, nics: [{ mac: null, model: null, network: null }] }),
    );
  });

  it.each([
    ["memory as text", { ...summary(), memoryKiB: "2 GiB" }],
    ["a fractional memory size", { ...summary(), memoryKiB: 1.5 }],
    ["zero vCPUs", { ...summary(), vcpus: 0 }],
    ["no firmware", { ...summary(), firmware: "" }],
    ["no disk list", { ...summary(), disks: undefined }],
    [
      "a disk without a target",
      { ...summary(), disks: [{ device: "disk", source: null, format: null, bus: null }] },
    ],
    ["a NIC with a numeric MAC", { ...summary(), nics: [{ mac: 5, model: null, network: null }] }],
  ])("refuses %s", (_case, stored) => {
    expect(definitionSummarySchema.safeParse(stored).success).toBe(false);
  });
});

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { XMLParser } from "fast-xml-parser";
import { describe, expect, it } from "vitest";
import {
  buildRestoredDefinition,
  rewriteDefinitionForImport,
  type DefinitionNote,
  type RestoreHost,
  type RestoredDefinition,
} from "../../core/drivers/libvirt/restored-definition.js";
import { LAB_NAMESPACE, parseDomainXml, type XmlDomain } from "../../core/drivers/libvirt/parse.js";

const fixture = (path: string): string =>
  readFileSync(new URL(`../fixtures/${path}`, import.meta.url), "utf8");

const LAB = fixture("virsh/dumpxml-running-uefi-lab.xml");
const RUNNING = fixture("virsh/dumpxml-running-two-disks.xml");
const SHUTOFF = fixture("virsh/dumpxml-shutoff-two-disks.xml");
const VIRT_INSTALL = fixture("domains/virt-install-q35-uefi.xml");

const HOST: RestoreHost = { networks: ["default"], bridges: ["br-lan"] };

const build = (
  xml: string,
  name: string,
  disks: Record<string, string>,
  host: RestoreHost = HOST,
): RestoredDefinition => buildRestoredDefinition(xml, { name, disks: new Map(Object.entries(disks)), host });

/**
 * parseDomainXml insists on a <uuid> (every domain libvirt prints has one), and the restored
 * definition rightly has none: a placeholder lets the product's own parser read the result.
 */
function reparse(xml: string): XmlDomain {
  expect(xml).not.toContain("<uuid");
  return parseDomainXml(xml.replace("</name>", "</name><uuid>00000000-0000-0000-0000-0000000000aa</uuid>"));
}

// A plain object view of the result.
const plainParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@_",
  parseTagValue: false,
  parseAttributeValue: false,
  htmlEntities: true,
  isArray: (name) =>
    ["disk", "interface", "graphics", "controller", "input", "channel", "redirdev", "serial"].includes(name),
});
type Plain = Record<string, unknown>;
const plainDomain = (xml: string): Plain => (plainParser.parse(xml) as { domain: Plain }).domain;
const node = (value: unknown): Plain => value as Plain;
const list = (value: unknown): Plain[] => (value ?? []) as Plain[];
const devicesOf = (xml: string): Plain => node(plainDomain(xml)["devices"]);

const whats = (notes: readonly DefinitionNote[]): string[] => notes.map((note) => note.what);
const noteFor = (notes: readonly DefinitionNote[], what: string): DefinitionNote | undefined =>
  notes.find((note) => note.what === what);

/** Every absolute path in attribute values and text of the XML. */
function pathsIn(xml: string): string[] {
  return [...xml.matchAll(/='(\/[^']*)'|>\s*(\/[^<]*)</g)].map((match) =>
    (match[1] ?? match[2] ?? "").trim(),
  );
}

describe("buildRestoredDefinition: a definition virt-install made (q35, UEFI, SPICE, TPM)", () => {
  const image = "/var/lib/libvirt/images/restored/db01-vda.qcow2";
  const result = build(VIRT_INSTALL, "db-restored", { vda: image });
  const domain = plainDomain(result.xml);
  const devices = devicesOf(result.xml);

  it("keeps name, memory, vCPUs, CPU, machine and the plain settings", () => {
    const original = plainDomain(VIRT_INSTALL);
    expect(domain["name"]).toBe("db-restored");
    expect(domain["@_type"]).toBe("kvm");
    for (const key of ["memory", "currentMemory", "vcpu", "cpu", "features", "clock", "pm", "on_crash"]) {
      expect(domain[key], key).toEqual(original[key]);
    }
    expect(domain).not.toHaveProperty("uuid");
    expect(domain).not.toHaveProperty("metadata");
  });

  it("asks for UEFI firmware from this host instead of the original's files", () => {
    expect(domain["os"]).toEqual({
      "@_firmware": "efi",
      type: { "@_arch": "x86_64", "@_machine": "pc-q35-7.2", "#text": "hvm" },
      firmware: {
        feature: [
          { "@_enabled": "no", "@_name": "enrolled-keys" },
          { "@_enabled": "no", "@_name": "secure-boot" },
        ],
      },
      boot: { "@_dev": "hd" },
    });
    expect(result.xml).not.toMatch(/OVMF|nvram|loader/);
  });

  it("points the disk at its image and keeps the CD-ROM drive empty", () => {
    expect(list(devices["disk"])).toEqual([
      {
        "@_type": "file",
        "@_device": "disk",
        driver: { "@_name": "qemu", "@_type": "qcow2", "@_discard": "unmap" },
        source: { "@_file": image },
        target: { "@_dev": "vda", "@_bus": "virtio" },
        address: {
          "@_type": "pci",
          "@_domain": "0x0000",
          "@_bus": "0x04",
          "@_slot": "0x00",
          "@_function": "0x0",
        },
      },
      {
        "@_type": "file",
        "@_device": "cdrom",
        target: { "@_dev": "sda", "@_bus": "sata" },
        readonly: "",
        address: { "@_type": "drive", "@_controller": "0", "@_bus": "0", "@_target": "0", "@_unit": "0" },
      },
    ]);
    expect(reparse(result.xml).disks.map((d) => [d.target, d.source])).toEqual([
      ["vda", image],
      ["sda", null],
    ]);
  });

  it("keeps the NIC on the host's network without its MAC, and the plain devices as they were", () => {
    expect(list(devices["interface"])).toEqual([
      {
        "@_type": "network",
        source: { "@_network": "default" },
        model: { "@_type": "virtio" },
        address: {
          "@_type": "pci",
          "@_domain": "0x0000",
          "@_bus": "0x01",
          "@_slot": "0x00",
          "@_function": "0x0",
        },
      },
    ]);
    expect(result.xml).not.toContain("52:54:00");
    const original = devicesOf(VIRT_INSTALL);
    for (const key of [
      "controller",
      "input",
      "video",
      "memballoon",
      "sound",
      "audio",
      "redirdev",
      "rng",
      "tpm",
    ]) {
      expect(devices[key], key).toEqual(original[key]);
    }
    expect(list(devices["controller"])).toHaveLength(12);
    expect(list(devices["serial"])).toEqual(list(original["serial"]));
    expect(devices["console"]).toEqual(original["console"]);
    expect(list(devices["channel"])).toEqual(list(original["channel"]));
    expect(reparse(result.xml).guestAgentChannel).toBe(true);
  });

  it("makes the SPICE console listen on the loopback address only", () => {
    expect(list(devices["graphics"])).toEqual([
      {
        "@_type": "spice",
        "@_autoport": "yes",
        "@_listen": "127.0.0.1",
        listen: { "@_type": "address", "@_address": "127.0.0.1" },
      },
    ]);
  });

  it("says what it kept and dropped in words", () => {
    expect(whats(result.kept)).toEqual([
      "name 'db-restored'",
      "memory 2 GiB",
      "2 vCPUs (CPU host-passthrough)",
      "machine pc-q35-7.2 with UEFI firmware from this host",
      "hypervisor features, clock, what to do on power-off, reboot and crash, power management",
      `disk vda (virtio) → ${image}`,
      "CD-ROM drive sda (empty)",
      "NIC on network 'default' (virtio) with a new MAC address",
      "serial port on a pseudo-terminal",
      "console on a pseudo-terminal",
      "guest agent channel",
      "SPICE agent channel",
      "emulated TPM 2.0",
      "SPICE console on 127.0.0.1",
      "random-number device from /dev/urandom",
      "usb controller, 9 × pci controller, sata controller, virtio-serial controller, tablet (usb), " +
        "mouse (ps2), keyboard (ps2), sound ich9, video qxl, 2 × USB redirection over SPICE, memory balloon",
    ]);
    expect(result.dropped).toEqual([
      { what: "UUID 3e1f6a52-8c0d-4b7e-9f3a-5d2c1b0a9e87", why: "libvirt gives the restored VM a new one" },
      { what: "<metadata>", why: "notes other programs kept about the original VM" },
      {
        what: "firmware file /usr/share/OVMF/OVMF_CODE_4M.fd",
        why: "it is a file of the original host; libvirt picks this host's own UEFI firmware",
      },
      {
        what: "UEFI variable store /var/lib/libvirt/qemu/nvram/db01_VARS.fd",
        why:
          "it is a file of the original host; libvirt makes a fresh store from this host's template " +
          "(boot entries and keys saved in the firmware start from the defaults)",
      },
      {
        what: "emulator /usr/bin/qemu-system-x86_64",
        why: "it names a program for the host to run; libvirt uses this host's own QEMU",
      },
      {
        what: "disc /var/lib/libvirt/images/iso/debian-12.7.0-amd64-netinst.iso in CD-ROM drive sda",
        why: "it is a file or device of the original host; the drive is kept empty",
      },
    ]);
  });

  it("is indented, ends in a newline and gives the same result when applied to its own output", () => {
    expect(result.xml.startsWith("<domain type='kvm'>\n  <name>db-restored</name>\n")).toBe(true);
    expect(result.xml.endsWith("</domain>\n")).toBe(true);
    expect(result.xml).not.toMatch(/\n[ \t]*\n/);
    expect(build(result.xml, "db-restored", { vda: image }).xml).toBe(result.xml);
  });

  const validator = spawnSync("sh", ["-c", "command -v virt-xml-validate && command -v xmllint"]);
  it.skipIf(validator.status !== 0)("is valid against libvirt's domain schema (virt-xml-validate)", () => {
    const dir = mkdtempSync(join(tmpdir(), "sk-defn-"));
    try {
      for (const [i, xml] of [result.xml, build(hostile(), "evil-restored", HOSTILE_DISKS).xml].entries()) {
        const file = join(dir, `domain-${i}.xml`);
        writeFileSync(file, xml);
        const check = spawnSync("virt-xml-validate", [file, "domain"], { encoding: "utf8" });
        expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("buildRestoredDefinition: a running lab VM's live XML", () => {
  const disks = {
    vda: "/var/lib/libvirt/images/imported/web-root.qcow2",
    vdb: "/var/lib/libvirt/images/imported/web-data.qcow2",
  };
  const result = build(LAB, "web-restored", disks, { networks: ["default"], bridges: ["br0"] });

  it("leaves runtime state, the lab marker and security labels behind", () => {
    const copy = reparse(result.xml);
    expect(copy).toMatchObject({ name: "web-restored", active: false, labOwner: null, labFiles: [] });
    expect(plainDomain(result.xml)["@_id"]).toBeUndefined();
    expect(result.xml).not.toMatch(/alias|backingStore|vnet|portid|virbr0|seclabel|\/dev\/pts/);
    expect(result.xml).not.toContain(LAB_NAMESPACE);
  });

  it("turns the block device into a file on its image and keeps its cache settings", () => {
    const [, data] = list(devicesOf(result.xml)["disk"]);
    expect(data).toMatchObject({
      "@_type": "file",
      driver: { "@_name": "qemu", "@_type": "qcow2", "@_cache": "none", "@_io": "native" },
      source: { "@_file": disks.vdb },
    });
    expect(result.xml).not.toContain("/dev/vg0");
  });

  it("drops a hard disk that was not exported, with a note", () => {
    const onlyRoot = build(LAB, "web-root-only", { vda: disks.vda });
    expect(reparse(onlyRoot.xml).disks.map((d) => [d.target, d.source])).toEqual([
      ["vda", disks.vda],
      ["sda", null],
    ]);
    expect(noteFor(onlyRoot.dropped, "disk vdb (/dev/vg0/web-data)")?.why).toBe(
      "its image is not part of this restore",
    );
  });

  it("keeps a websocket as a request for any free port", () => {
    expect(list(devicesOf(result.xml)["graphics"])).toEqual([
      {
        "@_type": "vnc",
        "@_autoport": "yes",
        "@_websocket": "-1",
        "@_listen": "127.0.0.1",
        listen: { "@_type": "address", "@_address": "127.0.0.1" },
      },
    ]);
  });

  it("rebuilds the other virsh fixtures too", () => {
    const two = { vda: "/srv/import/root.qcow2", vdb: "/srv/import/data.qcow2" };
    for (const xml of [RUNNING, SHUTOFF]) {
      const copy = reparse(build(xml, "sk-probe-copy", two).xml);
      expect(copy.disks.map((d) => [d.target, d.source, d.format])).toEqual([
        ["vda", two.vda, "qcow2"],
        ["vdb", two.vdb, "qcow2"],
      ]);
    }
  });
});

const HOSTILE_DISKS = { vda: "/var/lib/libvirt/images/restored/evil-vda.qcow2" };
const ORIGINAL_UUID = "0badc0de-dead-4bee-8f00-123456789abc";
const ORIGINAL_MAC = "52:54:00:de:ad:01";

/** A definition that tries every way out of the guest a domain XML offers. */
function hostile(): string {
  return `<domain type='kvm' id='3' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>evil</name>
  <uuid>${ORIGINAL_UUID}</uuid>
  <metadata><x:y xmlns:x='urn:x' file='/etc/shadow'/></metadata>
  <memory unit='KiB' dumpCore='on'>1048576</memory>
  <memoryBacking><source type='file'/><access mode='shared'/><hugepages/></memoryBacking>
  <vcpu placement='static' cpuset='0-3' toString='/etc/x'>2</vcpu>
  <cputune><emulatorpin cpuset='0'/></cputune>
  <numatune><memory mode='strict' nodeset='0'/></numatune>
  <sysinfo type='fwcfg'><entry name='opt/secret' file='/etc/shadow'/></sysinfo>
  <bootloader>/usr/bin/evil-bootloader</bootloader>
  <bootloader_args>--all</bootloader_args>
  <launchSecurity type='sev'><policy>0x0003</policy></launchSecurity>
  <keywrap><cipher name='aes' state='on'/></keywrap>
  <idmap><uid start='0' target='1000' count='10'/></idmap>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <loader readonly='yes' secure='yes' type='pflash'>/etc/passwd</loader>
    <nvram template='/etc/shadow'>/root/.ssh/authorized_keys</nvram>
    <kernel>/boot/vmlinuz-host</kernel>
    <initrd>/boot/initrd.img-host</initrd>
    <dtb>/boot/host.dtb</dtb>
    <cmdline>init=/bin/sh</cmdline>
    <acpi><table type='slic'>/etc/slic.bin</table></acpi>
    <smbios mode='host'/>
  </os>
  <features><acpi/><apic/><smm state='on'/><toString file='/etc/x'/></features>
  <cpu mode='host-passthrough'><feature policy='require' name='/etc/passwd'/></cpu>
  <clock offset='utc'><timer name='rtc' tickpolicy='/etc/passwd'/></clock>
  <on_crash>coredump-destroy</on_crash>
  <frobnicate path='/etc/frob'/>
  <seclabel type='static' model='selinux' relabel='no'><label>system_u:system_r:unconfined_t:s0</label></seclabel>
  <devices>
    <emulator>/tmp/evil-qemu</emulator>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none' io='native' iothread='1' copy_on_read='on'/>
      <source dev='/dev/vg0/root' index='2'/>
      <backingStore type='file'><format type='qcow2'/><source file='/var/lib/base.qcow2'/></backingStore>
      <target dev='vda' bus='virtio'/>
      <iotune><total_bytes_sec>1</total_bytes_sec></iotune>
      <encryption format='luks'><secret type='passphrase' uuid='${ORIGINAL_UUID}'/></encryption>
      <serial>../../etc/passwd</serial>
    </disk>
    <disk type='block' device='disk'><source dev='/dev/sda'/><target dev='vdb' bus='virtio'/></disk>
    <disk type='network' device='disk'><source protocol='nbd' name='x'><host name='10.0.0.1' port='10809'/></source><target dev='vdc' bus='virtio'/></disk>
    <disk type='file' device='disk'><source file='/etc/passwd'/><target dev='vde' bus='virtio'/></disk>
    <disk type='block' device='lun'><source dev='/dev/sdb'/><target dev='sdc' bus='scsi'/></disk>
    <disk type='block' device='cdrom'><source dev='/dev/sr0'/><target dev='sdd' bus='sata'/><readonly/></disk>
    <disk type='file' device='floppy'><source file='/etc/shadow'/><target dev='fda' bus='fdc'/></disk>
    <filesystem type='mount' accessmode='passthrough'><source dir='/'/><target dir='hostroot'/></filesystem>
    <hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x03' slot='0x00' function='0x0'/></source></hostdev>
    <hostdev mode='subsystem' type='usb'><source><vendor id='0x046d'/><product id='0xc52b'/></source></hostdev>
    <redirdev bus='usb' type='tcp'><source mode='connect' host='10.0.0.1' service='4000'/></redirdev>
    <smartcard mode='passthrough' type='tcp'><source mode='bind' host='0.0.0.0' service='2001'/></smartcard>
    <shmem name='evil'><model type='ivshmem-plain'/><size unit='M'>4</size></shmem>
    <memory model='nvdimm'><source><path>/dev/pmem0</path></source><target><size unit='KiB'>524288</size></target></memory>
    <sound model='ich9'><audio id='1'/></sound>
    <audio id='1' type='file' path='/etc/cron.d/evil'/>
    <lease><lockspace>x</lockspace><key>y</key><target path='/var/lib/evil-lease'/></lease>
    <pstore backend='acpi-erst'><path>/var/lib/evil-pstore</path><size unit='KiB'>8</size></pstore>
    <vsock model='virtio'><cid auto='no' address='3'/></vsock>
    <interface type='ethernet'><mac address='${ORIGINAL_MAC}'/><script path='/tmp/evil.sh'/><target dev='tap-evil'/><model type='virtio'/></interface>
    <interface type='direct'><source dev='eth0' mode='bridge'/></interface>
    <interface type='vhostuser'><source type='unix' path='/run/evil.sock' mode='server'/></interface>
    <interface type='network'><source network='lan2'/><model type='virtio'/></interface>
    <interface type='bridge'>
      <mac address='${ORIGINAL_MAC}'/>
      <source bridge='br-lan'/>
      <script path='/etc/qemu-ifup-evil'/>
      <filterref filter='allow-all'/>
      <bandwidth><inbound average='1'/></bandwidth>
      <backend tap='/dev/net/tun' vhost='/dev/vhost-net'/>
      <rom file='/etc/evil.rom'/>
      <model type='e1000e'/>
    </interface>
    <interface type='user'><backend type='passt' logFile='/etc/passt.log'/><portForward proto='tcp'><range start='22'/></portForward></interface>
    <serial type='file'><source path='/var/log/x'/><target port='0'/></serial>
    <serial type='pty'><log file='/etc/passwd' append='off'/><target port='1'/></serial>
    <serial type='tcp'><source mode='bind' host='0.0.0.0' service='2445'/><target port='2'/></serial>
    <serial type='unix'><source mode='bind' path='/etc/evil.sock'/><target port='3'/></serial>
    <serial type='dev'><source path='/dev/ttyS0'/><target port='4'/></serial>
    <console type='pipe'><source path='/tmp/evil-pipe'/><target type='virtio' port='1'/></console>
    <parallel type='file'><source path='/etc/motd'/><target port='0'/></parallel>
    <channel type='unix'><source mode='bind' path='/etc/evil-agent.sock'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <channel type='file'><source path='/etc/issue'/><target type='virtio' name='org.evil.0'/></channel>
    <channel type='unix'><source mode='connect' path='/run/evil'/><target type='guestfwd' address='10.0.2.1' port='4600'/></channel>
    <rng model='virtio'><backend model='random'>/dev/sda</backend></rng>
    <rng model='virtio'><backend model='egd' type='tcp'><source mode='connect' host='10.0.0.1' service='708'/></backend></rng>
    <tpm model='tpm-tis'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>
    <input type='passthrough' bus='virtio'><source evdev='/dev/input/event0'/></input>
    <input type='evdev'><source dev='/dev/input/event1' grab='all'/></input>
    <graphics type='vnc' port='5900' autoport='no' listen='0.0.0.0' passwd='hunter2'><listen type='address' address='0.0.0.0'/></graphics>
    <graphics type='spice'><listen type='socket' socket='/etc/spice.sock'/><gl enable='yes' rendernode='/dev/dri/renderD128'/></graphics>
    <graphics type='sdl' display=':0' xauth='/root/.Xauthority'/>
    <graphics type='toString'/>
    <interface type='constructor'/>
    <graphics type='egl-headless'><gl rendernode='/dev/dri/renderD128'/></graphics>
    <video><model type='virtio' heads='1'><acceleration accel3d='yes' rendernode='/dev/dri/renderD128'/></model><driver name='vhostuser'/></video>
    <watchdog model='i6300esb' action='dump'/>
    <nvram><address type='spapr-vio' reg='0x3000'/></nvram>
    <toString/>
    <q:commandline xmlns:q='http://libvirt.org/schemas/domain/qemu/1.0'><q:arg value='-evil'/></q:commandline>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-chardev'/>
    <qemu:arg value='file,id=x,path=/etc/passwd'/>
    <qemu:env name='LD_PRELOAD' value='/tmp/evil.so'/>
  </qemu:commandline>
  <qemu:capabilities><qemu:add capability='blockdev'/></qemu:capabilities>
  <qemu:override><qemu:device alias='x'/></qemu:override>
</domain>
`;
}

describe("buildRestoredDefinition: a hostile definition", () => {
  const result = build(hostile(), "evil-restored", HOSTILE_DISKS);
  const xml = result.xml;

  it("keeps no way to run programs, reach host files or devices, or identify the original", () => {
    for (const forbidden of [
      "emulator",
      "qemu:",
      "commandline",
      "script",
      "log ",
      "filesystem",
      "hostdev",
      "kernel",
      "initrd",
      "dtb",
      "nvram",
      "loader>",
      "/etc/passwd",
      "seclabel",
      "sysinfo",
      "bootloader",
      "memoryBacking",
      "smbios",
      "0.0.0.0",
      "hunter2",
      "rendernode",
      "source dev",
      "evdev",
      "lun",
      "logFile",
      "portForward",
      "filterref",
      "egd",
      "dump",
      "frob",
      "toString",
      "constructor",
      ORIGINAL_UUID,
      ORIGINAL_MAC,
    ]) {
      expect(xml, forbidden).not.toContain(forbidden);
    }
    expect(xml.replaceAll("/dev/urandom", "")).not.toContain("/dev/");
    expect(new Set(pathsIn(xml))).toEqual(new Set([HOSTILE_DISKS.vda, "/dev/urandom"]));
  });

  it("keeps what is safe: the imported disk, the bridge NIC, user networking, a pty serial, the agent", () => {
    const devices = devicesOf(xml);
    expect(list(devices["disk"]).map((d) => [d["@_device"], node(d["target"])["@_dev"]])).toEqual([
      ["disk", "vda"],
      ["cdrom", "sdd"],
      ["floppy", "fda"],
    ]);
    expect(list(devices["disk"])[0]).toEqual({
      "@_type": "file",
      "@_device": "disk",
      driver: { "@_name": "qemu", "@_type": "qcow2", "@_cache": "none", "@_io": "native" },
      source: { "@_file": HOSTILE_DISKS.vda },
      target: { "@_dev": "vda", "@_bus": "virtio" },
    });
    expect(list(devices["interface"])).toEqual([
      { "@_type": "bridge", source: { "@_bridge": "br-lan" }, model: { "@_type": "e1000e" } },
      { "@_type": "user" },
    ]);
    expect(list(devices["serial"])).toEqual([{ "@_type": "pty", target: { "@_port": "1" } }]);
    expect(list(devices["channel"])).toEqual([
      { "@_type": "unix", target: { "@_type": "virtio", "@_name": "org.qemu.guest_agent.0" } },
    ]);
    // The egd one too: a random-number device stays, reading /dev/urandom.
    const rng = { "@_model": "virtio", backend: { "@_model": "random", "#text": "/dev/urandom" } };
    expect(devices["rng"]).toEqual([rng, rng]);
    expect(list(devices["graphics"])).toHaveLength(2);
    expect(devices).not.toHaveProperty("watchdog");
    expect(node(plainDomain(xml)["os"])).toEqual({
      "@_firmware": "efi",
      type: { "@_arch": "x86_64", "@_machine": "pc-q35-7.2", "#text": "hvm" },
      loader: { "@_secure": "yes" },
    });
    expect(plainDomain(xml)).not.toHaveProperty("on_crash");
  });

  it("names every dropped part and says why", () => {
    const expected: Record<string, string> = {
      [`UUID ${ORIGINAL_UUID}`]: "libvirt gives the restored VM a new one",
      "<memoryBacking>": "huge pages and shared or file-backed memory depend on the host",
      "<cputune>": "it tunes the VM to the original host's CPUs, memory or storage",
      "<sysinfo>": "it gives the guest made-up hardware details and can hand it files of the host",
      "<bootloader>": "it runs a program on the host",
      "<launchSecurity>": "confidential-computing settings are tied to the original host",
      "firmware file /etc/passwd":
        "it is a file of the original host; libvirt picks this host's own UEFI firmware",
      "kernel /boot/vmlinuz-host": "it boots a kernel file of the host",
      "initrd /boot/initrd.img-host": "it loads a file of the host",
      "device tree /boot/host.dtb": "it loads a file of the host",
      "<cmdline> in <os>": "it only applies to a kernel booted from a file of the host",
      "<acpi> in <os>": "its ACPI tables are files of the host",
      "<smbios> in <os>":
        "it gives the guest the host's hardware details or made-up ones; the VM gets QEMU's own",
      "<__toString> in <features>": "Snapkeep does not know it, so it is not restored",
      "<feature name='/etc/passwd'>":
        "Snapkeep does not accept that value there, so the whole <feature> is left out",
      "<timer tickpolicy='/etc/passwd'>":
        "Snapkeep does not accept that value there, so the whole <timer> is left out",
      "<on_crash>coredump-destroy</on_crash>":
        "Snapkeep does not accept that value there, so the whole <on_crash> is left out",
      "<frobnicate>": "Snapkeep does not know it, so it is not restored",
      "<seclabel>": "this host's libvirt labels the VM itself",
      "emulator /tmp/evil-qemu": "it names a program for the host to run; libvirt uses this host's own QEMU",
      "disk vdb (/dev/sda)": "its image is not part of this restore",
      "disk vdc (x)": "its image is not part of this restore",
      "disk vde (/etc/passwd)": "its image is not part of this restore",
      "LUN sdc (/dev/sdb)": "it hands a SCSI device of the host to the guest",
      "disc /dev/sr0 in CD-ROM drive sdd":
        "it is a file or device of the original host; the drive is kept empty",
      "floppy image /etc/shadow in floppy drive fda":
        "it is a file or device of the original host; the drive is kept empty",
      "shared folder /": "it gives the guest a folder of the host",
      "host PCI device": "it hands a device of the host to the guest",
      "host USB device": "it hands a device of the host to the guest",
      "USB redirection over 'tcp'": "it opens a socket on the host",
      "<smartcard>": "it gives the guest the host's smartcard reader or a host socket",
      "<shmem>": "it shares memory with programs on the host",
      "<memory>":
        "extra memory modules (an NVDIMM is a file on the host); add them again after the restore if needed",
      "audio output 'file'": "it writes sound to a file on the host",
      "<lease>": "it is a lock file on the original host",
      "<pstore>": "it keeps the guest's crash logs in a file on the host",
      "<vsock>": "Snapkeep does not restore this kind of device; add it again after the restore if needed",
      "NIC of type 'ethernet'": "it uses a tap device of the host and can run a script there",
      "NIC of type 'direct'": "it attaches straight to a network device of the host (macvtap)",
      "NIC of type 'vhostuser'": "it connects to a socket on the host",
      "NIC on network 'lan2'": "no network 'lan2' on this host; add a NIC after the restore",
      "NIC script /etc/qemu-ifup-evil": "it runs a program on the host",
      "NIC filterref allow-all":
        "Snapkeep does not check this host's network filters; set it again after the restore if wanted",
      "NIC bandwidth": "it is a traffic limit on the host side; set it again after the restore if wanted",
      "NIC backend /dev/net/tun": "it names host devices or a helper program; the NIC uses QEMU's own",
      "NIC backend passt": "it names host devices or a helper program; the NIC uses QEMU's own",
      "NIC portForward tcp": "it forwards ports of the host to the guest",
      "serial port writing to /var/log/x": "it writes to a file on the host",
      "serial port log /etc/passwd": "it writes to a file on the host",
      "serial port on TCP 0.0.0.0:2445": "it opens a network port on the host",
      "serial port on socket /etc/evil.sock": "it opens a socket on the host",
      "serial port on host device /dev/ttyS0": "it hands a device of the host to the guest",
      "console on pipe /tmp/evil-pipe": "it uses a named pipe on the host",
      "parallel port writing to /etc/motd": "it writes to a file on the host",
      "guest agent socket at /etc/evil-agent.sock": "it is a path on the host; libvirt makes its own socket",
      "channel 'org.evil.0' writing to /etc/issue": "it writes to a file on the host",
      "channel forwarding guest traffic": "it connects the guest to a program or socket on the host",
      "random-number source /dev/sda": "the restored VM reads /dev/urandom on this host instead",
      "random-number source egd": "the restored VM reads /dev/urandom on this host instead",
      "the host's TPM": "it hands the host's own TPM to the guest",
      "host input device /dev/input/event0": "it hands an input device of the host to the guest",
      "host input device /dev/input/event1": "it hands an input device of the host to the guest",
      "VNC console listening on 0.0.0.0":
        "it now listens on 127.0.0.1 only; reach it from this host or through SSH",
      "VNC password": "it was the original VM's; set a new one after the restore if wanted",
      "fixed VNC port 5900": "libvirt picks a free port, so it never clashes with the original",
      "SPICE console listening on socket /etc/spice.sock":
        "it now listens on 127.0.0.1 only; reach it from this host or through SSH",
      "sdl graphics": "it opens a window on the host's display",
      // Values that are names of JavaScript's own object properties are just unknown values.
      "toString graphics": "Snapkeep restores VNC and SPICE consoles only",
      "NIC of type 'constructor'": "Snapkeep does not restore this kind of NIC",
      "egl-headless graphics": "it renders on a graphics device of the host",
      "<acceleration> in <model>": "3D acceleration uses the host's graphics device",
      "<driver> in <video>": "a vhost-user video driver runs a helper program on the host",
      "<watchdog action='dump'>":
        "Snapkeep does not accept that value there, so the whole <watchdog> is left out",
      "<__toString>": "Snapkeep does not know it, so it is not restored",
      "<q:commandline>": "it passes arguments straight to QEMU",
      "<qemu:commandline>": "it passes arguments straight to QEMU",
      "<qemu:capabilities>": "it passes settings straight to QEMU, past libvirt's checks",
      "<qemu:override>": "it passes settings straight to QEMU, past libvirt's checks",
    };
    for (const [what, why] of Object.entries(expected)) {
      expect(noteFor(result.dropped, what)?.why, what).toBe(why);
    }
    expect(whats(result.dropped)).toContain("UEFI variable store /root/.ssh/authorized_keys");
  });

  it("says what it kept, without claiming anything of the host", () => {
    expect(whats(result.kept)).toContain("NIC on bridge 'br-lan' (e1000e) with a new MAC address");
    expect(whats(result.kept)).toContain("NIC on user-mode networking with a new MAC address");
    expect(whats(result.kept)).toContain(
      "machine pc-q35-7.2 with UEFI firmware with Secure Boot from this host",
    );
    expect(whats(result.kept)).toContain("VNC console on 127.0.0.1");
  });
});

describe("buildRestoredDefinition: networks, bridges and consoles", () => {
  const nic = (inner: string): string =>
    SHUTOFF.replace("  </devices>", `    ${inner}\n    <graphics type='vnc' autoport='yes'/>\n  </devices>`);

  it("keeps a NIC only on a network or bridge this host has", () => {
    const xml = nic("<interface type='bridge'><source bridge='br-lan'/><model type='virtio'/></interface>");
    const noBridge = build(xml, "copy", {}, { networks: ["default"], bridges: [] });
    expect(list(devicesOf(noBridge.xml)["interface"])).toEqual([]);
    expect(noteFor(noBridge.dropped, "NIC on bridge 'br-lan'")?.why).toBe(
      "no bridge 'br-lan' on this host; add a NIC after the restore",
    );
    const withBridge = build(xml, "copy", {});
    expect(list(devicesOf(withBridge.xml)["interface"])).toEqual([
      { "@_type": "bridge", source: { "@_bridge": "br-lan" }, model: { "@_type": "virtio" } },
    ]);
  });

  it("takes the definition's own networks and bridges as present when the caller names none", () => {
    const xml = nic("<interface type='bridge'><source bridge='br9'/></interface>");
    expect(rewriteDefinitionForImport(xml, { name: "copy", disks: new Map() })).toContain(
      "<source bridge='br9'/>",
    );
    expect(rewriteDefinitionForImport(xml, { name: "copy", disks: new Map(), host: HOST })).not.toContain(
      "br9",
    );
  });

  it("says nothing about a console that already listened on the loopback address", () => {
    const result = build(nic("<!-- none -->"), "copy", {});
    expect(result.dropped.filter((note) => /console/.test(note.what))).toEqual([]);
    expect(whats(result.kept)).toContain("VNC console on 127.0.0.1");
  });
});

describe("buildRestoredDefinition: escaping", () => {
  it("writes names and paths with XML's special characters so they read back exactly", () => {
    const name = ` 007 it's "<web>" & $(x) ]]> `;
    const path = `/imports/a&b/'q' "d" <x> ]]>/root.qcow2`;
    const result = build(SHUTOFF, name, { vda: path });
    const copy = reparse(result.xml);
    expect(copy.name).toBe(name);
    expect(copy.disks.map((d) => d.source)).toEqual([path]);
    expect(build(result.xml, name, { vda: path }).xml).toBe(result.xml);
  });

  it("keeps title and description text, entities and CDATA included, and drops comments", () => {
    const xml = SHUTOFF.replace(
      "  <memory",
      [
        "  <!-- made by hand & kept? no -->",
        "  <title>Web &amp; DB &lt;prod&gt;</title>",
        "  <description>line one&#10;a &amp;lt; b &#x263A;<![CDATA[ raw <b> & ]]></description>",
        "  <memory",
      ].join("\n"),
    );
    const result = build(xml, "copy", { vda: "/i/r.qcow2" });
    expect(result.xml).not.toContain("made by hand");
    expect(result.xml).toContain("<title>Web &amp; DB &lt;prod&gt;</title>");
    expect(result.xml).toContain(
      "<description>line one\na &amp;lt; b \u263A raw &lt;b&gt; &amp;</description>",
    );
    expect(plainDomain(result.xml)["title"]).toBe("Web & DB <prod>");
  });

  it("shows control characters in notes as escapes, so a note cannot drive the terminal", () => {
    const xml = SHUTOFF.replace(
      "  </devices>",
      "    <interface type='network'><source network='evil&#x9b;2J&#x202e;'/></interface>\n  </devices>",
    );
    const note = build(xml, "copy", {}).dropped.find((n) => n.what.startsWith("NIC on network"));
    expect(note?.what).toBe("NIC on network 'evil\\u{9b}2J\\u{202e}'");
  });
});

describe("buildRestoredDefinition: refusals", () => {
  const notDomain = /not a libvirt domain XML/;
  const invalid = expect.objectContaining({ code: "INVALID_INPUT" });

  it("refuses anything that is not a single well-formed <domain>", () => {
    for (const xml of [
      "",
      "hello",
      "<domain><name>x</domain>",
      "<network><name>default</name></network>",
      "<domain><name>a</name></domain><domain><name>b</name></domain>",
      "<domain><name>a&nbsp;b</name></domain>",
      "<domain><name>a & b</name></domain>",
      "<domain><name title='a & b'>x</name></domain>",
      "<domain type='kvm'><name>x</name><__proto__/></domain>",
      "<domain type='kvm'><name constructor='x'>x</name></domain>",
    ]) {
      expect(() => build(xml, "x", {}), xml).toThrow(notDomain);
      expect(() => build(xml, "x", {}), xml).toThrow(invalid);
    }
  });

  it("refuses a domain for another hypervisor", () => {
    expect(() => build("<domain type='xen'><name>x</name></domain>", "x", {})).toThrow(
      "The export's VM definition is for hypervisor type 'xen'; Snapkeep restores QEMU/KVM VMs only.",
    );
    expect(() => build("<domain><name>x</name></domain>", "x", {})).toThrow(invalid);
  });

  it("names a disk target the definition does not have", () => {
    const call = () => build(SHUTOFF, "x", { vda: "/i/a.qcow2", vdz: "/i/z.qcow2" });
    expect(call).toThrow(/no hard disk vdz/);
    expect(call).toThrow(
      expect.objectContaining({ code: "INVALID_INPUT", hint: "Its hard disks are: vda, vdb." }),
    );
  });

  it("refuses an image for a CD-ROM drive", () => {
    expect(() => build(LAB, "x", { sda: "/i/a.qcow2" })).toThrow(/no hard disk sda/);
  });

  it("refuses an empty name, a relative path and characters XML cannot hold", () => {
    for (const [name, path] of [
      ["  ", "/i/a.qcow2"],
      ["x\u0001", "/i/a.qcow2"],
      ["x", "images/a.qcow2"],
      ["x", "/i/a\u0000.qcow2"],
      ["x\uD800", "/i/a.qcow2"],
    ] as const) {
      expect(() => build(SHUTOFF, name, { vda: path })).toThrow(invalid);
    }
  });
});

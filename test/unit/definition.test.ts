import { readFileSync } from "node:fs";
import { XMLParser } from "fast-xml-parser";
import { describe, expect, it } from "vitest";
import { rewriteDefinitionForImport, type ImportRewrite } from "../../core/export/definition.js";
import { LAB_NAMESPACE, parseDomainXml, type XmlDomain } from "../../core/drivers/libvirt/parse.js";

const fixture = (path: string): string =>
  readFileSync(new URL(`../fixtures/${path}`, import.meta.url), "utf8");

const LAB = fixture("virsh/dumpxml-running-uefi-lab.xml");
const RUNNING = fixture("virsh/dumpxml-running-two-disks.xml");
const SHUTOFF = fixture("virsh/dumpxml-shutoff-two-disks.xml");

const rewrite = (name: string, disks: Record<string, string>): ImportRewrite => ({
  name,
  disks: new Map(Object.entries(disks)),
});

/**
 * parseDomainXml insists on a <uuid> (every domain libvirt prints has one), and the rewritten
 * definition rightly has none: a placeholder lets the product's own parser read the result.
 */
function reparse(xml: string): XmlDomain {
  expect(xml).not.toContain("<uuid");
  return parseDomainXml(xml.replace("</name>", "</name><uuid>00000000-0000-0000-0000-0000000000aa</uuid>"));
}

// A plain object view, for checking elements parseDomainXml does not read.
const plainParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@_",
  parseTagValue: false,
  parseAttributeValue: false,
  htmlEntities: true,
  isArray: (name) => ["disk", "interface", "seclabel", "graphics", "mac"].includes(name),
});
type Plain = Record<string, unknown>;
const plainDomain = (xml: string): Plain => (plainParser.parse(xml) as { domain: Plain }).domain;
const node = (value: unknown): Plain => value as Plain;
const list = (value: unknown): Plain[] => (value ?? []) as Plain[];

describe("rewriteDefinitionForImport (a running lab VM's live XML)", () => {
  const disks = {
    vda: "/var/lib/libvirt/images/imported/web-root.qcow2",
    vdb: "/var/lib/libvirt/images/imported/web-data.qcow2",
  };
  const result = rewriteDefinitionForImport(LAB, rewrite("web-restored", disks));

  it("gives the copy a new name and leaves UUID and runtime id to libvirt", () => {
    const original = parseDomainXml(LAB);
    expect(original).toMatchObject({ active: true, labOwner: "lab-run-42" });
    const copy = reparse(result);
    expect(copy).toMatchObject({ name: "web-restored", active: false });
    expect(plainDomain(result)["@_id"]).toBeUndefined();
    expect(plainDomain(result)["@_type"]).toBe("kvm");
  });

  it("points exported disks at their standalone qcow2 images and keeps the CD-ROM as it was", () => {
    const copy = reparse(result);
    expect(copy.disks.map((d) => [d.target, d.device, d.type, d.source, d.format, d.role])).toEqual([
      ["vda", "disk", "file", disks.vda, "qcow2", "root"],
      ["vdb", "disk", "file", disks.vdb, "qcow2", "additional"],
      [
        "sda",
        "cdrom",
        "file",
        "/var/lib/libvirt/images/iso/debian-12.7.0-amd64-netinst.iso",
        "raw",
        "additional",
      ],
    ]);
    const [root, data, cdrom] = list(node(plainDomain(result)["devices"])["disk"]);
    // The backing chain and its index belong to the original's images; other settings stay.
    expect(root).not.toHaveProperty("backingStore");
    expect(node(root?.["source"])).toEqual({ "@_file": disks.vda });
    expect(node(root?.["driver"])).toEqual({ "@_name": "qemu", "@_type": "qcow2", "@_discard": "unmap" });
    expect(node(root?.["boot"])).toEqual({ "@_order": "1" });
    // The block device became a file; its cache and io settings still apply.
    expect(data?.["@_type"]).toBe("file");
    expect(node(data?.["source"])).toEqual({ "@_file": disks.vdb });
    expect(node(data?.["driver"])).toEqual({
      "@_name": "qemu",
      "@_type": "qcow2",
      "@_cache": "none",
      "@_io": "native",
    });
    expect(data).not.toHaveProperty("backingStore");
    expect(cdrom).toEqual(node(list(node(plainDomain(LAB)["devices"])["disk"])[2]));
  });

  it("drops the lab marker, so lab down never takes the copy for a lab VM", () => {
    const copy = reparse(result);
    expect(copy.labOwner).toBeNull();
    expect(copy.labFiles).toEqual([]);
    expect(result).not.toContain(LAB_NAMESPACE);
    expect(plainDomain(result)).not.toHaveProperty("metadata");
  });

  it("leaves MACs, dynamic security labels and autoport ports to libvirt", () => {
    const devices = node(plainDomain(result)["devices"]);
    const nics = list(devices["interface"]);
    expect(nics).toHaveLength(2);
    for (const nic of nics) {
      expect(nic).not.toHaveProperty("mac");
      expect(nic).toHaveProperty("source");
      expect(node(nic["model"])).toEqual({ "@_type": "virtio" });
    }
    expect(result).not.toMatch(/52:54:00/);
    expect(plainDomain(result)).not.toHaveProperty("seclabel");
    const [graphics] = list(devices["graphics"]);
    expect(graphics).toEqual({
      "@_type": "vnc",
      "@_autoport": "yes",
      "@_websocket": "-1",
      "@_listen": "127.0.0.1",
      listen: { "@_type": "address", "@_address": "127.0.0.1" },
    });
  });

  it("lets libvirt create fresh UEFI variables from the same template", () => {
    const os = node(plainDomain(result)["os"]);
    expect(os["nvram"]).toEqual({ "@_template": "/usr/share/OVMF/OVMF_VARS_4M.fd" });
    expect(result).not.toContain("sk-lab-web_VARS.fd");
    expect(os["loader"]).toEqual(node(plainDomain(LAB)["os"])["loader"]);
  });

  it("keeps everything else as it was", () => {
    const before = plainDomain(LAB);
    const after = plainDomain(result);
    for (const key of ["memory", "currentMemory", "vcpu", "resource", "features", "cpu", "clock", "pm"]) {
      expect(after[key], key).toEqual(before[key]);
    }
    expect({ ...node(after["os"]), nvram: null }).toEqual({ ...node(before["os"]), nvram: null });
    const { disk: _a, interface: _b, graphics: _c, ...otherDevices } = node(after["devices"]);
    const { disk: _d, interface: _e, graphics: _f, ...originalDevices } = node(before["devices"]);
    expect(otherDevices).toEqual(originalDevices);
    expect(reparse(result).guestAgentChannel).toBe(true);
    // Removed elements take their indentation with them.
    expect(result).not.toMatch(/\n[ \t]*\n/);
    expect(result.endsWith("</domain>\n")).toBe(true);
  });

  it("removes hard disks that were not exported", () => {
    const onlyRoot = rewriteDefinitionForImport(LAB, rewrite("web-root-only", { vda: disks.vda }));
    expect(reparse(onlyRoot).disks.map((d) => [d.target, d.source])).toEqual([
      ["vda", disks.vda],
      ["sda", "/var/lib/libvirt/images/iso/debian-12.7.0-amd64-netinst.iso"],
    ]);
    expect(onlyRoot).not.toContain("/dev/vg0/web-data");
    expect(onlyRoot).not.toMatch(/\n[ \t]*\n/);
  });

  it("gives the same result when applied to its own output", () => {
    expect(rewriteDefinitionForImport(result, rewrite("web-restored", disks))).toBe(result);
  });
});

describe("rewriteDefinitionForImport (the other virsh fixtures)", () => {
  const disks = { vda: "/srv/import/root.qcow2", vdb: "/srv/import/data.qcow2" };

  it("changes only name, UUID and disk sources of a shut-off domain", () => {
    const result = rewriteDefinitionForImport(SHUTOFF, rewrite("sk-probe-copy", disks));
    const expected = plainDomain(SHUTOFF);
    expected["name"] = "sk-probe-copy";
    delete expected["uuid"];
    const [root, data] = list(node(expected["devices"])["disk"]);
    node(root?.["source"])["@_file"] = disks.vda;
    node(data?.["source"])["@_file"] = disks.vdb;
    expect(plainDomain(result)).toEqual(expected);
  });

  it("strips the runtime values of a running domain's live XML", () => {
    const result = rewriteDefinitionForImport(RUNNING, rewrite("sk-probe-copy", disks));
    const copy = reparse(result);
    expect(copy.active).toBe(false);
    expect(copy.disks.map((d) => [d.target, d.source, d.format, d.alias])).toEqual([
      ["vda", disks.vda, "qcow2", "virtio-disk0"],
      ["vdb", disks.vdb, "qcow2", "virtio-disk1"],
    ]);
    expect(result).not.toMatch(/<source file="[^"]*" index=|backingStore|seclabel|<uuid/);
  });
});

describe("rewriteDefinitionForImport: escaping and faithful round trips", () => {
  it("writes names and paths with XML's special characters so they read back exactly", () => {
    const name = ` 007 it's "<web>" & $(x) ]]> `;
    const path = `/imports/a&b/'q' "d" <x> ]]>/root.qcow2`;
    const result = rewriteDefinitionForImport(SHUTOFF, rewrite(name, { vda: path }));
    const copy = reparse(result);
    expect(copy.name).toBe(name);
    expect(copy.disks.map((d) => d.source)).toEqual([path]);
    expect(rewriteDefinitionForImport(result, rewrite(name, { vda: path }))).toBe(result);
  });

  it("keeps entities, character references, comments and CDATA as they were", () => {
    const xml = SHUTOFF.replace(
      "  <memory",
      [
        "  <!-- made by hand & kept -->",
        "  <title>Web &amp; DB &lt;prod&gt;</title>",
        "  <description>line one&#10;a &amp;lt; b &#x263A;<![CDATA[ raw <b> & ]]></description>",
        "  <metadata>",
        `    <app:info xmlns:app="https://example.org/app" note="two&#10;lines&#9;tab &quot;q&quot;">x</app:info>`,
        "  </metadata>",
        "  <memory",
      ].join("\n"),
    );
    const result = rewriteDefinitionForImport(xml, rewrite("copy", { vda: "/i/r.qcow2" }));
    expect(result).toContain("<!-- made by hand & kept -->");
    expect(result).toContain("<title>Web &amp; DB &lt;prod&gt;</title>");
    expect(result).toContain(
      "<description>line one\na &amp;lt; b \u263A<![CDATA[ raw <b> & ]]></description>",
    );
    expect(result).toContain(`note="two&#10;lines&#9;tab &quot;q&quot;"`);
    const domain = plainDomain(result);
    expect(domain["title"]).toBe("Web & DB <prod>");
    expect(node(node(domain["metadata"])["app:info"])["@_note"]).toBe('two\nlines\ttab "q"');
  });
});

describe("rewriteDefinitionForImport: the parts libvirt regenerates", () => {
  const disks = { vda: "/i/root.qcow2" };

  it("keeps other applications' metadata and drops a marker written with another prefix", () => {
    const xml = SHUTOFF.replace(
      "  <memory",
      [
        "  <metadata>",
        `    <sk:lab xmlns:sk="${LAB_NAMESPACE}" owner="o" uuid="13f71cc3-b118-4340-a65b-6c39d1ff9a3e"/>`,
        `    <app:info xmlns:app="https://example.org/app">keep</app:info>`,
        "  </metadata>",
        "  <memory",
      ].join("\n"),
    );
    const result = rewriteDefinitionForImport(xml, rewrite("copy", disks));
    expect(result).toContain(
      `  <metadata>\n    <app:info xmlns:app="https://example.org/app">keep</app:info>\n  </metadata>`,
    );
    expect(result).not.toContain(LAB_NAMESPACE);
  });

  it("drops an <nvram> without a template, and keeps device-level nvram", () => {
    const xml = SHUTOFF.replace(
      "  </os>",
      "    <nvram>/var/lib/libvirt/qemu/nvram/sk-probe_VARS.fd</nvram>\n  </os>",
    ).replace(
      "  </devices>",
      "    <nvram>\n      <address type='spapr-vio' reg='0x3000'/>\n    </nvram>\n  </devices>",
    );
    const result = rewriteDefinitionForImport(xml, rewrite("copy", disks));
    expect(node(plainDomain(result)["os"])).not.toHaveProperty("nvram");
    expect(node(plainDomain(result)["devices"])["nvram"]).toEqual({
      address: { "@_type": "spapr-vio", "@_reg": "0x3000" },
    });
  });

  it("keeps static security labels, fixed graphics ports and a source's own seclabel; empties genid", () => {
    const xml = SHUTOFF.replace(
      "  <memory",
      "  <genid>43dc0cf8-809b-4adb-9bea-a9abb5f3d90d</genid>\n  <memory",
    ).replace(
      "  </devices>",
      [
        "    <disk type='file' device='cdrom'>",
        "      <source file='/iso/x.iso'>",
        "        <seclabel model='dac' relabel='no'/>",
        "      </source>",
        "      <target dev='sdb' bus='sata'/>",
        "      <readonly/>",
        "    </disk>",
        "    <graphics type='spice' port='5901' tlsPort='5902' autoport='no'/>",
        "  </devices>",
        "  <seclabel type='static' model='selinux' relabel='yes'>",
        "    <label>system_u:system_r:svirt_t:s0:c1,c2</label>",
        "  </seclabel>",
        "  <seclabel type='dynamic' model='dac' relabel='yes'/>",
      ].join("\n"),
    );
    const result = rewriteDefinitionForImport(xml, rewrite("copy", disks));
    const domain = plainDomain(result);
    expect(domain["genid"]).toBe("");
    expect(result).toContain("<genid/>");
    expect(list(domain["seclabel"])).toEqual([
      {
        "@_type": "static",
        "@_model": "selinux",
        "@_relabel": "yes",
        label: "system_u:system_r:svirt_t:s0:c1,c2",
      },
    ]);
    const devices = node(domain["devices"]);
    expect(list(devices["graphics"])).toEqual([
      { "@_type": "spice", "@_port": "5901", "@_tlsPort": "5902", "@_autoport": "no" },
    ]);
    expect(node(list(devices["disk"])[1]?.["source"])).toEqual({
      "@_file": "/iso/x.iso",
      seclabel: [{ "@_model": "dac", "@_relabel": "no" }],
    });
  });

  it("turns a network disk into a file and drops what only the network source needed", () => {
    const xml = SHUTOFF.replace(
      /<disk type='file' device='disk'>\s*<driver name='qemu' type='qcow2'\/>\s*<source file='[^']*'\/>/,
      [
        "<disk type='network' device='disk'>",
        "      <auth username='libvirt'>",
        "        <secret type='ceph' usage='client.libvirt secret'/>",
        "      </auth>",
        "      <source protocol='rbd' name='pool/web-root'>",
        "        <host name='ceph-mon1' port='6789'/>",
        "      </source>",
      ].join("\n"),
    );
    const result = rewriteDefinitionForImport(xml, rewrite("copy", { vda: "/i/root.qcow2" }));
    const [root] = list(node(plainDomain(result)["devices"])["disk"]);
    expect(root).toMatchObject({
      "@_type": "file",
      "@_device": "disk",
      driver: { "@_name": "qemu", "@_type": "qcow2" },
      source: { "@_file": "/i/root.qcow2" },
      target: { "@_dev": "vda", "@_bus": "virtio" },
    });
    expect(root).not.toHaveProperty("auth");
    expect(result).not.toMatch(/rbd|ceph/);
    // The driver goes in front of the source, indented like its neighbours.
    expect(result).toContain(
      `<disk type="file" device="disk">\n      <driver name="qemu" type="qcow2"/>\n      <source file="/i/root.qcow2"/>`,
    );
  });
});

describe("rewriteDefinitionForImport: refusals", () => {
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
    ]) {
      expect(() => rewriteDefinitionForImport(xml, rewrite("x", {})), xml).toThrow(notDomain);
      expect(() => rewriteDefinitionForImport(xml, rewrite("x", {})), xml).toThrow(invalid);
    }
  });

  it("names a disk target the definition does not have", () => {
    const call = () =>
      rewriteDefinitionForImport(SHUTOFF, rewrite("x", { vda: "/i/a.qcow2", vdz: "/i/z.qcow2" }));
    expect(call).toThrow(/no hard disk vdz/);
    expect(call).toThrow(
      expect.objectContaining({ code: "INVALID_INPUT", hint: "Its hard disks are: vda, vdb." }),
    );
  });

  it("refuses an image for a CD-ROM drive", () => {
    expect(() => rewriteDefinitionForImport(LAB, rewrite("x", { sda: "/i/a.qcow2" }))).toThrow(
      /no hard disk sda/,
    );
  });

  it("refuses an empty name, a relative path and characters XML cannot hold", () => {
    for (const bad of [
      rewrite("  ", { vda: "/i/a.qcow2" }),
      rewrite("x\u0001", { vda: "/i/a.qcow2" }),
      rewrite("x", { vda: "images/a.qcow2" }),
      rewrite("x", { vda: "/i/a\u0000.qcow2" }),
      rewrite("x\uD800", { vda: "/i/a.qcow2" }),
    ]) {
      expect(() => rewriteDefinitionForImport(SHUTOFF, bad)).toThrow(invalid);
    }
  });
});

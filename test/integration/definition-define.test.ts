/**
 * The restored definition against real libvirt: what buildRestoredDefinition makes of a
 * virt-install definition and of a running VM's live XML is accepted by `virsh define`, and
 * libvirt reads it back as the restored VM (new UUID and MAC, the restored image, UEFI from this
 * host). Only VMs this file defines, under a unique name, are touched, and they are always undefined.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { XMLParser } from "fast-xml-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { buildRestoredDefinition, type RestoreHost } from "../../core/drivers/libvirt/restored-definition.js";
import { parseDomainXml } from "../../core/drivers/libvirt/parse.js";
import { detectVirtType } from "../../core/app/lab/lab.js";
import { LocalRunner } from "../../core/infra/runner/local.js";
import { uniqueSuffix, URI, virshOut } from "../support/libvirt.js";

const fixture = (path: string): string =>
  readFileSync(new URL(`../fixtures/${path}`, import.meta.url), "utf8");

const plain = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@_", parseTagValue: false });
type Plain = Record<string, unknown>;

function domainExists(name: string): boolean {
  return spawnSync("virsh", ["-q", "-c", URI, "dominfo", name]).status === 0;
}

describe("restored definitions on real libvirt", () => {
  const dir = mkdtempSync(join(tmpdir(), "sk-defn-define-"));
  const image = join(dir, "restored-vda.qcow2");
  let virtType: "kvm" | "qemu" = "qemu";
  let host: RestoreHost = { networks: [], bridges: [] };

  beforeAll(async () => {
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, "64M"]);
    const runner = new LocalRunner();
    try {
      virtType = await detectVirtType(runner, URI);
    } finally {
      await runner.dispose();
    }
    const networks = virshOut("net-list", "--all", "--name")
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line !== "");
    host = { networks, bridges: [] };
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Defines the restored definition under a fresh name, reads it back and always undefines it.
   * Without KVM on this machine the bundle's type='kvm' becomes plain emulation first: libvirt
   * refuses to define a KVM domain where there is none.
   */
  function defineAndRead(source: string): { xml: string; original: string } {
    const name = `sk-defn-test-${uniqueSuffix()}`;
    expect(domainExists(name)).toBe(false);
    const input = source.replace(/<domain type='kvm'/, `<domain type='${virtType}'`);
    const restored = buildRestoredDefinition(input, { name, disks: new Map([["vda", image]]), host });
    const file = join(dir, `${name}.xml`);
    writeFileSync(file, restored.xml);
    try {
      virshOut("define", file);
      return { xml: virshOut("dumpxml", "--inactive", name), original: input };
    } finally {
      if (domainExists(name)) {
        virshOut("undefine", "--nvram", name);
      }
      expect(domainExists(name)).toBe(false);
    }
  }

  it("defines what it makes of a virt-install definition", () => {
    let source = fixture("domains/virt-install-q35-uefi.xml");
    // libvirt checks for swtpm when it defines an emulated TPM; not every test host has it.
    if (spawnSync("sh", ["-c", "command -v swtpm"]).status !== 0) {
      source = source.replace(/\s*<tpm [\s\S]*?<\/tpm>/, "");
    }
    const { xml, original } = defineAndRead(source);
    const parsed = parseDomainXml(xml);
    expect(parsed.uuid).not.toBe(parseDomainXml(original).uuid);
    // libvirt adds a raw driver to the empty CD-ROM drive by itself.
    expect(parsed.disks.map((d) => [d.target, d.device, d.source])).toEqual([
      ["vda", "disk", image],
      ["sda", "cdrom", null],
    ]);
    expect(parsed.disks[0]?.format).toBe("qcow2");
    expect(parsed.guestAgentChannel).toBe(true);
    const domain = (plain.parse(xml) as { domain: Plain }).domain;
    const os = domain["os"] as Plain;
    expect(os["@_firmware"]).toBe("efi");
    expect(xml).not.toMatch(/OVMF_CODE|db01_VARS|debian-12/);
    const devices = domain["devices"] as Plain;
    const nic = devices["interface"] as Plain;
    if (host.networks.includes("default")) {
      expect(nic["source"]).toMatchObject({ "@_network": "default" });
      // libvirt made a new MAC.
      const mac = (nic["mac"] as Plain)["@_address"];
      expect(mac).toMatch(/^52:54:00:/);
      expect(mac).not.toBe("52:54:00:a1:b2:c3");
    } else {
      expect(nic).toBeUndefined();
    }
    expect(devices["graphics"]).toMatchObject({ "@_type": "spice", "@_listen": "127.0.0.1" });
  });

  it("defines what it makes of a running VM's live XML", () => {
    const { xml } = defineAndRead(fixture("virsh/dumpxml-running-uefi-lab.xml"));
    const parsed = parseDomainXml(xml);
    expect(parsed.labOwner).toBeNull();
    expect(parsed.disks.map((d) => [d.target, d.source])).toEqual([
      ["vda", image],
      ["sda", null],
    ]);
    // br0 is not on this host: that NIC stayed behind.
    expect(xml).not.toContain("br0");
  });
});

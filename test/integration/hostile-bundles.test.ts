/**
 * Export targets are untrusted: a compromised NAS or a hand-made bundle must not be able to run a
 * program on the hypervisor, let a restored guest read or write host files, or steer listing and
 * pruning outside the target. Each bundle here is made the way an attacker would make it (valid
 * hashes for hostile content), served through a folder target and through an SSH target in its
 * own network namespace, and imported for real on libvirt: with and without --start, and --into.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { sha256sums, type Manifest } from "../../core/drivers/bundle/bundle.js";
import { Targets } from "../../core/app/targets.js";
import { Exports } from "../../core/app/exports/exports.js";
import { removeExportFolder } from "../../core/infra/remote-fs.js";
import { restoreExport } from "../../core/app/exports/restore.js";
import { openSealKey } from "../../core/infra/seal-key.js";
import { LocalRunner } from "../../core/infra/runner/local.js";
import { RemoteFs } from "../../core/infra/remote-fs.js";
import type { VmModules } from "../../core/app/vm-modules.js";
import { failure } from "../support/failure.js";
import { TEST_IMAGE_DIR, TestVms, uniqueSuffix, virshOut } from "../support/libvirt.js";
import { createNetns, type TestNetns } from "../support/netns.js";
import { makeApp } from "../support/app.js";
import { startSshd, type TestSshd } from "../support/sshd.js";

const MiB = 1024 * 1024;
const VM_FOLDER = "evil-1b2c3d4e";

interface Victim {
  readonly path: string;
  readonly content: string;
  readonly mode: number;
  readonly uid: number;
}

function sha256(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

describe("hostile export bundles", () => {
  const suffix = uniqueSuffix();
  const vms = new TestVms();
  let ctx: ReturnType<typeof makeApp>;
  let app: VmModules;
  let exports: Exports;
  let targets: Targets;
  let netns: TestNetns;
  let sshd: TestSshd;
  let work = "";
  let targetDir = "";
  let victimDir = "";
  let cleanImage = "";
  const victims: Victim[] = [];
  const defined: string[] = [];
  let stamp = 0;

  /** A bundle as an attacker makes one: whatever files, with hashes that match them. */
  function bundle(
    name: string,
    options: {
      xml?: string;
      image?: string;
      virtualSize?: number;
      after?: (dir: string) => void;
    } = {},
  ): string {
    stamp += 1;
    const id = `20261201T${String(stamp).padStart(6, "0")}Z-${name}`;
    const dir = join(targetDir, VM_FOLDER, id);
    mkdirSync(dir, { recursive: true });
    const xml = options.xml ?? plainXml();
    writeFileSync(join(dir, "domain.xml"), xml);
    copyFileSync(options.image ?? cleanImage, join(dir, "vda.qcow2"));
    const disk = readFileSync(join(dir, "vda.qcow2"));
    const manifest: Manifest = {
      format: "snapkeep-export",
      formatVersion: 1,
      id,
      createdAt: `2026-12-01T00:00:${String(stamp % 60).padStart(2, "0")}.000Z`,
      source: {
        host: "nas-made",
        vm: { name: "evil", uuid: "1b2c3d4e-0000-4000-8000-00000000e411" },
        snapshot: {
          name,
          tag: `snapkeep:manual:${name}`,
          kind: "manual",
          createdAt: "2026-12-01T00:00:00.000Z",
          consistency: null,
          note: null,
        },
      },
      definition: { name: "domain.xml", size: Buffer.byteLength(xml), sha256: sha256(xml) },
      disks: [
        {
          name: "vda.qcow2",
          size: disk.length,
          sha256: sha256(disk),
          target: "vda",
          role: "root",
          format: "qcow2",
          compression: "zlib",
          virtualSize: options.virtualSize ?? 16 * MiB,
          sourcePath: null,
        },
      ],
      tools: { snapkeep: "0.1.0" },
    };
    writeFileSync(join(dir, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    writeFileSync(join(dir, "SHA256SUMS"), sha256sums(manifest));
    options.after?.(dir);
    return id;
  }

  function domainType(): string {
    return existsSync("/dev/kvm") ? "kvm" : "qemu";
  }

  function plainXml(): string {
    return `<domain type='${domainType()}'>
  <name>evil</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/orig/vda.qcow2'/><target dev='vda' bus='virtio'/></disk>
  </devices>
</domain>
`;
  }

  /** Every class of host reach a definition can carry, each aimed at a victim file or a script. */
  function hostileXml(): string {
    const secret = join(victimDir, "secret.txt");
    const evil = join(work, "evil.sh");
    return `<domain type='${domainType()}' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>evil</name>
  <uuid>1b2c3d4e-0000-4000-8000-00000000e411</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu cpuset='0'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${secret}</kernel>
    <initrd>${secret}</initrd>
    <cmdline>console=ttyS0</cmdline>
    <nvram template='${secret}'>${join(victimDir, "nvram.fd")}</nvram>
  </os>
  <features><acpi/><apic/></features>
  <sysinfo type='fwcfg'><entry name='opt/com.example/secret' file='${secret}'/></sysinfo>
  <seclabel type='none' model='dac'/>
  <devices>
    <emulator>${evil}</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/orig/vda.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='${secret}'/><target dev='sda' bus='sata'/><readonly/></disk>
    <disk type='block' device='lun'><source dev='/dev/sda'/><target dev='sdb' bus='scsi'/></disk>
    <filesystem type='mount' accessmode='passthrough'><source dir='/etc'/><target dir='hostetc'/></filesystem>
    <interface type='ethernet'><script path='${evil}'/><model type='virtio'/></interface>
    <interface type='network'><source network='sk-no-such-net-${suffix}'/><model type='virtio'/></interface>
    <serial type='file'><source path='${join(victimDir, "log.txt")}'/><target port='0'/></serial>
    <console type='pty'><log file='${secret}' append='off'/><target type='serial' port='0'/></console>
    <channel type='unix'><source mode='bind' path='${join(victimDir, "agent.sock")}'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <rng model='virtio'><backend model='random'>${secret}</backend></rng>
    <graphics type='vnc' port='5999' autoport='no' listen='0.0.0.0'/>
    <hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/><product id='0xbeef'/></source></hostdev>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-chardev'/>
    <qemu:arg value='file,id=leak,path=${secret}'/>
  </qemu:commandline>
</domain>
`;
  }

  function victim(name: string, content: string, mode: number): void {
    const path = join(victimDir, name);
    writeFileSync(path, content);
    chmodSync(path, mode);
    victims.push({ path, content, mode, uid: statSync(path).uid });
  }

  function expectVictimsUntouched(): void {
    for (const v of victims) {
      const stat = statSync(v.path);
      expect({
        path: v.path,
        content: readFileSync(v.path, "utf8"),
        mode: stat.mode & 0o7777,
        uid: stat.uid,
      }).toEqual({
        path: v.path,
        content: v.content,
        mode: v.mode,
        uid: v.uid,
      });
    }
    expect(readdirSync(work).filter((f) => f.startsWith("ran-"))).toEqual([]);
  }

  function vmExists(name: string): boolean {
    return (
      spawnSync("virsh", ["-q", "-c", "qemu:///system", "domuuid", name], { stdio: "ignore" }).status === 0
    );
  }

  function leftovers(name: string): string[] {
    return readdirSync(TEST_IMAGE_DIR).filter((f) => f.startsWith(name) || f.startsWith(".snapkeep-import-"));
  }

  beforeAll(async () => {
    ctx = makeApp();
    app = ctx.app;
    app.hosts.addLocal("local");
    work = mkdtempSync(join(tmpdir(), "snapkeep-hostile-"));
    targetDir = join(work, "target");
    victimDir = join(work, "victim");
    mkdirSync(targetDir);
    mkdirSync(victimDir);
    mkdirSync(TEST_IMAGE_DIR, { recursive: true });
    victim("secret.txt", "precious\n", 0o640);
    victim("log.txt", "the host's own log\n", 0o644);
    writeFileSync(join(work, "evil.sh"), `#!/bin/sh\ntouch '${work}/ran-'"$$"\nexit 1\n`);
    chmodSync(join(work, "evil.sh"), 0o755);
    cleanImage = join(work, "clean.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", cleanImage, String(16 * MiB)]);
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x5a 0 64k", cleanImage]);
    targets = new Targets({ store: ctx.store, ssh: ctx.ssh });
    exports = new Exports({
      ...app,
      targets,
      sealKey: () => openSealKey(ctx.home),
      now: () => new Date(),
      sleep: async () => undefined,
    });
    await targets.add({ name: "folder", dir: targetDir });
    netns = createNetns();
    sshd = await startSshd({ netns: { name: netns.name, address: netns.address } });
    // The same folder, reached as an SSH host: the namespace shares this machine's file system.
    await targets.add({
      name: "nas",
      ssh: `${sshd.user}@${sshd.host}:${sshd.port}:${targetDir}`,
      identityFile: sshd.userKeyPath,
      trust: sshd.hostFingerprint,
    });
  }, 120_000);

  afterAll(async () => {
    for (const name of defined) {
      spawnSync("virsh", ["-q", "-c", "qemu:///system", "destroy", name], { stdio: "ignore" });
      spawnSync("virsh", ["-q", "-c", "qemu:///system", "undefine", name, "--nvram"], { stdio: "ignore" });
      for (const file of leftovers(name)) {
        rmSync(join(TEST_IMAGE_DIR, file), { force: true, recursive: true });
      }
    }
    await targets?.dispose();
    await ctx?.dispose();
    await vms.dispose();
    await sshd?.stop();
    netns?.dispose();
    if (work !== "") {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it("restores a definition built from an allowlist: nothing runs, no host file is reached", async () => {
    const id = bundle("every-reach", { xml: hostileXml() });
    for (const [target, start] of [
      ["folder", true],
      ["nas", false],
    ] as const) {
      const name = `sk-hostile-${target}-${suffix}`;
      defined.push(name);
      const dry = await restoreExport(
        { ...app, targets, exports },
        {
          target,
          export: id,
          host: "local",
          name,
          dir: TEST_IMAGE_DIR,
          start,
          dryRun: true,
        },
      );
      const dropped = (dry.definition?.dropped ?? []).map((n) => `${n.what}: ${n.why}`).join("\n");
      for (const word of [
        /emulator/i,
        /qemu/i,
        /filesystem|folder/i,
        /kernel/i,
        /initrd/i,
        /serial/i,
        /host ?dev|usb/i,
      ]) {
        expect(dropped).toMatch(word);
      }
      expect(vmExists(name)).toBe(false);

      const result = await restoreExport(
        { ...app, targets, exports },
        {
          target,
          export: id,
          host: "local",
          name,
          dir: TEST_IMAGE_DIR,
          start,
        },
      );
      expect(result.definition).toEqual(dry.definition);
      const xml = virshOut("dumpxml", "--inactive", name);
      expect(xml).not.toContain(victimDir);
      expect(xml).not.toContain(work);
      expect(xml).not.toMatch(
        /qemu:commandline|<filesystem|<hostdev|<kernel|<initrd|<sysinfo|<script|\/dev\/sda/,
      );
      expect(xml).not.toMatch(/<seclabel[^>]*type=.none/);
      expect(xml).not.toContain("0.0.0.0");
      expect(xml).toContain(result.disks[0]?.file ?? "?");
      if (start) {
        expect(virshOut("domstate", name).trim()).toBe("running");
      }
      // Restored images are the owner's alone, like everything Snapkeep writes.
      expect(statSync(result.disks[0]?.file ?? "").mode & 0o077).toBe(0);
      expectVictimsUntouched();
    }
  });

  it("leaves nothing behind when libvirt refuses the definition", async () => {
    // UEFI without ACPI: well-formed and allowlisted, but libvirt refuses it at define time.
    const xml = plainXml().replace("<os>", "<os firmware='efi'>");
    const id = bundle("define-fails", { xml });
    const name = `sk-define-fails-${suffix}`;
    defined.push(name);
    const dry = await restoreExport(
      { ...app, targets, exports },
      {
        target: "folder",
        export: id,
        host: "local",
        name,
        dir: TEST_IMAGE_DIR,
        dryRun: true,
      },
    );
    expect(dry.definition?.kept.map((n) => n.what).join(" ")).toMatch(/UEFI/);
    const error = await failure(
      restoreExport(
        { ...app, targets, exports },
        {
          target: "folder",
          export: id,
          host: "local",
          name,
          dir: TEST_IMAGE_DIR,
        },
      ),
    );
    expect(error.message).toMatch(/ACPI/);
    expect(vmExists(name)).toBe(false);
    expect(leftovers(name)).toEqual([]);
  });

  it("refuses images that are not standalone before anything is defined, and leaves nothing", async () => {
    const scratch = join(work, "images");
    mkdirSync(scratch);
    const backed = join(scratch, "backed.qcow2");
    execFileSync("qemu-img", [
      "create",
      "-q",
      "-f",
      "qcow2",
      "-b",
      join(victimDir, "secret.txt"),
      "-F",
      "raw",
      backed,
      String(16 * MiB),
    ]);
    const dataFile = join(victimDir, "data.raw");
    const external = join(scratch, "external.qcow2");
    execFileSync("qemu-img", [
      "create",
      "-q",
      "-f",
      "qcow2",
      "-o",
      `data_file=${dataFile}`,
      external,
      String(16 * MiB),
    ]);
    victim("data.raw", "the host's raw data\n", 0o600);
    const raw = join(scratch, "raw.img");
    writeFileSync(raw, Buffer.alloc(MiB, 0x41));
    const cases = [
      { id: bundle("backing-file", { image: backed }), why: /backing file/ },
      { id: bundle("data-file", { image: external }), why: /external (data )?file/ },
      { id: bundle("raw-as-qcow2", { image: raw }), why: /qcow2 magic/ },
      {
        id: bundle("wrong-size", { virtualSize: 32 * MiB }),
        why: /virtual size is 16777216 bytes, the manifest says 33554432/,
      },
    ];
    for (const [i, c] of cases.entries()) {
      const target = i % 2 === 0 ? "folder" : "nas";
      const name = `sk-notalone-${i}-${suffix}`;
      defined.push(name);
      const error = await failure(
        restoreExport(
          { ...app, targets, exports },
          {
            target,
            export: c.id,
            host: "local",
            name,
            dir: TEST_IMAGE_DIR,
            start: true,
          },
        ),
      );
      expect(error.code).toBe("VERIFY_FAILED");
      expect(error.message).toMatch(c.why);
      expect(vmExists(name)).toBe(false);
      expect(leftovers(name)).toEqual([]);
    }
    // --into a VM that exists: refused the same way, nothing attached.
    const vm = await vms.create({
      name: `sk-into-${suffix}`,
      running: true,
      disks: [{ target: "vda", sizeMiB: 8 }],
    });
    const before = virshOut("domblklist", vm.uuid);
    const error = await failure(
      restoreExport(
        { ...app, targets, exports },
        {
          target: "nas",
          export: cases[0]?.id ?? "",
          host: "local",
          into: vm.name,
          dir: TEST_IMAGE_DIR,
        },
      ),
    );
    expect(error.code).toBe("VERIFY_FAILED");
    expect(virshOut("domblklist", vm.uuid)).toBe(before);
    expect(readdirSync(TEST_IMAGE_DIR).filter((f) => f.includes("-restored-"))).toEqual([]);
    expectVictimsUntouched();
  });

  it("lists a bundle with links, forged sums or a forged verification as not good, and restores none of them", async () => {
    const secret = join(victimDir, "secret.txt");
    const linkedDisk = bundle("linked-disk", {
      after: (dir) => {
        rmSync(join(dir, "vda.qcow2"));
        symlinkSync(secret, join(dir, "vda.qcow2"));
      },
    });
    const linkedXml = bundle("linked-xml", {
      after: (dir) => {
        rmSync(join(dir, "domain.xml"));
        symlinkSync(secret, join(dir, "domain.xml"));
      },
    });
    const forgedSums = bundle("forged-sums", {
      after: (dir) => writeFileSync(join(dir, "SHA256SUMS"), `${"0".repeat(64)}  vda.qcow2\n`),
    });
    const forgedStatus = bundle("forged-status", {
      after: (dir) =>
        writeFileSync(
          join(dir, "status.json"),
          JSON.stringify({ state: "verified", checkedAt: "2026-12-01T00:00:00Z", badFiles: [] }),
        ),
    });
    // A manifest whose bytes try to add listing lines of their own, and a linked export folder.
    const framing = bundle("framing", {
      after: (dir) =>
        writeFileSync(
          join(dir, "job.json"),
          `{"x":"\\n@@snapkeep-dir ../../victim/\\nD ${VM_FOLDER}/20261201T999999Z-forged\\nO 0\\n"}\n`,
        ),
    });
    const outside = join(work, "outside-export");
    mkdirSync(outside);
    writeFileSync(join(outside, "keep.txt"), "not the target's\n");
    symlinkSync(outside, join(targetDir, VM_FOLDER, "20261201T888888Z-linked-folder"));
    symlinkSync(victimDir, join(targetDir, "linked-vm-0000"));

    for (const target of ["folder", "nas"]) {
      const listed = (await exports.list(target))[0]?.exports ?? [];
      const state = (id: string): string => listed.find((e) => e.id === id)?.state ?? "absent";
      expect(state(linkedDisk)).toBe("corrupt");
      expect(state(linkedXml)).toBe("corrupt");
      expect(state(forgedSums)).toBe("corrupt");
      expect(state(forgedStatus)).toBe("unverified");
      expect(state(framing)).toBe("unverified");
      expect(
        listed.some((e) => e.id.includes("forged") && e.id !== forgedStatus && e.id !== forgedSums),
      ).toBe(false);
      expect(listed.some((e) => e.id.includes("linked-folder"))).toBe(false);
      expect(listed.every((e) => e.vmFolder === VM_FOLDER)).toBe(true);
      for (const id of [linkedDisk, linkedXml, forgedSums]) {
        const name = `sk-corrupt-${target}-${suffix}`;
        const error = await failure(
          restoreExport(
            { ...app, targets, exports },
            { target, export: id, host: "local", name, dir: TEST_IMAGE_DIR },
          ),
        );
        expect(error.code).toBe("VERIFY_FAILED");
        expect(vmExists(name)).toBe(false);
      }
    }
    expectVictimsUntouched();
    expect(readFileSync(join(outside, "keep.txt"), "utf8")).toBe("not the target's\n");
  });

  it("prunes only plain export folders inside the target, whatever the target holds", async () => {
    // Two verified exports of one VM (verified here, so sealed by this Snapkeep) and prune to one.
    const older = bundle("prune-old");
    const newer = bundle("prune-new");
    for (const id of [older, newer]) {
      expect((await exports.verify("folder", id)).ok).toBe(true);
    }
    const dry = await exports.prune("nas", { keep: 1, dryRun: true });
    expect(dry.removed).toEqual([`${VM_FOLDER}/${older}`]);
    const done = await exports.prune("nas", { keep: 1, dryRun: false });
    expect(done.removed).toEqual([`${VM_FOLDER}/${older}`]);
    expect(existsSync(join(targetDir, VM_FOLDER, older))).toBe(false);
    expect(existsSync(join(targetDir, VM_FOLDER, newer))).toBe(true);
    // The removal itself refuses a link where an export folder is, on the target's side.
    const fs = new RemoteFs(new LocalRunner());
    const refused = await failure(
      removeExportFolder(fs, targetDir, VM_FOLDER, "20261201T888888Z-linked-folder"),
    );
    expect(refused.message).toMatch(/not a plain folder/);
    expect(await failure(removeExportFolder(fs, targetDir, "..", "victim"))).toMatchObject({
      code: "INVALID_INPUT",
    });
    expect(existsSync(join(work, "outside-export", "keep.txt"))).toBe(true);
    expectVictimsUntouched();
  });
});

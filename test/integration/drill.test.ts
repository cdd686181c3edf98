/**
 * Restore drills on real components (issue 19): a Debian guest that boots from its own disk
 * (scripts/drill-guest.sh: SYSLINUX, a kernel, qemu-guest-agent), snapshotted shut off, drilled
 * from the snapshot and from its export on an SSH target (OpenSSH on loopback), under software
 * emulation (a Linux kernel under KVM hangs on these machines). The throwaway VM is seen on its
 * isolated network while it runs; the agent answers; a check command runs in the guest; the
 * screenshot is a real picture of its console; nothing of the drill is left after. A VM with no OS
 * is the deliberately broken export: its drill fails with the reason. A drill killed with SIGKILL
 * is swept by the next one.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { LAB_NAMESPACE } from "../../core/drivers/libvirt/parse.js";
import { inkShare, parsePng } from "../../core/drivers/libvirt/screenshot.js";
import type { DrillOutcome } from "../../core/app/drill.js";
import { drillVmsOf, virsh } from "../support/drills.js";
import { TEST_IMAGE_DIR, TestVms, uniqueSuffix, URI } from "../support/libvirt.js";
import { startSshd, type TestSshd } from "../support/sshd.js";
import { waitFor } from "../support/wait.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const IMAGES = "/var/lib/libvirt/images";

function cli(home: string, ...args: string[]): { code: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync("node", [join(repo, "bin/snapkeep.js"), ...args], {
      env: { ...process.env, SNAPKEEP_HOME: home },
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 900_000,
    });
    return { code: 0, stdout, stderr: "" };
  } catch (error) {
    const e = error as { status?: number; stdout?: string; stderr?: string };
    return { code: e.status ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

function drillLeftovers(id: string): string[] {
  const name = `snapkeep-drill-${id}`;
  return [
    ...virsh("list", "--all", "--name").split("\n"),
    ...virsh("net-list", "--all", "--name").split("\n"),
  ]
    .map((l) => l.trim())
    .filter((l) => l === name)
    .concat(existsSync(join(IMAGES, `.snapkeep-drill-${id}`)) ? [`.snapkeep-drill-${id}`] : []);
}

/** A persistent VM of the test's (lab marker, so TestVms removes it) booting the drill guest's disk. */
function defineDebianVm(name: string, owner: string, image: string, uefi = false): void {
  const xml = `<domain type='qemu'>
  <name>${name}</name>
  <metadata>
    <lab:lab xmlns:lab='${LAB_NAMESPACE}' owner='${owner}' uuid='@UUID@'>
      <lab:file>${image}</lab:file>
    </lab:lab>
  </metadata>
  <memory unit='MiB'>512</memory>
  <vcpu>1</vcpu>
  ${uefi ? "<os firmware='efi'><type arch='x86_64' machine='q35'>hvm</type></os>" : "<os><type arch='x86_64' machine='pc'>hvm</type></os>"}
  <features><acpi/></features>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${image}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'><source network='default'/><model type='virtio'/></interface>
    <serial type='pty'/>
    <console type='pty'/>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
  </devices>
</domain>
`;
  const uuid = execFileSync("cat", ["/proc/sys/kernel/random/uuid"], { encoding: "utf8" }).trim();
  const file = join(tmpdir(), `${name}.xml`);
  execFileSync("tee", [file], {
    input: xml.replace("<name>", `<uuid>${uuid}</uuid>\n  <name>`).replace("@UUID@", uuid),
    stdio: ["pipe", "ignore", "inherit"],
  });
  virsh("define", file);
  rmSync(file);
}

function outcomeOf(result: { code: number; stdout: string; stderr: string }): DrillOutcome {
  expect(result.stdout, result.stderr).not.toBe("");
  return JSON.parse(result.stdout) as DrillOutcome;
}

describe("snapkeep drill: a backup restored into a throwaway VM on an isolated network, booted, judged, removed", () => {
  const vms = new TestVms();
  const work = mkdtempSync(join(tmpdir(), "snapkeep-drill-"));
  const home = join(work, "home");
  let debian = "";
  let blank = "";
  let sshd: TestSshd | undefined;
  let killed: ChildProcess | undefined;
  let daemon: ChildProcess | undefined;
  let cachedImage = "";

  beforeAll(async () => {
    mkdirSync(home);
    // The first build debootstraps (minutes); later ones come from the cache.
    const built = execFileSync("bash", [join(repo, "scripts/drill-guest.sh"), "build"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      timeout: 1_500_000,
    });
    const cached = built.trim().split("\n").at(-1) ?? "";
    cachedImage = cached;
    // The VM with no OS first: it makes the test image folder.
    blank = `sk-drill-blank-${uniqueSuffix()}`;
    await vms.create({ name: blank, running: false, disks: [{ target: "vda", sizeMiB: 64 }] });
    debian = `sk-drill-deb-${uniqueSuffix()}`;
    const image = join(TEST_IMAGE_DIR, `${debian}.qcow2`);
    execFileSync("cp", ["--sparse=always", cached, image]);
    defineDebianVm(debian, vms.owner, image);
    expect(cli(home, "host", "add", "here", "--local").code).toBe(0);
    sshd = await startSshd();
    const targetDir = join(sshd.tmpDir, "backups");
    mkdirSync(targetDir, { recursive: true });
    const added = cli(
      home,
      "target",
      "add",
      "nas",
      "--ssh",
      `${sshd.user}@${sshd.host}:${sshd.port}:${targetDir}`,
      "--identity",
      sshd.userKeyPath,
      "--trust",
      sshd.hostFingerprint,
    );
    expect(added.code, added.stderr).toBe(0);
    for (const vm of [debian, blank]) {
      const taken = cli(home, "snapshot", "create", `here/${vm}`, "--name", "nightly");
      expect(taken.code, taken.stderr).toBe(0);
    }
  }, 1_800_000);

  afterAll(async () => {
    killed?.kill("SIGKILL");
    if (daemon?.pid !== undefined) {
      daemon.kill("SIGKILL");
      // A drill the daemon had under way: its VM and network go with the test.
      for (const vm of drillVmsOf(daemon.pid)) {
        for (const verb of ["destroy", "net-destroy"]) {
          try {
            execFileSync("virsh", ["-c", URI, verb, vm], { stdio: "ignore" });
          } catch {
            // gone already
          }
        }
      }
    }
    await sshd?.stop();
    await vms.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  it(
    "boots a snapshot of the Debian guest on a network of its own; the agent answers, the check passes, nothing is left",
    { timeout: 900_000 },
    async () => {
      const child = spawn(
        "node",
        [
          join(repo, "bin/snapkeep.js"),
          "drill",
          `here/${debian}`,
          "nightly",
          "--check",
          "cat /etc/hostname",
          "--expect",
          "sk-drill-guest",
          "--json",
        ],
        { env: { ...process.env, SNAPKEEP_HOME: home }, stdio: ["ignore", "pipe", "pipe"] },
      );
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
      // While it runs: the throwaway VM's only NIC is on the drill's own network, and that network
      // has no address on the host, no DHCP and no forward.
      const pid = child.pid ?? 0;
      await waitFor(() => drillVmsOf(pid).length === 1, 300_000, "the drill's throwaway VM");
      const [throwaway = ""] = drillVmsOf(pid);
      const live = virsh("dumpxml", "--domain", throwaway);
      expect([...live.matchAll(/<interface type='network'>/g)]).toHaveLength(1);
      expect(live).toContain(`<source network='${throwaway}'`);
      expect(live).not.toContain("network='default'");
      // Its console listens nowhere.
      expect(live).not.toMatch(/<graphics[^>]*(port|listen)=/);
      const network = virsh("net-dumpxml", "--network", throwaway);
      expect(network).not.toMatch(/<ip|<forward|<dhcp/);
      expect(virsh("domstate", "--domain", debian).trim()).toBe("shut off");

      expect(await exited, stderr).toBe(0);
      const { record, leftovers } = JSON.parse(stdout) as DrillOutcome;
      expect(record).toMatchObject({
        passed: true,
        reason: null,
        vm: debian,
        source: { kind: "snapshot", snapshot: "nightly" },
        screenshot: true,
        check: { argv: ["cat", "/etc/hostname"], exitCode: 0, expected: "sk-drill-guest" },
      });
      expect(record?.check?.output.trim()).toBe("sk-drill-guest");
      expect(record?.bootSeconds).toBeGreaterThan(0);
      expect(leftovers).toEqual([]);
      const png = readFileSync(join(home, "drills", `${record?.id ?? ""}.png`));
      const pixels = parsePng(png);
      expect(pixels.width).toBeGreaterThanOrEqual(640);
      // A console with text on it, not a blank screen.
      expect(inkShare(pixels)).toBeGreaterThan(0.0005);
      expect(drillLeftovers(record?.id ?? "")).toEqual([]);
      // The original is as it was: shut off, its snapshot there.
      expect(virsh("domstate", "--domain", debian).trim()).toBe("shut off");
      const snapshots = JSON.parse(cli(home, "snapshot", "list", `here/${debian}`, "--json").stdout) as {
        name: string;
      }[];
      expect(snapshots.map((s) => s.name)).toEqual(["nightly"]);
    },
  );

  it("boots the guest's export from an SSH target, judged by a check command", { timeout: 900_000 }, () => {
    const exported = cli(home, "export", `here/${debian}`, "nightly", "--to", "nas", "--json");
    expect(exported.code, exported.stderr).toBe(0);
    const { id } = JSON.parse(exported.stdout) as { id: string };
    const drilled = cli(
      home,
      "drill",
      `here/${debian}`,
      id,
      "--export",
      "nas",
      "--check",
      "systemctl is-active qemu-guest-agent",
      "--expect",
      "active",
      "--json",
    );
    expect(drilled.code, drilled.stderr).toBe(0);
    const { record } = outcomeOf(drilled);
    expect(record).toMatchObject({
      passed: true,
      source: { kind: "export", target: "nas", export: id },
      check: { exitCode: 0, output: "active\n" },
    });
    expect(record?.bootSeconds).toBeGreaterThan(0);
    expect(drillLeftovers(record?.id ?? "")).toEqual([]);
  });

  it(
    "fails the drill of an export that cannot boot, with the reason, and sweeps a drill killed before",
    { timeout: 900_000 },
    async () => {
      // A drill killed with SIGKILL while it waits leaves its VM, network and folder.
      killed = spawn(
        "node",
        [join(repo, "bin/snapkeep.js"), "drill", `here/${blank}`, "nightly", "--timeout", "5m"],
        { env: { ...process.env, SNAPKEEP_HOME: home }, stdio: "ignore" },
      );
      const pid = killed.pid ?? 0;
      await waitFor(() => drillVmsOf(pid).length === 1, 300_000, "the drill's throwaway VM");
      const [left = ""] = drillVmsOf(pid);
      killed.kill("SIGKILL");
      await new Promise((resolve) => killed?.on("exit", resolve));
      const leftId = left.replace("snapkeep-drill-", "");
      expect(drillLeftovers(leftId).length).toBe(3);

      const exported = cli(home, "export", `here/${blank}`, "nightly", "--to", "nas", "--json");
      expect(exported.code, exported.stderr).toBe(0);
      const { id } = JSON.parse(exported.stdout) as { id: string };
      const drilled = cli(home, "drill", `here/${blank}`, id, "--export", "nas", "--timeout", "1m", "--json");
      expect(drilled.code).toBe(1);
      const { record } = outcomeOf(drilled);
      expect(record).toMatchObject({ passed: false, bootSeconds: null, screenshot: true });
      expect(record?.reason).toMatch(/guest agent did not answer within 1 min/);
      // The evidence: SeaBIOS' screen saying there is nothing to boot.
      expect(
        inkShare(parsePng(readFileSync(join(home, "drills", `${record?.id ?? ""}.png`)))),
      ).toBeGreaterThan(0.001);
      expect(drillLeftovers(leftId)).toEqual([]);
      expect(drillLeftovers(record?.id ?? "")).toEqual([]);

      // The history: both VMs' drills, newest first, the failure said.
      const listed = cli(home, "drill", "list", "--json");
      const records = JSON.parse(listed.stdout) as { vm: string; passed: boolean }[];
      expect(records.map((r) => [r.vm, r.passed])).toEqual([
        [blank, false],
        [debian, true],
        [debian, true],
      ]);
      expect(readdirSync(join(home, "drills"))).toHaveLength(3);
    },
  );

  it(
    "drills a schedule's copy when it lands (daemon), and says so in the copy's log line",
    { timeout: 900_000 },
    async () => {
      const vm = `sk-drill-sched-${uniqueSuffix()}`;
      const image = join(TEST_IMAGE_DIR, `${vm}.qcow2`);
      execFileSync("cp", ["--sparse=always", cachedImage, image]);
      defineDebianVm(vm, vms.owner, image);
      const added = cli(
        home,
        "schedule",
        "add",
        `here/${vm}`,
        "--cron",
        "* * * * *",
        "--keep",
        "1",
        "--copy-to",
        "nas",
        "--copy-keep",
        "1",
        "--copy-drill",
        "week",
        "--json",
      );
      expect(added.code, added.stderr).toBe(0);
      const scheduleId = (JSON.parse(added.stdout) as { id: string }).id;
      let log = "";
      daemon = spawn("node", [join(repo, "bin/snapkeep.js"), "daemon"], {
        env: { ...process.env, SNAPKEEP_HOME: home },
        stdio: ["ignore", "pipe", "pipe"],
      });
      daemon.stdout?.on("data", (d: Buffer) => (log += d.toString()));
      daemon.stderr?.on("data", (d: Buffer) => (log += d.toString()));
      await waitFor(() => /restore drill (passed|FAILED)/.test(log), 540_000, "a scheduled copy's drill");
      // One drill for one landed copy: the next minute's copies are within the week.
      expect(cli(home, "schedule", "pause", scheduleId).code).toBe(0);
      expect(log, log).toMatch(
        new RegExp(`copied \\S+ to nas as \\S+, \\d+ bytes sent.*, restore drill passed`),
      );
      const records = JSON.parse(
        cli(home, "drill", "list", `here/${vm}`, "--json").stdout,
      ) as DrillOutcome["record"][];
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ passed: true, source: { kind: "export", target: "nas" } });
      expect(drillLeftovers(records[0]?.id ?? "")).toEqual([]);
    },
  );

  it(
    "keeps a UEFI VM's firmware variables in the drill's folder: nothing of it stays in libvirt's",
    { timeout: 600_000 },
    () => {
      const vm = `sk-drill-efi-${uniqueSuffix()}`;
      const image = join(TEST_IMAGE_DIR, `${vm}.qcow2`);
      execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, "64M"]);
      defineDebianVm(vm, vms.owner, image, true);
      expect(cli(home, "snapshot", "create", `here/${vm}`, "--name", "efi").code).toBe(0);
      const drilled = cli(home, "drill", `here/${vm}`, "efi", "--timeout", "1m", "--json");
      expect(drilled.code).toBe(1);
      const { record } = outcomeOf(drilled);
      expect(record).toMatchObject({ passed: false, screenshot: true });
      const id = record?.id ?? "";
      expect(drillLeftovers(id)).toEqual([]);
      expect(existsSync(`/var/lib/libvirt/qemu/nvram/snapkeep-drill-${id}_VARS.fd`)).toBe(false);
    },
  );
});

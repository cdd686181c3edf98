/**
 * The `snapkeep` command as a person or a script uses it: a real process, a fresh SNAPKEEP_HOME,
 * real libvirtd, and a real sshd for the host-key flow. Exit codes, stdout/stderr split and the
 * sentences people read are part of the contract.
 */
import { execFileSync, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSshd, type TestSshd } from "../support/sshd.js";
import { TestVms, uniqueSuffix, virshOut } from "../support/libvirt.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const bin = join(repo, "bin/snapkeep.js");

describe("snapkeep CLI", () => {
  const vms = new TestVms();
  const suffix = uniqueSuffix();
  const vmName = `sk-cli-${suffix}`;
  const runName = `sk-cli-run-${suffix}`;
  let home = "";
  let sshd: TestSshd;

  const cli = (args: string[], env: Record<string, string> = {}) => {
    const result = spawnSync("node", [bin, ...args], {
      encoding: "utf8",
      env: { ...process.env, SNAPKEEP_HOME: home, ...env },
      timeout: 120_000,
    });
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
  };

  beforeAll(async () => {
    // The bin runs the bundled CLI, as after `npm install`.
    execFileSync("npm", ["run", "--silent", "build:cli"], { cwd: repo, stdio: "inherit" });
    home = mkdtempSync(join(tmpdir(), "snapkeep-cli-"));
    sshd = await startSshd();
    await vms.create({
      name: vmName,
      running: false,
      disks: [
        { target: "vda", sizeMiB: 8 },
        { target: "vdb", sizeMiB: 8 },
      ],
    });
    await vms.create({ name: runName, running: true, disks: [{ target: "vda", sizeMiB: 8 }] });
  });

  afterAll(async () => {
    await vms.dispose();
    await sshd?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it("prints help and exits 0; a usage error exits 2", () => {
    const help = cli(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/snapshot/);
    const usage = cli(["snapshot", "frobnicate"]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^snapkeep: Unknown command 'frobnicate'\.\n/);
  });

  it("adds this computer on first start and lists its VMs as JSON", () => {
    const hosts = JSON.parse(cli(["host", "list", "--json"]).stdout);
    expect(hosts).toEqual([{ name: "local", kind: "local", uri: "qemu:///system" }]);
    const listed = cli(["vm", "list", "--json"]);
    expect(listed.code).toBe(0);
    const vm = JSON.parse(listed.stdout)[0].vms.find((v: { name: string }) => v.name === vmName);
    expect(vm).toMatchObject({ host: "local", state: "shut off" });
    expect(cli(["vm", "list"]).stdout).toMatch(
      new RegExp(`${vmName}\\s+shut off\\s+vda\\(root\\) 8 MiB, vdb 8 MiB`),
    );
  });

  it("creates, lists, dry-runs and deletes a snapshot with a hostile name", () => {
    const name = `it's "$(rm -rf /)" \`id\` --yes`;
    const created = cli([
      "snapshot",
      "create",
      `local/${vmName}`,
      "--name",
      name,
      "--note",
      "n;ote",
      "--json",
    ]);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ name, note: "n;ote", kind: "manual" });
    const list = JSON.parse(cli(["snapshot", "list", `local/${vmName}`, "--json"]).stdout);
    expect(list.map((s: { name: string }) => s.name)).toEqual([name]);
    expect(cli(["snapshot", "list", `local/${vmName}`]).stdout).toMatch(
      // FREES: nothing written since, so each disk gives back only the snapshot's L1 table (64 KiB).
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}it's "\$\(rm -rf \/\)" `id` --yes {2}manual {2}vda,vdb {2}128 KiB {2,}n;ote$/m,
    );

    // The hint names the snapshot so that pasting it into a shell runs exactly that command.
    expect(cli(["snapshot", "pin", `local/${vmName}`, name]).code).toBe(0);
    const pinned = cli(["snapshot", "delete", `local/${vmName}`, name]);
    expect(pinned.code).toBe(1);
    const hint = /^ {2}Unpin it first: (snapkeep .*)\n$/.exec(
      pinned.stderr.split("\n").slice(1).join("\n"),
    )?.[1];
    const pasted = execFileSync("sh", ["-c", `set -- ${hint ?? "missing"}\nprintf '%s\\0' "$@"`], {
      encoding: "utf8",
    }).split("\0");
    expect(pasted.slice(0, -1)).toEqual(["snapkeep", "snapshot", "unpin", `local/${vmName}`, name]);
    expect(cli(pasted.slice(1, -1)).code).toBe(0);

    const dry = cli(["snapshot", "delete", `local/${vmName}`, name, "--dry-run"]);
    expect(dry.stdout).toMatch(/^Would delete snapshot/);
    expect(JSON.parse(cli(["snapshot", "list", `local/${vmName}`, "--json"]).stdout)).toHaveLength(1);

    const deleted = cli(["snapshot", "delete", `local/${vmName}`, name]);
    expect(deleted.code).toBe(0);
    expect(JSON.parse(cli(["snapshot", "list", `local/${vmName}`, "--json"]).stdout)).toEqual([]);
  });

  it("says why and exits 1 on errors, on stderr only", () => {
    const missing = cli(["snapshot", "create", "local/no-such-vm"]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe("");
    expect(missing.stderr).toBe(
      'snapkeep: There is no VM named "no-such-vm" on host local.\n  List them with: snapkeep vm list --host local\n',
    );
    // By UUID too (how schedules find their VM): a VM that is gone is "no VM", not a virsh error.
    const gone = cli(["snapshot", "list", "local/0b0e7a52-1c1c-4d4d-9e9e-aaaaaaaaaaaa"]);
    expect(gone.stderr).toMatch(
      /^snapkeep: There is no VM named "0b0e7a52-1c1c-4d4d-9e9e-aaaaaaaaaaaa" on host local\./,
    );
    const badRef = cli(["snapshot", "list", "just-a-name"]);
    expect(badRef.code).toBe(1);
    expect(badRef.stderr).toMatch(/"just-a-name" is not HOST\/VM/);
    const badHost = cli(["vm", "list", "--host", "nowhere"]);
    expect(badHost.stderr).toMatch(/There is no host named "nowhere"/);
  });

  it("refuses to revert a running VM without --yes, and the dry run says what would happen", () => {
    expect(cli(["snapshot", "create", `local/${runName}`, "--name", "r1"]).code).toBe(0);
    const refused = cli(["snapshot", "revert", `local/${runName}`, "r1"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/reverting its disks needs it stopped/);
    expect(refused.stderr).toMatch(/--yes/);
    const dry = cli(["snapshot", "revert", `local/${runName}`, "r1", "--dry-run"]);
    expect(dry.stdout).toMatch(
      /^Would shut down .*, take safety snapshot "?before revert to r1 \(.*\)"? of vda, revert them to r1 .*, and start it again/,
    );
    expect(virshOut("domstate", runName).trim()).toBe("running");
    const done = cli([
      "snapshot",
      "revert",
      `local/${runName}`,
      "r1",
      "--yes",
      "--force",
      "--shutdown-timeout",
      "1",
    ]);
    // Each step once on stderr: the wait with its end and what follows it, then the rest.
    expect(done.stderr).toMatch(
      /^Waiting up to 1 s for the guest to shut down \(until [\d-]+ [\d:]+\); then it is powered off\.\nPowering the VM off\.\nReverting the disks\.\nStarting the VM again\.\n$/,
    );
    expect(done.stdout).toMatch(/Reverted vda to r1; the VM was started again/);
    expect(done.stdout).toMatch(/undo with: snapkeep snapshot undo local\//);
    expect(virshOut("domstate", runName).trim()).toBe("running");
    const undo = cli(["snapshot", "undo", `local/${runName}`, "--dry-run"]);
    expect(undo.code).toBe(0);
    expect(undo.stdout).toMatch(/revert them to before revert to r1/);
  });

  it("pins SSH host keys: unknown refused until trusted, a changed key refused with both fingerprints", () => {
    const target = `${sshd.user}@${sshd.host}:${sshd.port}`;
    const added = cli(["host", "add", "lab2", "--ssh", target, "--identity", sshd.userKeyPath]);
    expect(added.code).toBe(0);
    expect(added.stdout).toContain(sshd.hostFingerprint);
    expect(added.stdout).toMatch(/not trusted yet/);

    const untrusted = cli(["vm", "list", "--host", "lab2"]);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/lab2 is not trusted yet/);

    const wrong = cli(["host", "trust", "lab2", "SHA256:" + "A".repeat(43)]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(sshd.hostFingerprint);

    expect(cli(["host", "trust", "lab2", sshd.hostFingerprint]).code).toBe(0);
    const listed = cli(["vm", "list", "--host", "lab2", "--json"]);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)[0].vms.some((v: { name: string }) => v.name === vmName)).toBe(true);

    // The host "was replaced": the pinned key no longer matches what it offers.
    const settingsPath = join(home, "settings.json");
    const settings = JSON.parse(readFileSync(settingsPath, "utf8"));
    const pinned = "SHA256:" + "B".repeat(43);
    settings.hosts.find((h: { name: string }) => h.name === "lab2").hostKey = pinned;
    writeFileSync(settingsPath, JSON.stringify(settings));
    const changed = cli(["snapshot", "list", `lab2/${vmName}`]);
    expect(changed.code).toBe(1);
    expect(changed.stderr).toContain(pinned);
    expect(changed.stderr).toContain(sshd.hostFingerprint);
    expect(changed.stderr).toMatch(/changed/i);
  });

  it("notify add, list (addresses hidden past the host), remove; schedule ping; bad input refused", () => {
    const added = cli([
      "notify",
      "add",
      "phone",
      "--ntfy",
      "https://ntfy.sh/secret-topic",
      "--quiet",
      "22:00-07:00",
    ]);
    expect(added.stderr).toBe("");
    expect(added.stdout).toMatch(
      /^Added alert channel phone: ntfy to https:\/\/ntfy.sh\/…, for failed, overdue, offhost-overdue, recovered, verify-failed, digest, quiet 22:00-07:00\./,
    );
    expect(
      cli([
        "notify",
        "add",
        "hook",
        "--webhook",
        "https://h.example/x?token=t0k",
        "--events",
        "failed,recovered",
      ]).code,
    ).toBe(0);
    const listed = cli(["notify", "list"]);
    expect(listed.stdout).not.toMatch(/secret-topic|t0k/);
    expect(listed.stdout).toContain("hook\twebhook\thttps://h.example/…\tfailed,recovered\n");
    expect(JSON.parse(cli(["notify", "list", "--json"]).stdout)).toHaveLength(2);
    expect(cli(["notify", "add", "x", "--webhook", "ftp://h/x"]).stderr).toMatch(
      /http:\/\/ or https:\/\/ address/,
    );
    expect(
      cli(["notify", "add", "x", "--ntfy", "https://n/t", "--events", "failed,sometimes"]).stderr,
    ).toMatch(/sometimes is not an alert event/);
    expect(cli(["notify", "add", "phone", "--ntfy", "https://n/t"]).stderr).toMatch(/already/);
    expect(cli(["notify", "remove", "hook"]).stdout).toBe("Removed alert channel hook.\n");
    expect(cli(["notify", "remove", "hook"]).stderr).toMatch(/There is no alert channel "hook"/);
    expect(cli(["notify", "remove", "phone"]).code).toBe(0);
    expect(cli(["schedule", "ping", "nosuch00", "https://hc.example/ping/abc"]).code).not.toBe(0);

    // Mail: a password in the address is taken out of it, kept in the 0600 settings, never shown.
    const mail = cli([
      "notify",
      "add",
      "mail",
      "--email",
      "admin@example.org,oncall@example.org",
      "--smtp",
      "smtp://alice:pw%21s3cret@mail.example:587",
      "--starttls",
      "--events",
      "failed,offhost-overdue,recovered",
    ]);
    expect(mail.stderr).toBe("");
    expect(mail.stdout).toMatch(
      /^Added alert channel mail: email to admin@example.org, oncall@example.org via smtp:\/\/mail.example:587, for failed, offhost-overdue, recovered\./,
    );
    const settingsPath = join(home, "settings.json");
    expect(statSync(settingsPath).mode & 0o777).toBe(0o600);
    const stored = (
      JSON.parse(readFileSync(settingsPath, "utf8")) as { alertChannels: Record<string, unknown>[] }
    ).alertChannels;
    expect(stored.find((c) => c["name"] === "mail")).toMatchObject({
      smtp: "smtp://alice@mail.example:587",
      password: "pw!s3cret",
      starttls: true,
    });
    const mailListed = cli(["notify", "list", "--json"]).stdout;
    expect(mailListed).not.toMatch(/s3cret|alice/);
    expect(cli(["notify", "add", "m2", "--email", "a@b.org"]).stderr).toMatch(/--email needs --smtp/);
    expect(
      cli(["notify", "add", "m2", "--email", "a@b.org", "--smtp", "smtp://bob@mail.example"]).stderr,
    ).toMatch(/user bob needs a password: --password-file FILE or SNAPKEEP_SMTP_PASSWORD/);
    expect(
      cli(["notify", "add", "m2", "--email", "a@b.org", "--smtp", "smtps://mail.example", "--starttls"])
        .stderr,
    ).toMatch(/--starttls is for smtp:\/\/ servers/);
    expect(
      cli([
        "notify",
        "add",
        "m2",
        "--email",
        "a@b.org",
        "--smtp",
        "smtp://m.example",
        "--smtp-ca",
        "/nonexistent.pem",
      ]).stderr,
    ).toMatch(/--smtp-ca \/nonexistent.pem cannot be read/);
    expect(
      cli(["notify", "add", "m2", "--email", "not an address", "--smtp", "smtp://m.example"]).stderr,
    ).toMatch(/name@domain/);
    expect(cli(["notify", "remove", "mail"]).code).toBe(0);
  });

  it("service install --dry-run prints units systemd-analyze verifies; nothing is written without systemd", () => {
    const dir = mkdtempSync(join(tmpdir(), "snapkeep-unit-"));
    try {
      for (const args of [[], ["--with-web", "--port", "9090", "--json-logs"]]) {
        const dry = cli(["service", "install", "--dry-run", ...args]);
        expect(dry.stderr).toBe("");
        expect(dry.code).toBe(0);
        const unit =
          /^Would write \/etc\/systemd\/system\/snapkeep.service:\n\n([\s\S]*?\n)\nthen run:\n/.exec(
            dry.stdout,
          )?.[1];
        expect(unit).toMatch(/^# Written by `snapkeep service install`/);
        // The same node and the CLI's real path; the state folder this CLI uses.
        expect(unit).toContain(
          `ExecStart=${process.execPath} ${realpathSync(bin)} ${args.length === 0 ? "daemon" : "serve --host 127.0.0.1 --port 9090 --json"}\n`,
        );
        expect(unit).toContain(`Environment="SNAPKEEP_HOME=${home}"`);
        expect(dry.stdout).toContain(
          "then run:\n  systemctl daemon-reload\n  systemctl enable snapkeep.service\n  systemctl restart snapkeep.service\n",
        );
        writeFileSync(join(dir, "snapkeep.service"), unit ?? "");
        // verify prints every key it does not know or cannot parse, and exits 0 all the same.
        const verified = spawnSync("systemd-analyze", ["verify", join(dir, "snapkeep.service")], {
          encoding: "utf8",
        });
        expect(verified.stderr + verified.stdout).toBe("");
        expect(verified.status).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(cli(["service", "install", "--user", "no-such-user-sk", "--dry-run"]).stderr).toMatch(
      /There is no user "no-such-user-sk"/,
    );
    if (!existsSync("/run/systemd/system")) {
      const refused = cli(["service", "install"]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/systemd is not running on this machine|needs root/);
      expect(existsSync("/etc/systemd/system/snapkeep.service")).toBe(false);
      expect(cli(["service", "status"]).stdout).toMatch(
        /^snapkeep.service is not installed\.\nNothing runs the schedules/,
      );
      expect(cli(["service", "uninstall", "--dry-run"]).stdout).toBe("snapkeep.service is not installed.\n");
    }
  });

  it("doctor checks this computer and SSH hosts, says what to fix, and exits 1 when something fails", () => {
    const version = (JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { version: string })
      .version;
    expect(cli(["--version"]).stdout.trim()).toBe(version);

    const local = cli(["doctor", "local", "--json"]);
    expect(local.code).toBe(0);
    const report = JSON.parse(local.stdout) as {
      version: string;
      ok: boolean;
      hosts: { host: string; checks: { id: string; state: string }[] }[];
    };
    expect(report).toMatchObject({ version, ok: true });
    const states = Object.fromEntries(report.hosts[0]?.checks.map((c) => [c.id, c.state]) ?? []);
    expect(states).toMatchObject({ virsh: "ok", libvirt: "ok", "qemu-img": "ok", dd: "ok", rsync: "ok" });

    // Over SSH, through the pinned key, the same checks on that host.
    const target = `${sshd.user}@${sshd.host}:${sshd.port}`;
    const trusted = ["--identity", sshd.userKeyPath, "--trust", sshd.hostFingerprint];
    expect(cli(["host", "add", "doc1", "--ssh", target, ...trusted]).code).toBe(0);
    const remote = cli(["doctor", "doc1"]);
    expect(remote.code).toBe(0);
    expect(remote.stdout).toMatch(/^doc1 \(qemu:\/\/\/system\):$/m);
    expect(remote.stdout).toMatch(/^ {2}ok {4}libvirt connection: connected to qemu:\/\/\/system$/m);

    // A computer without libvirt's client and qemu-img: each named, with the package to install.
    const bare = mkdtempSync(join(tmpdir(), "snapkeep-bare-path-"));
    try {
      const tools = [
        "sh",
        "dd",
        "sha256sum",
        "df",
        "date",
        "id",
        "head",
        "tr",
        "awk",
        "grep",
        "dirname",
        "tail",
      ];
      for (const tool of tools) {
        symlinkSync(
          execFileSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).trim(),
          join(bare, tool),
        );
      }
      symlinkSync(process.execPath, join(bare, "node"));
      const missing = cli(["doctor", "local"], { PATH: bare });
      expect(missing.code).toBe(1);
      expect(missing.stdout).toMatch(/^ {2}FAIL {2}virsh: not installed$/m);
      expect(missing.stdout).toContain("apt-get install libvirt-clients");
      expect(missing.stdout).toMatch(/^ {2}FAIL {2}qemu-img: not installed$/m);
      expect(missing.stdout).toContain("apt-get install qemu-utils");
      expect(missing.stdout).toMatch(/see FAIL above\.$/m);
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }

    // lab2's pinned key no longer matches (the test above): not reachable, and why.
    const changed = cli(["doctor", "lab2"]);
    expect(changed.code).toBe(1);
    expect(changed.stdout).toMatch(/^ {2}FAIL {2}Reachable: .*changed/im);
    expect(cli(["host", "remove", "doc1"]).code).toBe(0);
  });

  it("moves an unreadable settings file aside and says so", () => {
    const other = mkdtempSync(join(tmpdir(), "snapkeep-cli-corrupt-"));
    try {
      writeFileSync(join(other, "settings.json"), "{ not json");
      const result = cli(["host", "list"], { SNAPKEEP_HOME: other });
      expect(result.code).toBe(0);
      expect(result.stderr).toMatch(/settings file could not be read .* moved to .*settings\.json\.corrupt-/);
      expect(
        readFileSync(
          join(other, result.stderr.match(/(settings\.json\.corrupt-\S+?) and/)?.[1] ?? ""),
          "utf8",
        ),
      ).toBe("{ not json");
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("orphans --clean forgets what points at a VM removed behind Snapkeep's back, after a dry run", async () => {
    const gone = `sk-cli-gone-${suffix}`;
    const orphanHome = mkdtempSync(join(tmpdir(), "snapkeep-cli-orphans-"));
    const env = { SNAPKEEP_HOME: orphanHome };
    let disks: readonly string[] = [];
    try {
      ({ diskPaths: disks } = await vms.create({
        name: gone,
        running: false,
        disks: [{ target: "vda", sizeMiB: 8 }],
      }));
      expect(
        cli(["snapshot", "create", `local/${gone}`, "--name", "kept", "--note", "a note"], env).code,
      ).toBe(0);
      expect(
        cli(["schedule", "add", `local/${gone}`, "--every", "daily", "--at", "02:30", "--keep", "3"], env)
          .code,
      ).toBe(0);
      // Removed with virsh, not with Snapkeep.
      execFileSync("virsh", ["-q", "-c", "qemu:///system", "undefine", gone, "--snapshots-metadata"]);
      const listed = cli(["orphans"], env).stdout;
      expect(listed).toMatch(/annotation\s+kept/);
      expect(listed).toMatch(/schedule\s+\w{8}/);
      const settingsPath = join(orphanHome, "settings.json");
      const before = readFileSync(settingsPath, "utf8");
      const dry = cli(["orphans", "--clean", "--dry-run"], env);
      expect(dry.stdout).toMatch(/^Would forget annotation kept on local/m);
      expect(dry.stdout).toMatch(/^Would forget schedule \w{8} on local/m);
      expect(readFileSync(settingsPath, "utf8")).toBe(before);
      expect(cli(["orphans", "--dry-run"], env).stderr).toMatch(/--dry-run goes with --clean/);
      expect(cli(["orphans", "--clean"], env).stdout).toMatch(/^Forgot annotation kept on local/m);
      expect(cli(["orphans"], env).stdout).toBe("Nothing points at a VM that is gone.\n");
      // The VM still listed: untouched.
      expect(cli(["orphans", "--clean"], env).stdout).toMatch(/^Nothing to forget/);
    } finally {
      rmSync(orphanHome, { recursive: true, force: true });
      disks.forEach((disk) => rmSync(disk, { force: true }));
    }
  });

  it("lab up makes two demo VMs (one running), lab down removes exactly those", () => {
    const labHome = mkdtempSync(join(tmpdir(), "snapkeep-cli-lab-"));
    // A folder lab up creates itself (and opens to QEMU); an existing one would keep its mode.
    const labDir = join("/var/lib/libvirt/images", `snapkeep-lab-test-${suffix}`);
    const env = { SNAPKEEP_HOME: labHome };
    try {
      const up = cli(["lab", "up", "--dir", labDir], env);
      expect(up.stderr).toBe("");
      expect(up.stdout).toMatch(/Created snapkeep-demo-web and snapkeep-demo-db/);
      expect(cli(["lab", "up", "--dir", labDir], env).stdout).toMatch(/already there/);
      const vmsListed = JSON.parse(cli(["vm", "list", "--json"], env).stdout)[0].vms as {
        name: string;
        state: string;
      }[];
      expect(
        vmsListed
          .filter((v) => v.name.startsWith("snapkeep-demo-"))
          .map((v) => [v.name, v.state])
          .sort(),
      ).toEqual([
        ["snapkeep-demo-db", "shut off"],
        ["snapkeep-demo-web", "running"],
      ]);
      expect(cli(["snapshot", "create", "local/snapkeep-demo-web", "--name", "try"], env).code).toBe(0);
      // A pin and a schedule: settings about a lab VM, which lab down must not leave behind.
      expect(cli(["snapshot", "pin", "local/snapkeep-demo-web", "try"], env).code).toBe(0);
      expect(
        cli(
          ["schedule", "add", "local/snapkeep-demo-db", "--every", "daily", "--at", "02:30", "--keep", "3"],
          env,
        ).code,
      ).toBe(0);

      const dry = cli(["lab", "down", "--dry-run"], env);
      expect(dry.stdout).toMatch(/Would remove snapkeep-demo-web and 2 disk image\(s\)/);
      expect(virshOut("domstate", "snapkeep-demo-web").trim()).toBe("running");

      const down = cli(["lab", "down"], env);
      expect(down.stdout).toMatch(/Removed snapkeep-demo-web/);
      const after = JSON.parse(cli(["vm", "list", "--json"], env).stdout)[0].vms as { name: string }[];
      expect(after.some((v) => v.name.startsWith("snapkeep-demo-"))).toBe(false);
      // Test VMs of this run carry another owner mark and are untouched.
      expect(after.some((v) => v.name === vmName)).toBe(true);
      expect(readdirSync(labDir)).toEqual([]);
      // Nothing in the settings points at them any more.
      expect(cli(["orphans"], env).stdout).toBe("Nothing points at a VM that is gone.\n");
      const settings = JSON.parse(readFileSync(join(labHome, "settings.json"), "utf8")) as {
        schedules: unknown[];
        annotations: Record<string, unknown>;
      };
      expect([settings.schedules, settings.annotations]).toEqual([[], {}]);
    } finally {
      cli(["lab", "down"], env);
      rmSync(labHome, { recursive: true, force: true });
      rmSync(labDir, { recursive: true, force: true });
    }
  });

  it("exports a snapshot to a folder target, lists and verifies it, and plans an import", () => {
    const dir = mkdtempSync(join(tmpdir(), "snapkeep-cli-target-"));
    try {
      expect(cli(["target", "add", "backup", "--dir", dir, "--keep", "2"]).code).toBe(0);
      expect(cli(["target", "list"]).stdout).toMatch(/backup\s+\S+\s+2/);
      expect(cli(["snapshot", "create", `local/${vmName}`, "--name", "to-export"]).code).toBe(0);
      const exported = cli(["export", `local/${vmName}`, "to-export", "--to", "backup", "--json"]);
      expect(exported.code).toBe(0);
      // Progress goes to stderr, the result to stdout.
      expect(exported.stderr).toMatch(/transfer vda/);
      const result = JSON.parse(exported.stdout) as { id: string; manifest: { disks: { name: string }[] } };
      expect(result.manifest.disks.map((d) => d.name)).toEqual(["vda.qcow2", "vdb.qcow2"]);
      const listed = cli(["exports", "list"]);
      expect(listed.stdout).toContain(result.id);
      expect(listed.stdout).toMatch(/good/);
      const verified = cli(["exports", "verify", "backup", result.id]);
      expect(verified.code).toBe(0);
      expect(verified.stdout).toMatch(/intact/);
      const plan = cli([
        "import",
        "backup",
        result.id,
        "--to",
        "local",
        "--name",
        `${vmName}-copy`,
        "--dry-run",
      ]);
      expect(plan.code).toBe(0);
      expect(plan.stdout).toMatch(/Would restore .* as new VM/);
      const missing = cli(["export", `local/${vmName}`, "to-export", "--to", "nowhere"]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/no export target named "nowhere"/);
      // One history: the export, the verify and the failed export are in the job journal (the dry
      // run changed nothing and is not).
      const jobs = JSON.parse(cli(["jobs", "list", "--json"]).stdout) as {
        kind: string;
        status: string;
        title: string;
      }[];
      expect(jobs.map((j) => [j.kind, j.status])).toEqual([
        ["export", "succeeded"],
        ["verify", "succeeded"],
        ["export", "failed"],
      ]);
      expect(jobs[0]?.title).toBe(`Export ${vmName} “to-export” to backup`);
      expect(cli(["jobs", "list"]).stdout).toMatch(/export\s+local\/\S+\s+succeeded\s+Export /);

      // A schedule that copies to the target: added, listed, previewed and edited from the CLI.
      const added = cli([
        "schedule",
        "add",
        `local/${vmName}`,
        "--every",
        "daily",
        "--at",
        "02:30",
        "--keep",
        "3",
        "--copy-to",
        "backup",
        "--copy-keep",
        "2",
        "--json",
      ]);
      expect(added.code).toBe(0);
      const schedule = JSON.parse(added.stdout) as { id: string; copy: unknown };
      expect(schedule.copy).toEqual({
        target: "backup",
        cadence: { every: "runs", n: 1 },
        retention: { keepLast: 2 },
        holdLocalUntilCopied: true,
      });
      expect(cli(["schedule", "list"]).stdout).toMatch(/to backup, every run, keep 2/);
      expect(cli(["schedule", "preview", schedule.id]).stdout).toMatch(
        /Copies to backup, every run, keep 2\. After a year backup keeps 2 of its 3\d\d copies, the oldest from \d{4}-\d\d-\d\d\. No snapshot is held for its copy now\./,
      );
      const edited = cli([
        "schedule",
        "edit",
        schedule.id,
        "--copy-every",
        "week",
        "--copy-weekly",
        "8",
        "--json",
      ]);
      expect(edited.code).toBe(0);
      expect(JSON.parse(edited.stdout)).toMatchObject({
        when: { every: "daily", at: "02:30" },
        retention: { keepLast: 3 },
        copy: { target: "backup", cadence: { every: "week" }, retention: { weekly: 8 } },
      });
      const wrong = cli(["schedule", "edit", schedule.id, "--copy-to", "nowhere"]);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/no export target named "nowhere"/);
      expect(cli(["schedule", "edit", schedule.id, "--no-copy"]).code).toBe(0);
      expect(cli(["schedule", "list", "--json"]).stdout).not.toMatch(/"copy"/);
      expect(cli(["schedule", "remove", schedule.id]).code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

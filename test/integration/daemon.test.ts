/**
 * The real `snapkeep daemon` on real libvirt: a per-minute schedule with keep 1 makes snapshots,
 * copies each one to a folder target (which keeps the schedule's newest copy) and prunes them to
 * one while the manual snapshot survives; a second daemon is refused; a daemon killed with -9 in
 * the middle of a job leaves it reported as interrupted, never as done; and one killed in the
 * middle of a copy to an SSH target in its own network namespace resumes that copy when it starts
 * again, sending only what had not arrived.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSettingsStore } from "../../core/infra/store/store.js";
import { TestVms, uniqueSuffix } from "../support/libvirt.js";
import { waitFor } from "../support/wait.js";
import { createNetns, type TestNetns } from "../support/netns.js";
import { startSshd, type TestSshd } from "../support/sshd.js";

const MiB = 1024 * 1024;

const repo = fileURLToPath(new URL("../..", import.meta.url));
const bin = join(repo, "bin/snapkeep.js");

describe("snapkeep daemon", () => {
  const vms = new TestVms();
  const suffix = uniqueSuffix();
  const homes: string[] = [];
  const daemons: ChildProcess[] = [];
  let netns: TestNetns | undefined;
  let sshd: TestSshd | undefined;

  const freshHome = (): string => {
    const home = mkdtempSync(join(tmpdir(), "snapkeep-daemon-"));
    homes.push(home);
    return home;
  };
  const cli = (home: string, args: string[]) => {
    const r = spawnSync("node", [bin, ...args], {
      encoding: "utf8",
      env: { ...process.env, SNAPKEEP_HOME: home },
      timeout: 120_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const startDaemon = (home: string, extra: string[] = []): { child: ChildProcess; output: () => string } => {
    let output = "";
    const child = spawn("node", [bin, "daemon", ...extra], { env: { ...process.env, SNAPKEEP_HOME: home } });
    child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
    daemons.push(child);
    return { child, output: () => output };
  };
  const exited = (child: ChildProcess): Promise<number | null> =>
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve(child.exitCode)
      : new Promise((resolve) => child.once("exit", (code) => resolve(code)));

  beforeAll(() => {
    execFileSync("npm", ["run", "--silent", "build:cli"], { cwd: repo, stdio: "inherit" });
  });

  afterAll(async () => {
    for (const d of daemons) {
      d.kill("SIGKILL");
    }
    await sshd?.stop();
    netns?.dispose();
    await vms.dispose();
    homes.forEach((h) => rmSync(h, { recursive: true, force: true }));
  });

  it("logs one JSON object per line with --json, as a journal shipper reads it", async () => {
    const daemon = startDaemon(freshHome(), ["--json"]);
    await waitFor(() => daemon.output().includes("\n"), 20_000, "daemon start");
    daemon.child.kill("SIGTERM");
    expect(await exited(daemon.child)).toBe(0);
    const lines = daemon
      .output()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ level: "info", event: "message", time: expect.any(String) });
    expect(String(lines[0]?.["message"])).toMatch(/^snapkeep daemon started \(pid \d+/);
    expect(lines.at(-1)?.["message"]).toBe("stopping: waiting for running jobs to finish");
  });

  it(
    "snapshots every minute, prunes to keep 1, and never touches the manual snapshot",
    { timeout: 300_000 },
    async () => {
      const home = freshHome();
      const name = `sk-daemon-${suffix}`;
      await vms.create({
        name,
        running: true,
        disks: [
          { target: "vda", sizeMiB: 8 },
          { target: "vdb", sizeMiB: 8 },
        ],
      });
      expect(cli(home, ["snapshot", "create", `local/${name}`, "--name", "by hand"]).code).toBe(0);
      const targetDir = join(home, "nas");
      expect(cli(home, ["target", "add", "nas", "--dir", targetDir]).code).toBe(0);
      const added = cli(home, [
        "schedule",
        "add",
        `local/${name}`,
        "--cron",
        "* * * * *",
        "--keep",
        "1",
        "--copy-to",
        "nas",
        "--copy-keep",
        "1",
        "--json",
      ]);
      expect(added.stderr).toBe("");
      const scheduleId = JSON.parse(added.stdout).id as string;

      const daemon = startDaemon(home);
      await waitFor(() => daemon.output().includes("snapkeep daemon started"), 20_000, "daemon start");
      const second = cli(home, ["daemon"]);
      expect(second.code).toBe(1);
      expect(second.stderr).toMatch(
        new RegExp(`Another Snapkeep scheduler already runs on .*snapkeep daemon, pid ${daemon.child.pid}`),
      );

      const succeeded = (kind: string): number =>
        (
          JSON.parse(cli(home, ["jobs", "list", "--json"]).stdout) as { status: string; kind: string }[]
        ).filter((j) => j.status === "succeeded" && j.kind === kind).length;
      await waitFor(() => succeeded("scheduled-snapshot") >= 2, 170_000, "two scheduled runs");
      await waitFor(() => succeeded("copy") >= 2, 60_000, "their two copies");

      const snapshots = JSON.parse(cli(home, ["snapshot", "list", `local/${name}`, "--json"]).stdout) as {
        name: string;
        kind: string;
        origin: string | null;
        consistency: string | null;
      }[];
      expect(snapshots.filter((s) => s.kind === "manual").map((s) => s.name)).toEqual(["by hand"]);
      const scheduled = snapshots.filter((s) => s.kind === "scheduled");
      expect(scheduled).toHaveLength(1);
      expect(scheduled[0]).toMatchObject({ origin: scheduleId, consistency: "crash-consistent" });
      const jobs = JSON.parse(cli(home, ["jobs", "list", "--json"]).stdout) as {
        kind: string;
        status: string;
        pruned: string[];
        copy: {
          target: string;
          exportId: string | null;
          prunedCopies: string[];
          error: string | null;
        } | null;
      }[];
      const done = jobs.filter((j) => j.status === "succeeded");
      expect(done.some((j) => j.kind === "scheduled-snapshot" && j.pruned.length === 1)).toBe(true);
      // Every run's snapshot was copied off the host by a copy job of its own, and the target keeps
      // the schedule's newest copy.
      const copied = done.filter((j) => j.kind === "copy");
      for (const job of copied) {
        expect(job.copy).toMatchObject({ target: "nas", error: null, exportId: expect.any(String) });
      }
      expect(copied.some((j) => j.copy?.prunedCopies.length === 1)).toBe(true);
      const onTarget = JSON.parse(cli(home, ["exports", "list", "--json"]).stdout) as {
        exports: { state: string; manifest: { scheduleId?: string } | null }[];
      }[];
      // (The next minute's copy may be under way: a partial one is not a copy yet.)
      const copies = (onTarget[0]?.exports ?? []).filter((e) => e.state !== "partial");
      expect(copies.map((e) => [e.state, e.manifest?.scheduleId])).toEqual([["verified", scheduleId]]);
      // The daemon's own log says what it pruned (the journal was written first; stdout may lag).
      await waitFor(
        () => /job job-\w+ succeeded: .*pruned scheduled-/.test(daemon.output()),
        10_000,
        "the prune in the log",
      );
      const list = JSON.parse(cli(home, ["schedule", "list", "--json"]).stdout) as {
        state: { lastResult: string };
      }[];
      expect(list[0]?.state.lastResult).toBe("ok");
      // Its recovery point is fine, on the host and off it.
      expect(cli(home, ["vm", "list"]).stdout).toMatch(new RegExp(`${name} .* ok\\s+ok\\n`));

      daemon.child.kill("SIGTERM");
      expect(await exited(daemon.child)).toBe(0);
      // The lock went with it: another scheduler may start now.
      const again = startDaemon(home);
      await waitFor(() => again.output().includes("snapkeep daemon started"), 20_000, "second start");
      again.child.kill("SIGTERM");
      expect(await exited(again.child)).toBe(0);
    },
  );

  it(
    "reports a job cut off by kill -9 as interrupted, and says so on the next start",
    { timeout: 240_000 },
    async () => {
      const home = freshHome();
      const name = `sk-crash-${suffix}`;
      const vm = await vms.create({ name, running: true, disks: [{ target: "vda", sizeMiB: 8 }] });
      expect(cli(home, ["schedule", "add", `local/${name}`, "--cron", "* * * * *", "--keep", "3"]).code).toBe(
        0,
      );
      // A slow pre-snapshot hook on the host holds the job open long enough to kill the daemon in it.
      const marker = `${40 + Math.random()}`.slice(0, 8);
      const store = openSettingsStore(home, new Date());
      store.update((s) => ({
        ...s,
        vmSettings: {
          [`local/${vm.uuid}`]: {
            consistency: {
              freeze: false,
              pre: { where: "host", argv: ["sleep", marker], timeoutSeconds: 120 },
            },
          },
        },
      }));

      const daemon = startDaemon(home);
      await waitFor(() => /job job-\w+ started/.test(daemon.output()), 90_000, "a job to start");
      await waitFor(
        () => spawnSync("pgrep", ["-f", `sleep ${marker}`]).status === 0,
        10_000,
        "the hook to run",
      );
      daemon.child.kill("SIGKILL");
      await exited(daemon.child);
      spawnSync("pkill", ["-f", `^sleep ${marker}$`]); // the hook this test started

      // No scheduler is alive: the open job is shown as interrupted, not running, not done.
      const shown = JSON.parse(cli(home, ["jobs", "list", "--json"]).stdout) as { status: string }[];
      expect(shown.map((j) => j.status)).toEqual(["interrupted"]);

      const restarted = startDaemon(home);
      await waitFor(() => restarted.output().includes("INTERRUPTED"), 30_000, "the interrupted report");
      expect(restarted.output()).toMatch(
        /was INTERRUPTED \(Snapkeep stopped while it ran\): it had not made a snapshot yet/,
      );
      restarted.child.kill("SIGTERM");
      await exited(restarted.child);
      const journal = JSON.parse(cli(home, ["jobs", "list", "--json"]).stdout) as {
        status: string;
        message: string;
      }[];
      expect(journal[0]).toMatchObject({
        status: "interrupted",
        message: expect.stringContaining("did not complete"),
      });
      expect(journal.some((j) => j.status === "succeeded" && j === journal[0])).toBe(false);
      const snapshots = JSON.parse(
        cli(home, ["snapshot", "list", `local/${name}`, "--json"]).stdout,
      ) as unknown[];
      expect(snapshots.length).toBeLessThanOrEqual(1); // at most one run after the restart, none half-made
    },
  );

  it(
    "resumes a copy cut off by kill -9 on the next start, sending only what had not arrived",
    { timeout: 300_000 },
    async () => {
      const home = freshHome();
      const name = `sk-cut-${suffix}`;
      netns = createNetns();
      sshd = await startSshd({ netns: { name: netns.name, address: netns.address } });
      const remoteDir = join(sshd.tmpDir, "copies");
      // 16 MiB that do not compress, sent at 1 MiB/s: a copy long enough to cut in the middle.
      const vm = await vms.create({ name, running: false, disks: [{ target: "vda", sizeMiB: 32 }] });
      const random = join(home, "random.bin");
      writeFileSync(random, randomBytes(16 * MiB));
      execFileSync("qemu-io", [
        "-f",
        "qcow2",
        "-c",
        `write -s ${random} 0 ${16 * MiB}`,
        vm.diskPaths[0] as string,
      ]);
      const target = cli(home, [
        "target",
        "add",
        "nas",
        "--ssh",
        `${sshd.user}@${sshd.host}:${sshd.port}:${remoteDir}`,
        "--identity",
        sshd.userKeyPath,
        "--trust",
        sshd.hostFingerprint,
        "--bwlimit",
        "1",
      ]);
      expect(target.stderr).toBe("");
      const added = cli(home, [
        "schedule",
        "add",
        `local/${name}`,
        "--cron",
        "* * * * *",
        "--keep",
        "3",
        "--copy-to",
        "nas",
        "--copy-keep",
        "2",
        "--json",
      ]);
      expect(added.stderr).toBe("");

      const daemon = startDaemon(home);
      await waitFor(() => /job job-\w+ started: copy of /.test(daemon.output()), 150_000, "a copy to start");
      const partialImage = (): number => {
        const found = spawnSync("find", [remoteDir, "-path", "*.partial/vda.qcow2", "-size", "+4M"], {
          encoding: "utf8",
        });
        return found.stdout.trim() === "" ? 0 : 1;
      };
      await waitFor(() => partialImage() === 1, 60_000, "4 MiB of the copy on the target");
      daemon.child.kill("SIGKILL");
      await exited(daemon.child);
      type Job = {
        kind: string;
        status: string;
        tag: string;
        copy: { bytesSent: number; resumed?: boolean; exportId: string | null } | null;
      };
      const jobs = (): Job[] => JSON.parse(cli(home, ["jobs", "list", "--json"]).stdout) as Job[];
      const cut = jobs().filter((j) => j.kind === "copy");
      expect(cut.map((j) => j.status)).toEqual(["interrupted"]);

      const restarted = startDaemon(home);
      await waitFor(
        () => /copied .* \(resumed\)/.test(restarted.output()),
        120_000,
        "the cut-off copy to be resumed",
      );
      restarted.child.kill("SIGTERM");
      await exited(restarted.child);
      expect(restarted.output()).toMatch(
        /job job-\w+ \(copy\) of .* was INTERRUPTED .*the next copy job resumes/,
      );
      const copies = jobs().filter((j) => j.kind === "copy");
      const resumed = copies.find((j) => j.copy?.resumed === true);
      // The same snapshot, resumed: less than the whole image went over the link the second time.
      expect(resumed?.tag).toBe(cut[0]?.tag);
      expect(resumed?.status).toBe("succeeded");
      const landed = spawnSync(
        "find",
        [remoteDir, "-path", `*/${resumed?.copy?.exportId ?? "-"}/vda.qcow2`, "-printf", "%s"],
        { encoding: "utf8" },
      );
      const imageBytes = Number(landed.stdout);
      expect(imageBytes).toBeGreaterThan(16 * MiB); // random data does not compress
      // At least 4 MiB had arrived before the kill; they were not sent again.
      expect(resumed?.copy?.bytesSent).toBeGreaterThan(0);
      expect(resumed?.copy?.bytesSent).toBeLessThan(imageBytes - 3 * MiB);
      const listed = JSON.parse(cli(home, ["exports", "list", "--target", "nas", "--json"]).stdout) as {
        exports: { id: string; state: string }[];
      }[];
      expect(listed[0]?.exports.find((e) => e.id === resumed?.copy?.exportId)?.state).toBe("verified");
    },
  );
});

/**
 * GET /metrics of a real `snapkeep serve` (and `snapkeep metrics`) over a real libvirt VM with a
 * snapshot, a schedule that copies it off the host, and jobs in the real journal; the answer is
 * read by Prometheus' own text-format parser (the official Python client's). Without the token, or with another, it is refused.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Schedules } from "../../core/app/schedules/schedules.js";
import { Journal } from "../../core/infra/journal.js";
import { makeApp } from "../support/app.js";
import { TestVms, uniqueSuffix } from "../support/libvirt.js";
import { parseMetrics, sampleValue as sample } from "../support/prometheus.js";
import { startServe, stopServe } from "../support/serve.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));

describe("metrics for Prometheus", () => {
  const vms = new TestVms();
  const name = `sk-metrics-${uniqueSuffix()}`;
  let ctx: ReturnType<typeof makeApp>;
  let server: ChildProcess | undefined;
  let origin = "";
  let tokenFile = "";

  beforeAll(async () => {
    execFileSync("npm", ["run", "build:cli"], { cwd: repo, stdio: "inherit" });
    ctx = makeApp();
    ctx.app.hosts.addLocal("local");
    await vms.create({ name, running: false, disks: [{ target: "vda", sizeMiB: 8 }] });
    await ctx.app.snapshots.create("local", name, { name: "before-upgrade" });
    const schedules = new Schedules(ctx.app, () => new Date());
    const schedule = await schedules.add({
      host: "local",
      vm: name,
      when: { every: "daily", at: "02:00" },
      retention: { keepLast: 7 },
    });
    // Jobs as the scheduler and the UI journal them: a copy that sent 5 MiB, a snapshot that
    // failed, an export a UI made.
    const journal = new Journal(ctx.home);
    const hourAgo = Date.now() - 3600_000;
    const at = (s: number) => new Date(hourAgo + s * 1000).toISOString();
    const scheduled = { scheduleId: schedule.id, host: "local", vmUuid: "u", vmName: name, tag: "t" };
    journal.start({ job: "j1", at: at(0), kind: "copy", target: "nas", ...scheduled });
    journal.end({
      job: "j1",
      at: at(42),
      status: "succeeded",
      copy: { target: "nas", exportId: "e1", bytesSent: 5 * 1024 * 1024, prunedCopies: [], error: null },
    });
    journal.start({ job: "j2", at: at(60), kind: "scheduled-snapshot", slot: at(60), ...scheduled });
    journal.end({ job: "j2", at: at(63), status: "failed", message: "locked" });
    journal.start({ job: "j3", at: at(70), kind: "export", title: "Export", host: "local", vmName: name });
    journal.end({ job: "j3", at: at(100), status: "succeeded", sent: { target: "usb", bytes: 1000 } });
    tokenFile = join(ctx.home, "serve.token");
    let url: string;
    ({ server, url } = await startServe(repo, ctx.home, ["--no-scheduler", "--token-file", tokenFile]));
    origin = url.replace(/\/#token=.*/, "");
  }, 180_000);

  afterAll(async () => {
    await stopServe(server);
    await ctx?.dispose();
    await vms.dispose();
  });

  it("answers the token's bearer only, in the text format, with per-VM ages, RPO, jobs and bytes", async () => {
    const token = readFileSync(tokenFile, "utf8").trim();
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(token).toMatch(/^[\w-]{32,}$/);
    expect((await fetch(`${origin}/metrics`)).status).toBe(401);
    const wrong = await fetch(`${origin}/metrics`, {
      headers: { Authorization: `Bearer ${"x".repeat(token.length)}` },
    });
    expect(wrong.status).toBe(401);
    expect(
      (await fetch(`${origin}/metrics`, { method: "POST", headers: { Authorization: `Bearer ${token}` } }))
        .status,
    ).toBe(405);

    const answer = await fetch(`${origin}/metrics`, { headers: { Authorization: `Bearer ${token}` } });
    expect(answer.status).toBe(200);
    expect(answer.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const families = parseMetrics(await answer.text());
    const vm = { host: "local", vm: name };
    expect(sample(families, "snapkeep_info", { version: "0.1.0" })).toBe(1);
    expect(sample(families, "snapkeep_scheduler_up")).toBe(0);
    expect(sample(families, "snapkeep_host_up", { host: "local" })).toBe(1);
    expect(sample(families, "snapkeep_vm_snapshots", vm)).toBe(1);
    const age = sample(families, "snapkeep_vm_newest_snapshot_age_seconds", vm);
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(600);
    // The schedule has not run yet, and no scheduler runs: each state is a sample, one of them 1.
    const states = ["ok", "due", "overdue", "unscheduled"].map((state) =>
      sample(families, "snapkeep_vm_rpo_state", { ...vm, state }),
    );
    expect(states.reduce((a, b) => a + b)).toBe(1);
    // Jobs from the journal, by kind and result.
    expect(sample(families, "snapkeep_jobs_total", { kind: "copy", result: "succeeded" })).toBe(1);
    expect(sample(families, "snapkeep_jobs_total", { kind: "scheduled-snapshot", result: "failed" })).toBe(1);
    expect(sample(families, "snapkeep_exported_bytes_total", { kind: "copy", target: "nas" })).toBe(
      5 * 1024 * 1024,
    );
    expect(sample(families, "snapkeep_exported_bytes_total", { kind: "export", target: "usb" })).toBe(1000);
    expect(families.find((f) => f.name === "snapkeep_job_duration_seconds")?.type).toBe("histogram");
    const copy = { kind: "copy", result: "succeeded" };
    expect(sample(families, "snapkeep_job_duration_seconds_count", copy)).toBe(1);
    expect(sample(families, "snapkeep_job_duration_seconds_sum", copy)).toBe(42);
    expect(sample(families, "snapkeep_job_duration_seconds_bucket", { ...copy, le: "15" })).toBe(0);
    expect(sample(families, "snapkeep_job_duration_seconds_bucket", { ...copy, le: "60" })).toBe(1);

    // The CLI prints the same families, for node_exporter's textfile collector.
    const printed = execFileSync("node", [join(repo, "bin/snapkeep.js"), "metrics"], {
      env: { ...process.env, SNAPKEEP_HOME: ctx.home },
      encoding: "utf8",
    });
    expect(
      parseMetrics(printed)
        .map((f) => f.name)
        .sort(),
    ).toEqual(families.map((f) => f.name).sort());
  });

  it("keeps the token file's token across restarts, and refuses one others may read", async () => {
    const token = readFileSync(tokenFile, "utf8").trim();
    await stopServe(server);
    let url: string;
    ({ server, url } = await startServe(repo, ctx.home, ["--no-scheduler", "--token-file", tokenFile]));
    expect(url.endsWith(`#token=${token}`)).toBe(true);
    await stopServe(server);
    // The JSON log (a service's, read by anyone with the journal) names the file, not the token.
    const json = spawn(
      "node",
      [
        join(repo, "bin/snapkeep.js"),
        "serve",
        "--port",
        "0",
        "--no-scheduler",
        "--json",
        "--token-file",
        tokenFile,
      ],
      {
        env: { ...process.env, SNAPKEEP_HOME: ctx.home },
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    const line = await new Promise<string>((resolve) => {
      let out = "";
      json.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes("\n")) {
          resolve(out.split("\n")[0] ?? "");
        }
      });
    });
    await stopServe(json);
    expect(line).not.toContain(token);
    expect(JSON.parse(line)).toMatchObject({
      message: expect.stringMatching(
        /^Snapkeep is at http:\/\/127\.0\.0\.1:\d+\/ \(its token is in .*serve\.token\)$/,
      ),
    });
    chmodSync(tokenFile, 0o644);
    await expect(startServe(repo, ctx.home, ["--no-scheduler", "--token-file", tokenFile])).rejects.toThrow(
      /may be read by others \(mode 644\): chmod 600/,
    );
    const short = join(ctx.home, "short.token");
    writeFileSync(short, "abc\n", { mode: 0o600 });
    await expect(startServe(repo, ctx.home, ["--no-scheduler", "--token-file", short])).rejects.toThrow(
      /at least 32 letters/,
    );
  });
});

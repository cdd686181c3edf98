/**
 * Clearing abandoned unfinished exports on a real folder (the target's scripts under real sh): what
 * goes and what stays, and a target that cannot answer or remove never stops the retention around
 * it. The failing target is a fake runner: only the outcome of a command matters there.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

import { sweepAbandoned } from "../../core/app/exports/abandoned.js";
import type { Target } from "../../core/domain/settings.js";
import type { ExportEntry, Manifest } from "../../core/drivers/bundle/bundle.js";
import { RemoteFs } from "../../core/infra/remote-fs.js";
import { LocalRunner } from "../../core/infra/runner/local.js";
import type { CommandRunner } from "../../core/infra/runner/types.js";

const root = mkdtempSync(join(tmpdir(), "snapkeep-abandoned-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const target = { kind: "dir", name: "usb", path: root } as unknown as Target;
const VM = "web-1b2c3d4e";
const UUID = "1b2c3d4e-0000-4000-8000-000000000001";

function verified(id: string, day: number): ExportEntry {
  const at = `2026-12-0${day}T02:00:00.000Z`;
  const manifest = {
    source: { snapshot: { createdAt: at } },
    disks: [{ target: "vda" }],
  } as unknown as Manifest;
  return entry({ id, folder: `${VM}/${id}`, state: "verified", manifest, job: null, createdAt: at });
}

/** An unfinished export's folder on disk, its files last written `age` ago. */
function partial(id: string, day: number, age: string, scheduleId?: string): ExportEntry {
  const at = `2026-12-0${day}T02:00:00.000Z`;
  const dir = join(root, VM, `${id}.partial`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "vda.qcow2"), "part of an image");
  execFileSync("find", [dir, "-exec", "touch", "-d", age, "{}", "+"]);
  const job = {
    format: "snapkeep-export" as const,
    id,
    startedAt: at,
    host: "local",
    vmUuid: UUID,
    vmName: "web",
    snapshotTag: id,
    snapshotCreatedAt: at,
    disks: ["vda"],
    ...(scheduleId === undefined ? {} : { scheduleId }),
  } satisfies ExportEntry["job"];
  return entry({ id, folder: `${VM}/${id}.partial`, state: "partial", manifest: null, job, createdAt: at });
}

function entry(
  e: Pick<ExportEntry, "id" | "folder" | "state" | "manifest" | "job" | "createdAt">,
): ExportEntry {
  return {
    ...e,
    vmFolder: VM,
    reason: null,
    manifestSha256: null,
    status: null,
    vmName: "web",
    vmUuid: UUID,
    snapshotName: e.id,
  };
}

const options = { scheduleId: null, exporting: new Set<string>(), quietMs: 24 * 3600_000, dryRun: false };

describe("clearing abandoned unfinished exports", () => {
  it("removes the superseded one nothing wrote to for a day; the fresh, the scheduled and the exporting stay", async () => {
    const entries = [
      verified("20261201T020000Z-a", 1),
      partial("20261202T020000Z-old", 2, "2 days ago"),
      partial("20261202T030000Z-fresh", 2, "1 minute ago"),
      partial("20261202T040000Z-sched", 2, "2 days ago", "abcd1234"),
      verified("20261203T020000Z-b", 3),
    ];
    const fs = new RemoteFs(new LocalRunner());
    const dry = await sweepAbandoned(fs, target, entries, { ...options, dryRun: true });
    expect(dry.removed.map((r) => r.folder)).toEqual([`${VM}/20261202T020000Z-old.partial`]);
    expect(dry.removed[0]?.reason).toBe(
      "unfinished since 2026-12-02 02:00 UTC, superseded by 20261203T020000Z-b, nothing written to it for 24 h",
    );
    expect(existsSync(join(root, VM, "20261202T020000Z-old.partial"))).toBe(true);

    // This process exporting the VM to the target now: its attempts are not judged at all.
    const busy = await sweepAbandoned(fs, target, entries, { ...options, exporting: new Set([UUID]) });
    expect(busy).toMatchObject({ removed: [], kept: [] });
    expect(existsSync(join(root, VM, "20261202T020000Z-old.partial"))).toBe(true);

    const done = await sweepAbandoned(fs, target, entries, options);
    expect(done.removed.map((r) => r.folder)).toEqual([`${VM}/20261202T020000Z-old.partial`]);
    expect(done.rest.map((e) => e.id)).not.toContain("20261202T020000Z-old");
    expect(done.rest).toHaveLength(4);
    expect(existsSync(join(root, VM, "20261202T020000Z-old.partial"))).toBe(false);
    expect(existsSync(join(root, VM, "20261202T030000Z-fresh.partial"))).toBe(true);

    // The schedule's own attempt goes with the schedule's retention, not with a prune by hand.
    const scheduled = await sweepAbandoned(fs, target, done.rest, { ...options, scheduleId: "abcd1234" });
    expect(scheduled.removed.map((r) => r.folder)).toEqual([`${VM}/20261202T040000Z-sched.partial`]);
  });

  it("a target that fails or answers nonsense keeps everything and says why, never throws", async () => {
    const entries = [
      verified("20261201T020000Z-a", 1),
      partial("20261202T020000Z-kept", 2, "2 days ago"),
      verified("20261203T020000Z-b", 3),
    ];
    const failing = (answer: () => Promise<{ code: number; stdout: string; stderr: string }>): RemoteFs =>
      new RemoteFs({
        label: "nas",
        isLocal: false,
        run: async () => ({ signal: null, ...(await answer()) }),
        dispose: async () => undefined,
      } as CommandRunner);
    const lost = failing(() => Promise.reject(new Error("connection lost")));
    const gone = await sweepAbandoned(lost, target, entries, options);
    expect(gone.removed).toEqual([]);
    expect(gone.kept).toEqual([
      {
        folder: `${VM}/20261202T020000Z-kept.partial`,
        reason: "it could not be checked: connection lost",
      },
    ]);
    expect(gone.rest).toHaveLength(3);
    const noise = failing(async () => ({ code: 0, stdout: "Welcome to the NAS\nremoved\n", stderr: "" }));
    expect((await sweepAbandoned(noise, target, entries, options)).removed).toEqual([]);
    // A dry run says so too: the person deciding sees that these could not be judged.
    const dry = await sweepAbandoned(noise, target, entries, { ...options, dryRun: true });
    expect(dry.kept.map((k) => k.reason)).toEqual(["it could not be checked: the target did not say why"]);
    expect(existsSync(join(root, VM, "20261202T020000Z-kept.partial"))).toBe(true);
  });
});

import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { afterEach, describe, expect, it } from "vitest";

import { withFileLock } from "../../core/infra/store/lock.js";
import { openSettingsStore } from "../../core/infra/store/store.js";

const homes: string[] = [];
const freshHome = (): string => {
  const home = mkdtempSync(join(tmpdir(), "snapkeep-lock-"));
  homes.push(home);
  return home;
};
afterEach(() => {
  for (const home of homes.splice(0)) {
    rmSync(home, { recursive: true, force: true });
  }
});

const worker = fileURLToPath(new URL("./store-lock-worker.ts", import.meta.url));

/** Starts a worker, resolves `ready` once its store is open, and `done` with its exit code. */
function startWorker(home: string, prefix: string, count: number) {
  const child = spawn(process.execPath, ["--import", "tsx", worker, home, prefix, String(count)], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const ready = new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.once("close", (code) => resolve({ code, stderr })),
  );
  return { go: () => child.stdin.write("go\n"), ready, done };
}

describe("settings store across processes", () => {
  it("loses no update when two processes update at the same time", async () => {
    const home = freshHome();
    const workers = [startWorker(home, "a", 50), startWorker(home, "b", 50)];
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) {
      w.go();
    }
    for (const { code, stderr } of await Promise.all(workers.map((w) => w.done))) {
      expect(stderr).toBe("");
      expect(code).toBe(0);
    }
    const keys = Object.keys(openSettingsStore(home, new Date()).read().annotations);
    expect(keys).toHaveLength(100);
    expect(keys.sort()).toEqual(
      ["a", "b"].flatMap((prefix) => Array.from({ length: 50 }, (_, i) => `${prefix}-${i}`)).sort(),
    );
    expect(readdirSync(home).sort()).toEqual(["settings.json", "settings.json.last-good"]);
  }, 60_000);
});

describe("withFileLock", () => {
  const quick = { waitMs: 300, staleMs: 30_000 };

  it("runs the section, releases the lock, and releases it when the section throws", () => {
    const lock = join(freshHome(), "x.lock");
    expect(withFileLock(lock, () => 42, quick)).toBe(42);
    expect(() =>
      withFileLock(
        lock,
        () => {
          throw new Error("boom");
        },
        quick,
      ),
    ).toThrow("boom");
    expect(withFileLock(lock, () => "again", quick)).toBe("again");
  });

  it("refuses to nest at once instead of waiting for itself", () => {
    const lock = join(freshHome(), "x.lock");
    expect(() => withFileLock(lock, () => withFileLock(lock, () => 1, quick), quick)).toThrow(
      "must not nest",
    );
    expect(withFileLock(lock, () => "free again", quick)).toBe("free again");
  });

  it("waits for a live holder, then gives up with TIMEOUT naming it", () => {
    const lock = join(freshHome(), "x.lock");
    writeFileSync(lock, JSON.stringify({ pid: process.pid, hostname: hostname(), token: "someone" }));
    const started = Date.now();
    expect(() => withFileLock(lock, () => "never", quick)).toThrow(
      expect.objectContaining({
        code: "TIMEOUT",
        message: expect.stringContaining(`pid ${process.pid}`),
        hint: expect.stringContaining(lock),
      }),
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  });

  it("takes over a lock older than the stale age", () => {
    const home = freshHome();
    const lock = join(home, "x.lock");
    writeFileSync(lock, JSON.stringify({ pid: process.pid, hostname: hostname(), token: "old" }));
    const longAgo = new Date(Date.now() - 60_000);
    utimesSync(lock, longAgo, longAgo);
    expect(withFileLock(lock, () => "taken", quick)).toBe("taken");
    expect(readdirSync(home)).toEqual([]);
  });

  it("takes over a lock whose process is gone, without waiting for it to age", () => {
    const home = freshHome();
    const lock = join(home, "x.lock");
    // Beyond the kernel's pid range, so no process can have it.
    writeFileSync(lock, JSON.stringify({ pid: 2 ** 30, hostname: hostname(), token: "dead" }));
    const started = Date.now();
    expect(withFileLock(lock, () => "taken", quick)).toBe("taken");
    expect(Date.now() - started).toBeLessThan(300);
    expect(readdirSync(home)).toEqual([]);
  });
});

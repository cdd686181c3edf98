/**
 * `npm start`'s launcher (scripts/start.mjs), run for real. This machine has no Electron binary and
 * no way to download one, so the failure message is the real one; a stand-in binary shows what a
 * working install gets started with.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const launcher = join(repo, "scripts/start.mjs");
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function launch(env: NodeJS.ProcessEnv, args: string[] = []) {
  const { ELECTRON_OVERRIDE_DIST_PATH: _ignored, ...inherited } = process.env;
  const result = spawnSync(process.execPath, [launcher, ...args], {
    encoding: "utf8",
    env: { ...inherited, ...env },
    timeout: 60_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const electronDir = join(repo, "node_modules/electron");
const installed =
  existsSync(join(electronDir, "path.txt")) &&
  existsSync(join(electronDir, "dist", readFileSync(join(electronDir, "path.txt"), "utf8")));

describe("npm start's launcher", () => {
  it.skipIf(installed)(
    "without a binary that can be fetched, says so in one sentence and points to snapkeep serve",
    () => {
      // A mirror nobody listens on: the download fails here, and fast, even where there is internet.
      const { code, stderr } = launch({ ELECTRON_MIRROR: "http://127.0.0.1:9/" });
      expect(code).toBe(1);
      const lines = stderr.trim().split("\n");
      expect(lines.at(-1)).toMatch(
        /^snapkeep: the Electron binary could not be downloaded( \([^)]+\))?, so the desktop app cannot start here; run `snapkeep serve` to use Snapkeep in a browser instead\.$/,
      );
      expect(stderr).not.toMatch(/^\s+at /m); // no stack trace
      expect(lines.length).toBeLessThanOrEqual(2); // at most the "fetching" notice before it
    },
  );

  it("with ELECTRON_OVERRIDE_DIST_PATH pointing at nothing, says there is no binary there", () => {
    const empty = mkdtempSync(join(tmpdir(), "snapkeep-noelectron-"));
    dirs.push(empty);
    const { code, stderr } = launch({ ELECTRON_OVERRIDE_DIST_PATH: empty });
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /^snapkeep: there is no Electron binary at .*snapkeep-noelectron-.*, so the desktop app cannot start here; run `snapkeep serve` to use Snapkeep in a browser instead\.\n$/,
    );
  });

  it("starts the binary with this app folder and passes arguments and the exit code through", () => {
    const dist = mkdtempSync(join(tmpdir(), "snapkeep-fakeelectron-"));
    dirs.push(dist);
    const binary = join(dist, "electron");
    writeFileSync(binary, '#!/bin/sh\nprintf "%s\\n" "$@"\nexit 3\n');
    chmodSync(binary, 0o755);
    const { code, stdout } = launch({ ELECTRON_OVERRIDE_DIST_PATH: dist }, ["--hidden"]);
    expect(stdout.split("\n").filter((l) => l !== "")).toEqual([repo, "--hidden"]);
    expect(code).toBe(3);
  });

  it("says so in one sentence when the binary is there but cannot be run", () => {
    const dist = mkdtempSync(join(tmpdir(), "snapkeep-brokenelectron-"));
    dirs.push(dist);
    writeFileSync(join(dist, "electron"), "not a program"); // not executable
    const { code, stderr } = launch({ ELECTRON_OVERRIDE_DIST_PATH: dist });
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /^snapkeep: Electron at .*electron could not be started \(spawn .* EACCES\); run `snapkeep serve` to use Snapkeep in a browser instead\.\n$/,
    );
  });
});

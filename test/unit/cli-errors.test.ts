/**
 * Every error a person sees is a sentence: `snapkeep`, given bad input, says what is wrong and
 * what is allowed in one or two lines, never a dumped zod issue, a stack or an "unexpected error"
 * for a cause that has a name. Nothing here needs libvirt: input is checked before any host is
 * asked. Each input runs through runCli, what bin/snapkeep.js runs; a sample of them also runs as a
 * real process (each costs a second of start-up), which would show what only a process prints,
 * such as an unhandled rejection's stack.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { runCli } from "../../core/cli/main.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const bin = join(repo, "bin/snapkeep.js");

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

let home = "";
let aFile = "";
let busy: Server;
let busyPort = 0;

/** Fills in what only exists once the test runs: a port in use, a file where a folder should be. */
const resolved = (text: string): string =>
  text.replaceAll("{BUSY_PORT}", String(busyPort)).replaceAll("{A_FILE}", aFile);

async function inProcess(args: readonly string[], snapkeepHome: string): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(args, {
    out: (text) => (stdout += text),
    err: (text) => (stderr += text),
    env: { ...process.env, SNAPKEEP_HOME: snapkeepHome, SNAPKEEP_DEBUG: "" },
  });
  return { code, stdout, stderr };
}

function asProcess(args: readonly string[], snapkeepHome: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env: { ...process.env, SNAPKEEP_HOME: snapkeepHome, SNAPKEEP_DEBUG: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), "snapkeep-cli-errors-"));
  aFile = join(home, "a-file");
  writeFileSync(aFile, "");
  busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
  busyPort = (busy.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise((resolve) => busy.close(resolve));
  rmSync(home, { recursive: true, force: true });
});

const NAME_RULE =
  "may contain only letters, digits, '.', '_' and '-', starting with a letter or digit (at most 63 characters).";

/** Bad input, and the sentence it gets when the exact words matter (else only the form is checked). */
interface Case {
  readonly args: readonly string[];
  /** SNAPKEEP_HOME, when not the test's own. */
  readonly home?: string;
  /** The first line's exact words, when they matter; else only the form is checked. */
  readonly says?: string;
  /** Also run as a real process. */
  readonly process?: true;
}

const cases: readonly Case[] = [
  { args: ["host", "add", "bad name!", "--local"], says: `The host name "bad name!" ${NAME_RULE}` },
  { args: ["host", "add", "a\nb", "--local"], says: `The host name "a\\nb" ${NAME_RULE}` },
  { args: ["host", "add", "h", "--local", "--uri", "qemu:///sys\ntem"] },
  { args: ["host", "add", "h", "--ssh", "root@example.com:99999"] },
  {
    args: ["target", "add", "bad name!", "--dir", "/tmp/x"],
    says: `The target name "bad name!" ${NAME_RULE}`,
    process: true,
  },
  {
    args: ["target", "add", "t", "--dir", "/tmp/a\nb"],
    says: 'The folder "/tmp/a\\nb" cannot contain control characters such as newlines or tabs.',
  },
  {
    args: ["target", "add", "t", "--dir", "/tmp/x", "--keep", "1e9"],
    says: 'Use a whole number from 1 to 1,000 for --keep, not "1e9".',
  },
  { args: ["target", "add", "t", "--dir", "/tmp/x", "--keep", "-1"] },
  { args: ["target", "add", "t", "--dir", "/tmp/x", "--keep", "abc"] },
  { args: ["target", "add", "t", "--dir", "/tmp/x", "--keep", "5000"] },
  { args: ["target", "keep", "t", "1e9"] },
  {
    args: ["export", "local/vm", "s", "--to", "t", "--bwlimit", "nonsense"],
    says: 'Use a number from 0.01 to 97,656 for --bwlimit (MiB/s), not "nonsense".',
  },
  { args: ["export", "local/vm", "s", "--to", "t", "--bwlimit", "0"] },
  { args: ["target", "add", "t", "--dir", "/tmp/x", "--bwlimit", "200000"] },
  { args: ["export", "novm", "s", "--to", "t"] },
  { args: ["exports", "prune", "t", "--keep", "abc"] },
  { args: ["exports", "clean", "local", "--quiet-hours", "abc"] },
  {
    args: ["schedule", "add", "local/vm", "--every", "daily", "--at", "02:00", "--keep", "0"],
    says: 'Use a whole number from 1 to 10,000 for --keep, not "0".',
  },
  { args: ["schedule", "add", "local/vm", "--every", "daily", "--at", "02:00", "--keep", "1e9"] },
  {
    args: ["schedule", "add", "local/vm", "--every", "hourly", "--at", "02:00", "--keep", "3"],
    says: 'Use daily, weekly or monthly for --every, not "hourly".',
  },
  { args: ["schedule", "add", "local/vm", "--every", "daily", "--at", "25:00", "--keep", "3"] },
  {
    args: [
      "schedule",
      "add",
      "local/vm",
      "--every",
      "weekly",
      "--at",
      "02:00",
      "--weekday",
      "funday",
      "--keep",
      "3",
    ],
  },
  {
    args: [
      "schedule",
      "add",
      "local/vm",
      "--every",
      "monthly",
      "--at",
      "02:00",
      "--day",
      "32",
      "--keep",
      "3",
    ],
  },
  { args: ["schedule", "add", "local/vm", "--cron", "bad cron", "--keep", "3"] },
  {
    args: ["schedule", "add", "local/vm", "--every", "daily", "--at", "02:00", "--keep", "3", "--disk", ","],
  },
  { args: ["jobs", "list", "--limit", "abc"] },
  { args: ["snapshot", "create", "local/vm", "--name", "a\nb"] },
  { args: ["snapshot", "create", "local/vm", "--name", "a".repeat(300)] },
  { args: ["snapshot", "revert", "local/vm", "s", "--shutdown-timeout", "abc"] },
  { args: ["snapshot", "safety-keep", "1e9"] },
  { args: ["vm", "consistency", "local/vm", "--hook-timeout", "abc", "--pre", "guest:/bin/true"] },
  { args: ["template", "create", "local/vm", "s", "--name", "bad name!"] },
  // Checked before anything is defined: libvirt would store the path with the newline.
  { args: ["lab", "up", "--dir", "/tmp/a\nb"] },
  { args: ["orphans", "--host", "nowhere"], says: 'There is no host named "nowhere".' },
  { args: ["serve", "--port", "99999"] },
  {
    args: ["serve", "--port", "{BUSY_PORT}"],
    says: "Port {BUSY_PORT} on 127.0.0.1 is in use (by another snapkeep serve, or another program); choose another with --port, or --port 0 for any free one.",
    process: true,
  },
  {
    args: ["host", "list"],
    home: "{A_FILE}",
    process: true,
  },
  { args: ["snapshot", "frobnicate"], process: true },
];

function expectSentence(run: Run, says: string | undefined): void {
  expect(run.code).not.toBe(0);
  expect(run.stdout).toBe("");
  const lines = run.stderr.split("\n");
  expect(lines.pop()).toBe("");
  expect(lines.length).toBeGreaterThanOrEqual(1);
  expect(lines.length).toBeLessThanOrEqual(2);
  // A sentence: a capital, or the quoted value it is about ("abc" is not a duration ...).
  expect(lines[0]).toMatch(/^snapkeep: [A-Z"]/);
  expect(run.stderr).not.toMatch(/[{}]|\[\s*$|ZodError|^\s+at |unexpected error|undefined|NaN/im);
  if (says !== undefined) {
    expect(lines[0]).toBe(`snapkeep: ${resolved(says)}`);
  }
}

describe("snapkeep on bad input", () => {
  it.each(cases.map((c) => [c.args.map((a) => JSON.stringify(a)).join(" "), c] as const))(
    "%s",
    async (_title, { args, home: otherHome, says }) => {
      expectSentence(await inProcess(args.map(resolved), resolved(otherHome ?? home)), says);
    },
  );
});

describe("the snapkeep process on bad input", () => {
  beforeAll(() => {
    // The bin runs the bundled CLI, as after `npm install`.
    execFileSync("npm", ["run", "--silent", "build:cli"], { cwd: repo, stdio: "inherit" });
  }, 120_000);

  it.concurrent.each(
    cases
      .filter((c) => c.process === true)
      .map((c) => [c.args.map((a) => JSON.stringify(a)).join(" "), c] as const),
  )(
    "%s",
    async (_title, { args, home: otherHome, says }) => {
      expectSentence(await asProcess(args.map(resolved), resolved(otherHome ?? home)), says);
    },
    60_000,
  );
});

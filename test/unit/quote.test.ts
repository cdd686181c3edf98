import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterAll, beforeEach, describe, expect, it } from "vitest";

import { resolveSnapshot } from "../../core/domain/selection.js";
import type { VmWithSnapshots } from "../../core/domain/types.js";
import { isSnapkeepError, type SnapkeepError } from "../../core/errors.js";
import {
  REMOTE_PID_MARKER,
  buildRemoteCommand,
  buildTrackedRemoteCommand,
  commandLine,
  quoteShellArg,
  shellWord,
} from "../../core/domain/shell-quote.js";
import { verifyHostKey } from "../../core/infra/ssh/hostkey.js";
import { hintOf } from "../../core/domain/explain.js";

// The quoting is checked by real shells, not by comparing strings: what matters is what sh does.
const shells = ["/bin/sh", "/bin/bash", "/bin/dash"].filter((shell) => existsSync(shell));

const workDir = mkdtempSync(path.join(os.tmpdir(), "snapkeep-quote-"));
const marker = path.join(workDir, "pwned");
// Outside workDir too, and unique per run, so neither a leftover file nor another run can mask it.
const outsideMarker = path.join(os.tmpdir(), `snapkeep-pwned-${randomBytes(6).toString("hex")}`);

const hostile: readonly string[] = [
  "plain",
  "",
  " ",
  "two words",
  "'",
  "''",
  "it's",
  "'\\''",
  '"',
  'say "hi"',
  `$(touch ${marker})`,
  `$(touch ${outsideMarker})`,
  `\`touch ${marker}\``,
  `; touch ${marker}`,
  `&& touch ${marker}`,
  `|| touch ${marker}`,
  `| touch ${marker}`,
  `> ${marker}`,
  `\ntouch ${marker}\n`,
  `'; touch ${marker}; '`,
  `"; touch ${marker}; "`,
  "line1\nline2",
  "\r\n",
  "tab\there",
  "\t",
  "-rf",
  "--",
  "-",
  "*",
  "/*",
  "?",
  "[a-z]",
  "{a,b}",
  "~",
  "~root",
  "$HOME",
  "${HOME}",
  "$((1+1))",
  "$1",
  "$@",
  "$$",
  "\\",
  "\\\\",
  "\\n",
  "!",
  "!!",
  "!$",
  "#not a comment",
  "a#b",
  "&",
  "(",
  ")",
  "<",
  "%s",
  "%%",
  "A=b",
  "LC_ALL=de_DE",
  "\u00e9t\u00e9 \u00fcber stra\u00dfe",
  "\u{1F4BE} snapshot \u{1F525}\u{1F468}\u200D\u{1F469}\u200D\u{1F467}",
  "\u05E9\u05DC\u05D5\u05DD \u05E2\u05D5\u05DC\u05DD",
  "\u0645\u0631\u062D\u0628\u0627",
  "\u202Eevil\u202C",
  "\u00a0nbsp",
  "\u0007bell\u001b[31mred",
  "\u007f",
];

function runInShell(
  shell: string,
  script: string,
): { stdout: Buffer; status: number | null; stderr: string } {
  // stdin must not be a socket: Debian's bash then assumes it was started by sshd and reads ~/.bashrc.
  const result = spawnSync(shell, ["-c", script], {
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return { stdout: result.stdout, status: result.status, stderr: result.stderr.toString("utf8") };
}

/** Runs `printf '%s\0'` with the quoted args in `shell` and returns what it printed, split on NUL. */
function roundTrip(shell: string, args: readonly string[]): string[] {
  const script = `printf '%s\\0' ${args.map(quoteShellArg).join(" ")}`;
  const result = runInShell(shell, script);
  expect(result.stderr).toBe("");
  expect(result.status).toBe(0);
  const parts = result.stdout.toString("utf8").split("\0");
  expect(parts.pop()).toBe("");
  return parts;
}

beforeEach(() => {
  rmSync(marker, { force: true });
});

afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
  rmSync(outsideMarker, { force: true });
});

describe("quoteShellArg", () => {
  it("finds at least /bin/sh to test with", () => {
    expect(shells).toContain("/bin/sh");
  });

  it("wraps in single quotes and escapes embedded quotes", () => {
    expect(quoteShellArg("")).toBe("''");
    expect(quoteShellArg("abc")).toBe("'abc'");
    expect(quoteShellArg("it's")).toBe("'it'\\''s'");
  });

  describe.each(shells)("through %s", (shell) => {
    it("gives every hostile argument back byte for byte and runs none of them", () => {
      expect(existsSync(outsideMarker)).toBe(false);
      expect(roundTrip(shell, hostile)).toEqual(hostile);
      expect(existsSync(marker)).toBe(false);
      expect(existsSync(outsideMarker)).toBe(false);
    });

    it("passes each hostile argument on its own", () => {
      for (const arg of hostile) {
        expect(roundTrip(shell, [arg])).toEqual([arg]);
      }
      expect(existsSync(marker)).toBe(false);
    });

    it("keeps an empty argument as an argument", () => {
      expect(roundTrip(shell, ["", "x", ""])).toEqual(["", "x", ""]);
    });

    it("passes very long arguments intact", () => {
      const quotes = "'".repeat(20_000);
      const mixed = Array.from({ length: 4000 }, (_, i) => hostile[i % hostile.length]).join("");
      expect(roundTrip(shell, [quotes])).toEqual([quotes]);
      expect(roundTrip(shell, [mixed.slice(0, 60_000)])).toEqual([mixed.slice(0, 60_000)]);
      expect(existsSync(marker)).toBe(false);
    });

    it("survives random strings built from shell metacharacters", () => {
      const alphabet = [
        "'",
        '"',
        "\\",
        "$",
        "`",
        "(",
        ")",
        ";",
        "&",
        "|",
        "\n",
        "\t",
        " ",
        "*",
        "~",
        "!",
        "#",
        "a",
        "\u00e9",
        "\u{1F4BE}",
      ];
      let seed = 42;
      const next = (): number => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed;
      };
      const samples = Array.from({ length: 200 }, () =>
        Array.from({ length: next() % 24 }, () => alphabet[next() % alphabet.length]).join(""),
      );
      expect(roundTrip(shell, samples)).toEqual(samples);
    });
  });

  it("refuses a NUL byte with INVALID_INPUT", () => {
    expect(() => quoteShellArg("a\0b")).toThrow(expect.objectContaining({ code: "INVALID_INPUT" }));
    try {
      quoteShellArg("\0");
      expect.unreachable();
    } catch (error) {
      expect(isSnapkeepError(error, "INVALID_INPUT")).toBe(true);
    }
  });

  it("refuses an unpaired surrogate, which would not reach the host unchanged", () => {
    expect(() => quoteShellArg("a\uD800b")).toThrow(expect.objectContaining({ code: "INVALID_INPUT" }));
    expect(() => quoteShellArg("\uDC00")).toThrow(expect.objectContaining({ code: "INVALID_INPUT" }));
    expect(quoteShellArg("\u{1F4BE}")).toBe("'\u{1F4BE}'");
  });
});

describe("buildRemoteCommand", () => {
  it("prefixes LC_ALL=C and quotes every word", () => {
    expect(buildRemoteCommand(["qemu-img", "info", "a b"])).toBe("LC_ALL=C 'qemu-img' 'info' 'a b'");
  });

  it.each(shells)("runs argv with LC_ALL=C set only for the command in %s", (shell) => {
    const args = ["$(touch " + marker + ")", "it's", "", "\u{1F4BE}"];
    const result = runInShell(
      shell,
      `LC_ALL=de_DE.UTF-8; ${buildRemoteCommand(["printf", "%s\\0", ...args])}; printf '%s' "$LC_ALL"`,
    );
    const parts = result.stdout.toString("utf8").split("\0");
    expect(parts).toEqual([...args, "de_DE.UTF-8"]);
    const env = runInShell(shell, buildRemoteCommand(["sh", "-c", 'printf %s "$LC_ALL"']));
    expect(env.stdout.toString()).toBe("C");
    expect(existsSync(marker)).toBe(false);
  });

  it("treats a first word that looks like an assignment as the program name", () => {
    const result = runInShell("/bin/sh", buildRemoteCommand(["A=b", "x"]));
    expect(result.status).toBe(127);
  });

  it("refuses an empty argv and NUL bytes", () => {
    expect(() => buildRemoteCommand([])).toThrow(expect.objectContaining({ code: "INVALID_INPUT" }));
    expect(() => buildRemoteCommand(["echo", "a\0"])).toThrow(
      expect.objectContaining({ code: "INVALID_INPUT" }),
    );
  });
});

describe("buildTrackedRemoteCommand", () => {
  it.each(shells)("reports the pid, exports LC_ALL=C and execs the command in %s", (shell) => {
    const script = buildTrackedRemoteCommand([
      "sh",
      "-c",
      'printf "%s %s\\0" "$PPID" "$LC_ALL"; printf "%s\\0" "$@"',
      "sh",
      ...hostile,
    ]);
    const result = spawnSync(shell, ["-c", script], { stdio: ["ignore", "pipe", "pipe"] });
    const stderr = result.stderr.toString("utf8");
    expect(stderr).toMatch(new RegExp(`^${REMOTE_PID_MARKER}\\d+\\n$`));
    const shellPid = Number(stderr.slice(REMOTE_PID_MARKER.length));
    const [first, ...rest] = result.stdout.toString("utf8").split("\0");
    // The inner sh's parent is the process that spawned the outer shell: the outer shell was
    // replaced by exec, so its pid now belongs to the inner sh.
    expect(first).toBe(`${process.pid} C`);
    expect(shellPid).toBe(result.pid);
    expect(rest).toEqual([...hostile, ""]);
    expect(existsSync(marker)).toBe(false);
  });

  it("reports a signal death as a signal, not as a shell exit code", () => {
    const result = spawnSync("/bin/sh", ["-c", buildTrackedRemoteCommand(["sh", "-c", "kill -TERM $$"])]);
    expect(result.signal).toBe("SIGTERM");
  });

  it("exits 127 when the program does not exist", () => {
    const result = spawnSync("/bin/sh", ["-c", buildTrackedRemoteCommand(["snapkeep-no-such-program"])]);
    expect(result.status).toBe(127);
  });
});

describe("commands shown to people (commandLine, shellWord)", () => {
  const fingerprint = `SHA256:${"A1+/".repeat(10)}abc`;
  // Names as hostile as a VM or snapshot name may be; host and target names are plain words.
  const names: readonly string[] = [
    "we b01",
    "it's",
    'say "hi"',
    `$(touch ${marker})`,
    `\`touch ${marker}\``,
    "line1\nline2",
    "-rf",
    "--yes",
    "",
    "~root",
    "#not a comment",
    "A=b",
    "*",
    "a;b|c&d",
    "\u00e9t\u00e9 \u{1F4BE}",
  ];

  /** The words `sh` makes of a command line, the way a person's shell parses a pasted hint. */
  const wordsOf = (shell: string, line: string): string[] => {
    const result = runInShell(shell, `set -- ${line}\nprintf '%s\\0' "$@"`);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    const parts = result.stdout.toString("utf8").split("\0");
    expect(parts.pop()).toBe("");
    return parts;
  };

  it("leaves plain names and fingerprints as they are and quotes anything else", () => {
    expect(commandLine`snapkeep host trust ${"web01"} ${fingerprint}`).toBe(
      `snapkeep host trust web01 ${fingerprint}`,
    );
    expect(commandLine`snapkeep host trust ${"we b01"}`).toBe("snapkeep host trust 'we b01'");
    expect(commandLine`snapkeep snapshot list ${"local"}/${"my vm"}`).toBe(
      "snapkeep snapshot list local/'my vm'",
    );
    expect(shellWord("")).toBe("''");
    expect(shellWord("A=b")).toBe("'A=b'");
  });

  describe.each(shells)("through %s", (shell) => {
    it("gives every hostile name back as one word and runs none of them", () => {
      for (const name of names) {
        expect(wordsOf(shell, commandLine`snapkeep host trust ${name} ${fingerprint}`)).toEqual([
          "snapkeep",
          "host",
          "trust",
          name,
          fingerprint,
        ]);
        // Parts of one word (HOST/VM) stay one word.
        expect(wordsOf(shell, commandLine`snapkeep snapshot delete ${"local"}/${name} ${name}`)).toEqual([
          "snapkeep",
          "snapshot",
          "delete",
          `local/${name}`,
          name,
        ]);
      }
      expect(existsSync(marker)).toBe(false);
    });

    it("makes the hints Snapkeep gives pasteable for hostile VM and host names", () => {
      for (const name of names) {
        const vm: VmWithSnapshots = {
          host: "local",
          name,
          uuid: "0b0e7a52-1c1c-4d4d-9e9e-aaaaaaaaaaaa",
          state: "shut off",
          active: false,
          disks: [],
          snapshots: [],
        };
        const notFound = (): unknown => {
          try {
            return resolveSnapshot(vm, "nope");
          } catch (error) {
            return error;
          }
        };
        const listHint = hintOf(notFound() as SnapkeepError, "cli") ?? "";
        expect(listHint.startsWith("List them with: ")).toBe(true);
        expect(wordsOf(shell, listHint.slice("List them with: ".length))).toEqual([
          "snapkeep",
          "snapshot",
          "list",
          `local/${name}`,
        ]);

        const trustHint = (() => {
          try {
            verifyHostKey(undefined, fingerprint, name, name, undefined, "target");
          } catch (error) {
            return hintOf(error as SnapkeepError, "cli") ?? "";
          }
          return "";
        })();
        const command = /then run `(snapkeep .*)`\.$/s.exec(trustHint)?.[1] ?? "";
        expect(wordsOf(shell, command)).toEqual(["snapkeep", "target", "trust", name, fingerprint]);
      }
      expect(existsSync(marker)).toBe(false);
    });
  });
});

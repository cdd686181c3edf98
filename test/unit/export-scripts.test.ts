/**
 * The export's shell scripts run for real under sh with hostile paths and contents: names reach
 * them only as arguments, so nothing in a name or a file may be interpreted.
 */
import { spawnSync } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdtempSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

import { LocalRunner } from "../../core/infra/runner/local.js";
import { RemoteFs } from "../../core/infra/remote-fs.js";
import { cleanStaging, parseStaging } from "../../core/app/exports/staging.js";
import { SCAN_SCRIPT } from "../../core/drivers/bundle/bundle.js";
import {
  CLAIM_SCRIPT,
  RECORD_HASH_SCRIPT,
  spaceArgs,
  STAGE_SCRIPT,
  WRITE_FILES_SCRIPT,
  fileArgs,
  finishArgs,
  parseBadFiles,
  parseRecordedHash,
  parseSourcePrepared,
  parseSpace,
  parseStagedSize,
} from "../../core/drivers/sh/export-scripts.js";

const runner = new LocalRunner();
const dir = mkdtempSync(join(tmpdir(), "snapkeep-scripts-"));
const HELLO = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
const hostile = `a 'b' "c" $(touch pwned) \`id\` ; rm -rf x\nnewline`;

afterAll(async () => {
  await runner.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe("export scripts under sh", () => {
  it("writes files whole with hostile names and contents, making folders", async () => {
    const path = join(dir, hostile, "m.json");
    const content = `{"x": "${hostile}"}\n%s %d \\n`;
    const result = await runner.run([
      "sh",
      "-c",
      WRITE_FILES_SCRIPT,
      "w",
      ...fileArgs([
        { path, content },
        { path: `${path}2`, content: "" },
      ]),
    ]);
    expect(result.code).toBe(0);
    expect(readFileSync(path, "utf8")).toBe(content);
    expect(readFileSync(`${path}2`, "utf8")).toBe("");
    expect(readdirSync(dir)).not.toContain("pwned");
    expect(readdirSync(join(dir, hostile))).toEqual(["m.json", "m.json2"]);
  });

  it("finishes a bundle only when every file matches: writes its files, drops temporaries, renames", async () => {
    const partial = join(dir, "e.partial");
    const final = join(dir, `e ${hostile}`);
    mkdirSync(partial);
    writeFileSync(join(partial, "vda.qcow2"), "hello\n");
    writeFileSync(join(partial, ".vda.qcow2.Xy12"), "rsync leftovers");
    writeFileSync(join(partial, "job.json"), "{}");
    const good = { name: "vda.qcow2", sha256: HELLO };
    const files = [{ path: join(partial, "status.json"), content: hostile }];
    const wrong = await runner.run(
      finishArgs(
        partial,
        final,
        [
          { ...good, sha256: "0".repeat(64) },
          { name: "gone.qcow2", sha256: HELLO },
        ],
        files,
      ),
    );
    expect(wrong.code).toBe(2);
    expect(parseBadFiles(wrong.stdout)).toEqual(["vda.qcow2", "gone.qcow2"]);
    expect(readdirSync(partial)).toContain("job.json");
    const result = await runner.run(finishArgs(partial, final, [good], files));
    expect(result.code).toBe(0);
    expect(readdirSync(final).sort()).toEqual(["status.json", "vda.qcow2"]);
    expect(readFileSync(join(final, "status.json"), "utf8")).toBe(hostile);
    // The final name existing already is a failure, not a move into it.
    mkdirSync(partial);
    const again = await runner.run(finishArgs(partial, final, [], []));
    expect(again.code).not.toBe(0);
  });

  it("stages an image and records its hash beside it", async () => {
    const tmp = join(dir, "s.qcow2.tmp");
    writeFileSync(tmp, "hello\n");
    const staged = await runner.run(["sh", "-c", STAGE_SCRIPT, "s", tmp, join(dir, "s.qcow2")]);
    expect(parseStagedSize(staged.stdout)).toBe(6);
    const hashed = await runner.run(["sh", "-c", RECORD_HASH_SCRIPT, "h", join(dir, "s.qcow2")]);
    expect(parseRecordedHash(hashed.stdout)).toBe(HELLO);
    expect(readFileSync(join(dir, "s.qcow2.sha256"), "utf8")).toBe(`${HELLO}\n`);
    expect(() => parseRecordedHash("openssl: x: No such file")).toThrow(/Hashing/);
    expect(() => parseStagedSize("")).toThrow(/Staging/);
  });

  it("writes the job first, then reports the sizes already there and the free space", async () => {
    const job = join(dir, "job dir", "job.json");
    const result = await runner.run(
      spaceArgs(dir, [join(dir, "s.qcow2"), join(dir, "none")], [{ path: job, content: hostile }]),
    );
    expect(result.code).toBe(0);
    const space = parseSpace(result.stdout, 2);
    expect(space.freeBytes).toBeGreaterThan(0);
    expect(space.sizes).toEqual([6, undefined]);
    expect(readFileSync(job, "utf8")).toBe(hostile);
  });

  it("claims a new export's folder in the same command, and writes nothing when the name is taken", async () => {
    const vm = join(dir, "web01-1b2c3d4e");
    mkdirSync(vm);
    const partial = join(vm, "20261126T130500Z-nightly.partial");
    const claim = { vmFolder: vm, name: "20261126T130500Z-nightly.partial" };
    const files = [{ path: join(partial, "job.json"), content: "{}" }];
    const first = await runner.run(spaceArgs(partial, [join(partial, "vda.qcow2")], files, claim));
    expect(first.code).toBe(0);
    expect(parseSpace(first.stdout, 1).sizes).toEqual([undefined]);
    expect(readFileSync(join(partial, "job.json"), "utf8")).toBe("{}");
    // The same name again (a planted folder, another export): refused before anything is written.
    const again = await runner.run(
      spaceArgs(partial, [], [{ path: join(partial, "domain.xml"), content: "<domain/>" }], claim),
    );
    expect(again.code).toBe(3);
    expect(existsSync(join(partial, "domain.xml"))).toBe(false);
    // A VM folder that is not there: a failure of its own, not "taken".
    const missing = await runner.run(
      spaceArgs(partial, [], files, { vmFolder: join(dir, "gone"), name: claim.name }),
    );
    expect(missing.code).toBe(1);
  });

  it("reads the source's preparation output", () => {
    const out = [
      "@@snapkeep-qemu-img",
      "qemu-img version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)",
      "",
      "@@snapkeep-rsync",
      "rsync  version 3.2.7  protocol version 31",
      "",
      "@@snapkeep-mkdir",
      "ok",
      "",
      "@@snapkeep-staged",
      "a".repeat(64),
      "-",
      "@@snapkeep-xml",
      "<domain type='kvm'>\n</domain>",
      "",
    ].join("\n");
    const parsed = parseSourcePrepared(out, 2);
    expect(parsed).toMatchObject({
      qemuImg: "qemu-img version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)",
      rsync: "rsync  version 3.2.7  protocol version 31",
      staged: ["a".repeat(64), undefined],
      stagingError: null,
    });
    expect(parsed.definition).toContain("<domain");
    expect(
      parseSourcePrepared(out.replace("ok\n", "mkdir: cannot create directory: Permission denied\n"), 2)
        .stagingError,
    ).toMatch(/Permission denied/);
    expect(() => parseSourcePrepared("@@snapkeep-xml\nerror: failed to get domain", 0)).toThrow(/definition/);
  });
});

describe("staging clean-up", () => {
  it("removes only Snapkeep's staging folders nothing wrote to for the quiet period", async () => {
    const root = join(dir, `staging ${hostile}`);
    const old = join(root, "0b0e7a52-1c1c-4d4d-9e9e-aaaaaaaaaaaa-0123456789ab");
    const fresh = join(root, "0b0e7a52-1c1c-4d4d-9e9e-aaaaaaaaaaaa-ba9876543210");
    const foreign = join(root, "my-own-folder");
    for (const folder of [old, fresh, foreign]) {
      mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, "vda.qcow2"), "x".repeat(4096));
    }
    const now = new Date("2026-11-26T12:00:00Z");
    const twoDaysAgo = new Date(now.getTime() - 48 * 3600_000);
    for (const path of [old, join(old, "vda.qcow2"), foreign, join(foreign, "vda.qcow2")]) {
      utimesSync(path, twoDaysAgo, twoDaysAgo);
    }
    utimesSync(join(fresh, "vda.qcow2"), now, now);
    const fs = new RemoteFs(runner);

    const dry = await cleanStaging(fs, root, { quietMs: 24 * 3600_000, now, dryRun: true });
    expect(dry.removed.map((f) => f.path)).toEqual([old]);
    expect(dry.removed[0]?.bytes).toBeGreaterThanOrEqual(4096);
    expect(dry.removed[0]?.lastWriteAt).toBe(twoDaysAgo.toISOString());
    expect(dry.kept.map((f) => f.path)).toEqual([fresh]);
    expect(existsSync(old)).toBe(true);

    const done = await cleanStaging(fs, root, { quietMs: 24 * 3600_000, now, dryRun: false });
    expect(done.removed.map((f) => f.path)).toEqual([old]);
    expect(existsSync(old)).toBe(false);
    expect(existsSync(fresh) && existsSync(foreign)).toBe(true);
    expect(existsSync(join(dir, "pwned"))).toBe(false);

    // A host that never staged anything has nothing to clean.
    expect(await cleanStaging(fs, join(dir, "none"), { quietMs: 0, now, dryRun: false })).toEqual({
      removed: [],
      kept: [],
      dryRun: false,
    });
  });

  it("reads only folders named the way Snapkeep names them", () => {
    expect(
      parseStaging(
        "/var/tmp/snapkeep-export",
        [
          "4096\t1764158400\t0b0e7a52-1c1c-4d4d-9e9e-aaaaaaaaaaaa-0123456789ab",
          "4096\t1764158400\tlost+found",
          "garbage",
          "",
        ].join("\n"),
      ),
    ).toEqual([
      {
        path: "/var/tmp/snapkeep-export/0b0e7a52-1c1c-4d4d-9e9e-aaaaaaaaaaaa-0123456789ab",
        bytes: 4096,
        lastWriteAt: "2025-11-26T12:00:00.000Z",
      },
    ]);
  });
});

describe("export scripts against links planted on a target", () => {
  const sh = (script: string, ...args: string[]): number =>
    spawnSync("sh", ["-c", script, "snapkeep-test", ...args], { stdio: "ignore" }).status ?? -1;

  it("never write through a link planted where a temporary file goes, and never claim a taken name", async () => {
    const root = mkdtempSync(join(tmpdir(), "snapkeep-planted-"));
    try {
      const victim = join(root, "victim.txt");
      writeFileSync(victim, "precious\n");
      const vm = join(root, "web01-1b2c3d4e");
      const partial = join(vm, "20261126T130500Z-nightly.partial");
      mkdirSync(partial, { recursive: true });
      symlinkSync(victim, join(partial, "job.json.tmp"));
      // A folder planted under the name a new export would take is refused, whatever is in it.
      expect(sh(CLAIM_SCRIPT, vm, "20261126T130500Z-nightly.partial")).toBe(3);
      symlinkSync(root, join(vm, "20261126T130501Z-nightly.partial"));
      expect(sh(CLAIM_SCRIPT, vm, "20261126T130501Z-nightly.partial")).toBe(3);
      expect(sh(CLAIM_SCRIPT, vm, "20261126T130502Z-nightly.partial")).toBe(0);
      // The small-file writers remove the planted link and write a file of their own.
      const job = join(partial, "job.json");
      expect(sh(WRITE_FILES_SCRIPT, job, "{}")).toBe(0);
      expect(readFileSync(victim, "utf8")).toBe("precious\n");
      expect(readFileSync(job, "utf8")).toBe("{}");
      symlinkSync(victim, join(partial, "domain.xml.tmp"));
      await new RemoteFs(new LocalRunner()).writeFile(join(partial, "domain.xml"), "<domain/>");
      expect(readFileSync(victim, "utf8")).toBe("precious\n");
      expect(lstatSync(join(partial, "domain.xml")).isFile()).toBe(true);
      // A VM folder that is a link is refused by the scan that would make it.
      const linked = join(root, "linked-1b2c3d4e");
      symlinkSync(join(root, "elsewhere"), linked);
      mkdirSync(join(root, "elsewhere"));
      expect(sh(SCAN_SCRIPT, root, linked)).toBe(4);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

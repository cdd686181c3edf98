import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

import {
  exportId,
  isExportId,
  manifestSchema,
  parseScan,
  restoreNotes,
  SCAN_SCRIPT,
  sealVerification,
  sha256sums,
  slug,
  vmFolderName,
  type Manifest,
} from "../../core/drivers/bundle/bundle.js";
import { RELAY_RSH, rsyncSendArgs } from "../../core/drivers/rsync/args.js";
import {
  parseProgress2,
  parseRelayHeader,
  parseStats,
  rsyncErrorText,
  validateServerArgv,
} from "../../core/drivers/rsync/parse.js";
import {
  convertSnapshotArgs,
  parseConvertProgress,
  parseQemuImgVersion,
} from "../../core/drivers/qemu-img/args.js";

const manifest: Manifest = {
  format: "snapkeep-export",
  formatVersion: 1,
  id: "20261126T130500Z-nightly",
  createdAt: "2026-11-26T13:05:00.000Z",
  source: {
    host: "web",
    vm: { name: "web01", uuid: "1b2c3d4e-0000-4000-8000-000000000001" },
    snapshot: {
      name: "nightly",
      tag: "snapkeep:manual:nightly",
      kind: "manual",
      createdAt: "2026-11-26T12:00:00.000Z",
      consistency: "frozen",
      note: null,
    },
  },
  definition: { name: "domain.xml", size: 10, sha256: "a".repeat(64) },
  disks: [
    {
      name: "vda.qcow2",
      size: 100,
      sha256: "b".repeat(64),
      target: "vda",
      role: "root",
      format: "qcow2",
      compression: "zstd",
      virtualSize: 1073741824,
      sourcePath: "/var/lib/libvirt/images/web01.qcow2",
    },
  ],
  tools: { snapkeep: "0.1.0" },
};

const KEY = Buffer.alloc(32, 7);

/** SCAN_SCRIPT's output for these folders: names as lines, file contents as od's hex lines. */
function scan(entries: { dir: string; odd?: number; files: Record<string, string> }[]): string {
  const hex = (text: string): string =>
    (
      Buffer.from(text)
        .toString("hex")
        .match(/.{1,32}/g) ?? []
    )
      .map((l) => ` ${l.replace(/(..)/g, "$1 ")}`)
      .join("\n");
  return entries
    .map(
      (e) =>
        `D ${e.dir}\nO ${e.odd ?? 0}\n` +
        Object.entries(e.files)
          .map(([name, body]) => `F ${name}\n${body === "" ? "" : `${hex(body)}\n`}E\n`)
          .join(""),
    )
    .join("");
}

/** A finished bundle's small files as Snapkeep writes them, its verification sealed with `key`. */
function finished(m: Manifest, folder: string, key: Uint8Array = KEY): Record<string, string> {
  const text = `${JSON.stringify(m, null, 2)}\n`;
  const checked = { state: "verified" as const, checkedAt: "2026-11-26T13:06:00.000Z", badFiles: [] };
  const seal = sealVerification(key, folder, createHash("sha256").update(text).digest("hex"), checked);
  return {
    "manifest.json": text,
    SHA256SUMS: sha256sums(m),
    "status.json": JSON.stringify({ ...checked, seal }),
  };
}

describe("export bundle", () => {
  it("names folders safely and sortably", () => {
    expect(slug('Web 01 / "prod" $(rm -rf)')).toBe("web-01-prod-rm-rf");
    expect(slug("日本")).toBe("x");
    expect(vmFolderName("Web01", "1b2c3d4e-0000-4000-8000-000000000001")).toBe("web01-1b2c3d4e");
    const id = exportId(new Date("2026-11-26T13:05:09.123Z"), "Nightly #3");
    expect(id).toBe("20261126T130509Z-nightly-3");
    expect(isExportId(id)).toBe(true);
    expect(isExportId("../etc")).toBe(false);
  });

  it("writes sha256sum -c input and restore notes with plain commands", () => {
    expect(sha256sums(manifest)).toBe(`${"a".repeat(64)}  domain.xml\n${"b".repeat(64)}  vda.qcow2\n`);
    const notes = restoreNotes(manifest);
    expect(notes).toContain("sha256sum -c SHA256SUMS");
    expect(notes).toContain("virsh define domain.xml");
    expect(notes).toContain("vda.qcow2");
  });

  it("reads a target listing into states, and ignores folders that are not Snapkeep's", () => {
    const job = {
      format: "snapkeep-export",
      id: "20261126T140000Z-b",
      startedAt: "2026-11-26T14:00:00.000Z",
      host: "web",
      vmUuid: "u",
      vmName: "web01",
      snapshotTag: "snapkeep:manual:b",
      disks: ["vda"],
    };
    const old = { ...manifest, id: "20261126T120000Z-old", createdAt: "2026-11-26T12:00:01.000Z" };
    const oldFiles = finished(old, "web01-1b2c3d4e/20261126T120000Z-old");
    const corruptChecked = {
      state: "corrupt" as const,
      checkedAt: "2026-11-27T08:00:00.000Z",
      badFiles: ["vda.qcow2"],
    };
    const corrupt = JSON.stringify({
      ...corruptChecked,
      seal: sealVerification(
        KEY,
        "web01-1b2c3d4e/20261126T120000Z-old",
        createHash("sha256")
          .update(oldFiles["manifest.json"] ?? "")
          .digest("hex"),
        corruptChecked,
      ),
    });
    const never = { ...manifest, id: "20261126T110000Z-never", createdAt: "2026-11-26T11:00:00.000Z" };
    const entries = parseScan(
      scan([
        {
          dir: "web01-1b2c3d4e/20261126T130500Z-nightly",
          files: finished(manifest, "web01-1b2c3d4e/20261126T130500Z-nightly"),
        },
        { dir: "web01-1b2c3d4e/20261126T140000Z-b.partial", files: { "job.json": JSON.stringify(job) } },
        { dir: "web01-1b2c3d4e/20261126T120000Z-old", files: { ...oldFiles, "status.json": corrupt } },
        {
          dir: "web01-1b2c3d4e/20261126T110000Z-never",
          files: { "manifest.json": JSON.stringify(never), SHA256SUMS: sha256sums(never) },
        },
        { dir: "web01-1b2c3d4e/holiday-photos", files: {} },
        { dir: "web01-1b2c3d4e/20261126T100000Z-foreign", files: { "manifest.json": '{"format":"other"}' } },
      ]),
      KEY,
    );
    expect(entries.map((e) => [e.id, e.state])).toEqual([
      ["20261126T110000Z-never", "unverified"],
      ["20261126T120000Z-old", "corrupt"],
      ["20261126T130500Z-nightly", "verified"],
      ["20261126T140000Z-b", "partial"],
    ]);
    expect(entries[1]?.reason).toContain("vda.qcow2");
    expect(entries[3]?.reason).toMatch(/resume/);
    expect(entries[2]?.reason).toBeNull();
    expect(parseScan("", KEY)).toEqual([]);
  });

  it("counts as verified only a verification sealed with this Snapkeep's key", () => {
    const folder = "web01-1b2c3d4e/20261126T130500Z-nightly";
    const state = (files: Record<string, string>, odd = 0): [string, string | null] => {
      const [entry] = parseScan(scan([{ dir: folder, odd, files }]), KEY);
      return [entry?.state ?? "absent", entry?.reason ?? null];
    };
    const good = finished(manifest, folder);
    expect(state(good)[0]).toBe("verified");
    // A status.json someone wrote by hand, or sealed with another key: not a check Snapkeep made.
    expect(
      state({ ...good, "status.json": '{"state":"verified","checkedAt":"2026-01-01T00:00:00Z"}' }),
    ).toEqual(["unverified", expect.stringMatching(/not verified by this Snapkeep/)]);
    expect(state(finished(manifest, folder, Buffer.alloc(32, 9)))[0]).toBe("unverified");
    // A sealed status copied from another export does not hold for this one.
    const other = { ...manifest, id: "20261126T130501Z-nightly" };
    const copied = finished(other, "web01-1b2c3d4e/20261126T130501Z-nightly")["status.json"] ?? "";
    expect(state({ ...good, "status.json": copied })[0]).toBe("unverified");
    // The manifest changed after the check: the seal no longer covers it.
    const edited = `${JSON.stringify({ ...manifest, tools: { snapkeep: "9" } }, null, 2)}\n`;
    expect(state({ ...good, "manifest.json": edited, SHA256SUMS: sha256sums(manifest) })[0]).toBe(
      "unverified",
    );
    // SHA256SUMS that disagree with the manifest, or missing: damaged, not ignored.
    expect(state({ ...good, SHA256SUMS: `${"c".repeat(64)}  vda.qcow2\n` })).toEqual([
      "corrupt",
      expect.stringMatching(/SHA256SUMS disagrees/),
    ]);
    const { SHA256SUMS: _sums, ...withoutSums } = good;
    expect(state(withoutSums)).toEqual(["corrupt", expect.stringMatching(/SHA256SUMS is missing/)]);
    // A link or device in the folder: never Snapkeep's, so never good (and never resumed).
    expect(state(good, 1)).toEqual(["corrupt", expect.stringMatching(/not a regular file/)]);
    // A manifest of another export in this folder.
    expect(state(finished(other, folder))).toEqual(["corrupt", expect.stringMatching(/belongs to export/)]);
  });

  it("cannot be steered by a file's bytes: a manifest carrying listing lines lists nothing more", () => {
    const folder = "web01-1b2c3d4e/20261126T130500Z-nightly";
    const forged = `{"x":"\nD ../../etc\nO 0\nF manifest.json\nE\nD web01-1b2c3d4e/20261126T000000Z-forged\n"}`;
    const entries = parseScan(
      scan([{ dir: folder, files: { ...finished(manifest, folder), "job.json": forged } }]),
      KEY,
    );
    expect(entries.map((e) => e.folder)).toEqual([folder]);
    // Output that is not od's hex inside a file ends that folder's listing: it is left out.
    const broken = `D ${folder}\nO 0\nF manifest.json\n{"not":"hex"}\nE\n`;
    expect(parseScan(broken, KEY)).toEqual([]);
    // Folder names that are not Snapkeep's are not listed, whatever the script printed.
    expect(
      parseScan(scan([{ dir: "../x/20261126T130500Z-nightly", files: finished(manifest, folder) }]), KEY),
    ).toEqual([]);
  });
});

describe("the scan script on a real folder", () => {
  const run = (root: string): string =>
    execFileSync("sh", ["-c", SCAN_SCRIPT, "snapkeep-scan", root, ""], { encoding: "utf8" });

  it("skips links and odd names, counts what is not a regular file, and prints contents as hex", () => {
    const root = mkdtempSync(join(tmpdir(), "snapkeep-scan-"));
    const outside = mkdtempSync(join(tmpdir(), "snapkeep-outside-"));
    try {
      const folder = "web01-1b2c3d4e/20261126T130500Z-nightly";
      mkdirSync(join(root, folder), { recursive: true });
      for (const [name, content] of Object.entries(finished(manifest, folder))) {
        writeFileSync(join(root, folder, name), content);
      }
      // A link where an export folder or a VM folder would be, and a name with a newline.
      mkdirSync(join(outside, "20261126T000000Z-elsewhere"));
      writeFileSync(join(outside, "20261126T000000Z-elsewhere", "manifest.json"), JSON.stringify(manifest));
      symlinkSync(
        join(outside, "20261126T000000Z-elsewhere"),
        join(root, "web01-1b2c3d4e", "20261126T000000Z-link"),
      );
      symlinkSync(outside, join(root, "linked-vm"));
      mkdirSync(join(root, "web01-1b2c3d4e", "20261126T000001Z-a\nD web01-1b2c3d4e"), { recursive: true });
      let entries = parseScan(run(root), KEY);
      expect(entries.map((e) => [e.folder, e.state])).toEqual([[folder, "verified"]]);
      // A link planted inside a bundle makes it damaged.
      symlinkSync("/etc/passwd", join(root, folder, "vda.qcow2"));
      entries = parseScan(run(root), KEY);
      expect(entries.map((e) => [e.folder, e.state])).toEqual([[folder, "corrupt"]]);
      // A manifest.json that is a link is not read at all.
      rmSync(join(root, folder, "vda.qcow2"));
      rmSync(join(root, folder, "manifest.json"));
      symlinkSync(
        join(outside, "20261126T000000Z-elsewhere", "manifest.json"),
        join(root, folder, "manifest.json"),
      );
      expect(run(root)).not.toContain("F manifest.json");
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(outside, { recursive: true, force: true });
    }
  });
});

describe("rsync over the relay", () => {
  it("builds the client command with paths only as argv and a constant remote shell", () => {
    const argv = rsyncSendArgs({
      source: "/var/tmp/a b'c.qcow2",
      destination: "/srv/x y/vda.qcow2",
      basisDir: "/srv/prev",
      bwlimitKiB: 500,
    });
    expect(argv.slice(0, 5)).toEqual([
      "sh",
      "-c",
      'exec 3<&0 4>&1 1>&2 0</dev/null; exec "$@"',
      "snapkeep-relay",
      "rsync",
    ]);
    expect(argv).toContain("-s");
    expect(argv).toContain("--inplace");
    expect(argv).toContain("--copy-dest=/srv/prev");
    expect(argv).toContain("--bwlimit=500");
    expect(argv.slice(-3)).toEqual(["--", "/var/tmp/a b'c.qcow2", "snapkeep-target:/srv/x y/vda.qcow2"]);
    expect(argv[argv.indexOf("-e") + 1]).toBe(RELAY_RSH);
  });

  it("passes a bandwidth limit only when one is asked, in rsync's KiB/s", () => {
    const plain = rsyncSendArgs({ source: "/a", destination: "/b" });
    expect(plain.some((a) => a.startsWith("--bwlimit"))).toBe(false);
    // The CLI's and the app's 0.5 MiB/s.
    expect(rsyncSendArgs({ source: "/a", destination: "/b", bwlimitKiB: 512 })).toContain("--bwlimit=512");
  });

  it("reads the relay header whole or waits for the rest", () => {
    const header = "4\nsnapkeep-target\nrsync\n--server\n-sIe.LsfxCIvu\n";
    expect(parseRelayHeader(Buffer.from(header.slice(0, 20)))).toBeUndefined();
    const parsed = parseRelayHeader(Buffer.from(`${header}\u0000data`));
    expect(parsed?.argv).toEqual(["snapkeep-target", "rsync", "--server", "-sIe.LsfxCIvu"]);
    expect(parsed?.length).toBe(Buffer.byteLength(header));
    expect(() => parseRelayHeader(Buffer.from("hello\n"))).toThrow(/header/);
  });

  it("passes on only an rsync server command with plain options", () => {
    expect(validateServerArgv(["h", "rsync", "--server", "-sIe.LsfxCIvu", "."])).toEqual([
      "rsync",
      "--server",
      "-sIe.LsfxCIvu",
      ".",
    ]);
    expect(() => validateServerArgv(["h", "sh", "-c", "reboot"])).toThrow(/not an rsync server/);
    expect(() => validateServerArgv(["h", "rsync", "--server", "$(reboot)"])).toThrow(/unexpected/);
    expect(() => validateServerArgv(["h", "rsync", "--server", "a;b"])).toThrow(/unexpected/);
  });

  it("lets an untrusted sender start the server only for the expected destination", () => {
    const want = "/var/lib/libvirt/images/.snapkeep-import-x/vda.qcow2";
    expect(
      validateServerArgv(["h", "rsync", "--server", "-Ie.LsfxCIvu", "--inplace", ".", want], want),
    ).toHaveLength(6);
    expect(() =>
      validateServerArgv(["h", "rsync", "--server", "-Ie.LsfxCIvu", ".", "/root/.ssh/authorized_keys"], want),
    ).toThrow(/asked to write/);
    expect(() => validateServerArgv(["h", "rsync", "--server", "-sIe.LsfxCIvu", "."], want)).toThrow(
      /asked to write/,
    );
    expect(() =>
      validateServerArgv(["h", "rsync", "--server", "--sender", "-e.Lsfx", ".", want], want),
    ).toThrow(/asked to write/);
  });

  it("refuses a manifest whose disk files are not <target>.qcow2", () => {
    const bad = { ...manifest, disks: [{ ...manifest.disks[0], name: "../../root/.ssh/authorized_keys" }] };
    expect(manifestSchema.safeParse(bad).success).toBe(false);
    expect(manifestSchema.safeParse(manifest).success).toBe(true);
  });

  it("parses progress2 updates, statistics and error lines from captured output", () => {
    const out =
      "     32,768   0%    0.00kB/s    0:00:00\r  1,048,576  50%  1.00MB/s    0:00:01\r  2,097,152 100%  1.20MB/s    0:00:01 (xfr#1, to-chk=0/1)\n";
    expect(parseProgress2(out)).toEqual({ bytes: 2_097_152, percent: 100 });
    expect(parseProgress2("nothing")).toBeUndefined();
    const stats =
      "Literal data: 7,240 bytes\nMatched data: 52,421,560 bytes\nTotal bytes sent: 36,294\nTotal bytes received: 50,730\n";
    expect(parseStats(stats)).toEqual({ literalBytes: 7240, matchedBytes: 52_421_560, bytesSent: 36_294 });
    expect(parseStats("Literal data: 1 bytes\n")).toBeUndefined();
    expect(
      rsyncErrorText(
        `${out}rsync: [receiver] write failed on "/srv/x": No space left on device (28)\nrsync error: error in file IO (code 11)\n`,
      ),
    ).toBe(
      'rsync: [receiver] write failed on "/srv/x": No space left on device (28); rsync error: error in file IO (code 11)',
    );
  });
});

describe("qemu-img convert of a snapshot", () => {
  it("pins the snapshot by id and name, escapes commas, and opens a running VM's image shared", () => {
    const argv = convertSnapshotArgs({
      source: "/img/a,b.qcow2",
      snapshotId: "3",
      snapshotTag: "snapkeep:manual:x,y",
      output: "/out/vda.qcow2",
      shared: true,
      compression: "zstd",
    });
    expect(argv).toEqual([
      "qemu-img",
      "convert",
      "-p",
      "-U",
      "--image-opts",
      "-l",
      "snapshot.id=3,snapshot.name=snapkeep:manual:x,,y",
      "-O",
      "qcow2",
      "-c",
      "-o",
      "compression_type=zstd",
      "driver=qcow2,file.driver=file,file.filename=/img/a,,b.qcow2",
      "/out/vda.qcow2",
    ]);
    expect(
      convertSnapshotArgs({
        source: "/a",
        snapshotId: "1",
        snapshotTag: "t",
        output: "/o",
        shared: false,
        compression: "zlib",
      }),
    ).not.toContain("-U");
  });

  it("reads -p progress and the version", () => {
    expect(parseConvertProgress("    (0.00/100%)\r    (6.25/100%)\r    (12.50/100%)\r")).toBe(0.125);
    expect(parseConvertProgress("")).toBeUndefined();
    expect(parseQemuImgVersion("qemu-img version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n")).toEqual([
      7, 2,
    ]);
    expect(parseQemuImgVersion("something else")).toBeUndefined();
  });
});

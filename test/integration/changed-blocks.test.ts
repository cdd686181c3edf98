/**
 * Changed blocks between two internal snapshots, from the qcow2 tables alone, on images qemu-img
 * and qemu-io made: the older snapshot's raw content plus the extents found (data read from the
 * image file where the tables point, zeros where they say zero) must equal the newer snapshot's
 * raw content byte for byte. Scattered 64 KiB writes, unaligned small writes, a contiguous run,
 * zeroed and discarded ranges, and the cases that must refuse (a resize, a missing snapshot).
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { changedBlocks, type SnapshotKey } from "../../core/app/exports/changed-blocks.js";
import { changedBytes, Qcow2Unsupported } from "../../core/drivers/qemu-img/qcow2-tables.js";
import { LocalRunner } from "../../core/infra/runner/local.js";
import { snapshotKey } from "../support/libvirt.js";

const MiB = 1024 * 1024;
const KiB = 1024;

describe("changed blocks from qcow2 tables", () => {
  const runner = new LocalRunner();
  let work = "";
  let image = "";

  const io = (command: string, file = image): void => {
    execFileSync("qemu-io", ["-f", "qcow2", "-c", command, file], { stdio: "pipe" });
  };
  const writeRandom = (offset: number, length: number, file = image): void => {
    const source = join(work, `random-${offset}`);
    writeFileSync(source, randomBytes(length));
    io(`write -s ${source} ${offset} ${length}`, file);
    rmSync(source);
  };
  const snapshot = (name: string, file = image): void => {
    execFileSync("qemu-img", ["snapshot", "-c", name, file]);
  };
  const key = (name: string, file = image): SnapshotKey => snapshotKey(file, name);
  const raw = (name: string, file = image): string => {
    const out = join(work, `${name}.raw`);
    execFileSync("qemu-img", ["convert", "-l", `snapshot.name=${name}`, "-O", "raw", file, out]);
    return out;
  };

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "snapkeep-cbt-"));
    image = join(work, "disk.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, `${256 * MiB}`]);
    writeRandom(0, 96 * MiB);
    writeRandom(160 * MiB, 32 * MiB);
    snapshot("s1");
  });

  afterAll(async () => {
    await runner.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  it("finds exactly what changed: the older snapshot plus the extents is the newer one", async () => {
    const written: [number, number][] = [];
    // Scattered 64 KiB writes, some into holes; none where a range is zeroed or discarded below.
    const later = (at: number): boolean =>
      (at >= 10 * MiB && at < 11 * MiB) || (at >= 20 * MiB && at < 21 * MiB);
    while (written.length < 40) {
      const at = Math.floor(Math.random() * 4000) * 64 * KiB;
      if (!later(at)) {
        writeRandom(at, 64 * KiB);
        written.push([at, 64 * KiB]);
      }
    }
    writeRandom(50 * MiB + 4 * KiB + 512, 3 * KiB); // small and unaligned
    written.push([50 * MiB + 4 * KiB + 512, 3 * KiB]);
    writeRandom(200 * MiB, 3 * MiB); // one contiguous run
    written.push([200 * MiB, 3 * MiB]);
    io(`write -z ${10 * MiB} ${1 * MiB}`); // zeroed
    io(`discard ${20 * MiB} ${1 * MiB}`); // discarded
    snapshot("s2");

    const found = await changedBlocks(runner, image, key("s1"), key("s2"));
    const bytes = changedBytes(found.extents);
    expect(bytes.compressed).toBe(0);
    // About what was written, rounded out to clusters (a few written clusters may coincide).
    expect(bytes.data).toBeGreaterThanOrEqual(3 * MiB);
    expect(bytes.data).toBeLessThanOrEqual(40 * 64 * KiB + 3 * MiB + 64 * KiB);
    expect(bytes.zero).toBeGreaterThanOrEqual(1 * MiB); // the zeroed range at least
    const data = found.extents.filter((e) => e.source.kind === "data");
    for (const [at, length] of written) {
      // Covered by data extents end to end (a long write may span several, where the file's
      // clusters are not contiguous).
      let from = at;
      for (const e of data) {
        if (e.guestOffset <= from && from < e.guestOffset + e.length) {
          from = e.guestOffset + e.length;
        }
      }
      expect(from >= at + length, `the write at ${at} is in the data extents`).toBe(true);
    }
    // Metadata only: the header, the snapshot table, two L1 tables, and the differing L2 tables.
    expect(found.commands).toBeLessThanOrEqual(4);
    expect(found.metadataBytes).toBeLessThan(2 * MiB);

    // Rebuild the newer snapshot from the older one and the extents, and compare every byte.
    const rebuilt = raw("s1");
    const file = openSync(image, "r");
    const out = openSync(rebuilt, "r+");
    try {
      for (const extent of found.extents) {
        const buffer = Buffer.alloc(extent.length);
        if (extent.source.kind === "data") {
          readSync(file, buffer, 0, extent.length, extent.source.hostOffset);
        }
        writeSync(out, buffer, 0, extent.length, extent.guestOffset);
      }
    } finally {
      closeSync(file);
      closeSync(out);
    }
    expect(readFileSync(rebuilt).equals(readFileSync(raw("s2")))).toBe(true);
  });

  it("finds nothing between two snapshots of an unchanged disk", async () => {
    snapshot("s3");
    snapshot("s4");
    const found = await changedBlocks(runner, image, key("s3"), key("s4"));
    expect(found.extents).toEqual([]);
  });

  it("refuses, with the reason, when the disk was resized or a snapshot is gone", async () => {
    const grown = join(work, "grown.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", grown, `${64 * MiB}`]);
    writeRandom(0, MiB, grown);
    snapshot("small", grown);
    execFileSync("qemu-img", ["resize", "-q", grown, `${128 * MiB}`]);
    snapshot("large", grown);
    await expect(changedBlocks(runner, grown, key("small", grown), key("large", grown))).rejects.toThrow(
      /resized between the snapshots \(67108864 → 134217728 bytes\)/,
    );
    const error = await changedBlocks(runner, grown, { id: "99", name: "gone" }, key("large", grown)).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Qcow2Unsupported);
    expect((error as Error).message).toMatch(/snapshot gone \(id 99\) is not in the image's snapshot table/);
  });

  it("reads a disk with more L2 tables than one command takes, batch by batch", async () => {
    // A sparse 300 GiB disk: a 64 KiB write in each of 600 regions of 512 MiB (one L2 table
    // each), more than one batch of tables (256 L1 entries); then 300 of them written again.
    const wide = join(work, "wide.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", wide, `${300 * 1024 * MiB}`]);
    const region = 512 * MiB;
    const writes = (regions: number[], tag: string): void => {
      const commands = regions.flatMap((r) => [
        "-c",
        `write -q -P ${tag} ${r * region + 128 * KiB} ${64 * KiB}`,
      ]);
      for (let i = 0; i < commands.length; i += 200) {
        execFileSync("qemu-io", ["-f", "qcow2", ...commands.slice(i, i + 200), wide], { stdio: "pipe" });
      }
    };
    const all = Array.from({ length: 600 }, (_, i) => i);
    writes(all, "0x11");
    snapshot("w1", wide);
    const again = all.filter((r) => r % 2 === 1);
    writes(again, "0x22");
    snapshot("w2", wide);
    const full = await changedBlocks(runner, wide, null, key("w1", wide));
    expect(full.extents.map((e) => [e.guestOffset, e.length])).toEqual(
      all.map((r) => [r * region + 128 * KiB, 64 * KiB]),
    );
    expect(full.commands).toBeGreaterThan(3 + Math.ceil(600 / 512));
    const changed = await changedBlocks(runner, wide, key("w1", wide), key("w2", wide));
    expect(changed.extents.map((e) => [e.guestOffset, e.length])).toEqual(
      again.map((r) => [r * region + 128 * KiB, 64 * KiB]),
    );
    expect(changed.extents.every((e) => e.source.kind === "data")).toBe(true);
  }, 120_000);

  it("refuses an image with a backing file: an unallocated cluster there is not zero", async () => {
    const overlay = join(work, "overlay.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", image, "-F", "qcow2", overlay]);
    snapshot("o1", overlay);
    snapshot("o2", overlay);
    await expect(changedBlocks(runner, overlay, key("o1", overlay), key("o2", overlay))).rejects.toThrow(
      /has a backing file/,
    );
  });
});

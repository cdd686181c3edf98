/**
 * Reading thin_delta's and thin_dump's reports (thin-provisioning-tools 0.9.0, as captured in the
 * LVM test guest): the ranges a streamed export reads from a thin snapshot, and refusals of
 * anything else. test/lvm/lvm.test.ts runs the tools for real.
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import {
  parseThinDelta,
  parseThinDump,
  ThinReport,
  ThinReportSink,
  ThinUnsupported,
} from "../../core/drivers/lvm/thin.js";
import { extentsOf, externalOrigin } from "../../core/hypervisor/lvm-thin.js";
import type { LogicalVolume } from "../../core/drivers/lvm/parse.js";

const KiB = 1024;

// thin_delta -m --snap1 2 --snap2 3 after 3 blocks written at 100 and one at 10.
const DELTA = `<superblock uuid="" time="2" transaction="3" data_block_size="128" nr_data_blocks="0">
  <diff left="2" right="3">
    <right_only begin="10" length="1"/>
    <right_only begin="100" length="3"/>
  </diff>
</superblock>
`;

// thin_dump -m --dev-id 3 of the same pool.
const DUMP = `<superblock uuid="" time="2" transaction="3" flags="0" version="2" data_block_size="128" nr_data_blocks="0">
  <device dev_id="3" mapped_blocks="4" transaction="2" creation_time="2" snap_time="2">
    <single_mapping origin_block="10" data_block="3" time="1"/>
    <range_mapping origin_begin="100" data_begin="0" length="3" time="1"/>
  </device>
</superblock>
`;

describe("thin_delta's report", () => {
  it("gives the differing blocks in bytes, at the pool's chunk size", () => {
    expect(parseThinDelta(DELTA, 2, 3)).toEqual({
      blockBytes: 64 * KiB,
      ranges: [
        { offset: 10 * 64 * KiB, length: 64 * KiB },
        { offset: 100 * 64 * KiB, length: 3 * 64 * KiB },
      ],
    });
  });

  it("counts every kind of difference, blocks only the older device maps too, and merges neighbours", () => {
    const text = DELTA.replace(
      '<right_only begin="10" length="1"/>',
      '<left_only begin="10" length="1"/>\n<different begin="11" length="2"/>\n<same begin="13" length="5"/>',
    );
    expect(parseThinDelta(text, 2, 3).ranges).toEqual([
      { offset: 10 * 64 * KiB, length: 3 * 64 * KiB },
      { offset: 100 * 64 * KiB, length: 3 * 64 * KiB },
    ]);
  });

  it("refuses a report of other devices, a line it does not know, or no report at all", () => {
    expect(() => parseThinDelta(DELTA, 1, 3)).toThrow(/compared devices 2 and 3, not 1 and 3/);
    // --verbose nests its ranges: not what Snapkeep asked for, so not read.
    expect(() =>
      parseThinDelta(
        DELTA.replace(
          '<right_only begin="10" length="1"/>',
          '<right_only>\n<range begin="10" data_begin="3" length="1"/>',
        ),
        2,
        3,
      ),
    ).toThrow(ThinUnsupported);
    expect(() =>
      parseThinDelta(DELTA.replace("</diff>", '</diff>\n<diff left="2" right="3">'), 2, 3),
    ).toThrow(/incomplete|out of its place/);
    expect(() => parseThinDelta("", 2, 3)).toThrow(/incomplete/);
    expect(() => parseThinDelta(DELTA.replace('begin="100"', 'begin="-1"'), 2, 3)).toThrow(
      /does not understand/,
    );
  });
});

describe("thin_dump's report", () => {
  it("gives the device's mapped blocks", () => {
    expect(parseThinDump(DUMP, 3).ranges).toEqual([
      { offset: 10 * 64 * KiB, length: 64 * KiB },
      { offset: 100 * 64 * KiB, length: 3 * 64 * KiB },
    ]);
  });

  it("refuses another device, shared subtrees (<def>/<ref>) and a missing device", () => {
    expect(() => parseThinDump(DUMP, 4)).toThrow(/listed device 3, not 4/);
    expect(() =>
      parseThinDump(DUMP.replace("<single_mapping", '<ref name="13"/>\n<single_mapping'), 3),
    ).toThrow(/does not understand: <ref name="13"\/>/);
    const noDevice = DUMP.split("\n")
      .filter((l) => l.includes("superblock"))
      .join("\n");
    expect(() => parseThinDump(noDevice, 3)).toThrow(/did not list device 3/);
    // Mappings outside a device, or a second superblock: not a report Snapkeep knows.
    expect(() =>
      parseThinDump(
        DUMP.split("\n")
          .filter((l) => !l.includes("device"))
          .join("\n"),
        3,
      ),
    ).toThrow(/out of its place/);
    expect(() => parseThinDump(`${DUMP}${DUMP}`, 3)).toThrow(/out of its place|given twice/);
  });

  it("refuses a report cut short, at any line: it would be fewer ranges, a wrong backup", () => {
    const lines = DUMP.trimEnd().split("\n");
    for (let n = 1; n < lines.length; n++) {
      expect(() => parseThinDump(lines.slice(0, n).join("\n"), 3)).toThrow(ThinUnsupported);
    }
    const delta = DELTA.trimEnd().split("\n");
    for (let n = 1; n < delta.length; n++) {
      expect(() => parseThinDelta(delta.slice(0, n).join("\n"), 2, 3)).toThrow(ThinUnsupported);
    }
  });
});

describe("a report read as it arrives", () => {
  /** The text in pieces of `size` bytes, through a real stream pipeline into the sink. */
  async function streamed(text: string, size: number, report: ThinReport): Promise<ThinReportSink> {
    const bytes = Buffer.from(text);
    const pieces: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += size) {
      pieces.push(bytes.subarray(at, at + size));
    }
    const sink = new ThinReportSink(report);
    await pipeline(Readable.from(pieces), sink);
    return sink;
  }

  it("gives what the whole text gives, however the output is cut", async () => {
    for (const size of [1, 7, 64, 100_000]) {
      expect((await streamed(DUMP, size, new ThinReport({ dump: 3 }))).result()).toEqual(
        parseThinDump(DUMP, 3),
      );
      expect((await streamed(DELTA, size, new ThinReport({ delta: [2, 3] }))).result()).toEqual(
        parseThinDelta(DELTA, 2, 3),
      );
    }
  });

  it("reads a fragmented volume's long report into few ranges, and sorts one out of order", async () => {
    // 200,000 single blocks, every other one mapped, then the gaps filled from the end backwards.
    const mappings: string[] = [];
    for (let block = 0; block < 200_000; block += 2) {
      mappings.push(`<single_mapping origin_block="${block}" data_block="${block}" time="1"/>`);
    }
    const text = (extra: readonly string[]): string =>
      DUMP.replace(
        /<single_mapping[^\n]*\n[^\n]*<range_mapping[^\n]*\n/,
        `${[...mappings, ...extra].join("\n")}\n`,
      );
    const gappy = (await streamed(text([]), 65536, new ThinReport({ dump: 3 }))).result();
    expect(gappy.ranges).toHaveLength(100_000);
    const filled: string[] = [];
    for (let block = 199_999; block > 0; block -= 2) {
      filled.push(`<single_mapping origin_block="${block}" data_block="${block}" time="1"/>`);
    }
    const whole = (await streamed(text(filled), 65536, new ThinReport({ dump: 3 }))).result();
    expect(whole.ranges).toEqual([{ offset: 0, length: 200_000 * 64 * KiB }]);
  });

  it("keeps a refusal as the answer and reads the rest, so the tool never waits on a full pipe", async () => {
    const bad = DUMP.replace("<single_mapping", '<ref name="13"/>\n<single_mapping') + "x".repeat(1_000_000);
    const sink = await streamed(bad, 4096, new ThinReport({ dump: 3 }));
    expect(() => sink.result()).toThrow(/does not understand: <ref name="13"\/>/);
    const long = `${DUMP.slice(0, 20)}${"y".repeat(10_000)}`;
    const refused = await streamed(long, 1000, new ThinReport({ dump: 3 }));
    expect(() => refused.result()).toThrow(/longer than any of its reports/);
  });
});

describe("extents of a thin snapshot", () => {
  it("reads each range where it lies on the device, cut at the volume's end", () => {
    const ranges = {
      blockBytes: 128 * KiB,
      ranges: [
        { offset: 0, length: 128 * KiB },
        { offset: 896 * KiB, length: 256 * KiB },
      ],
    };
    expect(extentsOf(ranges, 1024 * KiB)).toEqual([
      { guestOffset: 0, length: 128 * KiB, source: { kind: "data", hostOffset: 0 } },
      { guestOffset: 896 * KiB, length: 128 * KiB, source: { kind: "data", hostOffset: 896 * KiB } },
    ]);
  });

  it("refuses a chunk size the 64 KiB clusters do not divide", () => {
    expect(() => extentsOf({ blockBytes: 32 * KiB, ranges: [] }, 1024 * KiB)).toThrow(/chunk size/);
  });
});

describe("external origins", () => {
  const lv = (name: string, attr: string, origin: string | null) =>
    ({ name, vg: "vg", attr, origin }) as unknown as LogicalVolume;

  it("finds one below a thin snapshot, through its origin, so the export refuses the listing", () => {
    const lvs = [
      lv("golden", "ori-------", null),
      lv("clone", "Vwi-a-tz-e", "golden"),
      lv("snap", "Vwi---tz-k", "clone"),
    ];
    // lvm2 marks an external origin with "e" as the first attribute once a thin LV uses it.
    const marked = lvs.map((l) => (l.name === "golden" ? { ...l, attr: "eri-------" } : l));
    expect(externalOrigin(marked, marked[2] as LogicalVolume)).toBe("golden");
    expect(externalOrigin(lvs, lvs[2] as LogicalVolume)).toBeNull();
    // A loop in the origins (never printed by lvm, refused all the same) ends the walk.
    const loop = [lv("a", "Vwi-a-tz--", "b"), lv("b", "Vwi-a-tz--", "a")];
    expect(externalOrigin(loop, loop[0] as LogicalVolume)).toBeNull();
  });
});

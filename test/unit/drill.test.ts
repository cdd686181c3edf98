import { deflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";

import { isLeftOver, markerOf, memoryMiBOf, parseMarker } from "../../core/app/drill.js";
import { thisProcess } from "../../core/infra/process-identity.js";
import { parseDrillEvery } from "../../core/cli/schedule-copy-options.js";
import { validateCopyPolicy } from "../../core/domain/copy/policy.js";
import {
  checkPassed,
  drillDue,
  drillsOf,
  drillStanding,
  keepDrills,
  keptOutput,
  MAX_CHECK_OUTPUT,
  MAX_DRILL_RECORDS,
  type DrillRecord,
} from "../../core/domain/drill.js";
import { buildRestoredDefinition } from "../../core/drivers/libvirt/restored-definition.js";
import {
  encodePng,
  inkShare,
  parsePng,
  parsePpm,
  parseScreenshot,
  type Pixels,
} from "../../core/drivers/libvirt/screenshot.js";
import {
  drillBridge,
  drillNetworkXml,
  parseDrillRegistry,
  parseDrillRoom,
} from "../../core/drivers/sh/drill-scripts.js";

function record(over: Partial<DrillRecord>): DrillRecord {
  return {
    id: "0123456789ab",
    host: "local",
    vm: "web",
    vmUuid: "u-web",
    source: { kind: "snapshot", snapshot: "nightly" },
    on: "local",
    startedAt: "2026-12-01T00:00:00.000Z",
    finishedAt: "2026-12-01T00:01:00.000Z",
    passed: true,
    reason: null,
    bootSeconds: 30,
    check: null,
    screenshot: true,
    ...over,
  };
}

describe("drill records", () => {
  it("are a VM's by UUID when both know it (a renamed VM keeps them), else by host and name; newest first", () => {
    const records = [
      record({ id: "000000000001", finishedAt: "2026-12-01T00:00:00Z" }),
      record({ id: "000000000002", vm: "old-name", finishedAt: "2026-12-03T00:00:00Z" }),
      record({ id: "000000000003", vmUuid: "u-other", finishedAt: "2026-12-02T00:00:00Z" }),
      record({ id: "000000000004", vmUuid: null, vm: "web", finishedAt: "2026-12-04T00:00:00Z" }),
    ];
    expect(drillsOf(records, { host: "local", name: "web", uuid: "u-web" }).map((r) => r.id)).toEqual([
      "000000000004",
      "000000000002",
      "000000000001",
    ]);
    expect(drillsOf(records, { host: "local", name: "web" }).map((r) => r.id)).toEqual([
      "000000000004",
      "000000000003",
      "000000000001",
    ]);
  });

  it("stand as the newest pass, and a failure when the newest drill failed", () => {
    const pass = record({ id: "000000000001" });
    const fail = record({ id: "000000000002", passed: false, reason: "no agent" });
    expect(drillStanding([fail, pass])).toEqual({ lastPassed: pass, failing: fail });
    expect(drillStanding([pass, fail])).toEqual({ lastPassed: pass, failing: null });
    expect(drillStanding([])).toEqual({ lastPassed: null, failing: null });
  });

  it("are kept up to the limit, the oldest going first", () => {
    const many = Array.from({ length: MAX_DRILL_RECORDS }, (_, i) =>
      record({ id: i.toString(16).padStart(12, "0") }),
    );
    const { kept, dropped } = keepDrills(many, record({ id: "ffffffffffff" }));
    expect(kept).toHaveLength(MAX_DRILL_RECORDS);
    expect(kept.at(-1)?.id).toBe("ffffffffffff");
    expect(dropped.map((r) => r.id)).toEqual(["000000000000"]);
  });

  it("judge a check by its exit code and, when given, its trimmed output", () => {
    expect(checkPassed({ exitCode: 0, output: "ok\n", expected: null })).toBe(true);
    expect(checkPassed({ exitCode: 0, output: "ok\n", expected: " ok" })).toBe(true);
    expect(checkPassed({ exitCode: 0, output: "okay\n", expected: "ok" })).toBe(false);
    expect(checkPassed({ exitCode: 3, output: "ok", expected: "ok" })).toBe(false);
    expect(checkPassed({ exitCode: null, output: "", expected: null })).toBe(false);
    const long = keptOutput("x".repeat(MAX_CHECK_OUTPUT + 10));
    expect(long.startsWith("x".repeat(MAX_CHECK_OUTPUT))).toBe(true);
    expect(long).toContain("10 more characters");
  });
});

describe("scheduled drills", () => {
  const now = new Date("2026-12-08T02:10:00Z");
  it("are due when never drilled, when the newest failed, or when it is as old as the interval", () => {
    expect(drillDue([], 7, now)).toBe(true);
    expect(drillDue([record({ passed: false, finishedAt: "2026-12-08T02:00:00Z" })], 7, now)).toBe(true);
    expect(drillDue([record({ finishedAt: "2026-12-07T02:00:00Z" })], 7, now)).toBe(false);
    // Seven days ago to the hour, a few minutes later in the day: due (not pushed a week on).
    expect(drillDue([record({ finishedAt: "2026-12-01T02:15:00Z" })], 7, now)).toBe(true);
    expect(drillDue([record({ finishedAt: "2026-12-01T04:00:00Z" })], 7, now)).toBe(false);
  });

  it("take day, week, month, a number of days or off; anything else is refused with the choices", () => {
    expect(parseDrillEvery("week")).toEqual({ everyDays: 7 });
    expect(parseDrillEvery("month")).toEqual({ everyDays: 30 });
    expect(parseDrillEvery("3")).toEqual({ everyDays: 3 });
    expect(parseDrillEvery("off")).toBeUndefined();
    for (const typed of ["0", "367", "weekly", "-1", "1.5"]) {
      expect(() => parseDrillEvery(typed)).toThrow(/day, week, month/);
    }
    const policy = { target: "nas", retention: { keepLast: 2 } };
    expect(validateCopyPolicy({ ...policy, drill: { everyDays: 7 } }).drill).toEqual({ everyDays: 7 });
    expect(() => validateCopyPolicy({ ...policy, drill: { everyDays: 0 } })).toThrow(/1 to 366/);
    expect(validateCopyPolicy(policy)).not.toHaveProperty("drill");
  });
});

describe("a drill's throwaway VM definition", () => {
  const original = `<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>web</name>
  <uuid>1f7201df-5ce3-4386-a6ff-5dec9bfd8468</uuid>
  <memory unit='GiB'>2</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>/boot/vmlinuz</kernel></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/libvirt/images/web.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <interface type='network'><source network='default'/><mac address='52:54:00:00:00:01'/><model type='virtio'/></interface>
    <interface type='bridge'><source bridge='br0'/><model type='e1000'/></interface>
    <interface type='user'/>
    <interface type='direct'><source dev='eth0' mode='bridge'/></interface>
    <graphics type='vnc' port='5900' autoport='no' listen='0.0.0.0'/>
  </devices>
  <qemu:commandline><qemu:arg value='-netdev'/><qemu:arg value='user,id=x,hostfwd=tcp::2222-:22'/></qemu:commandline>
</domain>`;
  const built = buildRestoredDefinition(original, {
    name: "snapkeep-drill-0123456789ab",
    disks: new Map([["vda", "/var/lib/libvirt/images/.snapkeep-drill-0123456789ab/vda.qcow2"]]),
    host: { networks: ["default"], bridges: ["br0"] },
    isolate: {
      network: "snapkeep-drill-0123456789ab",
      nvram: "/var/lib/libvirt/images/.snapkeep-drill-0123456789ab/VARS.fd",
      marker: {
        namespace: "https://snapkeep.dev/xmlns/drill/1",
        attributes: markerOf("0123456789ab", new Date("2026-12-07T06:00:00Z"), {
          pid: 4242,
          hostname: "desk",
          bootId: "b00t",
          startTicks: "99",
        }),
      },
    },
  });

  it("puts every NIC on the drill's network, whatever the original used; macvtap stays dropped", () => {
    const nics = [...built.xml.matchAll(/<interface type='([a-z]+)'>\s*<source ([a-z]+)='([^']+)'/g)].map(
      (m) => m.slice(1),
    );
    expect(nics).toEqual([
      ["network", "network", "snapkeep-drill-0123456789ab"],
      ["network", "network", "snapkeep-drill-0123456789ab"],
      ["network", "network", "snapkeep-drill-0123456789ab"],
    ]);
    expect(built.xml).not.toMatch(/default|br0|eth0|hostfwd|52:54:00:00:00:01/);
    expect(built.dropped.map((d) => d.what)).toEqual(expect.arrayContaining(["NIC of type 'direct'"]));
  });

  it("opens no console port, adds a screen and a guest agent channel, and carries the marker", () => {
    // The console is kept listening nowhere (SPICE's channels need it to start): no port, no address.
    expect(built.xml).toMatch(/<graphics type='vnc'>\s*<listen type='none'\/>\s*<\/graphics>/);
    expect(built.xml).not.toMatch(/port=|0\.0\.0\.0|autoport/);
    expect(built.xml).toContain("<model type='vga'/>");
    expect(built.xml).toContain("<target type='virtio' name='org.qemu.guest_agent.0'/>");
    expect(built.xml).not.toContain("/boot/vmlinuz");
    expect(built.xml).not.toContain("<nvram"); // BIOS: no variable store
    const marker = parseMarker(built.xml);
    expect(marker).toEqual({
      id: "0123456789ab",
      until: "2026-12-07T06:00:00.000Z",
      owner: { pid: 4242, hostname: "desk", bootId: "b00t", startTicks: "99" },
    });
    // As libvirt prints it back: double quotes, other attribute order.
    expect(
      parseMarker(
        `<metadata>\n<drill:drill xmlns:drill="https://snapkeep.dev/xmlns/drill/1" id="0123456789ab" until="2026-12-07T06:00:00.000Z" pid="7" hostname="h"/>\n</metadata>`,
      )?.owner,
    ).toEqual({ pid: 7, hostname: "h" });
    expect(
      parseMarker("<metadata><drill:drill xmlns:drill='https://example.com/' id='0123456789ab'/></metadata>"),
    ).toBeNull();
    expect(memoryMiBOf(built.xml)).toBe(2048);
  });

  it("keeps an agent channel and a screen the VM had, once", () => {
    const xml = `<domain type='kvm'><name>db</name><memory>786432</memory>
      <os><type arch='x86_64' machine='q35'>hvm</type><loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader><nvram>/var/lib/libvirt/qemu/nvram/db_VARS.fd</nvram></os><devices>
      <disk type='file' device='disk'><source file='/i/db.qcow2'/><target dev='vda'/></disk>
      <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
      <video><model type='virtio'/></video></devices></domain>`;
    const again = buildRestoredDefinition(xml, {
      name: "snapkeep-drill-0123456789ab",
      disks: new Map([["vda", "/x/vda.qcow2"]]),
      host: { networks: [], bridges: [] },
      isolate: {
        network: "n",
        nvram: "/x/.snapkeep-drill-0123456789ab/VARS.fd",
        marker: { namespace: "https://snapkeep.dev/xmlns/drill/1", attributes: { id: "0123456789ab" } },
      },
    }).xml;
    expect(again.match(/guest_agent/g)).toHaveLength(1);
    expect(again.match(/<video>/g)).toHaveLength(1);
    expect(again).toContain("<model type='virtio'/>");
    expect(memoryMiBOf(again)).toBe(768);
    // A UEFI VM's variable store lives in the drill's folder (a transient VM's store in libvirt's
    // own folder outlives it), and goes with it.
    expect(again).toContain("<os firmware='efi'>");
    expect(again).toContain("<nvram>/x/.snapkeep-drill-0123456789ab/VARS.fd</nvram>");
    expect(again).not.toMatch(/db_VARS|OVMF_CODE/);
  });
});

describe("a drill's leftovers", () => {
  const now = new Date("2026-12-07T06:00:00Z");
  const later = "2026-12-07T07:00:00.000Z";
  it("are a drill's pieces whose process is gone or whose time is up, never a running drill's", () => {
    const alive = thisProcess();
    // A pid that cannot be running: above the kernel's pid_max.
    const gone = { ...alive, pid: 4_194_305 };
    expect(isLeftOver({ id: null, until: later, owner: alive }, now)).toBe(false);
    expect(isLeftOver({ id: null, until: later, owner: gone }, now)).toBe(true);
    expect(isLeftOver({ id: null, until: "2026-12-07T05:59:59.000Z", owner: alive }, now)).toBe(true);
    // Run from another computer: its process cannot be checked from here, only its time.
    expect(isLeftOver({ id: null, until: later, owner: { ...gone, hostname: "elsewhere" } }, now)).toBe(
      false,
    );
    expect(isLeftOver({ id: null, until: "not a time", owner: alive }, now)).toBe(true);
    expect(isLeftOver(null, now)).toBe(true);
  });
});

describe("drill host scripts' output", () => {
  it("reads the room, refusing anything else", () => {
    expect(parseDrillRoom("2048000\n123456789\n")).toEqual({ availableKiB: 2048000, freeBytes: 123456789 });
    expect(parseDrillRoom("2048000\n")).toBeNull();
    expect(parseDrillRoom("lots\n12\n")).toBeNull();
  });

  it("reads the drills' register, ignoring lines that name no drill", () => {
    expect(
      parseDrillRegistry(
        '0123456789ab {"until":"x"}\nabcdefabcdef \n../../etc x\n0123456789abc y\nabcdefabcdef\n',
      ),
    ).toEqual([
      { id: "0123456789ab", entry: '{"until":"x"}' },
      { id: "abcdefabcdef", entry: "" },
    ]);
  });

  it("makes an isolated network: a bridge the kernel takes, no address, no forward", () => {
    expect(drillBridge("0123456789ab")).toHaveLength(15);
    const xml = drillNetworkXml("snapkeep-drill-0123456789ab", drillBridge("0123456789ab"));
    expect(xml).toContain("<bridge name='skd0123456789ab' stp='off'/>");
    expect(xml).not.toMatch(/<ip|<forward|<dhcp/);
  });
});

describe("screenshots", () => {
  const pixels: Pixels = {
    width: 3,
    height: 2,
    rgb: Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90]),
  };

  it("turn a PPM into a PNG with the same pixels", () => {
    const ppm = Buffer.concat([Buffer.from("P6\n# QEMU\n3 2\n255\n"), Buffer.from(pixels.rgb)]);
    const parsed = parsePpm(ppm);
    expect(parsed).toMatchObject({ width: 3, height: 2 });
    expect([...parsePng(encodePng(parsed)).rgb]).toEqual([...pixels.rgb]);
    expect([...parseScreenshot(ppm).rgb]).toEqual([...pixels.rgb]);
  });

  it("decode every PNG row filter, and RGBA", () => {
    // Rows filtered by hand: row 0 with Sub, row 1 with Paeth, RGBA.
    const rgba = [1, 2, 3, 255, 5, 7, 9, 255, 20, 30, 40, 255, 200, 100, 50, 0, 0, 0, 0, 0, 9, 9, 9, 9];
    const stride = 12;
    const filtered: number[] = [];
    for (const [row, filter] of [
      [0, 1],
      [1, 4],
    ] as const) {
      filtered.push(filter);
      for (let i = 0; i < stride; i += 1) {
        const x = rgba[row * stride + i] ?? 0;
        const a = i >= 4 ? (rgba[row * stride + i - 4] ?? 0) : 0;
        const b = row > 0 ? (rgba[(row - 1) * stride + i] ?? 0) : 0;
        const c = row > 0 && i >= 4 ? (rgba[(row - 1) * stride + i - 4] ?? 0) : 0;
        const p = a + b - c;
        const predictor =
          filter === 1
            ? a
            : Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c)
              ? a
              : Math.abs(p - b) <= Math.abs(p - c)
                ? b
                : c;
        filtered.push((x - predictor) & 0xff);
      }
    }
    const png = pngOf(3, 2, 6, Buffer.from(filtered));
    const decoded = parsePng(png);
    expect([...decoded.rgb]).toEqual([1, 2, 3, 5, 7, 9, 20, 30, 40, 200, 100, 50, 0, 0, 0, 9, 9, 9]);
  });

  it("refuse what is not a screen: damaged chunks, a size the header does not say, bombs, other formats", () => {
    const good = encodePng(pixels);
    const damaged = Buffer.from(good);
    damaged.writeUInt8(damaged.readUInt8(damaged.length - 20) ^ 0xff, damaged.length - 20);
    expect(() => parsePng(damaged)).toThrow(/damaged|inflate/);
    expect(() => parsePng(good.subarray(0, good.length - 12))).toThrow(/ends before/);
    // A header of 2×2 over 3×2 pixels' worth of data.
    expect(() => parsePng(pngOf(2, 2, 2, Buffer.alloc(3 * 7)))).toThrow(/size its header says/);
    // 8192×8192 of zeros deflates to a few KiB; inflating stops at what the header allows.
    expect(() => parsePng(pngOf(16, 16, 2, Buffer.alloc(8192 * 8192)))).toThrow(/size its header says/);
    expect(() => parsePng(pngOf(100_000, 1, 2, Buffer.alloc(1)))).toThrow(/not a screen's/);
    expect(() => parsePpm(Buffer.from("P3\n1 1\n255\n0 0 0"))).toThrow(/P6/);
    expect(() => parsePpm(Buffer.from("P6\n1 1\n65535\n"))).toThrow(/8-bit/);
    expect(() => parsePpm(Buffer.from("P6\n2 2\n255\nabc"))).toThrow(/bytes of pixels/);
    expect(() => parseScreenshot(Buffer.from("<svg/>"))).toThrow(/P6/);
  });

  it("tell a blank screen from one with text", () => {
    expect(inkShare({ width: 2, height: 2, rgb: new Uint8Array(12) })).toBe(0);
    expect(inkShare(pixels)).toBeGreaterThan(0.5);
  });
});

/** A PNG of raw (already filtered) scanlines; colour 2 = RGB, 6 = RGBA. */
function pngOf(width: number, height: number, colour: number, scanlines: Buffer): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, colour, 0, 0, 0], 8);
  const encoded = encodePng({ width: 1, height: 1, rgb: new Uint8Array(3) });
  // Reuse encodePng's chunk framing by splicing: signature + our IHDR/IDAT + its IEND.
  return Buffer.concat([
    encoded.subarray(0, 8),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(scanlines)),
    encoded.subarray(-12),
  ]);
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k += 1) {
      crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
    }
  }
  return (crc ^ 0xffffffff) >>> 0;
}

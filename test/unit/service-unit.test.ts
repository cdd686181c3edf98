/**
 * The systemd unit `snapkeep service install` writes (its words quoted as systemd reads them), what
 * `systemctl show` says about it, and the daemon's log lines. The unit itself is checked by
 * `systemd-analyze verify` in test/integration/cli.test.ts.
 */
import { describe, expect, it } from "vitest";
import {
  environmentWord,
  parseSystemctlShow,
  renderServiceUnit,
  systemdQuote,
  UNIT_MARKER,
} from "../../core/drivers/systemd/unit.js";
import { logLine } from "../../core/cli/schedule-commands.js";
import type { SchedulerEvent } from "../../core/app/schedules/scheduler.js";
import type { Schedule } from "../../core/domain/settings.js";

describe("systemd quoting", () => {
  it("leaves plain words bare and quotes the rest so systemd reads them back as given", () => {
    expect(systemdQuote("/usr/bin/node")).toBe("/usr/bin/node");
    expect(systemdQuote("--port")).toBe("--port");
    expect(systemdQuote("/opt/my apps/snapkeep.js")).toBe('"/opt/my apps/snapkeep.js"');
    expect(systemdQuote('a"b\\c')).toBe('"a\\"b\\\\c"');
    // Specifiers and variables stay literal.
    expect(systemdQuote("/srv/100%/$HOME")).toBe('"/srv/100%%/$$HOME"');
    expect(systemdQuote("")).toBe('""');
    expect(() => systemdQuote("a\nExecStartPre=/bin/rm")).toThrow(/control character/);
  });

  it("doubles only % in Environment=, which expands no variables", () => {
    expect(environmentWord("SNAPKEEP_HOME", "/root/.config/Snap$keep 100%")).toBe(
      '"SNAPKEEP_HOME=/root/.config/Snap$keep 100%%"',
    );
    expect(() => environmentWord("SNAPKEEP_HOME", "/x\n[Service]")).toThrow(/control character/);
  });
});

describe("the unit", () => {
  const spec = {
    execStart: ["/usr/bin/node", "/opt/snapkeep/bin/snapkeep.js", "daemon"],
    user: "root",
    home: "/root/.config/Snapkeep",
    description: "Snapkeep scheduler",
  };

  it("starts with the marker, runs as the user, restarts on failure, and stays out of libvirt's way", () => {
    const unit = renderServiceUnit(spec);
    expect(unit.split("\n")[0]).toBe(UNIT_MARKER);
    expect(unit).toContain("\nUser=root\n");
    expect(unit).toContain("\nExecStart=/usr/bin/node /opt/snapkeep/bin/snapkeep.js daemon\n");
    expect(unit).toContain("\nRestart=on-failure\n");
    expect(unit).toContain("\nWantedBy=multi-user.target\n");
    // LVM writes /etc/lvm, exports stage in /var/tmp and read /dev/mapper: none of that is closed.
    expect(unit).not.toMatch(/ProtectSystem=full|ProtectSystem=strict|PrivateTmp|PrivateDevices|ProtectHome/);
    expect(unit).toContain("\nNoNewPrivileges=yes\n");
  });

  it("refuses a user name systemd would not take", () => {
    expect(() => renderServiceUnit({ ...spec, user: "root\nExecStartPre=/bin/sh" })).toThrow(
      /not a user name/,
    );
    expect(() => renderServiceUnit({ ...spec, user: "-x" })).toThrow(/not a user name/);
  });
});

describe("systemctl show", () => {
  it("reads the unit's state", () => {
    const text = [
      "LoadState=loaded",
      "ActiveState=active",
      "SubState=running",
      "MainPID=4242",
      "UnitFileState=enabled",
      "NRestarts=2",
      "ActiveEnterTimestamp=Sun 2026-12-06 08:00:00 UTC",
      "",
    ].join("\n");
    expect(parseSystemctlShow(text)).toEqual({
      loaded: true,
      active: "active",
      sub: "running",
      mainPid: 4242,
      enabled: "enabled",
      restarts: 2,
      since: "Sun 2026-12-06 08:00:00 UTC",
    });
    expect(parseSystemctlShow(text.replace("MainPID=4242", "MainPID=0")).mainPid).toBeNull();
    expect(() => parseSystemctlShow("LoadState=loaded\n")).toThrow(/systemctl show did not print/);
  });
});

describe("log lines", () => {
  const schedule = { id: "s1", host: "local", vmName: "web01" } as unknown as Schedule;
  const now = new Date("2026-12-06T08:00:00Z");
  const failed: SchedulerEvent = {
    type: "job-failed",
    job: "j7",
    schedule,
    message: "the disk is gone",
    repeated: false,
  };

  it("are words after a timestamp, or one JSON object with the job, VM and level", () => {
    expect(logLine(failed, false, now)).toMatch(/^2026-12-06T08:00:00.000Z job j7 FAILED: local\/web01/);
    const json = JSON.parse(logLine(failed, true, now)) as Record<string, unknown>;
    expect(json).toMatchObject({
      time: "2026-12-06T08:00:00.000Z",
      level: "error",
      event: "job-failed",
      job: "j7",
      host: "local",
      vm: "web01",
      schedule: "s1",
    });
    expect(String(json["message"])).toMatch(/the disk is gone/);
  });
});

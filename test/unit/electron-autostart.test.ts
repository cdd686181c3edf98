/** The XDG autostart entry: where it goes, what it says, and Exec= quoted per the Desktop Entry spec. */
import { mkdtempSync, readFileSync, rmSync, statSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  autostartCommand,
  autostartPath,
  desktopEntry,
  execValue,
  quoteExecArgument,
  setLinuxAutostart,
} from "../../electron/lib/autostart.js";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("Exec= quoting", () => {
  it("leaves plain arguments alone and quotes those with reserved characters", () => {
    expect(quoteExecArgument("/usr/bin/snapkeep")).toBe("/usr/bin/snapkeep");
    expect(quoteExecArgument("--hidden")).toBe("--hidden");
    expect(quoteExecArgument("/home/ana/Apps/Snapkeep 0.1.AppImage")).toBe(
      '"/home/ana/Apps/Snapkeep 0.1.AppImage"',
    );
    expect(quoteExecArgument("")).toBe('""');
    for (const c of ["\t", "'", ">", "<", "~", "|", "&", ";", "*", "?", "#", "(", ")"]) {
      expect(quoteExecArgument(`a${c}b`), JSON.stringify(c)).toBe(`"a${c}b"`);
    }
  });

  it("escapes the four characters that stay special inside quotes, and doubles %", () => {
    expect(quoteExecArgument('say "hi"')).toBe('"say \\"hi\\""');
    expect(quoteExecArgument("$HOME")).toBe('"\\$HOME"');
    expect(quoteExecArgument("`id`")).toBe('"\\`id\\`"');
    expect(quoteExecArgument("a\\b")).toBe('"a\\\\b"');
    expect(quoteExecArgument("100%")).toBe("100%%");
    expect(quoteExecArgument("50% off")).toBe('"50%% off"');
  });

  it("applies the string escapes to the whole value: a literal backslash becomes four", () => {
    expect(execValue(["/opt/a\\b/snapkeep", "--hidden"])).toBe('"/opt/a\\\\\\\\b/snapkeep" --hidden');
    expect(execValue(["/opt/x", "line1\nline2"])).toBe('/opt/x "line1\\nline2"');
    expect(execValue(["/home/ana/My Apps/Snapkeep.AppImage", "--hidden"])).toBe(
      '"/home/ana/My Apps/Snapkeep.AppImage" --hidden',
    );
    expect(() => execValue([])).toThrow(/needs a program/);
  });
});

describe("the autostart entry", () => {
  it("lives in $XDG_CONFIG_HOME/autostart, else ~/.config/autostart", () => {
    expect(autostartPath({ XDG_CONFIG_HOME: "/cfg" }, "/home/ana")).toBe(
      "/cfg/autostart/dev.snapkeep.app.desktop",
    );
    expect(autostartPath({ XDG_CONFIG_HOME: "" }, "/home/ana")).toBe(
      "/home/ana/.config/autostart/dev.snapkeep.app.desktop",
    );
  });

  it("starts the AppImage file itself, an installed binary, or electron with the checkout, hidden", () => {
    const packaged = {
      execPath: "/tmp/.mount_Snap/snapkeep",
      isPackaged: true,
      appPath: "/tmp/.mount_Snap/resources/app.asar",
    };
    expect(autostartCommand({ ...packaged, appImage: "/home/ana/Snapkeep.AppImage" })).toEqual([
      "/home/ana/Snapkeep.AppImage",
      "--hidden",
    ]);
    expect(
      autostartCommand({ ...packaged, execPath: "/opt/Snapkeep/snapkeep", appImage: undefined }),
    ).toEqual(["/opt/Snapkeep/snapkeep", "--hidden"]);
    expect(
      autostartCommand({
        execPath: "/repo/node_modules/electron/dist/electron",
        appImage: undefined,
        isPackaged: false,
        appPath: "/repo",
      }),
    ).toEqual(["/repo/node_modules/electron/dist/electron", "/repo", "--hidden"]);
  });

  it("is a complete Desktop Entry", () => {
    expect(desktopEntry(["/home/ana/My Apps/Snapkeep.AppImage", "--hidden"])).toBe(
      [
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.5",
        "Name=Snapkeep",
        "Comment=Keeps the snapshot schedules of your KVM/QEMU hosts running, from the system tray",
        'Exec="/home/ana/My Apps/Snapkeep.AppImage" --hidden',
        "Terminal=false",
        "X-GNOME-Autostart-enabled=true",
        "",
      ].join("\n"),
    );
  });

  it("is written whole (creating the folder) and removed when turned off", async () => {
    const config = mkdtempSync(join(tmpdir(), "snapkeep-autostart-"));
    dirs.push(config);
    const path = autostartPath({ XDG_CONFIG_HOME: config }, "/nonexistent");
    await setLinuxAutostart(path, ["/opt/Snapkeep/snapkeep", "--hidden"]);
    expect(readFileSync(path, "utf8")).toContain("Exec=/opt/Snapkeep/snapkeep --hidden\n");
    expect(statSync(path).mode & 0o777).toBe(0o644);
    expect(readdirSync(join(config, "autostart"))).toEqual(["dev.snapkeep.app.desktop"]);
    await setLinuxAutostart(path, null);
    expect(readdirSync(join(config, "autostart"))).toEqual([]);
    await setLinuxAutostart(path, null); // already off: nothing to do, no error
  });
});

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { describe, expect, it } from "vitest";

import { SnapkeepError, type HintAction } from "../../core/errors.js";
import { hintOf, toErrorView } from "../../core/domain/explain.js";
import { wordHint } from "../../core/domain/hints.js";

/** One of every action; a new kind without a sample here fails the typecheck. */
const samples: { [K in HintAction["do"]]: Extract<HintAction, { do: K }> } = {
  "list-hosts": { do: "list-hosts" },
  "add-ssh-host": { do: "add-ssh-host" },
  trust: { do: "trust", noun: "host", name: "web 01", offered: "SHA256:abc", checkWith: "ssh-keygen -lf /k" },
  "list-vms": { do: "list-vms", host: "web 01" },
  "list-snapshots": { do: "list-snapshots", host: "web01", vm: "db; rm -rf /" },
  "delete-snapshot": { do: "delete-snapshot", host: "web01", vm: "db", snapshot: "it's" },
  unpin: { do: "unpin", host: "web01", vm: "db", snapshot: "nightly $(id)" },
  "allow-stop": { do: "allow-stop" },
  "allow-power-off": { do: "allow-power-off" },
  "choose-disks": { do: "choose-disks", disks: ["vda", "vdc"] },
  "choose-filesystem": {
    do: "choose-filesystem",
    filesystems: [
      { device: "/dev/sda1", type: "xfs" },
      { device: "/dev/guestvg/data", type: "ext4" },
    ],
  },
  "free-vg-or-fewer-disks": { do: "free-vg-or-fewer-disks", vg: "vg0" },
  "list-targets": { do: "list-targets" },
  "mount-or-create-folder": { do: "mount-or-create-folder", target: "usb" },
  "list-exports": { do: "list-exports", target: "nas" },
  "prune-exports": { do: "prune-exports" },
  "restore-elsewhere": { do: "restore-elsewhere", nameToo: true },
  "list-schedules": { do: "list-schedules" },
  "remove-schedule": { do: "remove-schedule", id: "a1b2c3d4" },
  "check-jobs": { do: "check-jobs" },
  "list-library": { do: "list-library", kind: "template", host: "web01" },
  "detach-volume": { do: "detach-volume", host: "web01", name: "data" },
  "make-instead": {
    do: "make-instead",
    kind: "volume",
    host: "web01",
    vm: "db",
    snapshot: "nightly",
    disk: "vdb",
    name: "data",
  },
};

describe("hints in each front end's words", () => {
  it.each(Object.values(samples))("the UI never names a command or a flag: $do", (action) => {
    const words = wordHint(action, "ui");
    expect(words).not.toMatch(/(^|\s)--[a-z]/);
    expect(words).not.toMatch(/\bsnapkeep [a-z]/);
    expect(words).toMatch(/[.]$/);
  });

  it("the UI says the README's words (Words): the library, not a copy-out", () => {
    expect(wordHint(samples["list-library"], "ui")).toBe("See the templates of web01 under Library.");
    expect(wordHint(samples["make-instead"], "ui")).toMatch(
      / to the library as a (volume|template) instead\.$/,
    );
  });

  it("the CLI names the command, with every name quoted for a shell", () => {
    expect(wordHint(samples.trust, "cli")).toBe(
      "Check it on the machine with `ssh-keygen -lf /k`, then run `snapkeep host trust 'web 01' SHA256:abc`.",
    );
    expect(wordHint(samples.unpin, "cli")).toBe(
      "Unpin it first: snapkeep snapshot unpin web01/db 'nightly $(id)'",
    );
    expect(wordHint(samples["list-snapshots"], "cli")).toBe(
      "List them with: snapkeep snapshot list 'web01/db; rm -rf /'",
    );
    expect(wordHint(samples["allow-stop"], "cli")).toContain("--yes");
    expect(wordHint(samples["allow-power-off"], "cli")).toContain("--force");
    expect(wordHint(samples["choose-disks"], "cli")).toBe("Choose the other disks with --disk vda,vdc");
  });

  it("a changed key is a warning before it is an instruction, in both", () => {
    const changed: HintAction = {
      do: "trust",
      noun: "target",
      name: "nas",
      offered: "SHA256:new",
      changed: true,
    };
    for (const audience of ["cli", "ui"] as const) {
      expect(wordHint(changed, audience)).toMatch(/^This can mean someone is intercepting the connection\./);
    }
    expect(wordHint(changed, "ui")).toContain("Settings → Export targets");
  });

  it("an error view carries the action and the words of the front end that shows it", () => {
    const error = new SnapkeepError("VM_RUNNING", "db is running.", { action: { do: "allow-stop" } });
    expect(toErrorView(error)).toEqual({
      code: "VM_RUNNING",
      message: "db is running.",
      hint: "Allow stopping the VM to shut it down, revert, and start it again.",
      action: { do: "allow-stop" },
    });
    expect(toErrorView(error, "cli").hint).toBe(
      "Run again with --yes to shut it down, revert, and start it again.",
    );
    const plain = new SnapkeepError("NO_SPACE", "Full.", { hint: "Free space there." });
    expect(hintOf(plain, "ui")).toBe("Free space there.");
    expect(hintOf(plain, "cli")).toBe("Free space there.");
  });
});

describe("hints below the front doors", () => {
  it("name no Snapkeep command or flag: those are actions, worded by each front end", () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) {
          // The CLI and `snapkeep serve` speak to the terminal that started them.
          if (!["core/cli", "core/server"].includes(path)) {
            walk(path);
          }
        } else if (path.endsWith(".ts") && path !== "core/domain/hints.ts") {
          const lines = readFileSync(path, "utf8").split("\n");
          lines.forEach((line, index) => {
            const hint = /\bhint:/.test(line) ? lines.slice(index, index + 3).join(" ") : "";
            if (
              /snapkeep [a-z]|\s--(yes|force|disk|dir|name|into|to|target|host|keep|dry-run)\b/.test(hint)
            ) {
              offenders.push(`${path}:${index + 1}`);
            }
          });
        }
      }
    };
    walk("core");
    expect(offenders).toEqual([]);
  });
});

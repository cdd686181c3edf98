/**
 * `snapkeep doctor [HOST]`: every configured host (or the one named) checked as the README's
 * prerequisites describe, one line per check and what to do when it is not ok. Exit 1 when
 * anything failed, so a script or a monitor can run it.
 */
import type { Command } from "commander";

import { diagnoseHost, type HostDiagnosis } from "../app/doctor.js";
import { SNAPKEEP_VERSION } from "../app/exports/exports.js";
import type { CliContext } from "./main.js";

const MARK = { ok: "ok  ", warn: "WARN", fail: "FAIL" } as const;

export function registerDoctorCommand(
  program: Command,
  context: () => CliContext,
  print: (value: unknown, json: boolean | undefined, human: () => string) => void,
): void {
  program
    .command("doctor [host]")
    .description(
      "check hosts for what Snapkeep needs (virsh, libvirt access, qemu-img, rsync, KVM, space, clock)",
    )
    .option("--json", "machine-readable output")
    .action(async (name: string | undefined, opts: { json?: boolean }) => {
      const hosts = context().hosts;
      const names = name === undefined ? hosts.list().map((h) => h.name) : [name];
      const results: HostDiagnosis[] = [];
      for (const host of names) {
        results.push(await diagnoseHost(hosts, host));
      }
      const failed = results.some((r) => r.checks.some((c) => c.state === "fail"));
      print(
        { version: SNAPKEEP_VERSION, node: process.version, hosts: results, ok: !failed },
        opts.json,
        () => doctorText(results, failed),
      );
      if (failed) {
        process.exitCode = 1;
      }
    });
}

function doctorText(results: readonly HostDiagnosis[], failed: boolean): string {
  const lines = [`Snapkeep ${SNAPKEEP_VERSION} on Node.js ${process.version}`];
  for (const r of results) {
    lines.push("", `${r.host} (${r.uri}):`);
    for (const c of r.checks) {
      lines.push(`  ${MARK[c.state]}  ${c.title}: ${c.detail}`);
      if (c.fix !== undefined && c.state !== "ok") {
        lines.push(`        ${c.fix}`);
      }
    }
  }
  lines.push(
    "",
    failed ? "Something Snapkeep needs is missing: see FAIL above." : "Everything Snapkeep needs is there.",
  );
  return `${lines.join("\n")}\n`;
}

import { join } from "node:path";
import type { Command } from "commander";

import { SnapkeepError } from "../errors.js";
import type { DrillOutcome } from "../app/drill.js";
import { drillsOf, type DrillRecord } from "../domain/drill.js";
import { parseDuration } from "../domain/schedule/pause.js";
import { displayName, formatBytes, formatTime, table } from "./format.js";
import { journaled } from "./journaled.js";
import type { CliContext, CliIo } from "./main.js";
import { splitVmRef } from "./refs.js";

type Print = (value: unknown, json: boolean | undefined, human: () => string) => void;

interface DrillOptions {
  export?: string;
  to?: string;
  dir?: string;
  timeout?: string;
  check?: string;
  expect?: string;
  dryRun?: boolean;
  json?: boolean;
}

/** `drill`: boot a snapshot or an export in a throwaway VM on an isolated network (issue 19). */
export function registerDrillCommands(
  program: Command,
  io: CliIo,
  context: () => CliContext,
  print: Print,
): void {
  const drill = program
    .command("drill")
    .description(
      "prove a backup boots: restore it into a throwaway VM on an isolated network, wait for its guest agent",
    )
    .argument("<host/vm>", "the VM whose backup is drilled")
    .argument("[snapshot-or-export]", "a snapshot of the VM, or with --export the export's id")
    .option("--export <target>", "drill an export on this target (its id is the second argument)")
    .option("--to <host>", "run the throwaway VM on this host (exports only; default: the VM's host)")
    .option(
      "--dir <path>",
      "the folder for the drill's images on that host (default /var/lib/libvirt/images)",
    )
    .option("--timeout <duration>", "how long to wait for the guest agent, e.g. 10m", "10m")
    .option(
      "--check <command>",
      "a command the guest agent runs once it answers (words split at spaces, no shell)",
    )
    .option("--expect <text>", "what the check must print (trimmed), besides exiting 0")
    .option("--dry-run", "only plan: where it would run, the room it needs, what the VM would not get")
    .option("--json", "machine-readable output")
    .action((ref: string, which: string | undefined, opts: DrillOptions) =>
      runDrill(io, context(), print, ref, which, opts),
    );
  drill
    .command("list")
    .description("the drills run so far, newest first")
    .argument("[host/vm]", "only this VM's")
    .option("--json", "machine-readable output")
    .action((ref: string | undefined, _opts: unknown, command: Command) => {
      // `drill` has its own --json: commander gives the flag to it wherever it stands.
      const opts = command.optsWithGlobals<{ json?: boolean }>();
      const all = [...context().drills.list()].reverse();
      const records =
        ref === undefined
          ? all
          : (() => {
              const [host, name] = splitVmRef(ref);
              return drillsOf(all, { host, name });
            })();
      print(records, opts.json, () => formatRecords(records));
    });
}

async function runDrill(
  io: CliIo,
  core: CliContext,
  print: Print,
  ref: string,
  which: string | undefined,
  opts: DrillOptions,
): Promise<void> {
  const [host, vm] = splitVmRef(ref);
  if (which === undefined) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "Say what to drill: a snapshot of the VM, or --export TARGET ID.",
    );
  }
  if (opts.expect !== undefined && opts.check === undefined) {
    throw new SnapkeepError("INVALID_INPUT", "--expect needs --check: the command whose output it is.");
  }
  const argv = opts.check
    ?.trim()
    .split(/\s+/)
    .filter((w) => w !== "");
  if (argv !== undefined && argv.length === 0) {
    throw new SnapkeepError("INVALID_INPUT", "--check is empty: give the command to run in the guest.");
  }
  const request = {
    host,
    vm,
    ...(opts.export === undefined ? { snapshot: which } : { export: { target: opts.export, id: which } }),
    to: opts.to,
    dir: opts.dir,
    timeoutMs: parseDuration(opts.timeout ?? "10m"),
    check: argv === undefined ? undefined : { argv, expect: opts.expect },
    dryRun: opts.dryRun === true,
    // Steps on stderr: stdout stays the result.
    onStep: (step: string) => {
      if (opts.json !== true) {
        io.err(`${step}…\n`);
      }
    },
  };
  // A drill that ran and failed is a failed job in the journal (never "succeeded"); its report
  // is printed all the same.
  let failed: DrillOutcome | null = null;
  const run = async (): Promise<DrillOutcome> => {
    const done = await core.drills.run(request);
    if (done.record !== null && !done.record.passed) {
      failed = done;
      throw new SnapkeepError("VERIFY_FAILED", done.record.reason ?? "The restored VM did not come back.");
    }
    return done;
  };
  let outcome: DrillOutcome;
  try {
    outcome =
      opts.dryRun === true
        ? await run()
        : await journaled(core.home, { kind: "drill", title: `Restore drill of ${vm}`, host, vm }, run);
  } catch (error) {
    if (failed === null) {
      throw error;
    }
    outcome = failed;
  }
  print(outcome, opts.json, () => describeOutcome(outcome, core.home));
  if (outcome.record !== null && !outcome.record.passed) {
    process.exitCode = 1;
  }
}

function sourceWords(record: Pick<DrillRecord, "source">): string {
  return record.source.kind === "snapshot"
    ? `snapshot ${displayName(record.source.snapshot)}`
    : `export ${record.source.export} on ${record.source.target}`;
}

function describeOutcome(outcome: DrillOutcome, home: string): string {
  const { plan, record } = outcome;
  const lines: string[] = [];
  if (record === null) {
    lines.push(
      `Would drill ${sourceWords(plan)} of ${displayName(plan.vm)} on ${plan.on}: ${String(plan.disks.length)} disk${plan.disks.length === 1 ? "" : "s"} (${formatBytes(plan.bytes)} at most, ${formatBytes(plan.freeBytes)} free), ${String(plan.memoryMiB)} MiB of memory (${String(plan.availableMiB)} MiB available), on an isolated network, waiting ${String(plan.timeoutSeconds)} s at most for the guest agent.`,
    );
  } else if (record.passed) {
    lines.push(
      `Passed: ${sourceWords(record)} of ${displayName(record.vm)} booted on ${record.on} and its guest agent answered ${String(record.bootSeconds)} s after the start.`,
    );
  } else {
    lines.push(
      `FAILED: ${sourceWords(record)} of ${displayName(record.vm)} on ${record.on}. ${record.reason ?? ""}`,
    );
  }
  if (record !== null && record.check !== null) {
    const { check } = record;
    lines.push(
      `Check ${check.argv.join(" ")}: exit ${check.exitCode === null ? "none" : String(check.exitCode)}${check.expected === null ? "" : `, expected ${JSON.stringify(check.expected.trim())}`}; it printed:`,
      ...check.output
        .trimEnd()
        .split("\n")
        .map((l) => `  ${displayName(l)}`),
    );
  }
  if (record?.screenshot === true) {
    lines.push(`Screenshot: ${join(home, "drills", `${record.id}.png`)}`);
  }
  if (plan.dropped.length > 0) {
    lines.push(
      `The throwaway VM did not get: ${plan.dropped.map((d) => `${d.what} (${d.why})`).join("; ")}.`,
    );
  }
  lines.push(...outcome.notes);
  for (const left of outcome.leftovers) {
    lines.push(`Not removed: ${left}; the next drill on ${plan.on} removes it.`);
  }
  return `${lines.join("\n")}\n`;
}

function formatRecords(records: readonly DrillRecord[]): string {
  if (records.length === 0) {
    return "No drills yet. Try: snapkeep drill HOST/VM SNAPSHOT\n";
  }
  return table(
    ["WHEN", "VM", "FROM", "RESULT", "BOOT"],
    records.map((r) => [
      formatTime(r.finishedAt),
      `${r.host}/${displayName(r.vm)}`,
      sourceWords(r),
      r.passed ? "passed" : `failed: ${r.reason ?? ""}`,
      r.bootSeconds === null ? "-" : `${String(r.bootSeconds)} s`,
    ]),
  );
}

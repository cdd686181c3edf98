import { z } from "zod";

/**
 * A restore drill: a snapshot or an export restored into a throwaway VM on an isolated network,
 * booted, and judged by its guest agent (and optionally a command run in the guest). The record is
 * what the overview's "last proven restorable" and the timeline show; the screenshot beside it
 * (`drills/<id>.png` in Snapkeep's home) is the evidence.
 */

/** Records kept in the settings file, newest last; older ones (and their screenshots) go. */
export const MAX_DRILL_RECORDS = 200;
/** Bytes of a check command's output kept in the record (the rest is cut, and said to be). */
export const MAX_CHECK_OUTPUT = 4096;

export const drillSourceSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("snapshot"), snapshot: z.string().max(512) }),
  z.object({ kind: z.literal("export"), target: z.string().max(128), export: z.string().max(128) }),
]);

export const drillRecordSchema = z.object({
  /** 12 hex digits: names the throwaway VM, its network and its folder on the host. */
  id: z.string().regex(/^[0-9a-f]{12}$/),
  host: z.string().max(128),
  vm: z.string().max(256),
  /** The VM's UUID when it was known: a VM renamed later keeps its drills. */
  vmUuid: z.string().max(64).nullable(),
  source: drillSourceSchema,
  /** The host the throwaway VM ran on. */
  on: z.string().max(128),
  startedAt: z.string(),
  finishedAt: z.string(),
  passed: z.boolean(),
  /** Why it failed, in a sentence; null when it passed. */
  reason: z.string().max(4000).nullable(),
  /** From the VM's start to the agent's first answer: the measured time to recover. */
  bootSeconds: z.number().min(0).nullable(),
  check: z
    .object({
      argv: z.array(z.string().max(4096)).min(1).max(64),
      exitCode: z.number().int().nullable(),
      output: z.string().max(MAX_CHECK_OUTPUT + 64),
      expected: z.string().max(MAX_CHECK_OUTPUT).nullable(),
    })
    .nullable(),
  /** Whether a console screenshot was taken (drills/<id>.png). */
  screenshot: z.boolean(),
});

export type DrillSource = z.infer<typeof drillSourceSchema>;
export type DrillRecord = z.infer<typeof drillRecordSchema>;

/** The drill records of one VM, newest first (by UUID when both know it, else by host and name). */
export function drillsOf(
  records: readonly DrillRecord[],
  vm: { readonly host: string; readonly name: string; readonly uuid?: string | null },
): DrillRecord[] {
  return records
    .filter((r) =>
      r.vmUuid !== null && vm.uuid !== undefined && vm.uuid !== null
        ? r.vmUuid === vm.uuid && r.host === vm.host
        : r.host === vm.host && r.vm === vm.name,
    )
    .sort((a, b) => b.finishedAt.localeCompare(a.finishedAt));
}

/** What the overview says about a VM's restores: the newest pass, and whether a newer drill failed. */
export interface DrillStanding {
  readonly lastPassed: DrillRecord | null;
  /** The newest drill, when it failed (a failure after the last pass is what needs attention). */
  readonly failing: DrillRecord | null;
}

export function drillStanding(records: readonly DrillRecord[]): DrillStanding {
  const newest = records[0] ?? null;
  return {
    lastPassed: records.find((r) => r.passed) ?? null,
    failing: newest !== null && !newest.passed ? newest : null,
  };
}

/** What the VM list says about a VM's drills (ListedVm.drill). */
export interface DrillSummary {
  /** When a drill last proved it restorable, and how long its boot took then. */
  readonly lastPassedAt: string | null;
  readonly bootSeconds: number | null;
  /** The newest drill, when it failed: when, and why. */
  readonly failedAt: string | null;
  readonly failure: string | null;
}

export function drillSummary(records: readonly DrillRecord[]): DrillSummary {
  const { lastPassed, failing } = drillStanding(records);
  return {
    lastPassedAt: lastPassed?.finishedAt ?? null,
    bootSeconds: lastPassed?.bootSeconds ?? null,
    failedAt: failing?.finishedAt ?? null,
    failure: failing?.reason ?? null,
  };
}

/**
 * Whether a schedule's landed copy is drilled: when the VM was never drilled, its newest drill is
 * `everyDays` old or more, or its newest drill failed (then every landed copy is tried until one
 * boots). `records` newest first, as drillsOf gives them.
 */
export function drillDue(records: readonly DrillRecord[], everyDays: number, now: Date): boolean {
  const newest = records[0];
  if (newest === undefined || !newest.passed) {
    return true;
  }
  // A little slack: a weekly drill after a copy at 02:00 is not pushed to the next week by a
  // drill that finished at 02:05 seven days before.
  return now.getTime() - Date.parse(newest.finishedAt) >= everyDays * 86_400_000 - 3_600_000;
}

/** The records to keep after adding one: at most MAX_DRILL_RECORDS, the oldest dropped first. */
export function keepDrills(
  records: readonly DrillRecord[],
  added: DrillRecord,
): {
  readonly kept: DrillRecord[];
  readonly dropped: DrillRecord[];
} {
  const all = [...records.filter((r) => r.id !== added.id), added];
  const excess = Math.max(0, all.length - MAX_DRILL_RECORDS);
  return { kept: all.slice(excess), dropped: all.slice(0, excess) };
}

/** Cuts a check's output to what a record keeps. */
export function keptOutput(output: string): string {
  return output.length <= MAX_CHECK_OUTPUT
    ? output
    : `${output.slice(0, MAX_CHECK_OUTPUT)}\n… (${output.length - MAX_CHECK_OUTPUT} more characters)`;
}

/** A check passes when the command exits 0 and, when an output is expected, prints exactly it (trimmed). */
export function checkPassed(check: {
  exitCode: number | null;
  output: string;
  expected: string | null;
}): boolean {
  return check.exitCode === 0 && (check.expected === null || check.output.trim() === check.expected.trim());
}

/** The name of a drill's throwaway VM and its isolated network. */
export function drillName(id: string): string {
  return `snapkeep-drill-${id}`;
}

export const DRILL_NAME = /^snapkeep-drill-([0-9a-f]{12})$/;

/**
 * Unfinished exports that nothing will finish. An interrupted export stays `.partial` on its target
 * so that running it again resumes it; but a schedule's next copy exports a newer snapshot, so once
 * a newer export of the VM is verified the old attempt is never resumed. It still holds up to a
 * disk's worth of space, and retention keeps the export it was built on ("base of …") for as long
 * as it stays. Retention removes such attempts (`exports prune` those made by hand, a schedule's
 * retention on the target those of its own copies: the job record names the schedule) when
 * nothing has written to them for a while, and never one this process is exporting to now.
 *
 * The quiet time is at least an hour: an export that converts before it sends (the compressed
 * engine) claims its folder and may then not write there for as long as the conversion takes.
 */
import { describeError } from "../../errors.js";
import { supersededPartials, type SweptExport } from "../../domain/plans/export-plan.js";
import type { Target } from "../../domain/settings.js";
import type { ExportEntry } from "../../drivers/bundle/bundle.js";
import { parseSweep, sweepArgs, type SweepAnswer } from "../../drivers/sh/target-scripts.js";
import type { RemoteFs } from "../../infra/remote-fs.js";
import { QUICK_MS } from "./steps/context.js";

/** Untouched this long, an unfinished export is taken as abandoned (a running copy writes all along). */
export const DEFAULT_ABANDONED_QUIET_MS = 24 * 3600_000;
const MIN_QUIET_MS = 3600_000;

export interface AbandonedExport {
  readonly folder: string;
  /** Why it goes, in words. */
  readonly reason: string;
}

export interface Swept {
  /** Removed (or, in a dry run, to be removed). */
  readonly removed: AbandonedExport[];
  /** Abandoned, but left where they are: the target could not check or remove them, and why. */
  readonly kept: AbandonedExport[];
  /** The entries that stay, for the rest of the retention to plan with. */
  readonly rest: ExportEntry[];
}

/**
 * Removes (or, in a dry run, names) the VM's unfinished exports that a newer verified one
 * supersedes and nothing wrote to within `quietMs`. Never fails the retention it is part of: a
 * target that cannot answer or remove leaves them where they are, with the reason.
 */
export async function sweepAbandoned(
  fs: RemoteFs,
  target: Target,
  entries: readonly ExportEntry[],
  options: {
    readonly vmUuid?: string | undefined;
    /** Whose attempts: a schedule's (its id), or those made by hand (null). */
    readonly scheduleId: string | null;
    /** VMs this process is exporting to the target right now: their attempts are left alone. */
    readonly exporting: ReadonlySet<string>;
    readonly quietMs: number;
    readonly dryRun: boolean;
  },
): Promise<Swept> {
  const candidates = supersededPartials(entries.map(sweptView)).filter(
    (c) =>
      (options.vmUuid === undefined || c.export.vmUuid === options.vmUuid) &&
      !options.exporting.has(c.export.vmUuid) &&
      (c.export.entry.job?.scheduleId ?? null) === options.scheduleId,
  );
  if (candidates.length === 0) {
    return { removed: [], kept: [], rest: [...entries] };
  }
  const minutes = Math.ceil(Math.max(MIN_QUIET_MS, options.quietMs) / 60_000);
  const folders = candidates.map((c) => ({
    vmFolder: c.export.vmFolder,
    name: c.export.entry.folder.slice(c.export.vmFolder.length + 1),
  }));
  const answer = await fs
    .run(sweepArgs(target.path, minutes, options.dryRun ? "check" : "remove", folders), {
      // A removal deletes up to a disk image per folder.
      timeoutMs: QUICK_MS * (5 + candidates.length),
    })
    .catch((error: unknown) => ({ code: 1, stdout: "", stderr: describeError(error) }));
  let words: SweepAnswer[];
  try {
    // Words printed before a failure stand: each folder's is printed once it is done.
    words = parseSweep(answer.stdout, candidates.length, fs.label);
  } catch {
    words = [];
  }
  const why = answer.stderr.trim().split("\n").at(-1) || "the target did not say why";
  const removed: AbandonedExport[] = [];
  const kept: AbandonedExport[] = [];
  const gone = new Set<string>();
  for (const [i, c] of candidates.entries()) {
    const word = words[i];
    const folder = c.export.entry.folder;
    if (word === "quiet" || word === "removed") {
      gone.add(folder);
      removed.push({
        folder,
        reason: `unfinished since ${startedAt(c.export.startedAt)}, superseded by ${c.by.id}, nothing written to it for ${describeQuiet(minutes)}`,
      });
    } else if (word === "failed") {
      kept.push({ folder, reason: `it could not be removed: ${why}` });
    } else if (word === undefined) {
      kept.push({ folder, reason: `it could not be checked: ${why}` });
    }
  }
  return { removed, kept, rest: entries.filter((e) => !gone.has(e.folder)) };
}

type Viewed = SweptExport & { readonly entry: ExportEntry };

function sweptView(entry: ExportEntry): Viewed {
  const partial = entry.state === "partial";
  return {
    entry,
    id: entry.id,
    vmFolder: entry.vmFolder,
    vmUuid: entry.vmUuid,
    state: entry.state,
    startedAt: entry.createdAt,
    snapshotAt:
      (partial ? entry.job?.snapshotCreatedAt : entry.manifest?.source.snapshot.createdAt) ?? entry.createdAt,
    disks: (partial ? entry.job?.disks : entry.manifest?.disks.map((d) => d.target)) ?? [],
    ours: entry.job !== null,
  };
}

/** The job record's start, from the target: shown only when it is the timestamp Snapkeep wrote. */
function startedAt(text: string): string {
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(text)
    ? `${text.slice(0, 16).replace("T", " ")} UTC`
    : "an unrecorded time";
}

function describeQuiet(minutes: number): string {
  return minutes % 60 === 0 ? `${minutes / 60} h` : `${minutes} min`;
}

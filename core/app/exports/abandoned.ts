/**
 * Unfinished exports that nothing will finish. An interrupted export stays `.partial` on its target
 * so that running it again resumes it; but a schedule's next copy exports a newer snapshot, so once
 * a newer export of the VM is verified the old attempt is never resumed. It still holds up to a
 * disk's worth of space, and retention keeps the export it was built on ("base of …") for as long
 * as it stays. Retention removes such attempts when nothing has written to them for a while (an
 * export of the same VM may be running right now): `exports prune` those made by hand, a
 * schedule's retention on the target those of its own copies (the job record names the schedule).
 */
import { supersededPartials } from "../../domain/plans/export-plan.js";
import type { Target } from "../../domain/settings.js";
import type { ExportEntry } from "../../drivers/bundle/bundle.js";
import { parseQuiet, quietArgs } from "../../drivers/sh/target-scripts.js";
import { removeExportFolder, type RemoteFs } from "../../infra/remote-fs.js";

/** Untouched this long, an unfinished export is taken as abandoned (a running copy writes all along). */
export const DEFAULT_ABANDONED_QUIET_MS = 24 * 3600_000;

export interface AbandonedExport {
  readonly folder: string;
  /** Why it goes, in words. */
  readonly reason: string;
}

/**
 * Removes (or, in a dry run, names) the VM's unfinished exports that a newer verified one
 * supersedes and nothing wrote to within `quietMs`; returns them and the entries that stay.
 */
export async function sweepAbandoned(
  fs: RemoteFs,
  target: Target,
  entries: readonly ExportEntry[],
  options: {
    readonly vmUuid?: string | undefined;
    /** Whose attempts: a schedule's (its id), or those made by hand (null). */
    readonly scheduleId: string | null;
    readonly quietMs: number;
    readonly dryRun: boolean;
  },
): Promise<{ removed: AbandonedExport[]; rest: ExportEntry[] }> {
  const candidates = supersededPartials(entries).filter(
    (c) =>
      (options.vmUuid === undefined || c.export.vmUuid === options.vmUuid) &&
      (c.export.job?.scheduleId ?? null) === options.scheduleId,
  );
  if (candidates.length === 0) {
    return { removed: [], rest: [...entries] };
  }
  const minutes = Math.ceil(options.quietMs / 60_000);
  const quiet =
    minutes <= 0 ? candidates.map(() => true) : await quietFolders(fs, target, minutes, candidates);
  const removed: AbandonedExport[] = [];
  const gone = new Set<string>();
  for (const [i, c] of candidates.entries()) {
    if (quiet[i] !== true) {
      continue;
    }
    const entry = c.export;
    if (!options.dryRun) {
      await removeExportFolder(
        fs,
        target.path,
        entry.vmFolder,
        entry.folder.slice(entry.vmFolder.length + 1),
      );
    }
    gone.add(entry.folder);
    removed.push({
      folder: entry.folder,
      reason: `unfinished since ${startedAt(entry.createdAt)}, superseded by ${c.by.id}${minutes <= 0 ? "" : `, nothing written to it for ${describeQuiet(minutes)}`}`,
    });
  }
  return { removed, rest: entries.filter((e) => !gone.has(e.folder)) };
}

/** For each candidate, whether nothing wrote to it within `minutes`; none when the check fails. */
async function quietFolders(
  fs: RemoteFs,
  target: Target,
  minutes: number,
  candidates: readonly { readonly export: ExportEntry }[],
): Promise<boolean[]> {
  const answer = await fs.run(
    quietArgs(
      target.path,
      minutes,
      candidates.map((c) => c.export.folder),
    ),
  );
  // Retention goes on without the sweep: what stays is only space, never a broken export.
  return answer.code === 0
    ? parseQuiet(answer.stdout, candidates.length, fs.label)
    : candidates.map(() => false);
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

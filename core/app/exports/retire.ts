/**
 * Removing exports from a target without breaking the ones that stay (issue 16): what retention or
 * the person removes is first merged into every kept export built on it (merge.ts), then deleted.
 * What an unverified or unfinished export rests on is held instead, with the reason, as a merge
 * starts only from data known to be good. Shared by `exports prune`, `exports remove` and a
 * schedule's retention on its target.
 */
import { SnapkeepError, describeError, isSnapkeepError } from "../../errors.js";
import { planMerges } from "../../domain/plans/merge-plan.js";
import type { ExportEntry } from "../../drivers/bundle/bundle.js";
import { removeExportFolder } from "../../infra/remote-fs.js";
import { mergeExport, type MergeContext } from "./merge.js";

export interface Retired {
  readonly removed: readonly ExportEntry[];
  readonly held: readonly { readonly folder: string; readonly reason: string }[];
  /** Kept exports that took the data of removed ones below them (planned only, in a dry run). */
  readonly merged: readonly MergeReport[];
}

export interface MergeReport {
  readonly into: string;
  readonly from: readonly string[];
  /** Bytes the merged images took on the target; null in a dry run. */
  readonly bytesWritten: number | null;
}

/**
 * Merges, then removes (oldest first). A merge that fails keeps the exports it needed (every
 * export stays restorable, and the next prune tries again); the rest is removed, then the failure
 * is raised naming what stayed.
 */
export async function retireExports(
  ctx: MergeContext,
  all: readonly ExportEntry[],
  unwanted: readonly ExportEntry[],
  options: { readonly dryRun: boolean; readonly onRemoved?: (entry: ExportEntry) => void },
): Promise<Retired> {
  const decision = planMerges(all, unwanted);
  const held = decision.held.map((h) => ({ folder: h.export.folder, reason: h.reason }));
  if (options.dryRun) {
    return {
      removed: decision.remove,
      held,
      merged: decision.merges.map((m) => ({
        into: m.into.folder,
        from: [...new Set(m.disks.flatMap((d) => d.merged.map((e) => e.id)))],
        bytesWritten: null,
      })),
    };
  }
  const merged: MergeReport[] = [];
  // A merge that fails keeps what it needed (and says why at the end); the others go on, so one
  // export that cannot be merged does not stop retention for every VM on the target.
  const failed = new Map<string, string>();
  for (const step of decision.merges) {
    try {
      merged.push(await mergeExport(ctx, step));
    } catch (error) {
      if (isSnapkeepError(error, "CANCELLED")) {
        throw error;
      }
      for (const link of step.disks.flatMap((d) => d.merged)) {
        failed.set(link.folder, `merging it into ${step.into.id} failed: ${describeError(error)}`);
      }
    }
  }
  const removed: ExportEntry[] = [];
  for (const entry of decision.remove.filter((e) => !failed.has(e.folder))) {
    await removeExportFolder(
      ctx.fs,
      ctx.target.path,
      entry.vmFolder,
      entry.folder.slice(entry.vmFolder.length + 1),
    );
    options.onRemoved?.(entry);
    removed.push(entry);
  }
  if (failed.size > 0) {
    const [first] = failed.values();
    throw new SnapkeepError(
      "VERIFY_FAILED",
      `${failed.size === 1 ? "An export stays" : `${failed.size} exports stay`} on ${ctx.target.name}, as ${first ?? ""}${failed.size > 1 ? " (and more)" : ""}.`,
      {
        hint: "Verify the exports with every export below them; the rest of the retention was applied.",
        details: { removed: removed.map((e) => e.folder), kept: [...failed.keys()] },
      },
    );
  }
  return { removed, held, merged };
}

/**
 * The one typed API the UI talks to, whatever carries it (Electron IPC, the WebSocket of
 * `snapkeep serve`). Every call is a method name and parameters, validated (contract.ts) before
 * anything runs; the answer is plain JSON, of the type the contract gives the method. Errors
 * travel as { code, message, hint } so the UI can show the same sentences the CLI prints. Work that
 * takes minutes (exports, restores, library copies) starts a job and answers at once; the job's
 * progress arrives as events.
 */
import { hostname } from "node:os";
import { z } from "zod";

import { oldestRestorePoint, spaceUsed } from "../domain/space.js";
import { parseSnapshotTag } from "../domain/snapshot-tag.js";
import { SnapkeepError } from "../errors.js";
import { invalidParams, sentenceErrorMap, toErrorView } from "../domain/explain.js";
import { wordHint } from "../domain/hints.js";
import { restoreExport } from "../app/exports/restore.js";
import { labUp } from "../app/lab/lab.js";
import { LocalRunner } from "../infra/runner/local.js";
import { JobJournal } from "./journal-jobs.js";
import { schedulerOwner } from "../infra/scheduler-lock.js";
import { nextSlots } from "../domain/schedule/spec.js";
import type { CoreContext } from "../app/context.js";
import type { Drills } from "../app/drill.js";
import type { Files } from "../app/files.js";
import { drillsOf, drillSummary } from "../domain/drill.js";
import { describeDamage } from "../drivers/bundle/chunks.js";
import { Jobs } from "./jobs.js";
import {
  methods,
  type ApiError,
  type ApiEvent,
  type JobProgress,
  type RevertProgress,
  type Method,
  type Params,
  type Result,
  type SchedulerRunner,
} from "./contract.js";

export { methods, type ApiError, type ApiEvent, type Method, type Params, type Result } from "./contract.js";

/** A request as it arrives on a transport: validated before it is trusted. */
export const requestSchema = z.object({
  id: z.number().int().min(0),
  method: z.string().max(64),
  params: z.unknown().optional(),
});

export type Response = { id: number; result: unknown } | { id: number; error: ApiError };

export interface ApiContext extends Pick<
  CoreContext,
  "hosts" | "vms" | "snapshots" | "revert" | "targets" | "schedules" | "exports" | "library"
> {
  /** The state folder, for the scheduler's job journal; without it the jobs list shows UI jobs only. */
  readonly home?: string;
  /** File browsing (issue 19); without it the files.* methods say it is not available here. */
  readonly files?: Files;
  /** Restore drills (issue 19); without them no VM shows a drill. */
  readonly drills?: Drills;
  readonly now?: () => Date;
}

/** Where a `files.download` ticket is redeemed, on the page's own origin. */
export const DOWNLOAD_PREFIX = "/download/";

function filesOf(context: ApiContext): Files {
  if (context.files === undefined) {
    throw new SnapkeepError("INVALID_INPUT", "Browsing files is not available here.");
  }
  return context.files;
}

/** One handler per method, answering the contract's result type for it. */
type Handlers = { [M in Method]: (params: Params<M>) => Result<M> | Promise<Result<M>> };

export class Api {
  readonly #listeners = new Set<(event: ApiEvent) => void>();
  readonly #jobs: Jobs;
  readonly #handlers: Handlers;
  readonly #files: Files | undefined;

  constructor(context: ApiContext) {
    const now = context.now ?? ((): Date => new Date());
    this.#files = context.files;
    // The UI's jobs go into the same journal as the scheduler's: one history, crash-safe.
    const journal = context.home === undefined ? null : new JobJournal(context.home);
    this.#jobs = new Jobs({
      now,
      clock: () => performance.now(),
      onChange: (job) => {
        journal?.record(job);
        this.#emit({ event: "job", data: job });
      },
      log: (id, line) => journal?.log(id, line),
    });
    this.#handlers = handlers(
      context,
      now,
      this.#jobs,
      journal,
      (host, vm) => this.#emit({ event: "changed", data: vm === undefined ? { host } : { host, vm } }),
      (host, vmUuid, progress) => this.#emit({ event: "revert", data: { host, vmUuid, progress } }),
    );
  }

  onEvent(listener: (event: ApiEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Handles one raw message from a transport; never throws. */
  async handle(raw: unknown): Promise<Response> {
    const request = requestSchema.safeParse(raw);
    if (!request.success) {
      return {
        id: -1,
        error: {
          code: "INVALID_INPUT",
          message: "The request is not a Snapkeep API call.",
          hint: null,
          action: null,
        },
      };
    }
    const { id, method, params } = request.data;
    try {
      if (!Object.hasOwn(methods, method)) {
        throw new SnapkeepError("INVALID_INPUT", `There is no API method "${method}".`);
      }
      const parsed = methods[method as Method].safeParse(params ?? {}, { error: sentenceErrorMap });
      if (!parsed.success) {
        throw invalidParams(method, parsed.error);
      }
      const handler = this.#handlers[method as Method] as (p: unknown) => unknown;
      return { id, result: (await handler(parsed.data)) ?? null };
    } catch (error) {
      return { id, error: toErrorView(error) };
    }
  }

  /** Tells every view that a host's VMs changed outside an API call (a scheduled job ran). */
  notifyChanged(host: string): void {
    this.#emit({ event: "changed", data: { host } });
  }

  /**
   * The download a `files.download` answer named (its URL ends with the ticket): once, within two
   * minutes; null otherwise. The server (and the desktop app's scheme) send it as the response.
   */
  takeDownload(ticket: string): ReturnType<Files["take"]> {
    return this.#files?.take(ticket) ?? null;
  }

  /** Stops running jobs (a closing server or app); their work is left safe to resume. */
  async dispose(): Promise<void> {
    await Promise.all([this.#jobs.dispose(), this.#files?.dispose()]);
  }

  #emit(event: ApiEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // One broken transport must not stop the others.
      }
    }
  }
}

// eslint-disable-next-line max-lines-per-function -- a table: one short handler per API method, each a call into the app.
function handlers(
  context: ApiContext,
  now: () => Date,
  jobs: Jobs,
  journal: JobJournal | null,
  changed: (host: string, vm?: string) => void,
  reverting: (host: string, vmUuid: string, progress: RevertProgress) => void,
): Handlers {
  const { hosts, vms, snapshots, revert, targets, schedules, exports, library } = context;
  const optional = <K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } =>
    (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
  const stop = (p: Params<"snapshots.undoRevert">, dryRun: boolean) => ({
    dryRun,
    stopRunning: p.stopRunning,
    force: p.force,
    powerOffNow: p.powerOffNow,
    shutdownTimeoutMs: p.shutdownTimeoutSeconds * 1000,
    ...(dryRun ? {} : { onProgress: (progress: RevertProgress) => reverting(p.host, p.vmUuid, progress) }),
  });
  const draft = (p: Params<"schedules.add">) => ({
    host: p.host,
    vm: p.vm,
    when: p.when,
    retention: p.retention,
    ...optional("disks", p.disks),
    ...optional("note", p.note),
    ...optional("copy", p.copy),
  });
  const restoreRequest = (p: Params<"exports.restore">) => ({
    target: p.target,
    export: p.export,
    host: p.host,
    name: p.name,
    into: p.into,
    disks: p.disks,
    start: p.start,
  });
  const libraryCreate = (p: Params<"library.create">, dryRun: boolean) => {
    const request = { host: p.host, vm: p.vm, snapshot: p.snapshot, name: p.name, disk: p.disk, dryRun };
    return p.kind === "template" ? library.createTemplate(request) : library.createVolume(request);
  };
  const vmFromTemplate = (p: Params<"vms.create">) => ({
    host: p.host,
    name: p.name,
    template: p.template,
    full: p.full,
    start: p.start,
  });
  return {
    "hosts.list": () => hosts.list(),
    "hosts.add": async (p) => {
      if (p.local) {
        const host = hosts.addLocal(p.name, p.uri);
        changed(p.name);
        return { host, offeredFingerprint: null, trusted: true };
      }
      // Saved untrusted: nothing runs there until the person confirms the fingerprint shown.
      return hosts.addSsh({
        name: p.name,
        ssh: p.ssh ?? "",
        ...optional("identityFile", p.identityFile),
        ...optional("uri", p.uri),
      });
    },
    "hosts.fingerprint": (p) => hosts.offeredFingerprint(p.name),
    "hosts.trust": async (p) => {
      const host = await hosts.trust(p.name, p.fingerprint);
      changed(p.name);
      return host;
    },
    "hosts.remove": async (p) => {
      await hosts.remove(p.name);
      changed(p.name);
      return null;
    },

    "vms.list": async (p) => {
      // The list shows counts, not snapshots: 5,000 snapshots would cost the first paint dearly.
      // A VM's snapshots come with vms.get when it is opened.
      const results = await vms.list(p.host);
      const schedulerRunning = schedulerRunner(context.home).kind !== "none";
      return results.map((r) => {
        const rpo = schedules.rpoOf(r.vms, r.error === null);
        const offHost = schedules.offHostOf(r.vms, schedulerRunning);
        const copies = schedules.offHostCopiesOf(r.vms);
        const drills = context.drills?.list() ?? [];
        return {
          ...r,
          hint: r.action === null ? r.hint : wordHint(r.action, "ui"),
          vms: r.vms.map(({ snapshots, ...vm }, i) => ({
            ...vm,
            snapshotCount: snapshots.length,
            lastSnapshotAt: snapshots.at(-1)?.createdAt ?? null,
            // From what the listing already read: nothing more is asked of the host for 200 VMs.
            spaceUsedBytes: spaceUsed(vm.disks),
            oldestSnapshotAt: oldestRestorePoint(snapshots),
            rpo: rpo[i],
            offHost: offHost[i] ?? null,
            offHostCopies: copies[i],
            drill: drillSummary(drillsOf(drills, { host: r.host, name: vm.name, uuid: vm.uuid })),
          })),
        };
      });
    },
    "vms.get": (p) => vms.get(p.host, p.vm),
    "vms.space": async (p) => (await vms.space(p.host, p.vm)).space,
    "vms.planCreate": (p) => library.createVm({ ...vmFromTemplate(p), dryRun: true }),
    "vms.create": (p) =>
      jobs.start(
        {
          kind: "vm-create",
          title: `Create VM ${p.name} from template ${p.template}`,
          host: p.host,
          vm: p.name,
          cancellable: false,
        },
        async () => {
          const made = await library.createVm(vmFromTemplate(p));
          changed(p.host, p.name);
          return made;
        },
      ),

    "snapshots.create": async (p) => {
      const created = await snapshots.create(p.host, p.vmUuid, {
        ...optional("name", p.name),
        ...optional("note", p.note),
        ...optional("disks", p.disks),
      });
      changed(p.host, p.vmUuid);
      return created;
    },
    "snapshots.planDelete": (p) => snapshots.delete(p.host, p.vmUuid, p.snapshot, { dryRun: true }),
    "snapshots.delete": async (p) => {
      const deleted = await snapshots.delete(p.host, p.vmUuid, p.snapshot, { dryRun: false });
      changed(p.host, p.vmUuid);
      return deleted;
    },
    "snapshots.pin": async (p) => {
      const pinned = await snapshots.setPinned(p.host, p.vmUuid, p.snapshot, p.pinned);
      changed(p.host, p.vmUuid);
      return pinned;
    },
    "snapshots.planRevert": (p) =>
      revert.revert(p.host, p.vmUuid, p.snapshot, { ...stop(p, true), ...optional("disks", p.disks) }),
    "snapshots.revert": async (p) => {
      const result = await revert.revert(p.host, p.vmUuid, p.snapshot, {
        ...stop(p, false),
        ...optional("disks", p.disks),
      });
      changed(p.host, p.vmUuid);
      return result;
    },
    "snapshots.planUndoRevert": (p) => revert.undo(p.host, p.vmUuid, stop(p, true)),
    "snapshots.undoRevert": async (p) => {
      const result = await revert.undo(p.host, p.vmUuid, stop(p, false));
      changed(p.host, p.vmUuid);
      return result;
    },

    "schedules.list": () => {
      const states = schedules.states();
      const schedulerRunning = schedulerRunner(context.home).kind !== "none";
      return schedules.list().map((schedule) => ({
        schedule,
        state: states[schedule.id] ?? null,
        nextRun: schedule.enabled ? (nextSlots(schedule.when, now(), 1)[0]?.toISOString() ?? null) : null,
        schedulerRunning,
      }));
    },
    "schedules.add": async (p) => {
      const added = await schedules.add(draft(p));
      changed(p.host, p.vm);
      return added;
    },
    "schedules.update": async (p) => {
      const updated = await schedules.update(p.id, draft(p));
      changed(updated.host, updated.vmName);
      return updated;
    },
    "schedules.remove": (p) => {
      const removed = schedules.remove(p.id);
      changed(removed.host, removed.vmName);
      return removed;
    },
    "schedules.setEnabled": (p) => {
      const updated = schedules.setEnabled(p.id, p.enabled);
      changed(updated.host, updated.vmName);
      return updated;
    },
    "schedules.preview": (p) => schedules.previewDraft(draft(p.draft), p.editing),
    "schedules.pauseAll": (p) => schedules.pauseAll(p.minutes === undefined ? null : p.minutes * 60_000),
    "schedules.resumeAll": () => {
      schedules.resumeAll();
      return null;
    },
    // The Schedules view says when "pause all" holds: every schedule's next run waits for it.
    "schedules.pauseState": () => schedules.activePause(),
    "schedules.runner": () => schedulerRunner(context.home),

    "targets.list": () => targets.list(),
    "targets.add": (p) =>
      targets.add({
        name: p.name,
        dir: p.dir,
        ssh: p.ssh,
        identityFile: p.identityFile,
        keep: p.keep,
        bwlimitKiB: p.bwlimitKiB,
      }),
    "targets.fingerprint": (p) => targets.offeredFingerprint(p.name),
    "targets.trust": (p) => targets.trust(p.name, p.fingerprint),
    "targets.remove": async (p) => {
      await targets.remove(p.name);
      return null;
    },
    "targets.test": (p) => targets.test(p.name, { create: p.create === true }),

    "exports.list": (p) => exports.list(p.target),
    "exports.start": (p) =>
      jobs.start(
        {
          kind: "export",
          title: `Export ${p.vm} “${parseSnapshotTag(p.snapshot).name}” to ${p.target}`,
          host: p.host,
          vm: p.vm,
        },
        async (signal, report) => {
          const result = await exports.export({
            host: p.host,
            vm: p.vm,
            snapshot: p.snapshot,
            target: p.target,
            disks: p.disks,
            bwlimitKiB: p.bwlimitKiB,
            signal,
            onProgress: (progress) =>
              report({
                phase: progress.disk === null ? progress.phase : `${progress.phase} ${progress.disk}`,
                fraction: progress.fraction,
                bytesDone: progress.bytesDone,
                bytesTotal: progress.bytesTotal,
                bytesPerSecond: progress.bytesPerSecond,
                etaSeconds: progress.etaSeconds,
              }),
          });
          // The snapshot is marked exported now: timelines show it.
          changed(p.host, p.vm);
          return result;
        },
      ),
    // A call, not a job: the plan (dry run) is a scan; a real removal merges on the target, which the
    // caller waits for with its busy label (the UI's Remove dialog shows the plan first).
    "exports.remove": (p) => exports.remove(p.target, p.exports, { dryRun: p.dryRun }),
    "exports.prune": (p) => exports.prune(p.target, { keep: p.keep, dryRun: p.dryRun }),
    "exports.verify": (p) =>
      jobs.start(
        {
          kind: "verify",
          title: `Verify export ${p.export} on ${p.target}`,
          export: { target: p.target, id: p.export },
        },
        async (signal) => {
          const result = await exports.verify(p.target, p.export, signal);
          // A verification that found damage is a failed job, never a "done" one.
          if (!result.ok) {
            throw new SnapkeepError(
              "VERIFY_FAILED",
              `${result.badFiles.join(", ")} of export ${result.id} on ${p.target} no longer match${result.badFiles.length === 1 ? "es" : ""} the checksums taken when it was made${result.badRanges.length === 0 ? "" : ` (${describeDamage(result.badRanges)})`}.`,
              {
                hint: "It is listed as corrupt now. Export the snapshot again, and check the target's disk.",
                details: { badFiles: result.badFiles, badRanges: result.badRanges },
              },
            );
          }
          return result;
        },
      ),
    // The plan answers directly: it is what the wizard's summary shows before anything happens.
    "exports.planRestore": (p) => restoreExport(context, { ...restoreRequest(p), dryRun: true }),
    "exports.restore": (p) => {
      const request = restoreRequest(p);
      const vm = p.name ?? p.into ?? "";
      return jobs.start(
        {
          kind: "restore",
          title: `Restore ${p.export} from ${p.target} to ${p.host}/${vm}`,
          host: p.host,
          vm,
        },
        async (signal, report) => {
          const result = await restoreExport(
            context,
            {
              ...request,
              signal,
              onProgress: (done, total) => report(bytesProgress("copy", done, total)),
            },
            (made) => library.recordManaged(made),
          );
          changed(p.host, vm);
          return result;
        },
      );
    },

    "library.list": (p) => library.listWithUsers(p.kind, p.host),
    "library.planCreate": async (p) => (await libraryCreate(p, true)).artifact,
    "library.create": (p) =>
      jobs.start(
        {
          kind: p.kind,
          title: `Make ${p.kind} ${p.name} from ${p.vm} “${parseSnapshotTag(p.snapshot).name}”`,
          host: p.host,
          vm: p.vm,
          cancellable: false,
        },
        async () => (await libraryCreate(p, false)).artifact,
      ),
    "library.planDelete": (p) => library.deleteArtifact(p.kind, p.host, p.name, true),
    "library.delete": (p) => library.deleteArtifact(p.kind, p.host, p.name, false),

    "files.open": (p) =>
      filesOf(context).open({
        host: p.host ?? "",
        vm: p.vm,
        snapshot: p.snapshot,
        export: p.export,
        disk: p.disk,
        fs: p.fs,
      }),
    "files.list": (p) => filesOf(context).browse(p.session, p.path),
    "files.download": async (p) => {
      const t = await filesOf(context).ticket(p.session, p.path);
      return { url: `${DOWNLOAD_PREFIX}${t.ticket}`, name: t.name, kind: t.kind, size: t.size };
    },
    "drills.screenshot": (p) => {
      const png = context.drills?.screenshot(p.id) ?? null;
      return png === null ? null : { png: png.toString("base64") };
    },
    "drills.list": (p) => {
      const all = context.drills?.list() ?? [];
      return p.host !== undefined && p.vm !== undefined
        ? drillsOf(all, { host: p.host, name: p.vm })
        : [...all].reverse().filter((r) => p.host === undefined || r.host === p.host);
    },
    "drills.run": (p) => {
      const drills = context.drills;
      if (drills === undefined) {
        throw new SnapkeepError("INVALID_INPUT", "Restore drills are not available here.");
      }
      const from =
        p.export === undefined
          ? `snapshot "${parseSnapshotTag(p.snapshot ?? "").name}"`
          : `export ${p.export.id}`;
      return jobs.start(
        { kind: "drill", title: `Restore drill of ${p.vm}: ${from}`, host: p.host, vm: p.vm },
        async (signal, report) => {
          const { record } = await drills.run({
            host: p.host,
            vm: p.vm,
            snapshot: p.snapshot,
            export: p.export,
            to: p.to,
            signal,
            onStep: (step) =>
              report({
                phase: step,
                fraction: null,
                bytesDone: null,
                bytesTotal: null,
                bytesPerSecond: null,
                etaSeconds: null,
              }),
          });
          changed(p.host, p.vm);
          if (record === null) {
            throw new SnapkeepError("COMMAND_FAILED", "The drill made no record.");
          }
          // A backup that did not come back is a failed job, never a "done" one (its record is kept).
          if (!record.passed) {
            throw new SnapkeepError("VERIFY_FAILED", record.reason ?? "The restored VM did not come back.", {
              details: { drill: record.id },
            });
          }
          return record;
        },
      );
    },
    "files.close": async (p) => {
      await filesOf(context).close(p.session);
      return null;
    },
    "library.attach": async (p) => {
      const attached = await library.attachVolume(p.host, p.volume, p.vm, p.writable);
      changed(p.host, attached.vm);
      return attached;
    },

    "jobs.list": () => {
      const here = jobs.list();
      return [...(journal?.others(new Set(here.map((j) => j.id))) ?? []), ...here];
    },
    "jobs.history": (p) => journal?.history(p) ?? { entries: [], matching: 0, vms: [] },
    "jobs.cancel": (p) => jobs.cancel(p.id),
    "lab.up": () =>
      jobs.start(
        { kind: "lab", title: "Create the demo VMs on this computer", cancellable: false },
        async () => {
          const made = await labUp(new LocalRunner(), "qemu:///system");
          let host = hosts.list().find((h) => h.kind === "local")?.name;
          if (host === undefined) {
            host = hosts.addLocal("local").name;
          }
          changed(host);
          return made.map((m) => m.name);
        },
      ),
    "settings.get": () => ({ safetyKeep: revert.safetyKeep() }),
    "settings.set": (p) => {
      if (p.safetyKeep !== undefined) {
        revert.setSafetyKeep(p.safetyKeep);
      }
      return { safetyKeep: revert.safetyKeep() };
    },
  };
}

function bytesProgress(phase: string, done: number, total: number): JobProgress {
  return {
    phase,
    fraction: total > 0 ? Math.min(1, done / total) : null,
    bytesDone: done,
    bytesTotal: total,
    bytesPerSecond: null,
    etaSeconds: null,
  };
}

/** Who holds the state folder's scheduler lock, as seen from the process answering the API. */
function schedulerRunner(home: string | undefined): SchedulerRunner {
  const owner = home === undefined ? null : schedulerOwner(home);
  if (owner === null) {
    return { kind: "none", app: null, pid: null, hostname: null, since: null };
  }
  const here = owner.pid === process.pid && owner.hostname === hostname();
  return {
    kind: here ? "here" : "elsewhere",
    app: owner.app,
    pid: owner.pid,
    hostname: owner.hostname,
    since: owner.startedAt,
  };
}

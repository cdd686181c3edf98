/**
 * The one typed API the UI talks to, whatever carries it (Electron IPC, the WebSocket of
 * `snapkeep serve`). Every call is a method name and parameters, validated here with zod before
 * anything runs; the answer is plain JSON. Errors travel as { code, message, hint } so the UI can
 * show the same sentences the CLI prints.
 */
import { z } from "zod";

import { SnapkeepError, describeError, isSnapkeepError } from "../errors.js";
import type { Exports } from "../export/exports.js";
import type { Restore } from "../restore/artifacts.js";
import type { Schedules } from "../schedule/schedules.js";
import type { SnapkeepService } from "../service.js";

const hostVm = { host: z.string().min(1).max(64), vm: z.string().min(1).max(300) };
const snapshotRef = { ...hostVm, snapshot: z.string().min(1).max(70_000) };

/** Parameters of every method; a method not listed here does not exist. */
export const methods = {
  "hosts.list": z.object({}),
  "vms.list": z.object({ host: z.string().optional() }),
  "vm.get": z.object(hostVm),
  "snapshot.create": z.object({
    ...hostVm,
    name: z.string().min(1).max(128).optional(),
    note: z.string().max(2000).optional(),
    disks: z.array(z.string().min(1).max(32)).min(1).optional(),
  }),
  "snapshot.delete": z.object({ ...snapshotRef, dryRun: z.boolean().default(false) }),
  "snapshot.pin": z.object({ ...snapshotRef, pinned: z.boolean() }),
  "snapshot.revert": z.object({
    ...snapshotRef,
    disks: z.array(z.string().min(1).max(32)).min(1).optional(),
    dryRun: z.boolean(),
    stopRunning: z.boolean().default(false),
    force: z.boolean().default(false),
    shutdownTimeoutSeconds: z.number().int().min(1).max(3600).default(120),
  }),
  "snapshot.undo": z.object({
    ...hostVm,
    dryRun: z.boolean(),
    stopRunning: z.boolean().default(false),
    force: z.boolean().default(false),
    shutdownTimeoutSeconds: z.number().int().min(1).max(3600).default(120),
  }),
  "schedules.list": z.object({}),
  "targets.list": z.object({}),
  "exports.list": z.object({ target: z.string().optional() }),
  "schedules.pauseAll": z.object({ minutes: z.number().int().min(1).max(527_040).optional() }),
  "schedules.resumeAll": z.object({}),
} as const;

export type Method = keyof typeof methods;
export type Params<M extends Method> = z.input<(typeof methods)[M]>;

export interface ApiError {
  readonly code: string;
  readonly message: string;
  readonly hint: string | null;
}

/** A request as it arrives on a transport: validated before it is trusted. */
export const requestSchema = z.object({
  id: z.number().int().min(0),
  method: z.string().max(64),
  params: z.unknown().optional(),
});

export type Response = { id: number; result: unknown } | { id: number; error: ApiError };

/** Events pushed to every UI: something changed on a host (reload what shows it). */
export type ApiEvent = { event: "changed"; data: { host: string; vm?: string } };

export interface ApiContext {
  readonly service: SnapkeepService;
  readonly schedules: Schedules;
  readonly exports: Exports;
  readonly restore: Restore;
}

export class Api {
  readonly #context: ApiContext;
  readonly #listeners = new Set<(event: ApiEvent) => void>();

  constructor(context: ApiContext) {
    this.#context = context;
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
        error: { code: "INVALID_INPUT", message: "The request is not a Snapkeep API call.", hint: null },
      };
    }
    const { id, method, params } = request.data;
    try {
      if (!(method in methods)) {
        throw new SnapkeepError("INVALID_INPUT", `There is no API method "${method}".`);
      }
      const schema = methods[method as Method];
      const parsed = schema.safeParse(params ?? {});
      if (!parsed.success) {
        throw new SnapkeepError(
          "INVALID_INPUT",
          `Bad parameters for ${method}: ${parsed.error.issues[0]?.message ?? "invalid"}.`,
        );
      }
      return { id, result: await this.#call(method as Method, parsed.data) };
    } catch (error) {
      return { id, error: toApiError(error) };
    }
  }

  async #call(method: Method, p: Record<string, unknown>): Promise<unknown> {
    const { service, schedules, exports } = this.#context;
    const s = (key: string): string => String(p[key]);
    switch (method) {
      case "hosts.list":
        return service.listHosts();
      case "vms.list": {
        // The list shows counts, not snapshots: 5,000 snapshots would cost the first paint dearly.
        // A VM's snapshots come with vm.get when it is opened.
        const results = await service.listVms(typeof p["host"] === "string" ? p["host"] : undefined);
        return results.map((r) => {
          const rpo = schedules.rpoOf(r.vms, true);
          return {
            ...r,
            vms: r.vms.map(({ snapshots, ...vm }, i) => ({
              ...vm,
              snapshotCount: snapshots.length,
              lastSnapshotAt: snapshots.at(-1)?.createdAt ?? null,
              rpo: rpo[i],
            })),
          };
        });
      }
      case "vm.get":
        return service.getVm(s("host"), s("vm"));
      case "snapshot.create": {
        const created = await service.createSnapshot(s("host"), s("vm"), {
          ...(typeof p["name"] === "string" ? { name: p["name"] } : {}),
          ...(typeof p["note"] === "string" ? { note: p["note"] } : {}),
          ...(Array.isArray(p["disks"]) ? { disks: p["disks"] as string[] } : {}),
        });
        this.#emit({ event: "changed", data: { host: s("host"), vm: s("vm") } });
        return created;
      }
      case "snapshot.delete": {
        const deleted = await service.deleteSnapshot(s("host"), s("vm"), s("snapshot"), {
          dryRun: p["dryRun"] === true,
        });
        if (p["dryRun"] !== true) {
          this.#emit({ event: "changed", data: { host: s("host"), vm: s("vm") } });
        }
        return deleted;
      }
      case "snapshot.pin": {
        const pinned = await service.setPinned(s("host"), s("vm"), s("snapshot"), p["pinned"] === true);
        this.#emit({ event: "changed", data: { host: s("host"), vm: s("vm") } });
        return pinned;
      }
      case "snapshot.revert":
      case "snapshot.undo": {
        const request = {
          dryRun: p["dryRun"] === true,
          stopRunning: p["stopRunning"] === true,
          force: p["force"] === true,
          shutdownTimeoutMs: Number(p["shutdownTimeoutSeconds"]) * 1000,
        };
        const result =
          method === "snapshot.undo"
            ? await service.undoRevert(s("host"), s("vm"), request)
            : await service.revertSnapshot(s("host"), s("vm"), s("snapshot"), {
                ...request,
                ...(Array.isArray(p["disks"]) ? { disks: p["disks"] as string[] } : {}),
              });
        if (!request.dryRun) {
          this.#emit({ event: "changed", data: { host: s("host"), vm: s("vm") } });
        }
        return result;
      }
      case "schedules.list":
        return schedules
          .list()
          .map((schedule) => ({ schedule, state: schedules.states()[schedule.id] ?? null }));
      case "targets.list":
        return exports.listTargets();
      case "exports.list":
        return exports.list(typeof p["target"] === "string" ? p["target"] : undefined);
      case "schedules.pauseAll": {
        // Without minutes: until resumed.
        return schedules.pauseAll(typeof p["minutes"] === "number" ? p["minutes"] * 60_000 : null);
      }
      case "schedules.resumeAll":
        schedules.resumeAll();
        return null;
    }
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

export function toApiError(error: unknown): ApiError {
  if (isSnapkeepError(error)) {
    return { code: error.code, message: error.message, hint: error.hint ?? null };
  }
  return { code: "INTERNAL", message: `Unexpected error: ${describeError(error)}`, hint: null };
}

/**
 * The IPC edge between the renderer and the main process, without Electron: who may call, what a
 * call must look like, and which calls the desktop answers itself before the core API does.
 *
 * The contract the preload exposes (window.snapkeepIpc) is the same JSON the WebSocket of
 * `snapkeep serve` carries: request {id, method, params?} → Response {id, result} | {id, error}.
 */
import { z } from "zod";

import { methods, type Api, type Response } from "../../core/api/api.js";
import {
  desktopMethods,
  type DesktopMethod as DesktopMethodName,
  type DesktopParams,
  type DesktopResult,
} from "../../core/api/contract.js";
import { invalidParams, sentenceErrorMap, toErrorView } from "../../core/domain/explain.js";

/** Channel names; preload.cts repeats them (a sandboxed preload cannot import this module). */
export const REQUEST_CHANNEL = "snapkeep:request";
export const EVENT_CHANNEL = "snapkeep:event";

/** The renderer's origin: a privileged custom scheme, so the CSP arrives as a real header. */
export const APP_SCHEME = "snapkeep";
export const APP_ORIGIN = `${APP_SCHEME}://app`;
export const APP_PAGE = `${APP_ORIGIN}/index.html`;

/**
 * The envelope, checked before anything else: a method name is short and plain, params are a
 * plain object when present. Params themselves are checked by the method's own schema.
 */
export const ipcRequestSchema = z
  .object({
    id: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    method: z
      .string()
      .regex(/^[a-zA-Z]+(\.[a-zA-Z]+)*$/)
      .max(64),
    params: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export type IpcRequest = z.infer<typeof ipcRequestSchema>;

/** What Electron tells about the frame that sent a message; null when it is already gone. */
export interface SenderFrame {
  readonly url: string;
  /** True for the top frame of the page; an iframe inside our page is not trusted. */
  readonly isMainFrame: boolean;
}

/** Only the top frame of our own renderer page, loaded from the app scheme, may call. */
export function isTrustedSender(frame: SenderFrame | null): boolean {
  if (frame === null || !frame.isMainFrame) {
    return false;
  }
  let url: URL;
  try {
    url = new URL(frame.url);
  } catch {
    return false;
  }
  return url.protocol === `${APP_SCHEME}:` && url.host === "app" && url.pathname === "/index.html";
}

/** A call the desktop answers itself (autostart, notifications, secrets): not part of web mode. */
export interface DesktopMethod {
  /** Validates the params, then runs; throws a SnapkeepError the router turns into an API error. */
  call(method: string, params: unknown): Promise<unknown>;
}

/** A desktop method whose params `schema` checks before `run` sees them, typed. */
export function desktopMethod<S extends z.ZodType>(
  schema: S,
  run: (params: z.output<S>) => Promise<unknown>,
): DesktopMethod {
  return {
    async call(method, params) {
      const parsed = schema.safeParse(params ?? {}, { error: sentenceErrorMap });
      if (!parsed.success) {
        throw invalidParams(method, parsed.error);
      }
      return run(parsed.data);
    },
  };
}

/** Every desktop method of the contract, each answering the result type the contract gives it. */
export type DesktopHandlers = {
  readonly [M in DesktopMethodName]: (params: DesktopParams<M>) => Promise<DesktopResult<M>>;
};

/** The contract's desktop methods, their params checked by the contract's schemas. */
export function contractDesktopMethods(handlers: DesktopHandlers): Record<DesktopMethodName, DesktopMethod> {
  const m = desktopMethods;
  const h = handlers;
  return {
    "desktop.status": desktopMethod(m["desktop.status"], h["desktop.status"]),
    "desktop.autostart": desktopMethod(m["desktop.autostart"], h["desktop.autostart"]),
    "desktop.notifications": desktopMethod(m["desktop.notifications"], h["desktop.notifications"]),
    "desktop.secrets": desktopMethod(m["desktop.secrets"], h["desktop.secrets"]),
    "desktop.storeKeyPassphrase": desktopMethod(
      m["desktop.storeKeyPassphrase"],
      h["desktop.storeKeyPassphrase"],
    ),
    "desktop.forgetKeyPassphrase": desktopMethod(
      m["desktop.forgetKeyPassphrase"],
      h["desktop.forgetKeyPassphrase"],
    ),
  };
}

export interface IpcRouterOptions {
  readonly api: Pick<Api, "handle">;
  readonly desktop: Readonly<Record<string, DesktopMethod>>;
  /** After a core call succeeded: the desktop reacts (a resumed pause wakes the scheduler). */
  readonly afterCall?: (method: string) => void;
}

const refused = (id: number, message: string): Response => ({
  id,
  error: { code: "INVALID_INPUT", message, hint: null, action: null },
});

/**
 * Routes one message from a sender: refused unless the sender is trusted and the envelope valid;
 * desktop methods run here, everything else goes to the core API (which validates params again).
 * Never throws: every failure is a Response the renderer can show.
 */
export function createIpcRouter(options: IpcRouterOptions) {
  const desktopNames = new Set(Object.keys(options.desktop));
  return async (frame: SenderFrame | null, raw: unknown): Promise<Response> => {
    if (!isTrustedSender(frame)) {
      return refused(-1, "Snapkeep answers only its own window.");
    }
    const envelope = ipcRequestSchema.safeParse(raw);
    if (!envelope.success) {
      return refused(-1, "The request is not a Snapkeep API call.");
    }
    const { id, method, params } = envelope.data;
    const desktop = desktopNames.has(method) ? options.desktop[method] : undefined;
    if (desktop === undefined) {
      const answer = await options.api.handle(envelope.data);
      if ("result" in answer && method in methods) {
        options.afterCall?.(method);
      }
      return answer;
    }
    try {
      return { id, result: await desktop.call(method, params) };
    } catch (error) {
      return { id, error: toErrorView(error) };
    }
  };
}

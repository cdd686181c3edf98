/**
 * The API client, over whichever transport carries it: the desktop app's preload bridge
 * (`window.snapkeepIpc`, Electron IPC) or the WebSocket of `snapkeep serve` (transports.ts).
 * Calls are typed by the core's contract: the method's name gives its params and its result.
 */
import type { AnyMethod, AnyParamsIn, AnyResult, ApiError, ApiEvent } from "../../core/api/contract.js";

export class ApiCallError extends Error {
  constructor(readonly error: ApiError) {
    super(error.message);
  }
}

export interface Request {
  readonly id: number;
  readonly method: string;
  readonly params: object;
}
export type Answer = { id: number; result: unknown } | { id: number; error: ApiError };

/** What carries calls and events; both transports have this shape. */
export interface Transport {
  request(message: Request): Promise<Answer>;
  subscribe(listener: (event: unknown) => void): () => void;
}

export class ApiClient {
  #next = 1;
  readonly #listeners = new Set<(event: ApiEvent) => void>();

  constructor(private readonly transport: Transport) {
    transport.subscribe((event) => {
      if (isEvent(event)) {
        for (const listener of this.#listeners) {
          listener(event);
        }
      }
    });
  }

  onEvent(listener: (event: ApiEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async call<M extends AnyMethod>(method: M, params: AnyParamsIn<M>): Promise<AnyResult<M>> {
    const answer = await this.transport.request({ id: this.#next++, method, params });
    if ("error" in answer) {
      throw new ApiCallError(answer.error);
    }
    // The core answers each method with the contract's type for it (api.ts is typed by it).
    return answer.result as AnyResult<M>;
  }
}

function isEvent(value: unknown): value is ApiEvent {
  if (typeof value !== "object" || value === null) {
    return false;
  }
  const event = (value as { event?: unknown }).event;
  return (
    (event === "changed" || event === "job" || event === "revert") &&
    typeof (value as { data?: unknown }).data === "object"
  );
}

/**
 * The API client, over whichever transport carries it: the desktop app's preload bridge
 * (`window.snapkeepIpc`, Electron IPC) or the WebSocket of `snapkeep serve` (transports.ts).
 */
import type { ApiError, ApiEvent } from "./protocol.js";

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

  async call<T>(method: string, params: object = {}): Promise<T> {
    const answer = await this.transport.request({ id: this.#next++, method, params });
    if ("error" in answer) {
      throw new ApiCallError(answer.error);
    }
    return answer.result as T;
  }
}

function isEvent(value: unknown): value is ApiEvent {
  if (typeof value !== "object" || value === null) {
    return false;
  }
  const event = (value as { event?: unknown }).event;
  return (event === "changed" || event === "job") && typeof (value as { data?: unknown }).data === "object";
}

/**
 * The API over the WebSocket of `snapkeep serve`. The token comes from the URL's fragment (never
 * sent to the server with the page request) and is kept in memory only.
 */
import type { ApiError, ChangedEvent } from "./protocol.js";

export class ApiCallError extends Error {
  constructor(readonly error: ApiError) {
    super(error.message);
  }
}

type Pending = { resolve: (value: unknown) => void; reject: (error: unknown) => void };

export class ApiClient {
  #socket: WebSocket | undefined;
  #opening: Promise<WebSocket> | undefined;
  #next = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Set<(event: ChangedEvent) => void>();

  constructor(
    private readonly url: string,
    private readonly onConnection: (connected: boolean) => void,
  ) {}

  static fromLocation(location: Location, onConnection: (connected: boolean) => void): ApiClient {
    const token = new URLSearchParams(location.hash.slice(1)).get("token") ?? "";
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    return new ApiClient(`${scheme}://${location.host}/api?token=${encodeURIComponent(token)}`, onConnection);
  }

  onChanged(listener: (event: ChangedEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async call<T>(method: string, params: object = {}): Promise<T> {
    const socket = await this.#open();
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: (v) => resolve(v as T), reject });
      socket.send(JSON.stringify({ id, method, params }));
    });
  }

  #open(): Promise<WebSocket> {
    if (this.#socket?.readyState === WebSocket.OPEN) {
      return Promise.resolve(this.#socket);
    }
    this.#opening ??= new Promise<WebSocket>((resolve, reject) => {
      const socket = new WebSocket(this.url);
      socket.onopen = () => {
        this.#socket = socket;
        this.#opening = undefined;
        this.onConnection(true);
        resolve(socket);
      };
      socket.onerror = () => {
        this.#opening = undefined;
        reject(
          new ApiCallError({
            code: "HOST_UNREACHABLE",
            message: "Snapkeep's server cannot be reached, or the link's token is wrong.",
            hint: "Open the address `snapkeep serve` printed, token included.",
          }),
        );
      };
      socket.onclose = () => {
        this.#socket = undefined;
        this.onConnection(false);
        for (const [, pending] of this.#pending) {
          pending.reject(
            new ApiCallError({
              code: "HOST_UNREACHABLE",
              message: "The connection to Snapkeep closed.",
              hint: null,
            }),
          );
        }
        this.#pending.clear();
      };
      socket.onmessage = (message: MessageEvent<string>) => this.#receive(message.data);
    });
    return this.#opening;
  }

  #receive(text: string): void {
    let data: { id?: number; result?: unknown; error?: ApiError; event?: string };
    try {
      data = JSON.parse(text) as typeof data;
    } catch {
      return;
    }
    if (data.event === "changed") {
      for (const listener of this.#listeners) {
        listener(data as ChangedEvent);
      }
      return;
    }
    const pending = data.id === undefined ? undefined : this.#pending.get(data.id);
    if (pending === undefined || data.id === undefined) {
      return;
    }
    this.#pending.delete(data.id);
    if (data.error !== undefined) {
      pending.reject(new ApiCallError(data.error));
    } else {
      pending.resolve(data.result);
    }
  }
}

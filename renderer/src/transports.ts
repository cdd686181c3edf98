/**
 * The two ways the page reaches the API: the desktop app's preload bridge, or the WebSocket of
 * `snapkeep serve`, whose token comes from the URL's fragment (never sent to the server with the
 * page request) and is kept in memory only.
 */
import { ApiCallError, ApiClient, type Answer, type Request, type Transport } from "./client.js";
import type { ApiError } from "../../core/api/contract.js";

/** The desktop app's preload exposes exactly this (see electron/preload.cts). */
declare global {
  interface Window {
    snapkeepIpc?: Transport;
  }
}

/** Whether the page runs in the desktop app (which has settings a browser has not). */
export function isDesktop(): boolean {
  return window.snapkeepIpc !== undefined;
}

/** The desktop bridge when the page runs in the app, else the WebSocket of the page's server. */
export function clientForPage(window: Window, onConnection: (connected: boolean) => void): ApiClient {
  if (window.snapkeepIpc !== undefined) {
    onConnection(true);
    return new ApiClient(window.snapkeepIpc);
  }
  return new ApiClient(WebSocketTransport.fromLocation(window.location, onConnection));
}

type Pending = { resolve: (value: Answer) => void; reject: (error: unknown) => void };

export class WebSocketTransport implements Transport {
  #socket: WebSocket | undefined;
  #opening: Promise<WebSocket> | undefined;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Set<(event: unknown) => void>();

  constructor(
    private readonly url: string,
    private readonly onConnection: (connected: boolean) => void,
  ) {}

  static fromLocation(location: Location, onConnection: (connected: boolean) => void): WebSocketTransport {
    // Signed in through `serve --listen`, the session cookie opens the socket: no token.
    const token = new URLSearchParams(location.hash.slice(1)).get("token");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = token === null ? "" : `?token=${encodeURIComponent(token)}`;
    return new WebSocketTransport(`${scheme}://${location.host}/api${query}`, onConnection);
  }

  subscribe(listener: (event: unknown) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async request(message: Request): Promise<Answer> {
    const socket = await this.#open();
    return new Promise<Answer>((resolve, reject) => {
      this.#pending.set(message.id, { resolve, reject });
      socket.send(JSON.stringify(message));
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
            action: null,
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
              hint: "Start `snapkeep serve` again and reload this page.",
              action: null,
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
    if (data.event !== undefined) {
      for (const listener of this.#listeners) {
        listener(data);
      }
      return;
    }
    const pending = data.id === undefined ? undefined : this.#pending.get(data.id);
    if (pending === undefined || data.id === undefined) {
      return;
    }
    this.#pending.delete(data.id);
    pending.resolve(
      data.error !== undefined ? { id: data.id, error: data.error } : { id: data.id, result: data.result },
    );
  }
}

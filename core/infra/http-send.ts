/**
 * Outgoing HTTP for alerts and monitor pings: one request, a time limit, and a failure as one
 * sentence that never shows the address past its host (addresses carry tokens).
 */
import { SnapkeepError, describeError } from "../errors.js";

export interface HttpRequest {
  readonly url: string;
  readonly method: "GET" | "POST";
  readonly body?: string | undefined;
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** How the address is named in errors (redacted). */
  readonly label: string;
  readonly timeoutMs?: number | undefined;
}

export async function sendHttp(request: HttpRequest): Promise<void> {
  let response: Response;
  try {
    response = await fetch(request.url, {
      method: request.method,
      ...(request.body === undefined ? {} : { body: request.body }),
      headers: { "User-Agent": "snapkeep", ...request.headers },
      redirect: "error",
      signal: AbortSignal.timeout(request.timeoutMs ?? 15_000),
    });
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
    throw new SnapkeepError(
      "COMMAND_FAILED",
      `${request.label} could not be reached: ${describeError(cause)}.`,
    );
  }
  // The body is not needed; reading it lets the connection be reused or closed.
  await response.arrayBuffer().catch(() => undefined);
  if (!response.ok) {
    throw new SnapkeepError(
      "COMMAND_FAILED",
      `${request.label} answered ${response.status} ${response.statusText}.`,
    );
  }
}

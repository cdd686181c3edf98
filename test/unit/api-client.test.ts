/**
 * The renderer's API client over a transport: the same code serves the desktop bridge and the
 * WebSocket, so its contract is tested once here with an in-memory transport.
 */
import { describe, expect, it } from "vitest";

import { ApiCallError, ApiClient, type Transport } from "../../renderer/src/client.js";
import type { ApiEvent, VmWithSnapshots } from "../../core/api/contract.js";

function memoryTransport(answer: (method: string, params: object) => unknown) {
  const listeners = new Set<(event: unknown) => void>();
  const transport: Transport = {
    request: async ({ id, method, params }) => {
      try {
        return { id, result: answer(method, params) };
      } catch (error) {
        return {
          id,
          error: { code: "NOT_FOUND", message: (error as Error).message, hint: "Look again.", action: null },
        };
      }
    },
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return { transport, push: (event: unknown) => listeners.forEach((l) => l(event)) };
}

describe("API client", () => {
  it("answers with the result, or throws the API's error with its sentence and hint", async () => {
    const { transport } = memoryTransport((method, params) => {
      if (method === "vms.get") {
        return { name: (params as { vm: string }).vm };
      }
      throw new Error(`no method ${method}`);
    });
    const client = new ApiClient(transport);
    // The result's type comes from the method's name, as the contract gives it.
    const vm: VmWithSnapshots = await client.call("vms.get", { host: "local", vm: "web" });
    expect(vm).toEqual({ name: "web" });
    const error = await client.call("lab.up", {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiCallError);
    expect((error as ApiCallError).error).toEqual({
      code: "NOT_FOUND",
      message: "no method lab.up",
      hint: "Look again.",
      action: null,
    });
  });

  it("passes on the API's events and drops anything else the transport carries", () => {
    const { transport, push } = memoryTransport(() => null);
    const client = new ApiClient(transport);
    const seen: ApiEvent[] = [];
    const stop = client.onEvent((e) => seen.push(e));
    push({ event: "changed", data: { host: "local" } });
    push({ event: "job", data: { id: "abc" } });
    push({ event: "shutdown", data: {} });
    push("changed");
    push({ event: "changed" });
    stop();
    push({ event: "changed", data: { host: "late" } });
    expect(seen.map((e) => e.event)).toEqual(["changed", "job"]);
  });
});

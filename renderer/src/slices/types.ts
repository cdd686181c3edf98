/**
 * The pieces every slice shares. The store is one zustand store built from slices (VMs, jobs,
 * schedules, exports and library, settings); each slice file owns its part of the state.
 */
import type { StateCreator } from "zustand";

import type { ApiError } from "../../../core/api/contract.js";
import { ApiCallError, type ApiClient } from "../client.js";
import type { AppState } from "../store.js";

export type Slice<T> = (api: ApiClient, run: RunAction) => StateCreator<AppState, [], [], T>;

/**
 * Runs an action with the app's busy label and error handling: the label shows while it runs, and
 * a failure becomes the error a dialog or the page shows. True when it succeeded.
 */
export type RunAction = (busy: string, work: () => Promise<void>) => Promise<boolean>;

export function asApiError(error: unknown): ApiError {
  return error instanceof ApiCallError
    ? error.error
    : {
        code: "INTERNAL",
        message: error instanceof Error ? error.message : String(error),
        hint: null,
        action: null,
      };
}

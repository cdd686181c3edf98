/**
 * The renderer's state: one zustand store made of slices (slices/), plus what every view shares:
 * the connection, which view shows, what is running (a label) and the error to show. Every change
 * goes through the API.
 */
import { create } from "zustand";

import type { AnyMethod, AnyParamsIn, AnyResult, ApiError } from "../../core/api/contract.js";
import type { ApiClient } from "./client.js";
import type { VmFilter } from "./overview.js";
import { historySlice, type HistorySlice } from "./slices/history.js";
import { jobsSlice, type JobsSlice } from "./slices/jobs.js";
import { librarySlice, type LibrarySlice } from "./slices/library.js";
import { schedulesSlice, type SchedulesSlice } from "./slices/schedules.js";
import { settingsSlice, type SettingsSlice } from "./slices/settings.js";
import { asApiError, type RunAction } from "./slices/types.js";
import { vmsSlice, type VmsSlice } from "./slices/vms.js";

export type { Selected } from "./slices/vms.js";

export type View = "overview" | "vms" | "schedules" | "exports" | "library" | "history" | "settings";

export interface UiSlice {
  readonly connected: boolean;
  readonly view: View;
  readonly jobsOpen: boolean;
  readonly error: ApiError | null;
  readonly busy: string | null;
  /** The VM search and filter, one for the overview and the VM list, kept across views. */
  readonly vmFilter: VmFilter;
  setVmFilter(filter: VmFilter): void;
  setConnected(connected: boolean): void;
  show(view: View): void;
  setJobsOpen(open: boolean): void;
  dismissError(): void;
  /** One API call with the busy label and error handling; null when it failed (the error shows). */
  call<M extends AnyMethod>(busy: string, method: M, params: AnyParamsIn<M>): Promise<AnyResult<M> | null>;
  /**
   * One API call that a dialog waits on itself (the file browser's appliance takes seconds): no
   * busy label, no app-wide error; it throws what asApiError reads.
   */
  request<M extends AnyMethod>(method: M, params: AnyParamsIn<M>): Promise<AnyResult<M>>;
}

export type AppState = UiSlice &
  VmsSlice &
  JobsSlice &
  LibrarySlice &
  SchedulesSlice &
  SettingsSlice &
  HistorySlice;

export function createAppStore(api: ApiClient) {
  return create<AppState>()((set, get, store) => {
    const run: RunAction = async (busy, work) => {
      set({ busy, error: null });
      try {
        await work();
        return true;
      } catch (error) {
        set({ error: asApiError(error) });
        return false;
      } finally {
        set({ busy: null });
      }
    };
    return {
      connected: false,
      view: "overview",
      jobsOpen: false,
      error: null,
      busy: null,
      vmFilter: { text: "", show: "all" },
      setVmFilter: (vmFilter) => set({ vmFilter }),
      setConnected: (connected) => set({ connected }),
      show: (view) => set({ view, error: null }),
      setJobsOpen: (jobsOpen) => set({ jobsOpen }),
      dismissError: () => set({ error: null }),
      call: async <M extends AnyMethod>(
        busy: string,
        method: M,
        params: AnyParamsIn<M>,
      ): Promise<AnyResult<M> | null> => {
        let answer: AnyResult<M> | null = null;
        await run(busy, async () => {
          answer = await api.call(method, params);
        });
        return answer;
      },
      request: <M extends AnyMethod>(method: M, params: AnyParamsIn<M>) => api.call(method, params),
      ...vmsSlice(api, run)(set, get, store),
      ...jobsSlice(api, run)(set, get, store),
      ...librarySlice(api, run)(set, get, store),
      ...schedulesSlice(api, run)(set, get, store),
      ...settingsSlice(api, run)(set, get, store),
      ...historySlice(api, run)(set, get, store),
    };
  });
}

export type AppStore = ReturnType<typeof createAppStore>;

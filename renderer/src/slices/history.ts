import type { History, ParamsIn } from "../../../core/api/contract.js";
import { asApiError, type Slice } from "./types.js";

export type HistoryFilter = Omit<ParamsIn<"jobs.history">, "limit">;

export interface HistorySlice {
  /** The journal's page the History view shows; null until it is first loaded. */
  readonly history: History | null;
  readonly historyFilter: HistoryFilter;
  /** Loads the journal with this filter (in the background: no busy label, buttons stay usable). */
  loadHistory(filter: HistoryFilter): Promise<void>;
}

export const historySlice: Slice<HistorySlice> = (api) => (set) => {
  // Only the answer to the newest request shows: a slow earlier one must not show another filter.
  let latest = 0;
  return {
    history: null,
    historyFilter: {},
    loadHistory: async (filter) => {
      const asked = ++latest;
      set({ historyFilter: filter });
      try {
        const history = await api.call("jobs.history", { ...filter, limit: 500 });
        if (asked === latest) {
          set({ history });
        }
      } catch (error) {
        if (asked === latest) {
          set({ error: asApiError(error) });
        }
      }
    },
  };
};

import type { DraftPreview, ListedSchedule, Schedule, ScheduleDraft } from "../protocol.js";
import type { Slice } from "./types.js";

export interface SchedulesSlice {
  readonly schedules: readonly ListedSchedule[];
  loadSchedules(): Promise<void>;
  /** Adds a schedule, or with `id` changes that one. True when saved. */
  saveSchedule(draft: ScheduleDraft, id?: string): Promise<boolean>;
  removeSchedule(id: string): Promise<void>;
  setScheduleEnabled(id: string, enabled: boolean): Promise<void>;
  /** The editor's live preview; its errors are returned, not shown as the page's error. */
  previewSchedule(draft: ScheduleDraft, editing?: string): Promise<DraftPreview | { error: string }>;
}

export const schedulesSlice: Slice<SchedulesSlice> = (api, run) => (set, get) => ({
  schedules: [],
  loadSchedules: async () => {
    set({ schedules: await api.call<ListedSchedule[]>("schedules.list") });
  },
  saveSchedule: (draft, id) =>
    run(id === undefined ? "Adding the schedule" : "Saving the schedule", async () => {
      await api.call<Schedule>(
        id === undefined ? "schedules.add" : "schedules.update",
        id === undefined ? draft : { ...draft, id },
      );
      await get().loadSchedules();
    }),
  removeSchedule: async (id) => {
    await run("Removing the schedule", async () => {
      await api.call("schedules.remove", { id });
      await get().loadSchedules();
    });
  },
  setScheduleEnabled: async (id, enabled) => {
    await run(enabled ? "Resuming" : "Pausing", async () => {
      await api.call("schedules.setEnabled", { id, enabled });
      await get().loadSchedules();
    });
  },
  previewSchedule: async (draft, editing) => {
    try {
      return await api.call<DraftPreview>("schedules.preview", {
        draft,
        ...(editing === undefined ? {} : { editing }),
      });
    } catch (error) {
      return { error: error instanceof Error ? error.message : String(error) };
    }
  },
});

import type {
  ApiError,
  DraftPreview,
  ListedSchedule,
  ScheduleDraft,
  SchedulePause,
  SchedulerRunner,
} from "../../../core/api/contract.js";
import { asApiError, type Slice } from "./types.js";

export interface SchedulesSlice {
  readonly schedules: readonly ListedSchedule[];
  /** "Pause all" while it holds (set from the tray, the CLI or another window), else null. */
  readonly schedulePause: SchedulePause | null;
  /** Who runs the schedules (this server or app, a daemon, or nobody); null until loaded. */
  readonly schedulerRunner: SchedulerRunner | null;
  loadSchedules(): Promise<void>;
  resumeAllSchedules(): Promise<void>;
  /** Pauses every schedule for `minutes`, or until resumed (null). */
  pauseAllSchedules(minutes: number | null): Promise<void>;
  /**
   * Adds a schedule, or with `id` changes that one. Answers null when saved, else the error: the
   * editor shows it beside its fields rather than on the page behind it.
   */
  saveSchedule(draft: ScheduleDraft, id?: string): Promise<ApiError | null>;
  removeSchedule(id: string): Promise<void>;
  setScheduleEnabled(id: string, enabled: boolean): Promise<void>;
  /** The editor's live preview; its errors are returned, not shown as the page's error. */
  previewSchedule(draft: ScheduleDraft, editing?: string): Promise<DraftPreview | { error: ApiError }>;
}

export const schedulesSlice: Slice<SchedulesSlice> = (api, run) => (set, get) => ({
  schedules: [],
  schedulePause: null,
  schedulerRunner: null,
  loadSchedules: async () => {
    try {
      const [schedules, schedulePause, schedulerRunner] = await Promise.all([
        api.call("schedules.list", {}),
        api.call("schedules.pauseState", {}),
        api.call("schedules.runner", {}),
      ]);
      set({ schedules, schedulePause, schedulerRunner });
    } catch (error) {
      set({ error: asApiError(error) });
    }
  },
  pauseAllSchedules: async (minutes) => {
    await run("Pausing all schedules", async () => {
      await api.call("schedules.pauseAll", minutes === null ? {} : { minutes });
      await get().loadSchedules();
    });
  },
  resumeAllSchedules: async () => {
    await run("Resuming all schedules", async () => {
      await api.call("schedules.resumeAll", {});
      await get().loadSchedules();
    });
  },
  saveSchedule: async (draft, id) => {
    set({ busy: id === undefined ? "Adding the schedule" : "Saving the schedule" });
    try {
      await (id === undefined
        ? api.call("schedules.add", draft)
        : api.call("schedules.update", { ...draft, id }));
      await get().loadSchedules();
      return null;
    } catch (error) {
      return asApiError(error);
    } finally {
      set({ busy: null });
    }
  },
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
      return await api.call("schedules.preview", {
        draft,
        ...(editing === undefined ? {} : { editing }),
      });
    } catch (error) {
      return { error: asApiError(error) };
    }
  },
});

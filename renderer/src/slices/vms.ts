import type {
  ListedHost,
  ParamsIn,
  VmSpace,
  RevertProgress,
  RevertResult,
  VmWithSnapshots,
} from "../../../core/api/contract.js";
import { revertProgressWords } from "../revert-words.js";
import { asApiError, type Slice } from "./types.js";

/** How a revert (or an undo, which takes no disks) goes, as the wizard chose it. */
export type RevertOptions = Omit<ParamsIn<"snapshots.revert">, "host" | "vmUuid" | "snapshot">;

export interface Selected {
  readonly host: string;
  readonly vm: string;
}

/** Hosts with their VMs, the VM that is open, and what is done to its snapshots. */
export interface VmsSlice {
  readonly hosts: readonly ListedHost[];
  readonly loading: boolean;
  readonly selected: Selected | null;
  readonly vm: VmWithSnapshots | null;
  readonly selectedSnapshot: string | null;
  /**
   * What the open VM's disks take and what deleting each snapshot would free: read after the
   * snapshots show (it reads image metadata on the host), null until it answers or when it failed.
   */
  readonly space: VmSpace | null;
  refresh(): Promise<void>;
  select(selected: Selected): Promise<void>;
  selectSnapshot(tag: string | null): void;
  createSnapshot(request: { name?: string; note?: string; disks?: string[] }): Promise<boolean>;
  deleteSnapshot(tag: string): Promise<void>;
  setPinned(tag: string, pinned: boolean): Promise<void>;
  /** Plans (planOnly) or does a revert to `tag`, or, with tag null, an undo of the last revert. */
  revert(tag: string | null, options: RevertOptions, planOnly: boolean): Promise<RevertResult | null>;
  /** A revert this window started moved on: its busy line says where (the shutdown's countdown). */
  revertProgress(host: string, vmUuid: string, progress: RevertProgress): void;
}

export const vmsSlice: Slice<VmsSlice> = (api, run) => (set, get) => {
  /** The revert this window is running, if any: another window's reverts are not ours to show. */
  let reverting: { host: string; vmUuid: string; name: string } | null = null;
  /**
   * The VM on screen, by host and UUID: actions name what the person sees, never a selection that
   * moved on meanwhile (a same-named snapshot on another VM must not be the one deleted).
   */
  const shown = (): { host: string; vmUuid: string } | null => {
    const vm = get().vm;
    return vm === null ? null : { host: vm.host, vmUuid: vm.uuid };
  };
  /** Reads the selected VM again; an answer for a selection that changed meanwhile is dropped. */
  const reloadVm = async (): Promise<void> => {
    const selected = get().selected;
    if (selected === null) {
      return;
    }
    try {
      const vm = await api.call("vms.get", selected);
      if (get().selected === selected) {
        set({ vm });
        void loadSpace(selected);
      }
    } catch (error) {
      // Gone (deleted elsewhere, or its host removed): nothing stays on screen to act on.
      if (get().selected === selected && asApiError(error).code === "NOT_FOUND") {
        set({ selected: null, vm: null, selectedSnapshot: null });
      }
      throw error;
    }
  };
  /** In the background, without the busy label; a failure only leaves the column empty. */
  const loadSpace = async (selected: Selected): Promise<void> => {
    try {
      const space = await api.call("vms.space", selected);
      if (get().selected === selected) {
        set({ space });
      }
    } catch {
      if (get().selected === selected) {
        set({ space: null });
      }
    }
  };
  // One refresh at a time, and at most one more after it: a burst of change events (fifty
  // schedules at 02:00) costs two listings, not fifty racing ones.
  let refreshing: Promise<void> | null = null;
  let again = false;
  const refreshOnce = async (): Promise<void> => {
    set({ loading: true });
    try {
      const hosts = await api.call("vms.list", {});
      // One render for the listing: with no VM open, it is the end of the refresh too (a second
      // set for `loading` rendered the 200-VM overview again, 35 ms of the first page).
      set({ hosts, loading: get().selected !== null });
      await reloadVm();
    } catch (error) {
      set({ error: asApiError(error) });
    } finally {
      if (get().loading) {
        set({ loading: false });
      }
    }
  };
  return {
    hosts: [],
    loading: false,
    selected: null,
    vm: null,
    selectedSnapshot: null,
    space: null,
    refresh: async () => {
      if (refreshing !== null) {
        again = true;
        return refreshing;
      }
      refreshing = (async () => {
        do {
          again = false;
          await refreshOnce();
        } while (again);
      })().finally(() => {
        refreshing = null;
      });
      return refreshing;
    },
    select: async (selected) => {
      set({ selected, vm: null, selectedSnapshot: null, space: null });
      // No busy label: the page says "Loading…" itself, and setting and clearing a label would
      // render the VM's page (a thousand snapshots' timeline and table) twice more.
      try {
        await reloadVm();
      } catch (error) {
        set({ error: asApiError(error) });
      }
    },
    selectSnapshot: (tag) => set({ selectedSnapshot: tag }),
    createSnapshot: async (request) => {
      const vm = shown();
      if (vm === null) {
        return false;
      }
      return run("Taking the snapshot", async () => {
        await api.call("snapshots.create", { ...vm, ...request });
        await reloadVm();
      });
    },
    deleteSnapshot: async (tag) => {
      const vm = shown();
      if (vm !== null) {
        await run("Deleting the snapshot", async () => {
          await api.call("snapshots.delete", { ...vm, snapshot: tag });
          set({ selectedSnapshot: null });
          await reloadVm();
        });
      }
    },
    setPinned: async (tag, pinned) => {
      const vm = shown();
      if (vm !== null) {
        await run(pinned ? "Pinning" : "Unpinning", async () => {
          await api.call("snapshots.pin", { ...vm, snapshot: tag, pinned });
          await reloadVm();
        });
      }
    },
    revert: async (tag, options, planOnly) => {
      const vm = shown();
      if (vm === null) {
        return null;
      }
      let result: RevertResult | null = null;
      reverting = planOnly ? null : { ...vm, name: get().vm?.name ?? "the VM" };
      await run(planOnly ? "Checking" : tag === null ? "Undoing the revert" : "Reverting", async () => {
        const { disks: _all, ...stop } = options;
        result =
          tag === null
            ? await api.call(planOnly ? "snapshots.planUndoRevert" : "snapshots.undoRevert", {
                ...vm,
                ...stop,
              })
            : await api.call(planOnly ? "snapshots.planRevert" : "snapshots.revert", {
                ...vm,
                ...options,
                snapshot: tag,
              });
        reverting = null;
        if (!planOnly) {
          await reloadVm();
        }
      }).finally(() => {
        reverting = null;
      });
      return result;
    },
    revertProgress: (host, vmUuid, progress) => {
      if (
        reverting !== null &&
        reverting.host === host &&
        reverting.vmUuid === vmUuid &&
        get().busy !== null
      ) {
        set({ busy: revertProgressWords(reverting.name, progress) });
      }
    },
  };
};

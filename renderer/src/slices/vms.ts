import type { HostVms, RevertOptions, RevertResult, VmWithSnapshots } from "../protocol.js";
import { asApiError, type Slice } from "./types.js";

export interface Selected {
  readonly host: string;
  readonly vm: string;
}

/** Hosts with their VMs, the VM that is open, and what is done to its snapshots. */
export interface VmsSlice {
  readonly hosts: readonly HostVms[];
  readonly loading: boolean;
  readonly selected: Selected | null;
  readonly vm: VmWithSnapshots | null;
  readonly selectedSnapshot: string | null;
  refresh(): Promise<void>;
  select(selected: Selected): Promise<void>;
  selectSnapshot(tag: string | null): void;
  createSnapshot(request: { name?: string; note?: string; disks?: string[] }): Promise<boolean>;
  deleteSnapshot(tag: string): Promise<void>;
  setPinned(tag: string, pinned: boolean): Promise<void>;
  /** Plans (dryRun) or does a revert to `tag`, or, with tag null, an undo of the last revert. */
  revert(tag: string | null, options: RevertOptions, dryRun: boolean): Promise<RevertResult | null>;
}

export const vmsSlice: Slice<VmsSlice> = (api, run) => (set, get) => {
  const reloadVm = async (): Promise<void> => {
    const selected = get().selected;
    if (selected !== null) {
      const vm = await api.call<VmWithSnapshots>("vm.get", selected);
      set({ vm });
    }
  };
  return {
    hosts: [],
    loading: false,
    selected: null,
    vm: null,
    selectedSnapshot: null,
    refresh: async () => {
      set({ loading: true });
      try {
        const hosts = await api.call<HostVms[]>("vms.list");
        set({ hosts, error: null });
        await reloadVm();
      } catch (error) {
        set({ error: asApiError(error) });
      } finally {
        set({ loading: false });
      }
    },
    select: async (selected) => {
      set({ selected, vm: null, selectedSnapshot: null });
      await run("Loading the VM", reloadVm);
    },
    selectSnapshot: (tag) => set({ selectedSnapshot: tag }),
    createSnapshot: async (request) => {
      const selected = get().selected;
      if (selected === null) {
        return false;
      }
      return run("Taking the snapshot", async () => {
        await api.call("snapshot.create", { ...selected, ...request });
        await reloadVm();
      });
    },
    deleteSnapshot: async (tag) => {
      const selected = get().selected;
      if (selected !== null) {
        await run("Deleting the snapshot", async () => {
          await api.call("snapshot.delete", { ...selected, snapshot: tag });
          set({ selectedSnapshot: null });
          await reloadVm();
        });
      }
    },
    setPinned: async (tag, pinned) => {
      const selected = get().selected;
      if (selected !== null) {
        await run(pinned ? "Pinning" : "Unpinning", async () => {
          await api.call("snapshot.pin", { ...selected, snapshot: tag, pinned });
          await reloadVm();
        });
      }
    },
    revert: async (tag, options, dryRun) => {
      const selected = get().selected;
      if (selected === null) {
        return null;
      }
      let result: RevertResult | null = null;
      await run(dryRun ? "Checking" : tag === null ? "Undoing the revert" : "Reverting", async () => {
        result =
          tag === null
            ? await api.call<RevertResult>("snapshot.undo", { ...selected, ...options, dryRun })
            : await api.call<RevertResult>("snapshot.revert", {
                ...selected,
                snapshot: tag,
                ...options,
                dryRun,
              });
        if (!dryRun) {
          await reloadVm();
        }
      });
      return result;
    },
  };
};

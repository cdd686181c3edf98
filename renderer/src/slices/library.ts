import type { LibraryItem, Target, TargetExports } from "../../../core/api/contract.js";
import { asApiError, type Slice } from "./types.js";

/** A host's library: its templates and its volumes. */
export interface HostLibrary {
  readonly templates: readonly LibraryItem[];
  readonly volumes: readonly LibraryItem[];
}

/** Export targets with their exports, and each host's library (templates and volumes). */
export interface LibrarySlice {
  readonly targets: readonly Target[];
  readonly exports: readonly TargetExports[];
  readonly exportsLoading: boolean;
  /** True once the exports have been read (the overview's "verified" column waits for it). */
  readonly exportsLoaded: boolean;
  /** The library per host, loaded when a view needs it. */
  readonly library: Readonly<Record<string, HostLibrary>>;
  loadTargets(): Promise<void>;
  loadExports(): Promise<void>;
  /** The same in the background, without the busy label: a slow target never blocks the page. */
  loadExportsQuietly(): Promise<void>;
  loadLibrary(host: string): Promise<void>;
}

export const librarySlice: Slice<LibrarySlice> = (api, run) => (set) => ({
  targets: [],
  exports: [],
  exportsLoading: false,
  exportsLoaded: false,
  library: {},
  // A read in the background (an editor opening asks for the targets): it does not take the app's
  // busy label, which would disable every button, and the one that opened the editor with them,
  // so an Escape pressed before the answer could not give the focus back.
  loadTargets: async () => {
    try {
      set({ targets: await api.call("targets.list", {}) });
    } catch (error) {
      set({ error: asApiError(error) });
    }
  },
  loadExports: async () => {
    set({ exportsLoading: true });
    try {
      await run("Loading exports", async () => {
        set({ exports: await api.call("exports.list", {}), exportsLoaded: true });
      });
    } finally {
      set({ exportsLoading: false });
    }
  },
  loadExportsQuietly: async () => {
    try {
      // Targets that cannot be read come back with their error; the Exports view shows those.
      set({ exports: await api.call("exports.list", {}), exportsLoaded: true });
    } catch {
      // Not even a listing (the connection dropped): the column says "still being read" until
      // the next try; the connection's own state is on the top bar.
    }
  },
  loadLibrary: async (host) => {
    await run("Loading templates and volumes", async () => {
      const [templates, volumes] = await Promise.all([
        api.call("library.list", { kind: "template", host }),
        api.call("library.list", { kind: "volume", host }),
      ]);
      set((s) => ({ library: { ...s.library, [host]: { templates, volumes } } }));
    });
  },
});

import type { Artifact, ImportPlan, Target, TargetExports } from "../protocol.js";
import type { Slice } from "./types.js";

/** Export targets with their exports, and each host's templates and volumes. */
export interface LibrarySlice {
  readonly targets: readonly Target[];
  readonly exports: readonly TargetExports[];
  readonly exportsLoading: boolean;
  /** Templates and volumes per host, loaded when a view needs them. */
  readonly artifacts: Readonly<Record<string, { templates: Artifact[]; volumes: Artifact[] }>>;
  loadTargets(): Promise<void>;
  loadExports(): Promise<void>;
  loadArtifacts(host: string): Promise<void>;
  /** The import's plan (a dry run): what the wizard's summary shows. */
  planImport(request: ImportRequest): Promise<ImportPlan | null>;
  attachVolume(host: string, volume: string, vm: string, writable: boolean): Promise<string | null>;
}

export interface ImportRequest {
  readonly target: string;
  readonly export: string;
  readonly host: string;
  readonly name?: string;
  readonly into?: string;
  readonly start: boolean;
}

export const librarySlice: Slice<LibrarySlice> = (api, run) => (set) => ({
  targets: [],
  exports: [],
  exportsLoading: false,
  artifacts: {},
  loadTargets: async () => {
    await run("Loading targets", async () => {
      set({ targets: await api.call<Target[]>("targets.list") });
    });
  },
  loadExports: async () => {
    set({ exportsLoading: true });
    try {
      await run("Loading exports", async () => {
        set({ exports: await api.call<TargetExports[]>("exports.list") });
      });
    } finally {
      set({ exportsLoading: false });
    }
  },
  loadArtifacts: async (host) => {
    await run("Loading templates and volumes", async () => {
      const [templates, volumes] = await Promise.all([
        api.call<Artifact[]>("artifacts.list", { kind: "template", host }),
        api.call<Artifact[]>("artifacts.list", { kind: "volume", host }),
      ]);
      set((s) => ({ artifacts: { ...s.artifacts, [host]: { templates, volumes } } }));
    });
  },
  planImport: async (request) => {
    let plan: ImportPlan | null = null;
    await run("Checking the export", async () => {
      plan = await api.call<ImportPlan>("import.start", { ...request, dryRun: true });
    });
    return plan;
  },
  attachVolume: async (host, volume, vm, writable) => {
    let target: string | null = null;
    await run("Attaching the volume", async () => {
      const attached = await api.call<{ target: string }>("volume.attach", { host, volume, vm, writable });
      target = attached.target;
    });
    return target;
  },
});

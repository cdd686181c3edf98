import type { AddedHost, AddedTarget, HostConfig, ParamsIn, TargetTest } from "../../../core/api/contract.js";
import { asApiError, type Slice } from "./types.js";

export interface SettingsSlice {
  readonly hostConfigs: readonly HostConfig[];
  readonly safetyKeep: number | null;
  loadSettings(): Promise<void>;
  /** An SSH host is saved untrusted until the person confirms the fingerprint it offers. */
  addHost(request: ParamsIn<"hosts.add">): Promise<AddedHost | null>;
  /** The fingerprint an untrusted host or target offers now, for the person to check again. */
  offeredFingerprint(kind: "host" | "target", name: string): Promise<string | null>;
  trustHost(name: string, fingerprint: string): Promise<boolean>;
  removeHost(name: string): Promise<void>;
  addTarget(request: ParamsIn<"targets.add">): Promise<AddedTarget | null>;
  trustTarget(name: string, fingerprint: string): Promise<boolean>;
  removeTarget(name: string): Promise<void>;
  /** The last test of each target this session, so leaving Settings does not forget it. */
  readonly targetTests: Readonly<Record<string, TargetTest>>;
  /** `create`: make the folder when it is missing, only once the person chose to. */
  testTarget(name: string, create?: boolean): Promise<void>;
  setSafetyKeep(keep: number): Promise<void>;
  /** Creates the two demo VMs on this computer (a job). */
  labUp(): Promise<void>;
}

export const settingsSlice: Slice<SettingsSlice> = (api, run) => (set, get) => {
  const reload = async (): Promise<void> => {
    await get().loadSettings();
    await get().refresh();
  };
  return {
    hostConfigs: [],
    safetyKeep: null,
    loadSettings: async () => {
      try {
        const [hostConfigs, targets, settings] = await Promise.all([
          api.call("hosts.list", {}),
          api.call("targets.list", {}),
          api.call("settings.get", {}),
        ]);
        set({ hostConfigs, targets, safetyKeep: settings.safetyKeep });
      } catch (error) {
        set({ error: asApiError(error) });
      }
    },
    addHost: async (request) => {
      let added: AddedHost | null = null;
      await run("Adding the host", async () => {
        added = await api.call("hosts.add", request);
        await reload();
      });
      return added;
    },
    offeredFingerprint: async (kind, name) => {
      let offered: string | null = null;
      await run("Asking for the host key", async () => {
        offered = await api.call(kind === "host" ? "hosts.fingerprint" : "targets.fingerprint", { name });
      });
      return offered;
    },
    trustHost: (name, fingerprint) =>
      run("Trusting the host", async () => {
        await api.call("hosts.trust", { name, fingerprint });
        await reload();
      }),
    removeHost: async (name) => {
      await run("Removing the host", async () => {
        await api.call("hosts.remove", { name });
        await reload();
      });
    },
    addTarget: async (request) => {
      let added: AddedTarget | null = null;
      const made = await run("Adding the target", async () => {
        added = await api.call("targets.add", request);
        await get().loadSettings();
      });
      // A trusted target is tested at once: its row then says the room there, and warns when the
      // folder is on the system disk (where an unmounted disk leaves its mount point).
      if (made && (added as AddedTarget | null)?.trusted === true) {
        await get().testTarget(request.name);
      }
      return added;
    },
    trustTarget: (name, fingerprint) =>
      run("Trusting the target", async () => {
        await api.call("targets.trust", { name, fingerprint });
        await get().loadSettings();
      }),
    removeTarget: async (name) => {
      await run("Removing the target", async () => {
        await api.call("targets.remove", { name });
        await get().loadSettings();
      });
    },
    targetTests: {},
    testTarget: async (name, create) => {
      await run(create === true ? "Creating the folder" : "Testing the target", async () => {
        const result = await api.call("targets.test", { name, ...(create === true ? { create } : {}) });
        set((s) => ({ targetTests: { ...s.targetTests, [name]: result } }));
      });
    },
    setSafetyKeep: async (keep) => {
      await run("Saving", async () => {
        const settings = await api.call("settings.set", { safetyKeep: keep });
        set({ safetyKeep: settings.safetyKeep });
      });
    },
    labUp: async () => {
      await get().startJob("Creating the demo VMs", "lab.up", {});
    },
  };
};

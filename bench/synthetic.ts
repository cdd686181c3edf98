/**
 * A synthetic API context for measuring the UI's rendering at size (bench/ui.ts) and for looking
 * at the screens with hundreds of VMs (`tsx bench/synthetic.ts` serves it): hosts, VMs and
 * snapshots made up in memory, behind the real Api and serve(). Never used by a test of behaviour:
 * those run on real libvirt (test/integration).
 */
import { fileURLToPath } from "node:url";

import { Api, type ApiContext } from "../core/api/api.js";
import type { OffHostCopies, OffHostRpo, RpoStatus } from "../core/api/contract.js";
import type { Snapshot, VmWithSnapshots } from "../core/domain/types.js";
import { serve } from "../core/server/serve.js";

export interface SyntheticSize {
  readonly hosts: number;
  readonly vms: number;
  readonly snapshots: number;
  /** Snapshots of the first VM ("big"), within `snapshots`. */
  readonly big: number;
}

function snapshots(count: number, now: number, exported: boolean): Snapshot[] {
  return Array.from({ length: count }, (_, i): Snapshot => {
    const createdAt = new Date(now - (count - i) * 3600_000).toISOString();
    const kind = i % 10 === 0 ? "manual" : i % 17 === 0 ? "safety" : "scheduled";
    return {
      tag: `snapkeep:${kind}:s${i}`,
      name: `s${i}`,
      kind,
      origin: null,
      createdAt,
      disks: ["vda", "vdb"].map((target, d) => ({
        target,
        imageSnapshotId: String(i * 2 + d + 1),
        createdAt,
        vmStateSize: 0,
      })),
      note: i % 50 === 0 ? "before the upgrade" : null,
      pinned: i % 100 === 0,
      consistency: "frozen",
      incomplete: false,
      hasVmState: false,
      ...(exported && i % 24 === 0 ? { exportedTo: [`nas/2026${i}-s${i}`] } : {}),
    };
  });
}

function vm(host: string, i: number, count: number, now: number): VmWithSnapshots {
  return {
    host,
    name: i === 0 && host === "host-0" ? "big" : `vm-${String(i).padStart(3, "0")}`,
    uuid: `00000000-0000-4000-8000-${String(i).padStart(6, "0")}${host.slice(-1).padStart(6, "0")}`,
    state: i % 3 === 0 ? "shut off" : "running",
    active: i % 3 !== 0,
    disks: ["vda", "vdb"].map((target, d) => ({
      target,
      device: "disk",
      type: "file",
      source: `/var/lib/libvirt/images/${host}-${i}-${target}.qcow2`,
      format: "qcow2",
      role: d === 0 ? "root" : "additional",
      readonly: false,
      virtualSize: 20 * 1024 ** 3,
      allocatedSize: (1 + (i % 7)) * 1024 ** 3,
      snapshotBlocker: null,
    })),
    snapshots: snapshots(count, now, i % 4 !== 1),
  };
}

/** A variety of states: most fine, some due or overdue, some never copied off the host. */
function rpoOf(vms: readonly VmWithSnapshots[]): RpoStatus[] {
  return vms.map((v, i) =>
    i % 11 === 5
      ? { level: "overdue", ageMs: 30 * 3600_000, reason: `the schedule of ${v.name} failed 3 times` }
      : i % 13 === 7
        ? { level: "due", ageMs: 2 * 3600_000, reason: null }
        : { level: "ok", ageMs: 3600_000, reason: null },
  );
}

function offHostOf(vms: readonly VmWithSnapshots[]): (OffHostRpo | null)[] {
  return vms.map((_, i) =>
    i % 4 === 1
      ? { level: "on-host-only", ageMs: null, reason: "no copy has been made off this host yet" }
      : i % 9 === 2
        ? { level: "overdue", ageMs: 3 * 24 * 3600_000, reason: "target nas did not answer" }
        : { level: "ok", ageMs: 6 * 3600_000, reason: null },
  );
}

function offHostCopiesOf(vms: readonly VmWithSnapshots[]): OffHostCopies[] {
  return vms.map((v) => {
    const newest = v.snapshots.filter((s) => (s.exportedTo ?? []).length > 0).at(-1);
    return newest === undefined
      ? { newestAt: null, targets: [] }
      : { newestAt: newest.createdAt, targets: ["nas"] };
  });
}

export function syntheticContext(size: SyntheticSize): ApiContext {
  const now = Date.now();
  const perVm = Math.floor((size.snapshots - size.big) / (size.vms - 1));
  const hosts = Array.from({ length: size.hosts }, (_, h) => {
    const host = `host-${h}`;
    const vms = Array.from({ length: size.vms / size.hosts }, (_, i) =>
      vm(host, i, h === 0 && i === 0 ? size.big : perVm, now),
    );
    return { host, vms, error: null, hint: null, action: null };
  });
  const all = hosts.flatMap((h) => h.vms);
  const hostsModule = {
    list: () => hosts.map((h) => ({ name: h.host, kind: "local", uri: "qemu:///system" })),
  };
  const vmsModule = {
    list: async () => hosts,
    get: async (host: string, name: string) => {
      const found = all.find((v) => v.host === host && v.name === name);
      if (found === undefined) {
        throw new Error(`no VM ${name}`);
      }
      return found;
    },
  };
  const schedules = {
    rpoOf,
    offHostOf,
    offHostCopiesOf,
    list: () => [],
    states: () => ({}),
    activePause: () => null,
  };
  const exportsModule = { list: async () => [{ target: "nas", exports: [], error: null }] };
  return {
    home: "/nonexistent-snapkeep-synthetic",
    hosts: hostsModule,
    vms: vmsModule,
    schedules,
    exports: exportsModule,
    restore: {},
  } as unknown as ApiContext;
}

/** `tsx bench/synthetic.ts [PORT]`: serves the built UI over the synthetic context, to look at. */
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const serving = await serve(new Api(syntheticContext({ hosts: 4, vms: 200, snapshots: 5000, big: 1000 })), {
    port: Number(process.argv[2] ?? 0),
    rendererDir: fileURLToPath(new URL("../dist/renderer/", import.meta.url)),
  });
  console.log(serving.url);
}

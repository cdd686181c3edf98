/**
 * Merging on retention (issue 16): an export that retention deletes may be the base of one it
 * keeps. Rather than keeping it (the target would hold more exports than the policy says) its
 * data is merged into each kept export built on it, so the kept one rests on what is below the
 * deleted one (or stands alone), and then it is deleted.
 *
 * Decided here, purely: which kept exports need which of their disks merged with which deleted
 * exports below them (`planMerges`), and how a merged image is laid out and fed from the layers'
 * files (`planMergedImage`). The merge itself runs on the target (core/app/exports/merge.ts).
 */
import { SnapkeepError } from "../../errors.js";
import { backingId, chainBelow, type ChainExport } from "./chain-plan.js";

/** One disk of a kept export to rewrite: its own image merged with the deleted ones below it. */
export interface DiskMerge<E> {
  readonly target: string;
  /** The deleted exports merged in, nearest first. */
  readonly merged: readonly E[];
  /** What the merged image rests on: the first kept export below (its id), or null (standalone). */
  readonly basis: string | null;
}

export interface MergeStep<E> {
  readonly into: E;
  readonly disks: readonly DiskMerge<E>[];
}

export interface MergeDecision<E> {
  readonly merges: readonly MergeStep<E>[];
  /** Deletions that wait, and why: something not yet verified (or still being written) rests on them. */
  readonly held: readonly { readonly export: E; readonly reason: string }[];
  /** What can be deleted once the merges are done. */
  readonly remove: readonly E[];
}

/**
 * For the exports retention deletes (`removing`), the merges that keep every other export whole.
 * Only a verified export is merged into (its chain checked whole); what is unverified, damaged or
 * still being written holds its bases instead, as a merge must start from data known to be good.
 */
export function planMerges<E extends ChainExport>(
  exports: readonly E[],
  removing: readonly E[],
): MergeDecision<E> {
  // Ids are unique only within a VM's folder: two VMs' schedules may make the same one.
  const key = (e: E): string => `${e.vmFolder ?? ""}/${e.id}`;
  const gone = new Set(removing.map(key));
  const byKey = new Map(exports.map((e) => [key(e), e]));
  const reasons = new Map<string, string>();
  const hold = (k: string, reason: string): boolean => {
    if (!gone.has(k) || reasons.has(k)) {
      return false;
    }
    reasons.set(k, reason);
    return true;
  };
  const stays = (e: E): boolean => !gone.has(key(e)) || reasons.has(key(e));
  // Until nothing more is held: a held export holds its own chain in turn.
  for (let more = true; more;) {
    more = false;
    for (const staying of exports.filter(stays)) {
      const basis = staying.manifest === null ? staying.job?.basis : undefined;
      if (basis !== undefined) {
        more =
          hold(`${staying.vmFolder ?? ""}/${basis}`, `base of ${staying.id}, which is being written`) || more;
      }
      const mergeable = staying.state === "verified" && !reasons.has(key(staying));
      for (const disk of staying.manifest?.disks ?? []) {
        const { links, broken } = chainBelow(exports, staying, disk.target);
        if (!mergeable || broken !== null) {
          // Not known to be good: whatever its images name below stays, whatever state it is in.
          const why = mergeable ? "not whole" : staying.state;
          for (const link of namedBelow(byKey, staying, disk.target)) {
            more = hold(key(link), `base of ${staying.id}, which is ${why}`) || more;
          }
          continue;
        }
        const kept = links.findIndex(stays);
        const segment = kept === -1 ? links : links.slice(0, kept);
        const layers = [disk, ...segment.map((l) => l.manifest?.disks.find((d) => d.target === disk.target))];
        if (
          segment.length > 0 &&
          layers.some((d) => d?.compression !== undefined && d.compression !== "none")
        ) {
          for (const link of segment) {
            more =
              hold(
                key(link),
                `base of ${staying.id}; its compressed images (--compressed) cannot be merged`,
              ) || more;
          }
        }
      }
    }
  }
  const merges = mergesInto(exports, stays, (e) => reasons.has(key(e)));
  return {
    merges,
    held: removing
      .filter((e) => reasons.has(key(e)))
      .map((e) => ({ export: e, reason: reasons.get(key(e)) ?? "" })),
    remove: removing.filter((e) => !reasons.has(key(e))),
  };
}

/** The merges each verified export that stays needs: its disks' removed links, down to a kept one. */
function mergesInto<E extends ChainExport>(
  exports: readonly E[],
  stays: (e: E) => boolean,
  held: (e: E) => boolean,
): MergeStep<E>[] {
  const merges: MergeStep<E>[] = [];
  for (const into of exports) {
    // A held export keeps its chain as it is (its links are held too).
    if (!stays(into) || held(into) || into.state !== "verified" || into.manifest === null) {
      continue;
    }
    const disks: DiskMerge<E>[] = [];
    for (const disk of into.manifest.disks) {
      const { links, broken } = chainBelow(exports, into, disk.target);
      if (broken !== null) {
        continue;
      }
      const kept = links.findIndex(stays);
      const merged = kept === -1 ? links : links.slice(0, kept);
      if (merged.length > 0) {
        disks.push({ target: disk.target, merged, basis: kept === -1 ? null : (links[kept]?.id ?? null) });
      }
    }
    if (disks.length > 0) {
      merges.push({ into, disks });
    }
  }
  return merges;
}

/**
 * The exports a disk's images name below it, by their backing names alone, in the same VM folder,
 * whatever their state: what must stay while an export that is not known to be good stays.
 */
function namedBelow<E extends ChainExport>(byKey: ReadonlyMap<string, E>, from: E, target: string): E[] {
  const found: E[] = [];
  const seen = new Set([from.id]);
  let disk = from.manifest?.disks.find((d) => d.target === target);
  while (disk?.backing !== undefined) {
    const id = backingId(disk.backing, target);
    const next = id === null || seen.has(id) ? undefined : byKey.get(`${from.vmFolder ?? ""}/${id}`);
    if (id === null || next === undefined) {
      return found;
    }
    seen.add(id);
    found.push(next);
    disk = next.manifest?.disks.find((d) => d.target === target);
  }
  return found;
}

/** Where a guest cluster's bytes are in one layer's file (drivers/qemu-img/qcow2-export-image.ts). */
export type ClusterSource =
  { readonly kind: "data"; readonly hostOffset: number } | { readonly kind: "zero" };

/**
 * Guest clusters of the merged image, `count` of them from `guestCluster` on, as
 * drivers/qemu-img/qcow2-writer.ts lays them out (data runs in the order their bytes are appended).
 */
export interface PlannedCluster {
  readonly guestCluster: number;
  readonly count: number;
  readonly kind: "data" | "zero";
}

/**
 * One layer's clusters in ascending guest order, in two flat arrays rather than an object (or a
 * Map entry) per cluster: a layer of a multi-terabyte disk holds tens of millions, beyond V8's
 * 2^24 entries for a Map. `host[i]` is the byte offset of guest cluster `guest[i]` in the layer's
 * file, or -1 where the layer says zeros.
 */
export interface LayerClusters {
  readonly count: number;
  readonly guest: Float64Array;
  readonly host: Float64Array;
}

/** Builds a LayerClusters from clusters given in ascending guest order. */
export class LayerBuilder {
  #count = 0;
  #guest = new Float64Array(1024);
  #host = new Float64Array(1024);

  add(guestCluster: number, source: ClusterSource): void {
    if (this.#count > 0 && guestCluster <= (this.#guest[this.#count - 1] ?? -1)) {
      throw new SnapkeepError("INVALID_INPUT", `Guest cluster ${guestCluster} is out of order.`);
    }
    if (this.#count === this.#guest.length) {
      this.#guest = grow(this.#guest);
      this.#host = grow(this.#host);
    }
    this.#guest[this.#count] = guestCluster;
    this.#host[this.#count] = source.kind === "data" ? source.hostOffset : -1;
    this.#count++;
  }

  build(): LayerClusters {
    return {
      count: this.#count,
      guest: this.#guest.subarray(0, this.#count),
      host: this.#host.subarray(0, this.#count),
    };
  }
}

/** Indices into a layer, in a growing typed array (not a JS array of tens of millions). */
class IndexList {
  #items = new Uint32Array(1024);
  #count = 0;

  push(index: number): void {
    if (this.#count === this.#items.length) {
      const bigger = new Uint32Array(this.#items.length * 2);
      bigger.set(this.#items);
      this.#items = bigger;
    }
    this.#items[this.#count++] = index;
  }

  view(): Uint32Array {
    return this.#items.subarray(0, this.#count);
  }
}

function grow(array: Float64Array): Float64Array<ArrayBuffer> {
  const bigger = new Float64Array(array.length * 2);
  bigger.set(array);
  return bigger;
}

/** A layer from a map of guest cluster to source (small layers, tests). */
export function layerOf(map: ReadonlyMap<number, ClusterSource>): LayerClusters {
  const builder = new LayerBuilder();
  for (const guest of [...map.keys()].sort((a, b) => a - b)) {
    builder.add(guest, map.get(guest) ?? { kind: "zero" });
  }
  return builder.build();
}

/** A run of one layer's file copied into the merged image, in the order they are appended. */
export interface LayerCopy {
  /** Index into the layers (0: the top, the kept export's own image). */
  readonly layer: number;
  readonly offset: number;
  readonly length: number;
}

export interface MergedImage {
  readonly image: {
    readonly clusterSize: number;
    readonly virtualSize: number;
    readonly backing: string | null;
    readonly clusters: readonly PlannedCluster[];
  };
  /** The data clusters' runs, bottom layer first, each layer's in file order. */
  readonly copies: readonly LayerCopy[];
  readonly dataBytes: number;
}

/**
 * The merged image of `layers` (top first): each guest cluster from the topmost layer that holds
 * it. Zero clusters stay only where something remains below to hide (a backing image); a
 * standalone image reads zeros wherever it holds nothing.
 */
export function planMergedImage(
  layers: readonly (LayerClusters | ReadonlyMap<number, ClusterSource>)[],
  shape: { clusterSize: number; virtualSize: number; backing: string | null },
): MergedImage {
  const compact = layers.map((l) => ("guest" in l ? l : layerOf(l as ReadonlyMap<number, ClusterSource>)));
  // Each layer's clusters that no layer above it holds: a walk over all layers at once, in guest
  // order (every layer is sorted), with a position in each.
  const owned = compact.map(() => new IndexList());
  const zeros: { guestCluster: number; count: number; kind: "zero" }[] = [];
  const at = compact.map(() => 0);
  for (;;) {
    let guest = Infinity;
    for (let i = 0; i < compact.length; i++) {
      const l = compact[i] as LayerClusters;
      const index = at[i] as number;
      if (index < l.count) {
        guest = Math.min(guest, l.guest[index] as number);
      }
    }
    if (guest === Infinity) {
      break;
    }
    let taken = false;
    for (let i = 0; i < compact.length; i++) {
      const l = compact[i] as LayerClusters;
      const index = at[i] as number;
      if (index >= l.count || l.guest[index] !== guest) {
        continue;
      }
      at[i] = index + 1;
      if (taken) {
        continue;
      }
      taken = true;
      if ((l.host[index] as number) >= 0) {
        owned[i]?.push(index);
      } else if (shape.backing !== null) {
        const last = zeros.at(-1);
        if (last !== undefined && last.guestCluster + last.count === guest) {
          last.count++;
        } else {
          zeros.push({ guestCluster: guest, count: 1, kind: "zero" });
        }
      }
    }
  }
  // The bottom layer (the biggest, usually) first, each in file order: long sequential reads.
  const copies: { layer: number; offset: number; length: number }[] = [];
  const clusters: { guestCluster: number; count: number; kind: "data" | "zero" }[] = [];
  let dataClusters = 0;
  for (let layer = compact.length - 1; layer >= 0; layer--) {
    const l = compact[layer] as LayerClusters;
    const order = (owned[layer] as IndexList).view();
    order.sort((a, b) => (l.host[a] as number) - (l.host[b] as number));
    for (const index of order) {
      const host = l.host[index] as number;
      const guest = l.guest[index] as number;
      const copy = copies.at(-1);
      if (copy?.layer === layer && copy.offset + copy.length === host) {
        copy.length += shape.clusterSize;
      } else {
        copies.push({ layer, offset: host, length: shape.clusterSize });
      }
      const run = clusters.at(-1);
      if (run !== undefined && run.guestCluster + run.count === guest) {
        run.count++;
      } else {
        clusters.push({ guestCluster: guest, count: 1, kind: "data" });
      }
      dataClusters++;
    }
  }
  return {
    image: {
      clusterSize: shape.clusterSize,
      virtualSize: shape.virtualSize,
      backing: shape.backing,
      clusters: [...clusters, ...zeros],
    },
    copies,
    dataBytes: dataClusters * shape.clusterSize,
  };
}

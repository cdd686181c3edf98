/**
 * How the streamed export's plan and image layout scale with the disk (issue 16): a fully
 * allocated, fragmented disk of 1.1 and 4 TiB (runs of 16 clusters of 64 KiB, in reverse file
 * order, a hole between any two in the file, so every run is its own read), planned and laid out as a full export, with the time and
 * the heap it takes; then a merge on retention of that full export with an increment of 1% of its
 * clusters above it (every 100th), planned and laid out. No VM and no image: the extents and
 * layers are made up, the code is the real one.
 *
 * Usage: npx tsx bench/plan-scale.ts            BENCH_SCALE_TIB="1.1,4" (default)
 */
import { LayerBuilder, planMergedImage } from "../core/domain/plans/merge-plan.js";
import { planStream, type GuestExtent } from "../core/domain/plans/stream-plan.js";
import { layoutImage } from "../core/drivers/qemu-img/qcow2-writer.js";

const CLUSTER = 64 * 1024;
const RUN = 16;
const MiB = 1024 * 1024;

const sizes = (process.env["BENCH_SCALE_TIB"] ?? "1.1,4").split(",").map(Number);
console.log("disk TiB  clusters    reads     plan s  layout s  metadata MiB  heap MiB  rss MiB");
for (const tib of sizes) {
  const clusters = Math.floor((tib * 2 ** 40) / CLUSTER / RUN) * RUN;
  const extents: GuestExtent[] = [];
  for (let i = 0; i < clusters; i += RUN) {
    extents.push({
      guestOffset: i * CLUSTER,
      length: RUN * CLUSTER,
      // A hole of a run between runs in the file: each run is a read of its own.
      source: { kind: "data", hostOffset: 2 * (clusters - i) * CLUSTER },
    });
  }
  let start = performance.now();
  const plan = planStream(extents, CLUSTER, false);
  const planMs = performance.now() - start;
  start = performance.now();
  const layout = layoutImage({
    clusterSize: CLUSTER,
    virtualSize: clusters * CLUSTER,
    backing: null,
    clusters: plan.clusters,
  });
  const layoutMs = performance.now() - start;
  const memory = process.memoryUsage();
  console.log(
    [
      tib.toFixed(1).padStart(8),
      String(clusters).padStart(9),
      String(plan.reads.length).padStart(8),
      (planMs / 1000).toFixed(2).padStart(10),
      (layoutMs / 1000).toFixed(2).padStart(9),
      (layout.metadataBytes / MiB).toFixed(0).padStart(13),
      (memory.heapUsed / MiB).toFixed(0).padStart(9),
      (memory.rss / MiB).toFixed(0).padStart(8),
    ].join(" "),
  );
}

console.log("\nmerge: disk TiB  clusters  plan s  layout s  copies  heap MiB  rss MiB");
for (const tib of sizes) {
  const clusters = Math.floor((tib * 2 ** 40) / CLUSTER / RUN) * RUN;
  let start = performance.now();
  const bottom = new LayerBuilder();
  const top = new LayerBuilder();
  for (let g = 0; g < clusters; g++) {
    // In the file as the stream wrote it: runs of RUN clusters, the runs in reverse order.
    const hostCluster = clusters - RUN * (Math.floor(g / RUN) + 1) + (g % RUN);
    bottom.add(g, { kind: "data", hostOffset: hostCluster * CLUSTER });
    if (g % 100 === 0) {
      top.add(g, { kind: "data", hostOffset: (1 + g / 100) * CLUSTER });
    }
  }
  const plan = planMergedImage([top.build(), bottom.build()], {
    clusterSize: CLUSTER,
    virtualSize: clusters * CLUSTER,
    backing: null,
  });
  const planMs = performance.now() - start;
  start = performance.now();
  layoutImage(plan.image);
  const layoutMs = performance.now() - start;
  const memory = process.memoryUsage();
  console.log(
    [
      tib.toFixed(1).padStart(15),
      String(clusters).padStart(9),
      (planMs / 1000).toFixed(2).padStart(7),
      (layoutMs / 1000).toFixed(2).padStart(9),
      String(plan.copies.length).padStart(7),
      (memory.heapUsed / MiB).toFixed(0).padStart(9),
      (memory.rss / MiB).toFixed(0).padStart(8),
    ].join(" "),
  );
}

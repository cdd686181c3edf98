/**
 * How the streamed export's plan and image layout scale with the disk (issue 16): a fully
 * allocated, fragmented disk of 1.1 and 4 TiB (runs of 16 clusters of 64 KiB, in reverse file
 * order, a hole between any two in the file, so every run is its own read), planned and laid out as a full export, with the time and
 * the heap it takes. No VM and no image: the extents are made up, the code is the real one.
 *
 * Usage: npx tsx bench/plan-scale.ts            BENCH_SCALE_TIB="1.1,4" (default)
 */
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

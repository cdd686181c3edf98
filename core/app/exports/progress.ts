import type { ExportPhase, ExportProgress } from "./exports.js";

/** Turns byte counts into progress events with a rate and ETA smoothed over the last seconds. */
export class ProgressMeter {
  #phase: ExportPhase = "prepare";
  #disk: string | null = null;
  #total = 0;
  #samples: { t: number; bytes: number }[] = [];
  /** A streamed export has no convert phase: sending is most of it. */
  streamed = false;

  constructor(
    private readonly emit: ((p: ExportProgress) => void) | undefined,
    private readonly clock: () => number,
  ) {}

  phase(phase: ExportPhase, disk: string | null, done: number, total: number): void {
    this.#phase = phase;
    this.#disk = disk;
    this.#total = total;
    this.#samples = [];
    this.update(done);
  }

  update(done: number): void {
    if (this.emit === undefined) {
      return;
    }
    const t = this.clock();
    this.#samples.push({ t, bytes: done });
    while (this.#samples.length > 2 && t - (this.#samples[0]?.t ?? t) > 5000) {
      this.#samples.shift();
    }
    const first = this.#samples[0] ?? { t, bytes: done };
    const elapsed = (t - first.t) / 1000;
    const rate = elapsed > 0.2 ? (done - first.bytes) / elapsed : null;
    const eta = rate !== null && rate > 0 ? Math.max(0, (this.#total - done) / rate) : null;
    const weights: Record<ExportPhase, [number, number]> = {
      prepare: [0, 0],
      convert: [0, 0.45],
      transfer: this.streamed ? [0, 0.9] : [0.45, 0.9],
      verify: [0.9, 0.98],
      finish: [0.98, 1],
    };
    const [from, to] = weights[this.#phase];
    const within = this.#total > 0 ? Math.min(1, done / this.#total) : 0;
    try {
      this.emit({
        phase: this.#phase,
        disk: this.#disk,
        bytesDone: done,
        bytesTotal: this.#total,
        fraction: from + (to - from) * within,
        bytesPerSecond: rate,
        etaSeconds: eta,
      });
    } catch {
      // A listener's failure is not the export's.
    }
  }
}

import type { ExportPhase, ExportProgress } from "./exports.js";

/**
 * Turns byte counts into progress events with a rate and ETA smoothed over the last seconds.
 * Phases are weighted by what they cost: the check on the target reads every byte that landed,
 * as long as the convert or the sending did, so it gets its share of the bar and moves while it
 * runs (estimated from the rate the sending had), instead of a bar that sat at 90 % with "0 s
 * left" and then jumped.
 */
export class ProgressMeter {
  #phase: ExportPhase = "prepare";
  #disk: string | null = null;
  #total = 0;
  #samples: { t: number; bytes: number }[] = [];
  /** Bytes moved and milliseconds spent sending, over every disk: the check's estimate. */
  #sentBytes = 0;
  #sentMs = 0;
  #ticker: ReturnType<typeof setInterval> | null = null;
  /** A streamed export has no convert phase: sending is most of it. */
  streamed = false;

  constructor(
    private readonly emit: ((p: ExportProgress) => void) | undefined,
    private readonly clock: () => number,
  ) {}

  phase(phase: ExportPhase, disk: string | null, done: number, total: number): void {
    this.#stopTicker();
    this.#account();
    this.#phase = phase;
    this.#disk = disk;
    this.#total = total;
    this.#samples = [];
    this.update(done);
  }

  /**
   * The check of `bytes` on the target, whose tools print no progress: the bar advances once a
   * second by the time it should take at the rate the data was sent (a target hashes at least
   * as fast as it received), stopping short of the phase's end until the check really ends.
   */
  verifying(bytes: number, tickMs = 1000): void {
    this.phase("verify", null, 0, 0);
    if (this.emit === undefined || bytes <= 0) {
      return;
    }
    const start = this.clock();
    const rate = this.#sentMs > 0 && this.#sentBytes > 0 ? this.#sentBytes / (this.#sentMs / 1000) : null;
    // 100 MiB/s when nothing was sent to measure (written straight into a folder).
    const expectedS = bytes / (rate ?? 100 * 1024 * 1024);
    this.#ticker = setInterval(() => {
      const elapsedS = (this.clock() - start) / 1000;
      this.#emitAt(
        Math.min(0.95, elapsedS / expectedS),
        0,
        null,
        elapsedS < expectedS ? expectedS - elapsedS : null,
      );
    }, tickMs);
    this.#ticker.unref?.();
  }

  /** The export ended (done or not): no more estimated ticks. */
  stop(): void {
    this.#stopTicker();
  }

  #stopTicker(): void {
    if (this.#ticker !== null) {
      clearInterval(this.#ticker);
      this.#ticker = null;
    }
  }

  /** What the sending phase that ends now moved, and in how long. */
  #account(): void {
    const first = this.#firstSample;
    const last = this.#samples.at(-1);
    if (this.#phase === "transfer" && first !== null && last !== undefined && last.t > first.t) {
      this.#sentBytes += last.bytes - first.bytes;
      this.#sentMs += last.t - first.t;
    }
    this.#firstSample = null;
  }

  #firstSample: { t: number; bytes: number } | null = null;

  #weights(): Record<ExportPhase, [number, number]> {
    return {
      prepare: [0, 0],
      convert: [0, 0.4],
      transfer: this.streamed ? [0, 0.6] : [0.4, 0.7],
      verify: this.streamed ? [0.6, 0.98] : [0.7, 0.98],
      finish: [0.98, 1],
    };
  }

  #emitAt(within: number, done: number, rate: number | null, eta: number | null): void {
    const [from, to] = this.#weights()[this.#phase];
    try {
      this.emit?.({
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
    this.#firstSample ??= { t, bytes: done };
    const within = this.#total > 0 ? Math.min(1, done / this.#total) : 0;
    // Once all bytes of a phase are done, what remains is not known from them: no "0 s left".
    this.#emitAt(within, done, rate, done >= this.#total ? null : eta);
  }
}

/**
 * A counting semaphore whose waiters can give up, so a cancelled or timed-out run that is still
 * queued for an SSH channel leaves the queue at once instead of waiting its turn.
 */
export class Semaphore {
  private available: number;
  private readonly waiters: Array<() => void> = [];

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`semaphore size must be a positive integer, got ${size}`);
    }
    this.available = size;
  }

  /** Resolves with a release function (safe to call more than once) once a slot is free. */
  acquire(signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) {
      return Promise.reject(signal.reason);
    }
    return new Promise((resolve, reject) => {
      const grant = (): void => {
        signal.removeEventListener("abort", onAbort);
        let released = false;
        resolve(() => {
          if (!released) {
            released = true;
            this.release();
          }
        });
      };
      const onAbort = (): void => {
        const index = this.waiters.indexOf(grant);
        if (index !== -1) {
          this.waiters.splice(index, 1);
        }
        reject(signal.reason);
      };
      if (this.available > 0) {
        this.available--;
        grant();
        return;
      }
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(grant);
    });
  }

  private release(): void {
    const next = this.waiters.shift();
    if (next === undefined) {
      this.available++;
    } else {
      next();
    }
  }
}

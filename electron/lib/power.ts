/**
 * Sleep and wake, without Electron: the main process passes powerMonitor in as the event source.
 * node-schedule's timers fire late by the length of a sleep, so wake-up is when missed runs are
 * caught up (once each: due-ness comes from persisted slots, see core/domain/schedule/due.ts).
 */

/** The part of Electron's powerMonitor this needs. */
export interface PowerEvents {
  on(event: "suspend" | "resume", listener: () => void): unknown;
  removeListener(event: "suspend" | "resume", listener: () => void): unknown;
}

/** What reacts: the scheduler (or nothing, while a daemon runs the schedules). */
export interface PowerTarget {
  /** Before sleep: start no new job (running ones journal each step as they go). */
  suspend(): void;
  /** After wake: look at the clock again; missed runs run once. */
  resume(): Promise<void>;
}

/** Connects the events to the target; returns the function that disconnects them. */
export function wirePower(
  events: PowerEvents,
  target: () => PowerTarget | null,
  report: (message: string) => void,
): () => void {
  const onSuspend = (): void => target()?.suspend();
  const onResume = (): void => {
    void target()
      ?.resume()
      .catch((error: unknown) =>
        report(`Catching up after sleep failed: ${error instanceof Error ? error.message : String(error)}`),
      );
  };
  events.on("suspend", onSuspend);
  events.on("resume", onResume);
  return () => {
    events.removeListener("suspend", onSuspend);
    events.removeListener("resume", onResume);
  };
}

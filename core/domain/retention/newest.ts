/**
 * Keep-N: the newest `keep` items stay, the older ones go, each with its reason. What the safety
 * snapshots of a VM and the exports of a VM on a target are kept by; schedules use the GFS policy
 * (gfs.ts), which also keeps by day, week and month. Pure, like it: applying it to its own kept
 * items removes nothing more.
 */
export interface KeptItem<T> {
  readonly item: T;
  /** "newest-1" for the newest, "newest-2" for the one before, ... */
  readonly reason: string;
}

export interface NewestResult<T> {
  /** Newest first. */
  readonly keep: readonly KeptItem<T>[];
  /** Oldest first: the order to remove them in, so an interruption leaves the newest. */
  readonly remove: readonly T[];
}

/** Splits `oldestFirst` (a list in the order things were made) into the newest `keep` and the rest. */
export function keepNewest<T>(oldestFirst: readonly T[], keep: number): NewestResult<T> {
  const kept = Math.max(0, Math.floor(keep));
  const cut = Math.max(0, oldestFirst.length - kept);
  return {
    keep: oldestFirst
      .slice(cut)
      .reverse()
      .map((item, index) => ({ item, reason: `newest-${index + 1}` })),
    remove: oldestFirst.slice(0, cut),
  };
}

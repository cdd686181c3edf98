/** How numbers and times read in the UI: binary units, short durations, local times. */

export function formatBytes(bytes: number | null): string {
  if (bytes === null) {
    return "-";
  }
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 10 || u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

export function formatRate(bytesPerSecond: number | null): string | null {
  return bytesPerSecond === null ? null : `${formatBytes(bytesPerSecond)}/s`;
}

/** "2 h 5 min", "4 min", "35 s". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) {
    return `${s} s`;
  }
  if (s < 3600) {
    return `${Math.round(s / 60)} min`;
  }
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

export function formatTime(iso: string | null): string {
  return iso === null ? "-" : new Date(iso).toLocaleString();
}

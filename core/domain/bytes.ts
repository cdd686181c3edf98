/**
 * Sizes for people, the same in the CLI, the errors and the UI (which imports this file): 1024-based
 * units, whole numbers from 10 up, one decimal below ("1.5 GiB", "2 GiB", "640 MiB").
 */
export function formatBytes(bytes: number | null): string {
  if (bytes === null) {
    return "-";
  }
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const shown = value >= 10 || unit === 0 ? String(Math.round(value)) : value.toFixed(1).replace(/\.0$/, "");
  return `${shown} ${units[unit]}`;
}

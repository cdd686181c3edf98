/**
 * Debian's Chromium as the UI tests and benchmark launch it: as root in a container (no sandbox),
 * and with none of its calls home, which this machine's closed network refuses many at a time.
 */
export const CHROMIUM_PATH = "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

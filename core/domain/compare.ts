/** Code-unit order: ISO timestamps sort correctly this way, and it is far cheaper than localeCompare. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

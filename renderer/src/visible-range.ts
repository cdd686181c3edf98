/** Which rows of a windowed list to render (see virtual.ts); pure, so it is unit-tested. */
export interface VisibleRange {
  readonly start: number;
  /** One past the last row to render. */
  readonly end: number;
  readonly padTop: number;
  readonly padBottom: number;
}

export function visibleRange(
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
  count: number,
  overscan = 8,
): VisibleRange {
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const start = Math.max(0, Math.min(count, first - overscan));
  const end = Math.min(count, first + Math.ceil(Math.max(0, viewportHeight) / rowHeight) + overscan);
  return {
    start,
    end: Math.max(start, end),
    padTop: start * rowHeight,
    padBottom: (count - Math.max(start, end)) * rowHeight,
  };
}

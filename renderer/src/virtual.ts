/**
 * Windowed lists: only the rows in view (plus a few either side) are in the DOM, so a VM with
 * thousands of snapshots or a host with hundreds of VMs costs what one screenful costs. Rows have
 * one fixed height; spacers stand in for the rest, so the scrollbar is true.
 */
import { useCallback, useEffect, useRef, useState, type RefObject, type UIEvent } from "react";

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

/**
 * The range to render for a scroll container. Before the container is measured it assumes
 * `initialHeight`, so the first paint already shows a full screen.
 */
export function useVirtualRows<T extends HTMLElement>(
  count: number,
  rowHeight: number,
  initialHeight: number,
): { ref: RefObject<T | null>; onScroll: (event: UIEvent<T>) => void; range: VisibleRange } {
  const ref = useRef<T | null>(null);
  const [view, setView] = useState({ top: 0, height: initialHeight });
  const onScroll = useCallback((event: UIEvent<T>) => {
    const el = event.currentTarget;
    setView({ top: el.scrollTop, height: el.clientHeight });
  }, []);
  useEffect(() => {
    const el = ref.current;
    if (el === null) {
      return undefined;
    }
    const observer = new ResizeObserver(() => setView({ top: el.scrollTop, height: el.clientHeight }));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  return { ref, onScroll, range: visibleRange(view.top, view.height, rowHeight, count) };
}

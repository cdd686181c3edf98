/**
 * Windowed lists: only the rows in view (plus a few either side) are in the DOM, so a VM with
 * thousands of snapshots or a host with hundreds of VMs costs what one screenful costs. Rows have
 * one fixed height; spacers stand in for the rest, so the scrollbar is true.
 */
import { useCallback, useRef, useState, type RefObject, type UIEvent } from "react";

import { visibleRange, type VisibleRange } from "./visible-range.js";

/**
 * The range to render for a scroll container. Before the container is measured it assumes
 * `initialHeight`, so the first paint already shows a full screen. The container is watched from
 * the moment it exists (a callback ref: a list may first render without it), until it goes.
 */
export function useVirtualRows<T extends HTMLElement>(
  count: number,
  rowHeight: number,
  initialHeight: number,
): {
  ref: (element: T | null) => void;
  element: RefObject<T | null>;
  onScroll: (event: UIEvent<T>) => void;
  range: VisibleRange;
} {
  const element = useRef<T | null>(null);
  const observer = useRef<ResizeObserver | null>(null);
  const [view, setView] = useState({ top: 0, height: initialHeight });
  const onScroll = useCallback((event: UIEvent<T>) => {
    const el = event.currentTarget;
    setView({ top: el.scrollTop, height: el.clientHeight });
  }, []);
  const ref = useCallback((el: T | null) => {
    observer.current?.disconnect();
    observer.current = null;
    element.current = el;
    if (el !== null) {
      observer.current = new ResizeObserver(() => setView({ top: el.scrollTop, height: el.clientHeight }));
      observer.current.observe(el);
    }
  }, []);
  return { ref, element, onScroll, range: visibleRange(view.top, view.height, rowHeight, count) };
}

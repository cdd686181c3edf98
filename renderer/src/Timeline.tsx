import { memo, useMemo, useState } from "react";

import type { Snapshot } from "../../core/api/contract.js";
import { layoutTimeline, type ZoomId } from "./timeline.js";
import { dateTime } from "./when.js";

const WIDTH = 900;
const LANE = 36;
const LEFT = 56;
const TOP = 8;

/** Memoized: the app re-renders on every store change, and the timeline's props rarely change. */
export const Timeline = memo(function Timeline({
  disks,
  snapshots,
  zoom,
  selected,
  onSelect,
}: {
  disks: readonly string[];
  snapshots: readonly Snapshot[];
  zoom: ZoomId;
  selected: string | null;
  onSelect: (tag: string) => void;
}) {
  const layout = useMemo(() => layoutTimeline(disks, snapshots, zoom, Date.now()), [disks, snapshots, zoom]);
  const height = TOP + layout.lanes.length * LANE + 24;
  const [hover, setHover] = useState<string | null>(null);
  const byTag = useMemo(() => new Map(snapshots.map((s) => [s.tag, s])), [snapshots]);
  const tagOf = (target: EventTarget): string | null =>
    target instanceof Element ? (target.getAttribute("data-tag") ?? null) : null;
  const hovered = hover === null ? undefined : byTag.get(hover);
  const hoveredCluster =
    hover === null ? undefined : layout.markers.find((m) => m.tag === hover && m.count > 1);
  const plot = WIDTH - LEFT - 12;
  return (
    <figure className="timeline">
      <svg
        viewBox={`0 0 ${WIDTH} ${height}`}
        role="img"
        aria-label={`Snapshot timeline, ${snapshots.length} snapshots`}
        // One handler for every marker (event delegation), not one per marker.
        onClick={(e) => {
          const tag = tagOf(e.target);
          if (tag !== null) {
            onSelect(tag);
          }
        }}
        onMouseOver={(e) => setHover(tagOf(e.target))}
        onMouseLeave={() => setHover(null)}
      >
        {layout.lanes.map((disk, i) => (
          <g key={disk}>
            <text x={8} y={TOP + i * LANE + LANE / 2 + 4} className="lane-label">
              {disk}
            </text>
            <line
              x1={LEFT}
              x2={WIDTH - 12}
              y1={TOP + i * LANE + LANE / 2}
              y2={TOP + i * LANE + LANE / 2}
              className="lane"
            />
          </g>
        ))}
        {layout.ticks.map((t) => (
          <text
            key={t.label + String(t.x)}
            x={LEFT + t.x * plot}
            y={height - 6}
            className="tick"
            // Labels near an end are anchored inside the plot, not cut off by the edge.
            textAnchor={t.x < 0.06 ? "start" : t.x > 0.94 ? "end" : "middle"}
          >
            {t.label}
          </text>
        ))}
        {layout.markers.map((m) => {
          // One element per marker: a timeline of a thousand snapshots must stay light. The
          // snapshot table below is the keyboard and screen-reader way to the same snapshots.
          const className = `marker kind-${m.kind}${m.pinned ? " pinned" : ""}${m.exported ? " exported" : ""}${selected !== null && m.tags.includes(selected) ? " selected" : ""}`;
          const cx = LEFT + m.x * plot;
          const cy = TOP + m.lane * LANE + LANE / 2;
          return m.count === 1 ? (
            <circle
              key={`${m.tag}/${m.disk}`}
              className={className}
              data-snapshot={m.name}
              data-tag={m.tag}
              cx={cx}
              cy={cy}
              r={m.pinned ? 8 : 6}
            />
          ) : (
            // Snapshots too close to tell apart at this zoom: one larger marker with their count;
            // a click selects the newest of them (its row in the table, with the others beside it).
            <g key={`${m.tag}/${m.disk}`} className="cluster" data-count={m.count}>
              <circle className={className} data-tag={m.tag} data-cluster={m.count} cx={cx} cy={cy} r={10} />
              <text x={cx} y={cy + 4} textAnchor="middle" className="cluster-count" data-tag={m.tag}>
                {m.count > 99 ? "99+" : m.count}
              </text>
            </g>
          );
        })}
      </svg>
      <figcaption>
        <span className="legend kind-manual">manual</span>
        <span className="legend kind-scheduled">scheduled</span>
        <span className="legend kind-safety">safety</span>
        <span className="legend kind-foreign">other tools</span>
        <span className="legend pinned">pinned (ring)</span>
        <span className="legend exported">exported (dashed ring)</span>
        {hovered !== undefined && (
          <span className="hover-label" role="status">
            {hoveredCluster !== undefined
              ? `${hoveredCluster.count} snapshots, ${dateTime(hoveredCluster.firstAt)} to ${dateTime(hoveredCluster.createdAt)}: click for the newest, or zoom in`
              : `${hovered.name} (${hovered.kind}${hovered.pinned ? ", pinned" : ""}) ${dateTime(hovered.createdAt)}`}
          </span>
        )}
        {layout.hidden > 0 && <span className="hidden-count">{layout.hidden} outside this range</span>}
      </figcaption>
    </figure>
  );
});

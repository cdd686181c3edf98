import { useMemo } from "react";

import type { Snapshot } from "./protocol.js";
import { layoutTimeline, type ZoomId } from "./timeline.js";

const WIDTH = 900;
const LANE = 36;
const LEFT = 56;
const TOP = 8;

export function Timeline({
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
  const plot = WIDTH - LEFT - 12;
  return (
    <figure className="timeline">
      <svg
        viewBox={`0 0 ${WIDTH} ${height}`}
        role="img"
        aria-label={`Snapshot timeline, ${snapshots.length} snapshots`}
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
            textAnchor="middle"
          >
            {t.label}
          </text>
        ))}
        {layout.markers.map((m) => (
          <g
            key={`${m.tag}/${m.disk}`}
            className={`marker kind-${m.kind}${m.pinned ? " pinned" : ""}${m.tag === selected ? " selected" : ""}`}
            data-snapshot={m.name}
            tabIndex={0}
            role="button"
            aria-label={`${m.name}, ${m.kind}${m.pinned ? ", pinned" : ""}, ${new Date(m.createdAt).toLocaleString()}, disk ${m.disk}`}
            onClick={() => onSelect(m.tag)}
            onKeyDown={(e) => {
              if (e.key === "Enter" || e.key === " ") {
                onSelect(m.tag);
              }
            }}
          >
            <title>{`${m.name} (${m.kind}) ${new Date(m.createdAt).toLocaleString()}`}</title>
            <circle cx={LEFT + m.x * plot} cy={TOP + m.lane * LANE + LANE / 2} r={m.pinned ? 8 : 6} />
          </g>
        ))}
      </svg>
      <figcaption>
        <span className="legend kind-manual">manual</span>
        <span className="legend kind-scheduled">scheduled</span>
        <span className="legend kind-safety">safety</span>
        <span className="legend kind-foreign">other tools</span>
        <span className="legend pinned">pinned (ring)</span>
        {layout.hidden > 0 && <span className="hidden-count">{layout.hidden} outside this range</span>}
      </figcaption>
    </figure>
  );
}

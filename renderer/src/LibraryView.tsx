import { useEffect } from "react";

import type { Artifact, HostVms } from "./protocol.js";
import { formatBytes, formatTime } from "./format.js";
import { TableHead } from "./TableHead.js";

/**
 * Templates and volumes on each host: what snapshots were turned into. A template starts new VMs;
 * a volume is attached to a VM. Deleting one is refused while a VM still uses it.
 */
export function LibraryView({
  hosts,
  artifacts,
  busy,
  onLoad,
  onNewVm,
  onAttach,
  onDelete,
}: {
  hosts: readonly HostVms[];
  artifacts: Readonly<Record<string, { templates: Artifact[]; volumes: Artifact[] }>>;
  busy: boolean;
  onLoad: (host: string) => void;
  onNewVm: (host: string, template: string) => void;
  onAttach: (host: string, volume: string) => void;
  onDelete: (host: string, artifact: Artifact) => void;
}) {
  const online = hosts.filter((h) => h.error === null).map((h) => h.host);
  useEffect(() => online.forEach(onLoad), [online.join("\n")]);
  return (
    <section className="page" aria-labelledby="library-title">
      <h2 id="library-title">Templates and volumes</h2>
      <p className="hint">
        Make them from a snapshot with “Copy out…” in a VM&apos;s snapshot list: a root disk becomes a
        template for new VMs, a data disk a volume to attach.
      </p>
      {online.map((host) => {
        const own = artifacts[host];
        return (
          <section key={host} aria-labelledby={`lib-${host}`}>
            <h3 id={`lib-${host}`}>{host}</h3>
            {own === undefined ? (
              <p className="empty">Loading…</p>
            ) : own.templates.length + own.volumes.length === 0 ? (
              <p className="empty">No templates or volumes on {host} yet.</p>
            ) : (
              <table className="artifacts">
                <TableHead columns={["Name", "Kind", "From", "Size", "Made"]} />
                <tbody>
                  {[...own.templates, ...own.volumes].map((a) => (
                    <tr key={`${a.kind}/${a.name}`} data-artifact={a.name}>
                      <td>{a.name}</td>
                      <td>{a.kind}</td>
                      <td>
                        {a.source.vmName} “{a.source.snapshotName}” {a.source.disk}
                      </td>
                      <td>{formatBytes(a.virtualSize)}</td>
                      <td>{formatTime(a.createdAt)}</td>
                      <td className="actions">
                        {a.kind === "template" ? (
                          <button type="button" disabled={busy} onClick={() => onNewVm(host, a.name)}>
                            New VM…
                          </button>
                        ) : (
                          <button type="button" disabled={busy} onClick={() => onAttach(host, a.name)}>
                            Attach…
                          </button>
                        )}
                        <button
                          type="button"
                          className="danger"
                          disabled={busy}
                          onClick={() => onDelete(host, a)}
                        >
                          Delete
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
        );
      })}
    </section>
  );
}

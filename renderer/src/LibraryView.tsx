import { useEffect } from "react";

import type { LibraryItem, ListedHost } from "../../core/api/contract.js";
import { formatBytes, formatTime } from "./format.js";
import type { HostLibrary } from "./slices/library.js";
import { TableHead } from "./TableHead.js";

/**
 * The library of each host: the templates and volumes snapshots were turned into. A template
 * starts new VMs; a volume is attached to a VM. Deleting one is refused while a VM still uses it.
 */
export function LibraryView({
  hosts,
  library,
  busy,
  onLoad,
  onNewVm,
  onAttach,
  onDelete,
}: {
  hosts: readonly ListedHost[];
  library: Readonly<Record<string, HostLibrary>>;
  busy: boolean;
  onLoad: (host: string) => void;
  onNewVm: (host: string, template: string) => void;
  onAttach: (host: string, volume: string) => void;
  onDelete: (host: string, item: LibraryItem) => void;
}) {
  const online = hosts.filter((h) => h.error === null).map((h) => h.host);
  useEffect(() => online.forEach(onLoad), [online.join("\n")]);
  return (
    <section className="page" aria-labelledby="library-title">
      <h2 id="library-title">Library</h2>
      <p className="hint">
        Templates and volumes, made from a snapshot with “Add to library…” in a VM&apos;s snapshot list: a
        root disk becomes a template for new VMs, a data disk a volume to attach.
      </p>
      {online.map((host) => {
        const own = library[host];
        return (
          <section key={host} aria-labelledby={`lib-${host}`}>
            <h3 id={`lib-${host}`}>{host}</h3>
            {own === undefined ? (
              <p className="empty">Loading…</p>
            ) : own.templates.length + own.volumes.length === 0 ? (
              <p className="empty">No templates or volumes on {host} yet.</p>
            ) : (
              <table className="library">
                <TableHead columns={["Name", "Kind", "From", "Size", "Made", "Used by"]} />
                <tbody>
                  {[...own.templates, ...own.volumes].map((a) => (
                    <tr key={`${a.kind}/${a.name}`} data-library-item={a.name}>
                      <td>{a.name}</td>
                      <td>{a.kind}</td>
                      <td>
                        {a.source.vmName} “{a.source.snapshotName}” {a.source.disk}
                      </td>
                      <td>{formatBytes(a.virtualSize)}</td>
                      <td className="nowrap">{formatTime(a.createdAt)}</td>
                      <td>
                        {a.usedBy === undefined || a.usedBy === null ? (
                          <span className="hint" title="The VMs' disks could not be read">
                            unknown
                          </span>
                        ) : a.usedBy.length === 0 ? (
                          <span className="hint">nothing</span>
                        ) : (
                          a.usedBy.join(", ")
                        )}
                      </td>
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
                          disabled={busy || (a.usedBy ?? []).length > 0}
                          title={
                            (a.usedBy ?? []).length > 0
                              ? `In use by ${(a.usedBy ?? []).join(", ")}: delete or detach that first`
                              : undefined
                          }
                          onClick={() => onDelete(host, a)}
                        >
                          Delete…
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

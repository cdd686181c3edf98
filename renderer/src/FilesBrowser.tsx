import { useEffect, useId, useRef, useState } from "react";

import type {
  ApiError,
  ParamsIn,
  ExportEntry,
  FilesOpened,
  GuestEntry,
  Snapshot,
  VmWithSnapshots,
} from "../../core/api/contract.js";
import { modeString } from "../../core/domain/files.js";
import { ErrorBox } from "./ErrorBox.js";
import { diskLabel, formatBytes, formatTime } from "./format.js";
import { Modal } from "./Modal.js";
import { asApiError } from "./slices/types.js";
import type { AppState } from "./store.js";

/** What a file browser reads: a snapshot of a VM (on its host), or an export on a target (there). */
export type BrowseSource =
  | { readonly kind: "snapshot"; readonly vm: VmWithSnapshots; readonly snapshot: Snapshot }
  | { readonly kind: "export"; readonly target: string; readonly entry: ExportEntry };

/**
 * A snapshot's or an export's files, read-only (issue 19): choose the disk (and a file system
 * when the disk has several and no OS says how they mount), walk the folders, download a file as
 * it is or a folder as a .tar. One browse stays open while the dialog is (its appliance starts
 * once); closing the dialog closes it. An export is read where it is, only what is shown crossing.
 */
export function FilesBrowser({
  source,
  request,
  onClose,
}: {
  source: BrowseSource;
  request: AppState["request"];
  onClose: () => void;
}) {
  const title = useId();
  const about = describeSource(source);
  const [disk, setDisk] = useState(
    about.disks.find((d) => d.role === "root")?.target ?? about.disks[0]?.target ?? "",
  );
  const [fs, setFs] = useState<string | null>(null);
  const browse = useBrowse(about.params, disk, fs, request);
  const choices = fsChoices(browse.error);
  return (
    <Modal labelledBy={title} onClose={onClose} className="files-browser">
      <h2 id={title}>{about.title}</h2>
      <p className="hint">
        Read-only: nothing in the {source.kind === "snapshot" ? "snapshot or the VM" : "export"} changes.
        Downloads come to this computer.
      </p>
      <div className="files-choose">
        <label>
          Disk{" "}
          <select
            value={disk}
            onChange={(e) => {
              setFs(null);
              setDisk(e.target.value);
            }}
          >
            {about.disks.map((d) => (
              <option key={d.target} value={d.target}>
                {diskLabel(d.target, d.role)}
              </option>
            ))}
          </select>
        </label>
        {(choices.length > 0 || fs !== null) && (
          <label>
            File system{" "}
            <select value={fs ?? ""} onChange={(e) => setFs(e.target.value === "" ? null : e.target.value)}>
              <option value="">Choose…</option>
              {(choices.length > 0 ? choices : [{ device: fs ?? "", type: "" }]).map((c) => (
                <option key={c.device} value={c.device}>
                  {c.device} {c.type}
                </option>
              ))}
            </select>
          </label>
        )}
        {browse.opened !== null && (
          <span className="hint">
            {browse.opened.mounts.map((m) => `${m.device} (${m.type}) at ${m.mountpoint}`).join(", ")}
          </span>
        )}
      </div>
      {browse.state === "opening" && (
        <p className="empty" role="status">
          Starting the file browser {about.where}… (a small VM reads the disk: seconds with KVM, longer
          without)
        </p>
      )}
      {browse.error !== null && choices.length === 0 && <ErrorBox error={browse.error} />}
      {browse.error !== null && choices.length > 0 && (
        <p className="hint" role="status">
          This disk has several file systems: choose one above.
        </p>
      )}
      {browse.opened !== null && <Folder browse={browse} />}
      <div className="buttons">
        <button type="button" className="primary" onClick={onClose}>
          Close
        </button>
      </div>
    </Modal>
  );
}

type Browse = ReturnType<typeof useBrowse>;

/** The dialog's words and the browse's parameters for a source. */
function describeSource(source: BrowseSource): {
  title: string;
  where: string;
  disks: readonly { target: string; role: "root" | "additional" | undefined }[];
  params: Omit<ParamsIn<"files.open">, "disk" | "fs">;
} {
  if (source.kind === "snapshot") {
    const { vm, snapshot } = source;
    return {
      title: `Files in “${snapshot.name}” of ${vm.name}`,
      where: `on ${vm.host}`,
      disks: snapshot.disks.map((d) => ({
        target: d.target,
        role: vm.disks.find((x) => x.target === d.target)?.role,
      })),
      params: { host: vm.host, vm: vm.uuid, snapshot: snapshot.tag },
    };
  }
  const { target, entry } = source;
  const from = entry.manifest?.source;
  // No host: an export is read on its target (the manifest's host is only a record).
  return {
    title: `Files in export ${entry.id} of ${entry.vmName} on ${target}`,
    where: `here, reading the export on ${target}`,
    disks: (entry.manifest?.disks ?? []).map((d) => ({ target: d.target, role: d.role })),
    params: { vm: from?.vm.uuid ?? entry.vmUuid, export: { target, id: entry.id } },
  };
}

/** One open browse for the chosen disk and file system; the folder shown and its entries. */
function useBrowse(
  params: Omit<ParamsIn<"files.open">, "disk" | "fs">,
  disk: string,
  fs: string | null,
  request: AppState["request"],
) {
  const [state, setState] = useState<"opening" | "ready" | "listing" | "failed">("opening");
  const [opened, setOpened] = useState<(FilesOpened & { session: string }) | null>(null);
  const [path, setPath] = useState("/");
  const [entries, setEntries] = useState<readonly GuestEntry[]>([]);
  const [error, setError] = useState<ApiError | null>(null);
  const session = useRef<string | null>(null);
  useEffect(() => {
    let live = true;
    setState("opening");
    setOpened(null);
    setError(null);
    setEntries([]);
    setPath("/");
    void (async () => {
      try {
        const answer = await request("files.open", {
          ...params,
          disk,
          ...(fs === null ? {} : { fs }),
        });
        if (!live) {
          void request("files.close", { session: answer.session });
          return;
        }
        session.current = answer.session;
        setOpened(answer);
        const listed = await request("files.list", { session: answer.session, path: "/" });
        if (live) {
          setEntries(listed.entries);
          setState("ready");
        }
      } catch (e) {
        if (live) {
          setError(asApiError(e));
          setState("failed");
        }
      }
    })();
    return () => {
      live = false;
      if (session.current !== null) {
        void request("files.close", { session: session.current }).catch(() => undefined);
        session.current = null;
      }
    };
  }, [JSON.stringify(params), disk, fs, request]);
  const open = async (to: string): Promise<void> => {
    if (session.current === null) {
      return;
    }
    setState("listing");
    setError(null);
    try {
      const listed = await request("files.list", { session: session.current, path: to });
      setEntries(listed.entries);
      setPath(listed.path);
      setState("ready");
    } catch (e) {
      setError(asApiError(e));
      setState("ready");
    }
  };
  const download = async (entry: GuestEntry): Promise<void> => {
    if (session.current === null) {
      return;
    }
    setError(null);
    try {
      const answer = await request("files.download", { session: session.current, path: entry.path });
      // A link with `download`: the browser saves the answer (never a navigation away).
      const link = document.createElement("a");
      link.href = answer.url;
      link.download = answer.name;
      link.rel = "noopener";
      document.body.append(link);
      link.click();
      link.remove();
    } catch (e) {
      setError(asApiError(e));
    }
  };
  return { state, opened, path, entries, error, open, download };
}

function Folder({ browse }: { browse: Browse }) {
  const parts = browse.path.split("/").filter((p) => p !== "");
  return (
    <div className="files-folder">
      <nav className="crumbs" aria-label="Folder">
        <button type="button" onClick={() => void browse.open("/")} disabled={browse.state === "listing"}>
          /
        </button>
        {parts.map((part, i) => (
          <span key={`${i}-${part}`}>
            {i > 0 && " / "}
            <button
              type="button"
              onClick={() => void browse.open(`/${parts.slice(0, i + 1).join("/")}`)}
              disabled={browse.state === "listing" || i === parts.length - 1}
            >
              {part}
            </button>
          </span>
        ))}
      </nav>
      <div className="files-scroll">
        <table className="files">
          <thead>
            <tr>
              <th>Name</th>
              <th>Size</th>
              <th>Changed</th>
              <th>Mode</th>
              <th>
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {browse.path !== "/" && (
              <tr>
                <td colSpan={5}>
                  <button
                    type="button"
                    className="link"
                    onClick={() => void browse.open(`/${parts.slice(0, -1).join("/")}`)}
                    disabled={browse.state === "listing"}
                  >
                    .. (up)
                  </button>
                </td>
              </tr>
            )}
            {browse.entries.length === 0 && browse.state !== "listing" && (
              <tr>
                <td colSpan={5} className="empty">
                  An empty folder.
                </td>
              </tr>
            )}
            {browse.entries.map((e) => (
              <EntryRow key={e.path} entry={e} browse={browse} />
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function EntryRow({ entry, browse }: { entry: GuestEntry; browse: Browse }) {
  // Guest names are data: React writes them as text; a newline shows as ⏎ so a row stays one line.
  const shown = entry.name.replace(/\n/g, "⏎");
  return (
    <tr>
      <td className="clip" title={entry.name}>
        {entry.type === "dir" ? (
          <button
            type="button"
            className="link"
            onClick={() => void browse.open(entry.path)}
            disabled={browse.state === "listing"}
          >
            {shown}/
          </button>
        ) : (
          <span>
            {shown}
            {entry.type === "symlink" && <span className="muted"> → {entry.target ?? "?"}</span>}
          </span>
        )}
      </td>
      <td>{entry.type === "file" ? formatBytes(entry.size) : ""}</td>
      <td>{formatTime(entry.mtime)}</td>
      <td className="mono">{modeString(entry.mode)}</td>
      <td className="actions">
        {(entry.type === "file" || entry.type === "dir") && (
          <button
            type="button"
            onClick={() => void browse.download(entry)}
            aria-label={`Download ${entry.name}${entry.type === "dir" ? " as a .tar archive" : ""}`}
          >
            {entry.type === "dir" ? "Download .tar" : "Download"}
          </button>
        )}
      </td>
    </tr>
  );
}

/** The file systems a "choose one" error offers, for the chooser. */
function fsChoices(error: ApiError | null): readonly { device: string; type: string }[] {
  return error?.action?.do === "choose-filesystem" ? error.action.filesystems : [];
}

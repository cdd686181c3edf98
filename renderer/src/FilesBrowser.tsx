import { useEffect, useId, useRef, useState } from "react";

import type {
  ApiError,
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

/**
 * A snapshot's files, read-only (issue 19): choose the disk (and a file system when the disk has
 * several and no OS says how they mount), walk the folders, download a file as it is or a folder
 * as a .tar. One browse on the host stays open while the dialog is (its appliance starts once);
 * closing the dialog closes it.
 */
export function FilesBrowser({
  vm,
  snapshot,
  request,
  onClose,
}: {
  vm: VmWithSnapshots;
  snapshot: Snapshot;
  request: AppState["request"];
  onClose: () => void;
}) {
  const title = useId();
  const disks = snapshot.disks.map((d) => d.target);
  const [disk, setDisk] = useState(
    vm.disks.find((d) => d.role === "root" && disks.includes(d.target))?.target ?? disks[0] ?? "",
  );
  const [fs, setFs] = useState<string | null>(null);
  const browse = useBrowse(vm, snapshot, disk, fs, request);
  const choices = fsChoices(browse.error);
  return (
    <Modal labelledBy={title} onClose={onClose} className="files-browser">
      <h2 id={title}>
        Files in “{snapshot.name}” of {vm.name}
      </h2>
      <p className="hint">
        Read-only: nothing in the snapshot or the VM changes. Downloads come to this computer.
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
            {disks.map((d) => (
              <option key={d} value={d}>
                {diskLabel(d, vm.disks.find((x) => x.target === d)?.role)}
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
          Starting the file browser on {vm.host}… (a small VM reads the disk: seconds with KVM, longer
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

/** One open browse for the chosen disk and file system; the folder shown and its entries. */
function useBrowse(
  vm: VmWithSnapshots,
  snapshot: Snapshot,
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
          host: vm.host,
          vm: vm.uuid,
          snapshot: snapshot.tag,
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
  }, [vm.host, vm.uuid, snapshot.tag, disk, fs, request]);
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

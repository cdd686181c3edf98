import { useEffect, useId, useState, type FormEvent } from "react";
import { useStore } from "zustand";

import type { HostConfig, ListedHost, Target, TargetTest } from "../../core/api/contract.js";
import { useConfirm } from "./Confirm.js";
import type { AppStore } from "./store.js";
import { DesktopSettings } from "./DesktopSettings.js";
import { isDesktop } from "./transports.js";
import { signOut, webSession } from "./web-session.js";
import { formatBytes } from "./format.js";
import { TableHead } from "./TableHead.js";

/** A host key waiting for the person to compare it with the one the host prints. */
interface PendingTrust {
  readonly kind: "host" | "target";
  readonly name: string;
  readonly fingerprint: string;
}

const HOST_KEY_COMMAND = "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub";

/**
 * Hosts, export targets and the safety-snapshot count. SSH hosts and targets are saved untrusted:
 * the key they offer is shown, and only pinned once the person confirms it matches the host's own.
 */
export function SettingsView({ store }: { store: AppStore }) {
  const state = useStore(store);
  const [pending, setPending] = useState<PendingTrust | null>(null);
  // The VM list reloads on every change event; hosts and targets may have changed with it.
  useEffect(() => {
    void store.getState().loadSettings();
  }, [store, state.hosts]);

  const askTrust = async (kind: "host" | "target", name: string): Promise<void> => {
    const fingerprint = await state.offeredFingerprint(kind, name);
    if (fingerprint !== null) {
      setPending({ kind, name, fingerprint });
    }
  };
  return (
    <section className="page settings" aria-labelledby="settings-title">
      <header className="page-head">
        <h2 id="settings-title">Settings</h2>
        {state.busy !== null && (
          <span className="busy" role="status">
            {state.busy}…
          </span>
        )}
      </header>
      {pending !== null && (
        <FingerprintCheck
          pending={pending}
          busy={state.busy !== null}
          onTrust={async () => {
            const trusted =
              pending.kind === "host"
                ? await state.trustHost(pending.name, pending.fingerprint)
                : await state.trustTarget(pending.name, pending.fingerprint);
            if (trusted) {
              setPending(null);
            }
          }}
          onLater={() => setPending(null)}
        />
      )}
      <HostsSection
        hosts={state.hostConfigs}
        vms={state.hosts}
        busy={state.busy !== null}
        onAdd={async (request) => {
          const added = await state.addHost(request);
          if (added !== null && !added.trusted && added.offeredFingerprint !== null) {
            setPending({ kind: "host", name: request.name, fingerprint: added.offeredFingerprint });
          }
          return added !== null;
        }}
        onCheck={(name) => void askTrust("host", name)}
        onRemove={(name) => void state.removeHost(name)}
      />
      <TargetsSection
        targets={state.targets}
        busy={state.busy !== null}
        onAdd={async (request) => {
          const added = await state.addTarget(request);
          if (added !== null && !added.trusted && added.offeredFingerprint !== null) {
            setPending({ kind: "target", name: request.name, fingerprint: added.offeredFingerprint });
          }
          return added !== null;
        }}
        onCheck={(name) => void askTrust("target", name)}
        tests={state.targetTests}
        onTest={(name, create) => void state.testTarget(name, create)}
        onRemove={(name) => void state.removeTarget(name)}
      />
      <SafetySection
        keep={state.safetyKeep}
        busy={state.busy !== null}
        onSave={(keep) => void state.setSafetyKeep(keep)}
      />
      {isDesktop() && <DesktopSettings busy={state.busy !== null} call={state.call} />}
      <AboutSection />
    </section>
  );
}

/** The version, and for a page signed in through `serve --listen` the certificate and sign-out. */
function AboutSection() {
  const id = useId();
  const session = webSession();
  return (
    <section className="about" aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>About</h3>
      <p>
        Snapkeep <span aria-label="Version">{__SNAPKEEP_VERSION__}</span>
      </p>
      {session !== null && (
        <>
          <p>
            You are signed in to this server. Its certificate’s SHA-256 fingerprint:
            <code className="key" aria-label="Server certificate fingerprint">
              {session.fingerprint}
            </code>
          </p>
          <div className="buttons">
            <button type="button" onClick={() => void signOut()}>
              Sign out
            </button>
          </div>
        </>
      )}
    </section>
  );
}

function FingerprintCheck({
  pending,
  busy,
  onTrust,
  onLater,
}: {
  pending: PendingTrust;
  busy: boolean;
  onTrust: () => Promise<void>;
  onLater: () => void;
}) {
  const id = useId();
  const what = pending.kind === "host" ? "host" : "export target";
  return (
    <section className="fingerprint" aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>
        Is this the host key of {what} {pending.name}?
      </h3>
      <p>
        It offered this fingerprint:
        <code className="key" aria-label="Offered fingerprint">
          {pending.fingerprint}
        </code>
      </p>
      <p>
        On that machine, <code>{HOST_KEY_COMMAND}</code> prints its own (for an RSA or ECDSA key, use that
        key’s .pub file). Trust it only if the two match: until then Snapkeep runs nothing there. A mismatch
        means you may be talking to another machine.
      </p>
      <div className="buttons">
        <button type="button" onClick={onLater} disabled={busy}>
          Not now
        </button>
        <button type="button" className="primary" onClick={() => void onTrust()} disabled={busy} autoFocus>
          It matches — trust {pending.name}
        </button>
      </div>
    </section>
  );
}

function sshAddress(host: {
  user?: string | undefined;
  host?: string | undefined;
  port?: number | undefined;
}) {
  return `${host.user === undefined ? "" : `${host.user}@`}${host.host ?? ""}${host.port === undefined ? "" : `:${host.port}`}`;
}

function hostAddress(host: HostConfig): string {
  if (host.kind === "local") {
    return host.uri;
  }
  return host.alias ?? sshAddress(host);
}

function hostStatus(host: HostConfig, vms: readonly ListedHost[]) {
  // Its "not trusted yet" error repeats the host key column; say what it waits for instead.
  if (host.kind === "ssh" && host.hostKey === undefined) {
    return <span className="muted">waits until its host key is confirmed</span>;
  }
  const listed = vms.find((h) => h.host === host.name);
  if (listed === undefined) {
    return <span className="muted">not checked yet</span>;
  }
  if (listed.error !== null) {
    return (
      <>
        <span className="dot offline" /> <span className="status-error">{listed.error}</span>
      </>
    );
  }
  return (
    <>
      <span className="dot online" /> online, {listed.vms.length} VM{listed.vms.length === 1 ? "" : "s"}
    </>
  );
}

function HostsSection({
  hosts,
  vms,
  busy,
  onAdd,
  onCheck,
  onRemove,
}: {
  hosts: readonly HostConfig[];
  vms: readonly ListedHost[];
  busy: boolean;
  onAdd: (request: { name: string; local: boolean; ssh?: string; identityFile?: string }) => Promise<boolean>;
  onCheck: (name: string) => void;
  onRemove: (name: string) => void;
}) {
  const id = useId();
  const confirm = useConfirm();
  const hasLocal = hosts.some((h) => h.kind === "local");
  const [local, setLocal] = useState(!hasLocal);
  const [name, setName] = useState(hasLocal ? "" : "local");
  const [ssh, setSsh] = useState("");
  const [identity, setIdentity] = useState("");
  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    const sent = { name, ssh, identity };
    const added = await onAdd({
      name: name.trim(),
      local,
      ...(local ? {} : { ssh: ssh.trim() }),
      ...(local || identity.trim() === "" ? {} : { identityFile: identity.trim() }),
    });
    if (added) {
      // Only what was sent is cleared: the person may have started on the next host meanwhile.
      setName((now) => (now === sent.name ? "" : now));
      setSsh((now) => (now === sent.ssh ? "" : now));
      setIdentity((now) => (now === sent.identity ? "" : now));
      // This computer is there now; the next host is an SSH one.
      setLocal(false);
    }
  };
  return (
    <section aria-labelledby={`${id}-title`}>
      {confirm.dialog}
      <h3 id={`${id}-title`}>Hosts</h3>
      {hosts.length === 0 ? (
        <p className="empty">No hosts yet. Add this computer or a machine you reach over SSH.</p>
      ) : (
        <table aria-labelledby={`${id}-title`}>
          <TableHead columns={["Name", "Kind", "Address", "Host key", "Status"]} />
          <tbody>
            {hosts.map((h) => (
              <tr key={h.name}>
                <td>{h.name}</td>
                <td>{h.kind === "local" ? "This computer" : "SSH"}</td>
                <td className="path">{hostAddress(h)}</td>
                <td>
                  {h.kind === "local" ? (
                    <span className="muted">not needed</span>
                  ) : h.hostKey === undefined ? (
                    <span className="badge status-failing">not trusted</span>
                  ) : (
                    <>
                      <span className="badge status-active">trusted</span>{" "}
                      <code className="key">{h.hostKey}</code>
                    </>
                  )}
                </td>
                <td>{hostStatus(h, vms)}</td>
                <td className="actions">
                  {h.kind === "ssh" && h.hostKey === undefined && (
                    <button type="button" disabled={busy} onClick={() => onCheck(h.name)}>
                      Check host key…
                    </button>
                  )}
                  <button
                    type="button"
                    className="danger"
                    disabled={busy}
                    onClick={() =>
                      void confirm
                        .ask({
                          title: `Remove host ${h.name}?`,
                          body: (
                            <p>
                              Snapkeep stops showing its VMs. Nothing on the host changes: its VMs, snapshots
                              and images stay, and adding it again under the same name brings back notes and
                              pins.
                            </p>
                          ),
                          action: "Remove host",
                          danger: true,
                        })
                        .then((yes) => {
                          if (yes) {
                            onRemove(h.name);
                          }
                        })
                    }
                  >
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form className="add-form" onSubmit={(e) => void submit(e)} aria-labelledby={`${id}-add`}>
        <h4 id={`${id}-add`}>Add a host</h4>
        <div className="choice" role="radiogroup" aria-label="Kind of host">
          <label className="check">
            <input
              type="radio"
              name={`${id}-kind`}
              checked={local}
              onChange={() => {
                setLocal(true);
                if (name === "") {
                  setName("local");
                }
              }}
            />
            This computer
          </label>
          <label className="check">
            <input type="radio" name={`${id}-kind`} checked={!local} onChange={() => setLocal(false)} />
            An SSH host
          </label>
        </div>
        <div className="form-grid">
          <label htmlFor={`${id}-name`}>Name</label>
          <input
            id={`${id}-name`}
            value={name}
            onChange={(e) => setName(e.target.value)}
            placeholder={local ? "local" : "web01"}
            required
            maxLength={63}
          />
          {!local && (
            <>
              <label htmlFor={`${id}-ssh`}>SSH address</label>
              <input
                id={`${id}-ssh`}
                value={ssh}
                onChange={(e) => setSsh(e.target.value)}
                placeholder="admin@web01.lan:22"
                required
                spellCheck={false}
                aria-describedby={`${id}-ssh-hint`}
              />
              <p className="hint span2" id={`${id}-ssh-hint`}>
                user@host[:port], or a Host name from ~/.ssh/config. The user must be allowed to use libvirt
                (root, or in the libvirt group).
              </p>
              <label htmlFor={`${id}-identity`}>Identity file</label>
              <input
                id={`${id}-identity`}
                value={identity}
                onChange={(e) => setIdentity(e.target.value)}
                placeholder="~/.ssh/id_ed25519 (optional)"
                spellCheck={false}
                aria-describedby={`${id}-identity-hint`}
              />
              <p className="hint span2" id={`${id}-identity-hint`}>
                Empty: the keys of ssh-agent or ~/.ssh/config are used.
              </p>
            </>
          )}
        </div>
        <div className="buttons">
          <button type="submit" className="primary" disabled={busy || name.trim() === ""}>
            {local ? "Add this computer" : "Add SSH host"}
          </button>
        </div>
      </form>
    </section>
  );
}

function targetLocation(target: Target): string {
  return target.kind === "dir" ? target.path : `${sshAddress(target)}:${target.path}`;
}

/**
 * A test's answer. A missing folder is usually a disk that is not mounted: it is said as such,
 * and made only when the person presses "Create it"; a folder on the system disk is warned about.
 */
function TargetTestResult({
  result,
  busy,
  onCreate,
}: {
  result: TargetTest | undefined;
  busy: boolean;
  onCreate: () => void;
}) {
  if (result === undefined) {
    return <span className="muted nowrap">not tested</span>;
  }
  if (result.state === "missing") {
    return (
      <div className="test-result test-missing" role="alert">
        <strong>{result.message}</strong>
        <p>{result.detail}</p>
        <button type="button" disabled={busy} onClick={onCreate}>
          Create it
        </button>
      </div>
    );
  }
  return (
    <span className="test-result">
      {result.created && (
        <>
          Created {result.path}.<br />
        </>
      )}
      writable, {formatBytes(result.freeBytes)} free on {result.mountPoint}
      <br />
      {result.rsync ?? "no rsync on this computer"}
      {result.warning !== null && (
        <span className="test-warning" role="alert">
          <br />
          Warning: {result.warning}
        </span>
      )}
    </span>
  );
}

function TargetsSection({
  targets,
  busy,
  onAdd,
  onCheck,
  tests,
  onTest,
  onRemove,
}: {
  targets: readonly Target[];
  busy: boolean;
  onAdd: (request: {
    name: string;
    dir?: string;
    ssh?: string;
    identityFile?: string;
    keep?: number;
  }) => Promise<boolean>;
  onCheck: (name: string) => void;
  tests: Readonly<Record<string, TargetTest>>;
  onTest: (name: string, create?: boolean) => void;
  onRemove: (name: string) => void;
}) {
  const id = useId();
  const confirm = useConfirm();
  const [folder, setFolder] = useState(true);
  const [name, setName] = useState("");
  const [location, setLocation] = useState("");
  const [identity, setIdentity] = useState("");
  const [keep, setKeep] = useState("");
  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    const sent = { name, location, identity, keep };
    const added = await onAdd({
      name: name.trim(),
      ...(folder ? { dir: location.trim() } : { ssh: location.trim() }),
      ...(folder || identity.trim() === "" ? {} : { identityFile: identity.trim() }),
      ...(keep.trim() === "" ? {} : { keep: Number(keep) }),
    });
    if (added) {
      // Only what was sent is cleared: the person may have started on the next target meanwhile.
      setName((now) => (now === sent.name ? "" : now));
      setLocation((now) => (now === sent.location ? "" : now));
      setIdentity((now) => (now === sent.identity ? "" : now));
      setKeep((now) => (now === sent.keep ? "" : now));
    }
  };
  return (
    <section aria-labelledby={`${id}-title`}>
      {confirm.dialog}
      <h3 id={`${id}-title`}>Export targets</h3>
      <p className="hint">
        Where copies of snapshots go, off the host: a folder (a NAS mount, a USB disk) or an SSH host.
      </p>
      {targets.length === 0 ? (
        <p className="empty">No export targets yet.</p>
      ) : (
        <table aria-labelledby={`${id}-title`}>
          <TableHead columns={["Name", "Kind", "Location", "Keeps", "Host key", "Test"]} />
          <tbody>
            {targets.map((t) => {
              const result = tests[t.name];
              return (
                <tr key={t.name}>
                  <td>{t.name}</td>
                  <td>{t.kind === "dir" ? "Folder" : "SSH"}</td>
                  <td className="path">{targetLocation(t)}</td>
                  <td className="nowrap">{t.keep === undefined ? "all" : `${t.keep} per VM`}</td>
                  <td>
                    {t.kind === "dir" ? (
                      <span className="muted">not needed</span>
                    ) : t.hostKey === undefined ? (
                      <span className="badge status-failing">not trusted</span>
                    ) : (
                      <>
                        <span className="badge status-active">trusted</span>{" "}
                        <code className="key">{t.hostKey}</code>
                      </>
                    )}
                  </td>
                  <td aria-live="polite">
                    <TargetTestResult result={result} busy={busy} onCreate={() => onTest(t.name, true)} />
                  </td>
                  <td className="actions">
                    {t.kind === "ssh" && t.hostKey === undefined && (
                      <button type="button" disabled={busy} onClick={() => onCheck(t.name)}>
                        Check host key…
                      </button>
                    )}
                    <button type="button" disabled={busy} onClick={() => onTest(t.name)}>
                      Test
                    </button>
                    <button
                      type="button"
                      className="danger"
                      disabled={busy}
                      onClick={() =>
                        void confirm
                          .ask({
                            title: `Remove export target ${t.name}?`,
                            body: <p>Snapkeep forgets it; the exports already there stay where they are.</p>,
                            action: "Remove target",
                            danger: true,
                          })
                          .then((yes) => {
                            if (yes) {
                              onRemove(t.name);
                            }
                          })
                      }
                    >
                      Remove
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <form className="add-form" onSubmit={(e) => void submit(e)} aria-labelledby={`${id}-add`}>
        <h4 id={`${id}-add`}>Add an export target</h4>
        <div className="choice" role="radiogroup" aria-label="Kind of target">
          <label className="check">
            <input type="radio" name={`${id}-kind`} checked={folder} onChange={() => setFolder(true)} />A
            folder on this computer
          </label>
          <label className="check">
            <input type="radio" name={`${id}-kind`} checked={!folder} onChange={() => setFolder(false)} />A
            folder on an SSH host
          </label>
        </div>
        <div className="form-grid">
          <label htmlFor={`${id}-name`}>Name</label>
          <input
            id={`${id}-name`}
            value={name}
            onChange={(e) => setName(e.target.value)}
            placeholder={folder ? "usb" : "nas"}
            required
            maxLength={64}
          />
          <label htmlFor={`${id}-location`}>{folder ? "Folder" : "SSH address and folder"}</label>
          <input
            id={`${id}-location`}
            value={location}
            onChange={(e) => setLocation(e.target.value)}
            placeholder={folder ? "/media/usb/vm-exports" : "backup@nas.lan:/srv/vm-exports"}
            required
            spellCheck={false}
          />
          {!folder && (
            <>
              <label htmlFor={`${id}-identity`}>Identity file</label>
              <input
                id={`${id}-identity`}
                value={identity}
                onChange={(e) => setIdentity(e.target.value)}
                placeholder="~/.ssh/id_ed25519 (optional)"
                spellCheck={false}
              />
            </>
          )}
          <label htmlFor={`${id}-keep`}>Keep per VM</label>
          <input
            id={`${id}-keep`}
            type="number"
            min={1}
            max={1000}
            value={keep}
            onChange={(e) => setKeep(e.target.value)}
            placeholder="all"
            aria-describedby={`${id}-keep-hint`}
          />
          <p className="hint span2" id={`${id}-keep-hint`}>
            The newest verified exports of each VM to keep there; empty keeps all.
          </p>
        </div>
        <div className="buttons">
          <button
            type="submit"
            className="primary"
            disabled={busy || name.trim() === "" || location.trim() === ""}
          >
            Add target
          </button>
        </div>
      </form>
    </section>
  );
}

function SafetySection({
  keep,
  busy,
  onSave,
}: {
  keep: number | null;
  busy: boolean;
  onSave: (keep: number) => void;
}) {
  const id = useId();
  const [value, setValue] = useState<string | null>(null);
  const shown = value ?? (keep === null ? "" : String(keep));
  return (
    <section aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>Safety snapshots</h3>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          onSave(Number(shown));
          setValue(null);
        }}
      >
        <label htmlFor={`${id}-keep`}>Kept per VM</label>
        <input
          id={`${id}-keep`}
          type="number"
          min={1}
          max={100}
          required
          value={shown}
          onChange={(e) => setValue(e.target.value)}
          aria-describedby={`${id}-hint`}
        />
        <button type="submit" disabled={busy || value === null || String(keep) === value}>
          Save
        </button>
      </form>
      <p className="hint" id={`${id}-hint`}>
        Every revert first takes a safety snapshot of today’s disks, so the revert can be undone. The newest
        ones are kept, older ones deleted; pinned ones always stay.
      </p>
    </section>
  );
}

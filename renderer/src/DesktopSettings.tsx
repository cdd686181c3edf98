import { useEffect, useId, useState } from "react";

import type { DesktopResult, NotificationSettings } from "../../core/api/contract.js";
import type { UiSlice } from "./store.js";

/**
 * Settings only the desktop app has (answered by its main process, not the core API): start on
 * login, which notifications to show, and a key passphrase kept by the desktop keyring. In a
 * browser (`snapkeep serve`) there is no such app, and this section is not shown.
 */
type Kind = keyof NotificationSettings;
const KINDS: readonly { kind: Kind; label: string }[] = [
  { kind: "jobFailed", label: "A scheduled snapshot failed or was interrupted" },
  { kind: "vmOverdue", label: "A VM's scheduled snapshot is overdue" },
  { kind: "exportVerified", label: "An export was verified on its target" },
];

type Secrets = DesktopResult<"desktop.secrets">;

export function DesktopSettings({ busy, call }: { busy: boolean; call: UiSlice["call"] }) {
  const id = useId();
  const [autostart, setAutostart] = useState<boolean | null>(null);
  const [notify, setNotify] = useState<NotificationSettings | null>(null);
  const [secrets, setSecrets] = useState<Secrets | null>(null);
  const [passphrase, setPassphrase] = useState("");
  const load = async (): Promise<void> => {
    const [a, n, s] = await Promise.all([
      call("Reading desktop settings", "desktop.autostart", {}),
      call("Reading desktop settings", "desktop.notifications", {}),
      call("Reading desktop settings", "desktop.secrets", {}),
    ]);
    setAutostart(a?.enabled ?? null);
    setNotify(n);
    setSecrets(s);
  };
  useEffect(() => void load(), []);

  return (
    <section aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>Desktop app</h3>
      <label className="check">
        <input
          type="checkbox"
          checked={autostart === true}
          disabled={busy || autostart === null}
          onChange={async (e) => {
            const set = await call("Saving", "desktop.autostart", {
              enabled: e.target.checked,
            });
            setAutostart(set?.enabled ?? autostart);
          }}
        />
        Start Snapkeep when I log in (in the tray, so schedules keep running)
      </label>
      <fieldset>
        <legend>Notify me when</legend>
        {KINDS.map(({ kind, label }) => (
          <label key={kind} className="check">
            <input
              type="checkbox"
              checked={notify?.[kind] === true}
              disabled={busy || notify === null}
              onChange={async (e) => {
                const saved = await call("Saving", "desktop.notifications", {
                  [kind]: e.target.checked,
                });
                setNotify(saved ?? notify);
              }}
            />
            {label}
          </label>
        ))}
      </fieldset>
      <fieldset>
        <legend>SSH key passphrase</legend>
        {secrets === null ? null : secrets.stored ? (
          <p>
            A passphrase is stored, encrypted by your desktop keyring.{" "}
            <button
              type="button"
              disabled={busy}
              onClick={async () => {
                setSecrets((await call("Forgetting", "desktop.forgetKeyPassphrase", {})) ?? secrets);
              }}
            >
              Forget it
            </button>
          </p>
        ) : (
          <>
            <p className="hint">
              {secrets.agent
                ? "An ssh-agent is running: keys loaded with ssh-add need no passphrase here (preferred)."
                : "No ssh-agent is running; start one and ssh-add your key (preferred), or store the passphrase here."}
            </p>
            {secrets.canStore.allowed ? (
              <form
                className="inline-form"
                onSubmit={async (e) => {
                  e.preventDefault();
                  const stored = await call("Storing", "desktop.storeKeyPassphrase", { passphrase });
                  if (stored !== null) {
                    setPassphrase("");
                    setSecrets(stored);
                  }
                }}
              >
                <label htmlFor={`${id}-pass`}>Passphrase</label>
                <input
                  id={`${id}-pass`}
                  type="password"
                  autoComplete="off"
                  value={passphrase}
                  onChange={(e) => setPassphrase(e.target.value)}
                />
                <button type="submit" disabled={busy || passphrase === ""}>
                  Store encrypted
                </button>
              </form>
            ) : (
              <p className="hint">Storing a passphrase is not possible here: {secrets.canStore.reason}</p>
            )}
          </>
        )}
      </fieldset>
    </section>
  );
}

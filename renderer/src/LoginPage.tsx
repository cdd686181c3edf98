import { useId, useState, type FormEvent } from "react";

import { signIn } from "./web-session.js";

/**
 * The sign-in page of `snapkeep serve --listen`: the admin password, and the certificate's
 * fingerprint to compare with what the browser shows (and what serve printed) before typing it.
 */
export function LoginPage({ fingerprint, onSignedIn }: { fingerprint: string; onSignedIn: () => void }) {
  const id = useId();
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const refused = await signIn(password);
    setBusy(false);
    if (refused === null) {
      onSignedIn();
    } else {
      setError(refused);
      setPassword("");
    }
  };
  return (
    <main className="login">
      <form className="login-card" onSubmit={(e) => void submit(e)} aria-labelledby={`${id}-title`}>
        <h1 id={`${id}-title`}>Sign in to Snapkeep</h1>
        <p className="muted">on {location.host}</p>
        <label htmlFor={`${id}-password`}>Admin password</label>
        <input
          id={`${id}-password`}
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          required
          autoFocus
        />
        {error !== null && (
          <p className="login-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy || password === ""}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        <p className="muted small">
          This server’s certificate has the SHA-256 fingerprint
          <code className="key" aria-label="Certificate fingerprint">
            {fingerprint}
          </code>
          Compare it with the one <code>snapkeep serve</code> printed and your browser shows; if they differ,
          do not sign in. The password is set with <code>snapkeep serve passwd</code>.
        </p>
      </form>
    </main>
  );
}

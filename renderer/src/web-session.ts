/**
 * The sign-in of `snapkeep serve --listen` (HTTPS, an admin password, a session cookie the page
 * never sees: it is HttpOnly). On loopback the page has its token in the URL's fragment instead,
 * and in the desktop app neither applies.
 */

export type PageAccess =
  | { readonly mode: "token" }
  | { readonly mode: "login"; readonly signedIn: boolean; readonly fingerprint: string };

let signedInSession: { readonly fingerprint: string } | null = null;

/** The signed-in session of this page, when the page was opened through a login. */
export function webSession(): { readonly fingerprint: string } | null {
  return signedInSession;
}

/** How this page reaches the API: the token in its URL, or a login (asked of the server). */
export async function pageAccess(location: Location): Promise<PageAccess> {
  if (new URLSearchParams(location.hash.slice(1)).has("token") || location.protocol !== "https:") {
    return { mode: "token" };
  }
  const answer = await fetch("/session", { cache: "no-store" });
  const body = (await answer.json()) as { mode?: string; signedIn?: boolean; fingerprint?: string };
  if (body.mode !== "login") {
    return { mode: "token" };
  }
  const access = {
    mode: "login",
    signedIn: body.signedIn === true,
    fingerprint: body.fingerprint ?? "",
  } as const;
  if (access.signedIn) {
    signedInSession = { fingerprint: access.fingerprint };
  }
  return access;
}

/** Signs in; the answer is null when it worked, or the sentence to show. */
export async function signIn(password: string): Promise<string | null> {
  let answer: Response;
  try {
    answer = await fetch("/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ password }),
    });
  } catch {
    return "Snapkeep's server cannot be reached.";
  }
  switch (answer.status) {
    case 204:
      return null;
    case 401:
      return "That is not the admin password.";
    case 429: {
      const wait = Number(answer.headers.get("Retry-After") ?? "60");
      return `Too many attempts. Try again in ${wait < 120 ? `${wait} seconds` : `${Math.ceil(wait / 60)} minutes`}.`;
    }
    default:
      return `The server refused the sign-in (${answer.status}).`;
  }
}

export async function signOut(): Promise<void> {
  await fetch("/logout", { method: "POST" }).catch(() => undefined);
  location.reload();
}

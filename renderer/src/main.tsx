import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

import { applyTheme, preferredTheme } from "../theme.js";
import { App } from "./App.js";
import { LoginPage } from "./LoginPage.js";
import { clientForPage, isDesktop } from "./transports.js";
import { pageAccess } from "./web-session.js";
import { compareNames } from "./overview.js";
import { prepareDates } from "./when.js";
import { createAppStore, type AppStore } from "./store.js";
import "./app.css";

const theme = (): void =>
  applyTheme(
    document.documentElement,
    preferredTheme((q) => window.matchMedia(q)),
  );
theme();
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", theme);

/** The app, once the page may reach the API. */
function startApp(): void {
  // The client reports its connection to the store, which is made with the client: a holder
  // breaks the circle.
  const holder: { store?: AppStore } = {};
  const client = clientForPage(window, (connected) => holder.store?.getState().setConnected(connected));
  const app = createAppStore(client);
  holder.store = app;
  client.onEvent((event) => {
    if (event.event === "job") {
      app.getState().jobChanged(event.data);
    } else if (event.event === "revert") {
      app.getState().revertProgress(event.data.host, event.data.vmUuid, event.data.progress);
    } else {
      // Another window, a job or the scheduler changed something: reload what shows it.
      void app.getState().refresh();
    }
  });
  // Ask for everything the first page shows before React renders it: the socket opens and the
  // server reads the hosts while the page renders its frame (asked from an effect, the listing
  // waited for that render). The overview asks the targets itself when it shows.
  void app.getState().refresh();
  void app.getState().loadJobs();
  // While they travel: the first date formatter and collator load the locale's data.
  prepareDates();
  compareNames("", "");
  const root = document.getElementById("root");
  if (root !== null) {
    createRoot(root).render(
      <StrictMode>
        <App store={app} />
      </StrictMode>,
    );
  }
}

// Through `snapkeep serve --listen`, the page signs in first; the desktop app and the loopback
// server's token need no sign-in.
if (isDesktop()) {
  startApp();
} else {
  void pageAccess(window.location).then(
    (access) => {
      const root = document.getElementById("root");
      if (access.mode === "login" && !access.signedIn && root !== null) {
        createRoot(root).render(
          <StrictMode>
            <LoginPage fingerprint={access.fingerprint} onSignedIn={() => location.reload()} />
          </StrictMode>,
        );
      } else {
        startApp();
      }
    },
    () => startApp(),
  );
}

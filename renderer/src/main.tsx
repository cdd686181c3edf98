import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

import { applyTheme, preferredTheme } from "../theme.js";
import { App } from "./App.js";
import { clientForPage } from "./transports.js";
import { createAppStore, type AppStore } from "./store.js";
import "./app.css";

// The client reports its connection to the store, which is made with the client: a holder
// breaks the circle.
const holder: { store?: AppStore } = {};
const client = clientForPage(window, (connected) => holder.store?.getState().setConnected(connected));
const app = createAppStore(client);
holder.store = app;
client.onEvent((event) => {
  if (event.event === "job") {
    app.getState().jobChanged(event.data);
  } else {
    // Another window, a job or the scheduler changed something: reload what shows it.
    void app.getState().refresh();
  }
});

const theme = (): void =>
  applyTheme(
    document.documentElement,
    preferredTheme((q) => window.matchMedia(q)),
  );
theme();
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", theme);

const root = document.getElementById("root");
if (root !== null) {
  createRoot(root).render(
    <StrictMode>
      <App store={app} />
    </StrictMode>,
  );
}

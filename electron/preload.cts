/**
 * The renderer's only door to the main process, exposed as `window.snapkeepIpc`:
 *
 *   request({ id, method, params? }) → Promise<{ id, result } | { id, error: { code, message, hint } }>
 *   subscribe((event) => …) → unsubscribe   (the events Api.onEvent emits, e.g. { event: "changed", … })
 *
 * Sandboxed preloads run as plain CommonJS scripts that may require only Electron's own modules,
 * hence a .cts file with no imports of ours (the channel names repeat electron/lib/ipc.ts). Nothing
 * of ipcRenderer itself reaches the page: only these two functions, and the main process checks
 * the sender and validates every request again.
 */
import electron = require("electron");

const REQUEST_CHANNEL = "snapkeep:request";
const EVENT_CHANNEL = "snapkeep:event";

interface Request {
  id: number;
  method: string;
  params?: unknown;
}

electron.contextBridge.exposeInMainWorld("snapkeepIpc", {
  request(message: Request): Promise<unknown> {
    // Only the envelope's fields cross: a page cannot smuggle anything else into the call.
    return electron.ipcRenderer.invoke(REQUEST_CHANNEL, {
      id: message.id,
      method: message.method,
      ...(message.params === undefined ? {} : { params: message.params }),
    });
  },
  subscribe(listener: (event: unknown) => void): () => void {
    const forward = (_event: electron.IpcRendererEvent, payload: unknown): void => listener(payload);
    electron.ipcRenderer.on(EVENT_CHANNEL, forward);
    return () => {
      electron.ipcRenderer.removeListener(EVENT_CHANNEL, forward);
    };
  },
});

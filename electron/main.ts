// The desktop shell's entry point. Deliberately thin: windows, tray, notifications and IPC live
// here; everything else is the core service, shared with the CLI and the daemon. The tray, the
// scheduler host and the validated IPC bridge arrive with the Electron shell issue; today this
// opens one locked-down window on the bundled renderer.
import { app, BrowserWindow } from "electron";
import { fileURLToPath } from "node:url";

const rendererPage = fileURLToPath(new URL("../../renderer/index.html", import.meta.url));

function createWindow(): BrowserWindow {
  const window = new BrowserWindow({
    width: 1200,
    height: 800,
    title: "Snapkeep",
    webPreferences: {
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
    },
  });
  // The renderer is local, static content: nothing may navigate it elsewhere or open new windows.
  window.webContents.on("will-navigate", (event) => event.preventDefault());
  window.webContents.setWindowOpenHandler(() => ({ action: "deny" }));
  void window.loadFile(rendererPage);
  return window;
}

// One desktop instance per user: two would run two schedulers on the same state directory.
if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on("second-instance", () => {
    const [window] = BrowserWindow.getAllWindows();
    window?.show();
    window?.focus();
  });
  void app.whenReady().then(createWindow);
}

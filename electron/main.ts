// The desktop shell's entry point, deliberately thin: it draws what electron/lib decides (tray
// menu, notifications) and hands Electron's events to it (IPC, power, quit). Everything else is the
// core, shared with the CLI and the daemon.
import { homedir } from "node:os";
import { join } from "node:path";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import {
  app,
  BrowserWindow,
  ipcMain,
  Menu,
  nativeImage,
  Notification,
  powerMonitor,
  protocol,
  safeStorage,
  screen,
  session,
  Tray,
  type MenuItemConstructorOptions,
} from "electron";
import ElectronStore from "electron-store";

import { CONTENT_SECURITY_POLICY } from "../core/server/serve.js";
import { wallClockTimers } from "../core/infra/timers.js";
import { snapkeepHome } from "../core/infra/store/home.js";
import { contentType, downloadResponse, downloadTicket, rendererFile } from "./lib/app-protocol.js";
import { autostartCommand, autostartPath, HIDDEN_FLAG, setLinuxAutostart } from "./lib/autostart.js";
import { Desktop } from "./lib/desktop.js";
import { APP_PAGE, APP_SCHEME, EVENT_CHANNEL, isTrustedSender, REQUEST_CHANNEL } from "./lib/ipc.js";
import { wirePower } from "./lib/power.js";
import type { SettingsDocument, SettingsDocumentOptions } from "./lib/desktop-settings.js";
import { DEFAULT_WINDOW_SIZE } from "./lib/window-state.js";
import {
  trayIcon,
  trayMenu,
  trayTooltip,
  type TrayAction,
  type TrayItem,
  type TrayState,
} from "./lib/tray-menu.js";

const rendererRoot = fileURLToPath(new URL("../renderer/", import.meta.url));
const preload = fileURLToPath(new URL("./preload.cjs", import.meta.url));
const trayIcons = app.isPackaged
  ? join(process.resourcesPath, "tray")
  : fileURLToPath(new URL("../../build/tray/", import.meta.url));
const home = snapkeepHome(process.platform, process.env, homedir());

// One instance per state directory (two would race for the scheduler), with Chromium's own files
// kept apart from Snapkeep's settings.
app.setPath("userData", join(home, "desktop"));
// Standard and secure: relative URLs, a real origin and a secure context for the renderer. Not
// corsEnabled: that would let other origins read the app's files.
// codeCache: the window keeps V8's compiled code of the renderer between starts (a third of the
// first page's time is compiling its script).
protocol.registerSchemesAsPrivileged([
  { scheme: APP_SCHEME, privileges: { standard: true, secure: true, codeCache: true } },
]);

let desktop: Desktop | undefined;
let window: BrowserWindow | undefined;
let tray: Tray | undefined;
let shownMenu = "";
let quitting = false;
const disposers: (() => void)[] = [];

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString()} ${line}\n`);
}

function showWindow(): void {
  if (window === undefined || window.isDestroyed()) {
    window = createWindow();
  }
  window.show();
  window.focus();
}

function createWindow(): BrowserWindow {
  const memory = desktop?.window;
  const placement = memory?.placement({
    workAreas: screen.getAllDisplays().map((display) => display.workArea),
    primary: screen.getPrimaryDisplay().workArea,
  });
  const created = new BrowserWindow({
    ...(placement?.bounds ?? DEFAULT_WINDOW_SIZE),
    title: "Snapkeep",
    show: false,
    webPreferences: { contextIsolation: true, sandbox: true, nodeIntegration: false, preload },
  });
  if (placement?.maximized === true) {
    created.maximize();
  }
  created.once("ready-to-show", () => created.show());
  // The size and place it had when not maximized, and whether it is: what the next start opens.
  const remember = (): void => {
    if (!created.isDestroyed() && !created.isMinimized()) {
      memory?.changed(created.getNormalBounds(), created.isMaximized());
    }
  };
  created.on("resize", remember);
  created.on("move", remember);
  created.on("maximize", remember);
  created.on("unmaximize", remember);
  // Closing the window leaves the app in the tray, where the schedules keep running.
  created.on("close", (event) => {
    remember();
    memory?.flush();
    if (!quitting) {
      event.preventDefault();
      created.hide();
    }
  });
  void created.loadURL(APP_PAGE);
  return created;
}

function lockDown(): void {
  const appSession = session.defaultSession;
  appSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  appSession.setPermissionCheckHandler(() => false);
  protocol.handle(APP_SCHEME, async (request) => {
    const headers = {
      "Content-Security-Policy": CONTENT_SECURITY_POLICY,
      "X-Content-Type-Options": "nosniff",
    };
    // A file from a snapshot's file browser: Chromium saves it (a save dialog by default).
    const ticket = downloadTicket(request.url);
    if (ticket !== null) {
      return downloadResponse(desktop?.api.takeDownload(ticket) ?? null, headers);
    }
    const file = rendererFile(rendererRoot, request.url);
    if (file === null) {
      return new Response(null, { status: 404, headers });
    }
    try {
      return new Response(await readFile(file), {
        headers: { ...headers, "Content-Type": contentType(file) },
      });
    } catch {
      return new Response(null, { status: 404, headers });
    }
  });
  // Every page, ours or one a bug might open: no navigation, no new windows, no webviews.
  app.on("web-contents-created", (_event, contents) => {
    contents.on("will-navigate", (event) => event.preventDefault());
    contents.on("will-redirect", (event) => event.preventDefault());
    contents.on("will-attach-webview", (event) => event.preventDefault());
    contents.setWindowOpenHandler(() => ({ action: "deny" }));
  });
}

function drawTray(state: TrayState): void {
  const menu = trayMenu(state);
  const icon = trayIcon(state);
  const drawn = JSON.stringify({ menu, icon });
  if (tray === undefined || tray.isDestroyed() || drawn === shownMenu) {
    return;
  }
  shownMenu = drawn;
  tray.setImage(nativeImage.createFromPath(join(trayIcons, `tray-${icon}.png`)));
  tray.setToolTip(trayTooltip(state));
  // Linux needs the menu set again after every change.
  tray.setContextMenu(Menu.buildFromTemplate(menu.map(toMenuItem)));
}

function toMenuItem(item: TrayItem): MenuItemConstructorOptions {
  switch (item.kind) {
    case "separator":
      return { type: "separator" };
    case "info":
      return { label: item.label, enabled: false };
    case "submenu":
      return { label: item.label, submenu: item.items.map(toMenuItem) };
    case "action":
      return {
        label: item.label,
        click: () =>
          void perform(item.action).catch((error: unknown) =>
            log(
              `The tray action ${item.action.type} failed: ${error instanceof Error ? error.message : String(error)}`,
            ),
          ),
      };
  }
}

async function perform(action: TrayAction): Promise<void> {
  if (action.type === "open") {
    showWindow();
  } else if (action.type === "quit") {
    app.quit();
  } else {
    await desktop?.perform(action);
  }
}

async function applyAutostart(enabled: boolean): Promise<void> {
  if (process.platform === "linux") {
    const command = autostartCommand({
      execPath: process.execPath,
      appImage: process.env["APPIMAGE"],
      isPackaged: app.isPackaged,
      appPath: app.getAppPath(),
    });
    await setLinuxAutostart(autostartPath(process.env, homedir()), enabled ? command : null);
  } else {
    app.setLoginItemSettings({ openAtLogin: enabled, args: [HIDDEN_FLAG] });
  }
}

function openSettingsDocument(options: SettingsDocumentOptions): SettingsDocument {
  const document = new ElectronStore<Record<string, unknown>>(options);
  // electron-store also answers a synchronous IPC message with the userData path, for stores made
  // in a renderer; Snapkeep's renderer has none and the main process answers only its own channel.
  ipcMain.removeAllListeners("electron-store-get-data");
  return document;
}

async function start(): Promise<void> {
  lockDown();
  desktop = await Desktop.open({
    home,
    env: process.env,
    ports: {
      now: () => new Date(),
      timers: wallClockTimers,
      notify: (title, body) => {
        if (Notification.isSupported()) {
          new Notification({ title, body }).show();
        }
      },
      trayChanged: drawTray,
      broadcast: (event) => {
        for (const open of BrowserWindow.getAllWindows()) {
          if (isTrustedSender({ url: open.webContents.getURL(), isMainFrame: true })) {
            open.webContents.send(EVENT_CHANNEL, event);
          }
        }
      },
      applyAutostart,
      openSettingsDocument,
      keyring: {
        facts: async () => ({
          platform: process.platform,
          backend: process.platform === "linux" ? safeStorage.getSelectedStorageBackend() : null,
          encryptionAvailable: await safeStorage.isAsyncEncryptionAvailable(),
        }),
        encrypt: async (plain) => (await safeStorage.encryptStringAsync(plain)).toString("base64"),
        decrypt: async (base64) =>
          (await safeStorage.decryptStringAsync(Buffer.from(base64, "base64"))).result,
      },
      log,
    },
  });
  const opened = desktop;
  ipcMain.handle(REQUEST_CHANNEL, (event, raw: unknown) =>
    opened.route(
      event.senderFrame === null
        ? null
        : { url: event.senderFrame.url, isMainFrame: event.senderFrame.parent === null },
      raw,
    ),
  );
  disposers.push(
    () => ipcMain.removeHandler(REQUEST_CHANNEL),
    wirePower(powerMonitor, () => opened.powerTarget(), log),
  );
  tray = new Tray(nativeImage.createFromPath(join(trayIcons, "tray-ok.png")));
  opened.refreshTray();
  if (!process.argv.includes(HIDDEN_FLAG)) {
    showWindow();
  }
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on("second-instance", () => desktop !== undefined && showWindow());
  // No window is no reason to quit: the app lives in the tray.
  app.on("window-all-closed", () => undefined);
  app.on("activate", () => desktop !== undefined && showWindow());
  app.on("before-quit", (event) => {
    quitting = true;
    if (desktop === undefined) {
      return;
    }
    // Stop the scheduler (running jobs finish) and close connections before the process ends.
    event.preventDefault();
    const closing = desktop;
    desktop = undefined;
    disposers.splice(0).forEach((dispose) => dispose());
    tray?.destroy();
    void closing
      .dispose()
      .catch((error: unknown) => log(`Stopping cleanly failed: ${String(error)}`))
      .finally(() => app.quit());
  });
  app
    .whenReady()
    .then(start)
    .catch((error: unknown) => {
      log(`Snapkeep could not start: ${error instanceof Error ? error.message : String(error)}`);
      app.exit(1);
    });
}

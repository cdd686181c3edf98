/**
 * The desktop app's behaviour without Electron: the core and its API, the scheduler (or who
 * else runs it), the tray's state and actions, notifications, the app's own settings and window
 * memory, and the desktop-only IPC methods.
 * electron/main.ts passes in the few things only Electron can do (ports) and draws the results.
 */

import { Api, type ApiEvent, type Response } from "../../core/api/api.js";
import type { DesktopResult } from "../../core/api/contract.js";
import { openCoreContext, type CoreContext } from "../../core/app/context.js";
import { SnapkeepError, describeError } from "../../core/errors.js";
import { hintOf } from "../../core/domain/explain.js";
import { sshEnvironmentFromProcess, type SshEnvironment } from "../../core/infra/runner/factory.js";
import { schedulerOwner } from "../../core/infra/scheduler-lock.js";
import { Alerts } from "../../core/app/alerts.js";
import { openScheduler } from "../../core/app/schedules/owned.js";
import type { SchedulerEvent } from "../../core/app/schedules/scheduler.js";
import type { TimerPort } from "../../core/infra/timers.js";
import type { NotificationSettings } from "../../core/domain/settings.js";
import {
  openDesktopSettings,
  type DesktopSettingsStore,
  type SettingsDocument,
  type SettingsDocumentOptions,
} from "./desktop-settings.js";
import { contractDesktopMethods, createIpcRouter, type DesktopMethod, type SenderFrame } from "./ipc.js";
import {
  NotificationPolicy,
  factFromApiEvent,
  factFromSchedulerEvent,
  type Fact,
  type Notice,
} from "./notifications.js";
import type { PowerTarget } from "./power.js";
import { SchedulingHost } from "../../core/app/schedules/hosting.js";
import { assertMayStorePassphrase, effectivePassphrase, type KeyringFacts } from "./secrets.js";
import { attentionLines, nextScheduledRun } from "./tray-state.js";
import type { JobSource, TrayAction, TrayJob, TrayState } from "./tray-menu.js";
import { WindowMemory } from "./window-state.js";

/** What only Electron (or the operating system) can do, passed in by the main process. */
export interface DesktopPorts {
  readonly now: () => Date;
  readonly timers: TimerPort;
  /** A desktop notification. */
  readonly notify: (title: string, body: string) => void;
  /** The tray's state changed: redraw icon, tooltip and menu. */
  readonly trayChanged: (state: TrayState) => void;
  /** An event for every open renderer (the same objects Api.onEvent emits). */
  readonly broadcast: (event: ApiEvent) => void;
  /** Writes or removes the login item (XDG autostart entry on Linux). */
  readonly applyAutostart: (enabled: boolean) => Promise<void>;
  readonly keyring: {
    facts(): Promise<KeyringFacts>;
    encrypt(plain: string): Promise<string>;
    decrypt(base64: string): Promise<string>;
  };
  /**
   * The desktop settings' file: an electron-store instance made with these options (electron-store
   * loads Electron, so only the main process can make one).
   */
  readonly openSettingsDocument: (options: SettingsDocumentOptions) => SettingsDocument;
  /** For the log: problems nobody asked about (a failed tray refresh). */
  readonly log: (line: string) => void;
}

export interface DesktopOptions {
  readonly home: string;
  readonly env: NodeJS.ProcessEnv;
  readonly ports: DesktopPorts;
}

/** Settings and state the tray and notifications show are re-read this often (labels hold times). */
const REFRESH_EVERY_MS = 30_000;
/** VMs for "Snapshot now": each listing asks every host, so not often. */
const VM_LIST_EVERY_MS = 10 * 60_000;

export class Desktop {
  readonly context: CoreContext;
  /** Start on login, notifications, the stored passphrase, the window (desktop-settings.ts). */
  readonly settings: DesktopSettingsStore;
  /** The window's size and place, for the main process to open it with and report changes to. */
  readonly window: WindowMemory;
  readonly api: Api;
  readonly scheduling: SchedulingHost;
  readonly route: (frame: SenderFrame | null, raw: unknown) => Promise<Response>;
  readonly #ports: DesktopPorts;
  readonly #policy: NotificationPolicy;
  readonly #alerts: Alerts;
  readonly #jobs: JobSource;
  readonly #disposers: (() => void)[] = [];
  #vms: { host: string; vm: string }[] = [];
  #listing: Promise<void> | undefined;
  /** The stored key passphrase, decrypted; a holder, so the SSH environment reads it live. */
  readonly #secret: { passphrase: string | undefined } = { passphrase: undefined };
  readonly #agentSocket: string | undefined;

  private constructor(options: DesktopOptions) {
    const { home, env, ports } = options;
    this.#ports = ports;
    const fromProcess = sshEnvironmentFromProcess(env);
    const environmentPassphrase = fromProcess.passphrase;
    this.#agentSocket = fromProcess.agentSocket;
    const secret = this.#secret;
    // Read at each new connection, so a passphrase stored while the app runs is used at once.
    const ssh: SshEnvironment = {
      homeDir: fromProcess.homeDir,
      defaultUser: fromProcess.defaultUser,
      agentSocket: fromProcess.agentSocket,
      get passphrase() {
        return effectivePassphrase(environmentPassphrase, secret.passphrase);
      },
    };
    this.context = openCoreContext({ home, ssh, path: env["PATH"], now: ports.now });
    try {
      // After the core's: the first start moves the desktop slice out of settings.json.
      this.settings = openDesktopSettings({
        folder: home,
        now: ports.now(),
        openDocument: ports.openSettingsDocument,
        core: this.context.store,
        log: ports.log,
      });
    } catch (error) {
      void this.context.dispose();
      throw error;
    }
    const settings = this.settings;
    this.window = new WindowMemory({
      holder: {
        read: () => settings.read().window,
        write: (window) => void settings.update((s) => ({ ...s, window })),
      },
      timers: ports.timers,
      now: ports.now,
      log: ports.log,
    });
    this.api = new Api({ ...this.context, now: ports.now });
    this.#policy = new NotificationPolicy(() => settings.read().notifications);
    // The same alerts as the daemon and serve (webhook, ntfy, pings, the digest), from whichever
    // process runs the schedules: here once this app holds the scheduler.
    this.#alerts = new Alerts({
      store: this.context.store,
      now: ports.now,
      timers: ports.timers,
      log: ports.log,
    });
    this.scheduling = new SchedulingHost({
      open: () => {
        const owned = openScheduler({
          home,
          app: "Snapkeep desktop",
          work: this.context.schedules,
          now: ports.now,
          timers: ports.timers,
          onEvent: (event) => {
            this.#alerts.handle(event);
            this.#onSchedulerEvent(event);
          },
        });
        this.#alerts.start();
        return owned;
      },
      holder: () => schedulerOwner(home),
      timers: ports.timers,
      onChange: () => this.refreshTray(),
    });
    this.#jobs = schedulerJobs(this);
    this.route = createIpcRouter({
      api: this.api,
      desktop: this.#desktopMethods(),
      afterCall: (method) => {
        if (method === "schedules.pauseAll" || method === "schedules.resumeAll") {
          // Look at the clock now: a lifted pause serves its missed runs at once.
          void this.scheduling.scheduler?.tick();
          this.refreshTray();
        }
      },
    });
  }

  /** Opens the state directory, decrypts a stored passphrase, and starts scheduling (or waiting). */
  static async open(options: DesktopOptions): Promise<Desktop> {
    const desktop = new Desktop(options);
    desktop.#secret.passphrase = await desktop.#storedPassphrase();
    await desktop.#start();
    return desktop;
  }

  /** When this app schedules: what sleep and wake act on. */
  powerTarget(): PowerTarget | null {
    return this.scheduling.scheduler;
  }

  trayState(): TrayState {
    const now = this.#ports.now();
    const { schedules } = this.context;
    const list = schedules.list();
    const pause = schedules.activePause();
    return {
      now,
      scheduling: this.scheduling.state,
      pause,
      nextRun: nextScheduledRun(list, pause, now),
      jobs: this.#jobs.list(),
      vms: this.#vms,
      attention: attentionLines(list, schedules.states(), pause, now, schedules.copyStates()),
    };
  }

  refreshTray(): void {
    try {
      this.#ports.trayChanged(this.trayState());
    } catch (error) {
      this.#ports.log(`The tray could not be updated: ${describeError(error)}`);
    }
  }

  /** Runs a tray action other than opening the window or quitting (the main process does those). */
  async perform(action: TrayAction): Promise<void> {
    const { schedules, snapshots } = this.context;
    switch (action.type) {
      case "cancel-job":
        this.#jobs.cancel(action.jobId);
        break;
      case "pause-all":
        schedules.pauseAll(action.minutes === null ? null : action.minutes * 60_000);
        break;
      case "resume-all":
        schedules.resumeAll();
        await this.scheduling.scheduler?.tick();
        break;
      case "snapshot":
        try {
          const made = await snapshots.create(action.host, action.vm, {});
          this.#ports.notify(
            `Snapshot of ${action.vm} made`,
            `${made.name}, of ${made.disks.map((d) => d.target).join(", ")}.`,
          );
          this.#ports.broadcast({ event: "changed", data: { host: action.host, vm: action.vm } });
        } catch (error) {
          const hinted = error instanceof SnapkeepError ? hintOf(error, "ui") : null;
          const hint = hinted === null ? "" : ` ${hinted}`;
          this.#ports.notify(`Snapshot of ${action.vm} failed`, `${describeError(error)}${hint}`);
        }
        break;
      case "open":
      case "quit":
        break;
    }
    this.refreshTray();
  }

  async dispose(): Promise<void> {
    this.window.flush();
    for (const dispose of this.#disposers.splice(0)) {
      dispose();
    }
    await this.scheduling.stop();
    await this.#alerts.stop();
    await this.#listing;
    // Running UI jobs (exports, copies) are cancelled; what they half-did stays safe to resume.
    await this.api.dispose();
    await this.context.dispose();
  }

  async #start(): Promise<void> {
    const { recovered } = this.context.store;
    if (recovered !== null) {
      this.#ports.log(recovered.message);
      this.#ports.notify("Snapkeep's settings were unreadable", recovered.message);
    }
    const desktopRecovered = this.settings.recovered;
    if (desktopRecovered !== null) {
      this.#ports.log(desktopRecovered.message);
      this.#ports.notify("Snapkeep's desktop settings were unreadable", desktopRecovered.message);
    }
    this.#disposers.push(
      this.api.onEvent((event) => {
        this.#ports.broadcast(event);
        this.#consider(factFromApiEvent(event));
        this.refreshTray();
      }),
    );
    if (this.settings.read().autostart) {
      // Written again at each start: an AppImage that was moved must be found at its new path.
      await this.#ports
        .applyAutostart(true)
        .catch((error: unknown) =>
          this.#ports.log(`Start on login could not be renewed: ${describeError(error)}`),
        );
    }
    const refresh = this.#ports.timers.every(REFRESH_EVERY_MS, () => this.refreshTray());
    const relist = this.#ports.timers.every(VM_LIST_EVERY_MS, () => void this.#listVms());
    this.#disposers.push(
      () => refresh.cancel(),
      () => relist.cancel(),
    );
    await this.scheduling.start();
    void this.#listVms();
    this.refreshTray();
  }

  #onSchedulerEvent(event: SchedulerEvent): void {
    this.#consider(factFromSchedulerEvent(event));
    if (event.type === "job-succeeded") {
      this.#ports.broadcast({
        event: "changed",
        data: { host: event.schedule.host, vm: event.schedule.vmName },
      });
    }
    if (event.type === "scheduler-error") {
      this.#ports.log(event.message);
    }
    this.refreshTray();
  }

  #consider(fact: Fact | null): void {
    const notice: Notice | null = fact === null ? null : this.#policy.decide(fact, this.#ports.now());
    if (notice !== null) {
      this.#ports.notify(notice.title, notice.body);
    }
  }

  async #listVms(): Promise<void> {
    this.#listing ??= this.context.vms
      .list()
      .then((results) => {
        this.#vms = results.flatMap((r) => r.vms.map((vm) => ({ host: r.host, vm: vm.name })));
        this.refreshTray();
      })
      .catch((error: unknown) => this.#ports.log(`Listing VMs for the tray failed: ${describeError(error)}`))
      .finally(() => {
        this.#listing = undefined;
      });
    return this.#listing;
  }

  /** Methods only the desktop answers: they change this computer's login items and keyring. */
  #desktopMethods(): Record<string, DesktopMethod> {
    const { store } = this.context;
    const settings = this.settings;
    const ports = this.#ports;
    const secrets = async (): Promise<DesktopResult<"desktop.secrets">> => {
      let canStore: { allowed: boolean; reason: string | null } = { allowed: true, reason: null };
      try {
        assertMayStorePassphrase(await ports.keyring.facts());
      } catch (error) {
        canStore = { allowed: false, reason: describeError(error) };
      }
      return {
        agent: this.#agentSocket !== undefined,
        stored: settings.read().keyPassphrase !== undefined,
        canStore,
      };
    };
    return contractDesktopMethods({
      "desktop.status": async () => ({
        /** Who runs the schedules: this app, another process (named), or nobody and why. */
        scheduling: this.scheduling.state,
        settingsRecovered: store.recovered,
        desktopSettingsRecovered: settings.recovered,
        pause: this.context.schedules.activePause(),
        autostart: settings.read().autostart,
      }),
      "desktop.autostart": async ({ enabled }) => {
        if (enabled !== undefined) {
          await ports.applyAutostart(enabled);
          settings.update((s) => ({ ...s, autostart: enabled }));
        }
        return { enabled: settings.read().autostart };
      },
      "desktop.notifications": async (change) =>
        settings.update((s) => {
          const notifications: NotificationSettings = { ...s.notifications };
          for (const kind of ["jobFailed", "vmOverdue", "exportVerified"] as const) {
            notifications[kind] = change[kind] ?? notifications[kind];
          }
          return { ...s, notifications };
        }).notifications,
      "desktop.secrets": secrets,
      "desktop.storeKeyPassphrase": async ({ passphrase }) => {
        const facts = await ports.keyring.facts();
        assertMayStorePassphrase(facts);
        const ciphertext = await ports.keyring.encrypt(passphrase);
        settings.update((s) => ({
          ...s,
          keyPassphrase: { ciphertext, backend: facts.backend ?? facts.platform },
        }));
        this.#secret.passphrase = passphrase;
        return secrets();
      },
      "desktop.forgetKeyPassphrase": async () => {
        settings.update(({ keyPassphrase: _dropped, ...rest }) => rest);
        this.#secret.passphrase = undefined;
        return secrets();
      },
    });
  }

  /**
   * A passphrase stored by an earlier run, decrypted by the keyring; one that no longer decrypts
   * (another keyring, another user) is left in place and reported, and the agent is used meanwhile.
   */
  async #storedPassphrase(): Promise<string | undefined> {
    const stored = this.settings.read().keyPassphrase;
    if (stored === undefined) {
      return undefined;
    }
    try {
      return await this.#ports.keyring.decrypt(stored.ciphertext);
    } catch (error) {
      this.#ports.log(
        `The stored SSH key passphrase could not be decrypted (${describeError(error)}); ssh-agent and SNAPKEEP_KEY_PASSPHRASE are used instead.`,
      );
      return undefined;
    }
  }

  /** For schedulerJobs: the names the tray shows. */
  scheduleName(scheduleId: string): string {
    return this.context.schedules.list().find((s) => s.id === scheduleId)?.vmName ?? scheduleId;
  }
}

/**
 * Running jobs for the tray from this app's scheduler. The API's own jobs (exports and the like,
 * `jobs.list` / `jobs.cancel`) join through the same JobSource shape.
 */
function schedulerJobs(desktop: Desktop): JobSource {
  return {
    list: (): TrayJob[] =>
      (desktop.scheduling.scheduler?.runningJobs() ?? []).map((job) => ({
        id: job.id,
        title:
          job.kind === "copy"
            ? `Off-host copy of ${desktop.scheduleName(job.scheduleId)}`
            : `Scheduled snapshot of ${desktop.scheduleName(job.scheduleId)}`,
        cancellable: true,
      })),
    cancel: (id) => desktop.scheduling.scheduler?.cancel(id) ?? false,
  };
}

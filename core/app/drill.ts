/**
 * Restore drills (issue 19): proof that a snapshot or an export comes back as a VM that boots.
 *
 * The copy is restored into a throwaway VM in a hidden folder of the host's image folder, from the
 * same allowlisted definition a real restore builds (restored-definition.ts), with every NIC moved
 * onto a network made for this drill alone: a bridge with no address on the host, no DHCP and no
 * forward, so the copy can reach nothing and nothing can reach it (it has the original's addresses
 * and services). The VM is transient (`virsh create`): it is gone when it stops, and it never
 * appears as a defined VM. It passes when its guest agent answers within the time allowed, and, when
 * a check command is given, when that command exits 0 (and prints what is expected). Whatever the
 * outcome, the screen is captured as evidence and everything is torn down; a drill killed before it
 * could tear down is swept by the next drill on that host (each piece carries the drill's id and a
 * time after which it is a leftover).
 *
 * A drill never opens the original VM's images for writing, never starts or stops the original,
 * and never touches its networks: it reads a snapshot as an export does, or the export on a target.
 */
import { randomBytes } from "node:crypto";
import { posix } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";

import { SnapkeepError, describeError, isSnapkeepError } from "../errors.js";
import { formatBytes } from "../domain/bytes.js";
import {
  checkPassed,
  drillName,
  DRILL_NAME,
  keepDrills,
  keptOutput,
  type DrillRecord,
  type DrillSource,
} from "../domain/drill.js";
import { resolveSnapshot } from "../domain/selection.js";
import type { Disk, DiskSnapshot, Snapshot, VmWithSnapshots } from "../domain/types.js";
import * as virsh from "../drivers/libvirt/args.js";
import { inactiveDefinitionArgs } from "../drivers/libvirt/domain-args.js";
import {
  buildRestoredDefinition,
  type DefinitionNote,
  type RestoredDefinition,
} from "../drivers/libvirt/restored-definition.js";
import { encodePng, inkShare, parseScreenshot, type Pixels } from "../drivers/libvirt/screenshot.js";
import {
  CREATE_FROM_XML_SCRIPT,
  DRILL_REGISTRY_SCRIPT,
  DRILL_ROOM_SCRIPT,
  drillBridge,
  drillFolder,
  drillNetworkXml,
  parseDrillRegistry,
  parseDrillRoom,
  SCREENSHOT_SCRIPT,
} from "../drivers/sh/drill-scripts.js";
import { copySnapshotOut } from "../hypervisor/copy-out.js";
import { libvirtGuestOps } from "../hypervisor/guest.js";
import type { LibvirtHost } from "../hypervisor/libvirt.js";
import { readScreenshot, removeScreenshots, saveScreenshot } from "../infra/evidence.js";
import {
  isProcessAlive,
  processOwnerSchema,
  thisProcess,
  type ProcessOwner,
} from "../infra/process-identity.js";
import { RemoteFs } from "../infra/remote-fs.js";
import { runChecked } from "../infra/runner/checked.js";
import type { RunResult } from "../infra/runner/types.js";
import { DEFAULT_IMAGE_DIR } from "./exports/restore.js";
import { copyIntoStaging, moveIntoPlace, requireBundleIntact } from "./exports/steps/import-copy.js";
import { openImport, planImport, type ImportDeps } from "./exports/steps/import-plan.js";
import { requireOnlyImportedPaths } from "./exports/steps/import-vm.js";
import type { VmModules } from "./vm-modules.js";

const QUICK_MS = 60_000;
export const DEFAULT_DRILL_TIMEOUT_MS = 10 * 60_000;
/** Time for the screenshot and the teardown after the wait: then a drill's pieces are left over. */
const LEFTOVER_GRACE_MS = 10 * 60_000;
/** The longest a drill's copy may take (an export's copy is bounded the same way). */
const COPY_BUDGET_MS = 6 * 60 * 60_000;
/** What a check may be: the record keeps it whole. */
const MAX_CHECK_WORDS = 64;
const MAX_CHECK_WORD = 4096;
/** A drill's folder as the registry may name it (a path of the host, checked before rm -rf). */
const FOLDER_PATH = /^\/[A-Za-z0-9._/+-]+\/\.snapkeep-drill-([0-9a-f]{12})$/;
/** Memory a host keeps for itself beyond the drill VM's own. */
const HOST_RESERVE_MIB = 256;
/** A screen of 8192×8192 pixels in PPM is 192 MiB; consoles are a few MiB at most. */
const MAX_SCREENSHOT_BYTES = 64 * 1024 * 1024;
const POLL_MS = 2_000;
/** Below this share of lit pixels a screen counts as blank (a login prompt alone is ~0.15%). */
const BLANK_INK = 0.0005;
const SCREEN_RETRIES = 5;
const SCREEN_RETRY_MS = 3_000;

export interface DrillRequest {
  readonly host: string;
  readonly vm: string;
  /** A snapshot of the VM (name, tag or id)... */
  readonly snapshot?: string | undefined;
  /** ...or an export of it on a target. */
  readonly export?: { readonly target: string; readonly id: string } | undefined;
  /** The host the throwaway VM runs on (default: the VM's). An export may go to any host. */
  readonly to?: string | undefined;
  /** The folder the drill's hidden folder is made in (default libvirt's image folder). */
  readonly dir?: string | undefined;
  readonly timeoutMs?: number | undefined;
  /** A command run in the guest by its agent once it answers: argv, no shell. */
  readonly check?: { readonly argv: readonly string[]; readonly expect?: string | undefined } | undefined;
  readonly dryRun?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Each step as it starts ("Copying the export", "Waiting for the guest agent"). */
  readonly onStep?: ((step: string) => void) | undefined;
}

export interface DrillPlan {
  readonly id: string;
  readonly host: string;
  readonly vm: string;
  readonly source: DrillSource;
  readonly on: string;
  readonly folder: string;
  readonly disks: readonly { readonly target: string; readonly file: string }[];
  readonly bytes: number;
  readonly freeBytes: number;
  readonly memoryMiB: number;
  readonly availableMiB: number;
  readonly timeoutSeconds: number;
  /** What of the definition the throwaway VM does not get, each with why. */
  readonly dropped: readonly DefinitionNote[];
}

export interface DrillOutcome {
  readonly plan: DrillPlan;
  readonly dryRun: boolean;
  /** Null for a dry run. */
  readonly record: DrillRecord | null;
  /** Pieces the teardown could not remove (each said), swept by the next drill on the host. */
  readonly leftovers: readonly string[];
  /** What else went wrong without deciding the outcome (no screenshot, say). */
  readonly notes: readonly string[];
}

interface Prepared {
  readonly plan: DrillPlan;
  /** The throwaway VM's definition, its marker saying it is a leftover after `until`. */
  definition(until: Date): string;
  readonly vmUuid: string | null;
  /** Puts the images in the drill's folder. */
  copy(): Promise<void>;
}

export type DrillDeps = ImportDeps &
  Pick<VmModules, "store"> & {
    readonly now: () => Date;
    /** Snapkeep's home: screenshots go to drills/<id>.png there. */
    readonly home: string;
  };

export class Drills {
  constructor(private readonly deps: DrillDeps) {}

  /** The records, newest last. */
  list(): readonly DrillRecord[] {
    return this.deps.store.read().drills;
  }

  /** A drill's console screenshot (PNG), or null. */
  screenshot(id: string): Buffer | null {
    return readScreenshot(this.deps.home, id);
  }

  async run(request: DrillRequest): Promise<DrillOutcome> {
    if ((request.snapshot === undefined) === (request.export === undefined)) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        "Say what to drill: a SNAPSHOT of the VM, or --export TARGET ID.",
      );
    }
    requireCheck(request.check);
    request = { ...request, dir: imageDir(request.dir) };
    const id = randomBytes(6).toString("hex");
    const step = request.onStep ?? (() => undefined);
    const on = request.to ?? request.host;
    const libvirt = this.deps.hosts.libvirt(on);
    if (request.dryRun !== true) {
      step("Looking for leftovers of earlier drills");
      await sweepDrills(libvirt, this.deps.now());
    }
    step("Planning");
    const prepared =
      request.export !== undefined
        ? await this.#fromExport(request, request.export, id, on)
        : await this.#fromSnapshot(request, request.snapshot ?? "", id, on);
    if (request.dryRun === true) {
      return { plan: prepared.plan, dryRun: true, record: null, leftovers: [], notes: [] };
    }
    const startedAt = this.deps.now();
    const trial = await runTrial(libvirt, prepared, request, this.deps.now, step);
    if (trial.cancelled || request.signal?.aborted === true) {
      throw new SnapkeepError(
        "CANCELLED",
        "The drill was cancelled; its VM, network and copies are removed.",
      );
    }
    const record: DrillRecord = {
      id,
      host: request.host,
      vm: prepared.plan.vm,
      vmUuid: prepared.vmUuid,
      source: prepared.plan.source,
      on,
      startedAt: startedAt.toISOString(),
      finishedAt: this.deps.now().toISOString(),
      passed: trial.reason === null,
      reason: trial.reason === null ? null : clip(trial.reason, 4000),
      bootSeconds: trial.bootSeconds,
      check: trial.check,
      screenshot: trial.screenshot !== null,
    };
    let dropped: DrillRecord[] = [];
    this.deps.store.update((s) => {
      const kept = keepDrills(s.drills, record);
      dropped = kept.dropped;
      return { ...s, drills: kept.kept };
    });
    // After the record: a screenshot never outlives a record that could not be written.
    if (trial.screenshot !== null) {
      saveScreenshot(this.deps.home, id, trial.screenshot);
    }
    removeScreenshots(
      this.deps.home,
      dropped.map((r) => r.id),
    );
    return { plan: prepared.plan, dryRun: false, record, leftovers: trial.leftovers, notes: trial.notes };
  }

  async #fromExport(
    request: DrillRequest,
    from: { readonly target: string; readonly id: string },
    id: string,
    on: string,
  ): Promise<Prepared> {
    const name = drillName(id);
    const dir = request.dir ?? DEFAULT_IMAGE_DIR;
    const folder = drillFolder(dir, id);
    const run = await openImport(this.deps, {
      target: from.target,
      export: from.id,
      host: on,
      name,
      dir: folder,
      signal: request.signal,
    });
    const { vm } = run.manifest.source;
    if (vm.name !== request.vm && vm.uuid !== request.vm) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `Export ${run.entry.id} on ${from.target} is of VM ${vm.name}, not ${request.vm}.`,
      );
    }
    const planned = await planImport(this.deps, run);
    const disks = planned.plan.disks.map((d) => ({ target: d.target, file: d.file }));
    const built = this.#definition(planned.definitionXml ?? "", name, disks, id, folder);
    const room = await this.#room(planned.libvirt, dir, on, built.memoryMiB, planned.plan.bytes);
    return {
      plan: {
        id,
        host: request.host,
        vm: vm.name,
        source: { kind: "export", target: from.target, export: run.entry.id },
        on,
        folder,
        disks,
        bytes: planned.plan.bytes,
        ...room,
        memoryMiB: built.memoryMiB,
        timeoutSeconds: timeoutSeconds(request),
        dropped: built.dropped,
      },
      definition: built.definition,
      vmUuid: vm.uuid,
      copy: async () => {
        request.onStep?.(`Checking export ${run.entry.id} on ${from.target}`);
        await requireBundleIntact(this.deps.exports, planned);
        request.onStep?.(`Copying export ${run.entry.id} to ${on}`);
        const staging = `${folder}/.import`;
        const staged = await copyIntoStaging(planned, staging);
        await moveIntoPlace(planned, staging, staged, []);
        await planned.host.removeTree(staging);
      },
    };
  }

  async #fromSnapshot(request: DrillRequest, ref: string, id: string, on: string): Promise<Prepared> {
    if (on !== request.host) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        "A snapshot is drilled on its own host; to drill on another host, drill an export of it (--export).",
      );
    }
    const vm = await this.deps.vms.get(request.host, request.vm);
    const snapshot = resolveSnapshot(vm, ref);
    const libvirt = this.deps.hosts.libvirt(on);
    const name = drillName(id);
    const dir = request.dir ?? DEFAULT_IMAGE_DIR;
    const folder = drillFolder(dir, id);
    const images = snapshotImages(vm, snapshot, folder);
    const disks = images.map((i) => ({ target: i.image.target, file: i.file }));
    const bytes = images.reduce((sum, i) => sum + (i.disk.allocatedSize ?? i.disk.virtualSize ?? 0), 0);
    const definitionXml = (
      await runChecked(
        libvirt.runner,
        inactiveDefinitionArgs(libvirt.uri, vm.uuid),
        "Reading the VM definition",
        {
          timeoutMs: QUICK_MS,
        },
      )
    ).stdout;
    const built = this.#definition(definitionXml, name, disks, id, folder);
    const room = await this.#room(libvirt, dir, on, built.memoryMiB, bytes);
    if (room.freeBytes < bytes) {
      throw new SnapkeepError(
        "NO_SPACE",
        `${dir} on ${on} has ${formatBytes(room.freeBytes)} free, but the drill's copy of the disks needs up to ${formatBytes(bytes)}; nothing was changed.`,
        { hint: "Drill in another folder, or free space there." },
      );
    }
    const fs = new RemoteFs(libvirt.runner);
    return {
      plan: {
        id,
        host: request.host,
        vm: vm.name,
        source: { kind: "snapshot", snapshot: snapshot.name },
        on,
        folder,
        disks,
        bytes,
        ...room,
        memoryMiB: built.memoryMiB,
        timeoutSeconds: timeoutSeconds(request),
        dropped: built.dropped,
      },
      definition: built.definition,
      vmUuid: vm.uuid,
      copy: async () => {
        for (const { disk, image, file } of images) {
          request.onStep?.(`Copying ${image.target} of snapshot "${snapshot.name}"`);
          const copied = await copySnapshotOut(
            fs,
            snapshot.tag,
            {
              target: image.target,
              source: disk.source ?? "",
              imageSnapshotId: image.imageSnapshotId,
              lv: image.lv,
            },
            { output: file, shared: vm.active, compression: "none", signal: request.signal },
          );
          if (copied.result.code !== 0) {
            throw new SnapkeepError(
              "COMMAND_FAILED",
              `Copying ${image.target} of snapshot "${snapshot.name}" failed: ${copied.result.stderr.trim().split("\n").at(-1) ?? ""}`,
            );
          }
        }
      },
    };
  }

  #definition(
    xml: string,
    name: string,
    disks: readonly { readonly target: string; readonly file: string }[],
    id: string,
    folder: string,
  ): { definition: (until: Date) => string; dropped: readonly DefinitionNote[]; memoryMiB: number } {
    const build = (until: Date): RestoredDefinition =>
      buildRestoredDefinition(xml, {
        name,
        disks: new Map(disks.map((d) => [d.target, d.file])),
        host: { networks: [], bridges: [] },
        isolate: {
          network: name,
          nvram: nvramOf(folder),
          marker: { namespace: DRILL_NAMESPACE, attributes: markerOf(id, until) },
        },
      });
    const built = build(this.deps.now());
    return {
      definition: (until) => build(until).xml,
      dropped: built.dropped,
      memoryMiB: memoryMiBOf(built.xml),
    };
  }

  async #room(
    libvirt: LibvirtHost,
    dir: string,
    on: string,
    memoryMiB: number,
    bytes: number,
  ): Promise<{ freeBytes: number; availableMiB: number }> {
    const result = await runChecked(
      libvirt.runner,
      ["sh", "-c", DRILL_ROOM_SCRIPT, "snapkeep-drill-room", dir],
      `Reading the room on ${on}`,
      { timeoutMs: QUICK_MS },
    );
    const room = parseDrillRoom(result.stdout);
    if (room === null) {
      throw new SnapkeepError(
        "UNEXPECTED_OUTPUT",
        `${on} did not say how much memory and disk space it has free.`,
      );
    }
    const availableMiB = Math.floor(room.availableKiB / 1024);
    if (availableMiB < memoryMiB + HOST_RESERVE_MIB) {
      throw new SnapkeepError(
        "NO_SPACE",
        `${on} has ${String(availableMiB)} MiB of memory available, but the drill's VM needs ${String(memoryMiB)} MiB (and the host ${String(HOST_RESERVE_MIB)} MiB more); nothing was changed.`,
        { hint: "Drill on another host, or when this one is less busy." },
      );
    }
    if (room.freeBytes < bytes) {
      throw new SnapkeepError(
        "NO_SPACE",
        `${dir} on ${on} has ${formatBytes(room.freeBytes)} free, but the drill's images need ${formatBytes(bytes)}; nothing was changed.`,
        { hint: "Drill in another folder or on another host, or free space there." },
      );
    }
    return { freeBytes: room.freeBytes, availableMiB };
  }
}

/** Each disk of the snapshot: where it is read and where its copy goes in the drill's folder. */
function snapshotImages(
  vm: VmWithSnapshots,
  snapshot: Snapshot,
  folder: string,
): { disk: Disk; image: DiskSnapshot; file: string }[] {
  return snapshot.disks.map((image) => {
    const disk = vm.disks.find((d) => d.target === image.target);
    if (disk?.source === null || disk === undefined) {
      throw new SnapkeepError("NOT_FOUND", `${vm.name} has no disk ${image.target} any more.`);
    }
    return { disk, image, file: `${folder}/${image.target}.qcow2` };
  });
}

/** A UEFI VM's variable store during a drill: in its folder, so it goes with it. */
function nvramOf(folder: string): string {
  return `${folder}/VARS.fd`;
}

/** Namespace of the marker on a drill's throwaway VM. */
export const DRILL_NAMESPACE = "https://snapkeep.dev/xmlns/drill/1";

/** The images' folder: absolute, of the characters a restore takes, no "..". */
function imageDir(dir: string | undefined): string {
  const resolved = posix.normalize(dir ?? DEFAULT_IMAGE_DIR).replace(/\/+$/, "");
  if (
    !resolved.startsWith("/") ||
    resolved === "" ||
    !/^[A-Za-z0-9._/+-]+$/.test(resolved) ||
    resolved.split("/").includes("..")
  ) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `Drill in a folder given as an absolute path of letters, digits and . _ - + / (not "${dir ?? ""}").`,
    );
  }
  return resolved;
}

/** A check the record can keep whole: at most 64 words of 4096 characters, and so the expected text. */
function requireCheck(check: DrillRequest["check"]): void {
  if (check === undefined) {
    return;
  }
  if (
    check.argv.length === 0 ||
    check.argv.length > MAX_CHECK_WORDS ||
    check.argv.some((w) => w.length > MAX_CHECK_WORD) ||
    (check.expect ?? "").length > MAX_CHECK_WORD
  ) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `A check is 1 to ${String(MAX_CHECK_WORDS)} words of at most ${String(MAX_CHECK_WORD)} characters, and so is what it must print.`,
    );
  }
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function timeoutSeconds(request: DrillRequest): number {
  return Math.round((request.timeoutMs ?? DEFAULT_DRILL_TIMEOUT_MS) / 1000);
}

/** The VM's memory from the definition Snapkeep just wrote (`<memory unit='…'>N</memory>`). */
export function memoryMiBOf(xml: string): number {
  const match = /<memory(?:\s+unit='([A-Za-z]+)')?>([0-9]{1,15})<\/memory>/.exec(xml);
  if (match === null) {
    return 512; // libvirt refuses a domain without memory; this only sizes the room check
  }
  const factor: Record<string, number> = {
    b: 1 / 1048576,
    bytes: 1 / 1048576,
    k: 1 / 1024,
    kib: 1 / 1024,
    kb: 1000 / 1048576,
    m: 1,
    mib: 1,
    mb: 1e6 / 1048576,
    g: 1024,
    gib: 1024,
    gb: 1e9 / 1048576,
    t: 1048576,
    tib: 1048576,
    tb: 1e12 / 1048576,
  };
  return Math.ceil(Number(match[2]) * (factor[(match[1] ?? "KiB").toLowerCase()] ?? 1 / 1024));
}

interface Trial {
  readonly reason: string | null;
  readonly bootSeconds: number | null;
  readonly check: DrillRecord["check"];
  readonly screenshot: Buffer | null;
  readonly leftovers: string[];
  readonly notes: string[];
  /** Stopped by the person (or the job's cancel): no verdict, nothing recorded. */
  readonly cancelled: boolean;
}

/** Copies, boots, judges, captures and tears down; everything that fails becomes the reason. */
async function runTrial(
  libvirt: LibvirtHost,
  prepared: Prepared,
  request: DrillRequest,
  now: () => Date,
  step: (text: string) => void,
): Promise<Trial> {
  const { plan } = prepared;
  const name = drillName(plan.id);
  const fs = new RemoteFs(libvirt.runner);
  const result: { -readonly [K in keyof Trial]: Trial[K] } = {
    reason: null,
    bootSeconds: null,
    check: null,
    screenshot: null,
    leftovers: [],
    notes: [],
    cancelled: false,
  };
  let started = false;
  let registered = false;
  try {
    // Registered before anything is made: until the copy is done for as long as a copy may take,
    // then for as long as the wait may take. A drill whose process is gone is a leftover at once.
    await register(libvirt, plan.id, plan.folder, later(now(), COPY_BUDGET_MS));
    registered = true;
    await fs.mkdirs(plan.folder, "hypervisor");
    await prepared.copy();
    const until = later(now(), plan.timeoutSeconds * 1000 + LEFTOVER_GRACE_MS);
    await register(libvirt, plan.id, plan.folder, until);
    const xml = prepared.definition(until);
    requireOnlyImportedPaths(xml, [...plan.disks.map((d) => d.file), nvramOf(plan.folder)]);
    step("Making the isolated network");
    await createFromXml(libvirt, "net-create", drillNetworkXml(name, drillBridge(plan.id)));
    step("Starting the throwaway VM");
    await createFromXml(libvirt, "create", xml);
    started = true;
    const bootedAt = now().getTime();
    step("Waiting for the guest agent");
    const answered = await waitForAgent(libvirt, name, plan.timeoutSeconds * 1000, request.signal);
    if (answered.ok) {
      result.bootSeconds = Math.round((now().getTime() - bootedAt) / 100) / 10;
      if (request.check !== undefined) {
        step(`Running ${request.check.argv.join(" ")} in the guest`);
        result.check = await runCheck(libvirt, name, request.check);
        if (!checkPassed(result.check)) {
          result.reason = checkFailure(result.check);
        }
      }
    } else {
      result.reason = answered.why;
    }
  } catch (error) {
    result.reason = describeError(error);
    result.cancelled = request.signal?.aborted === true || isSnapkeepError(error, "CANCELLED");
  } finally {
    if (started && !result.cancelled) {
      step("Taking a screenshot of the console");
      try {
        result.screenshot = await screenshot(libvirt, name, request.signal);
      } catch (error) {
        result.notes.push(`No screenshot: ${describeError(error)}`);
      }
    }
    step("Tearing down");
    result.leftovers = await tearDown(libvirt, plan.id, plan.folder);
    // What could not be removed stays registered: the next drill on the host tries again.
    if (registered && result.leftovers.length === 0) {
      await registry(libvirt, ["drop", plan.id]).catch(() => undefined);
    }
  }
  return result;
}

async function createFromXml(
  libvirt: LibvirtHost,
  verb: "net-create" | "create",
  xml: string,
): Promise<void> {
  await runChecked(
    libvirt.runner,
    ["sh", "-c", CREATE_FROM_XML_SCRIPT, "snapkeep-drill-create", libvirt.uri, verb],
    verb === "create" ? "Starting the drill's VM" : "Making the drill's isolated network",
    { stdin: xml, timeoutMs: QUICK_MS },
  );
}

async function waitForAgent(
  libvirt: LibvirtHost,
  name: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<{ ok: true } | { ok: false; why: string }> {
  const started = Date.now();
  for (;;) {
    signal?.throwIfAborted();
    const ping = await libvirt.runner.run(
      virsh.agentCommandArgs(libvirt.uri, name, { execute: "guest-ping" }, 5),
      {
        timeoutMs: 20_000,
      },
    );
    if (ping.code === 0) {
      return { ok: true };
    }
    const state = await libvirt.runner.run(virsh.domStateArgs(libvirt.uri, name), { timeoutMs: 20_000 });
    const seconds = Math.round((Date.now() - started) / 1000);
    if (state.code !== 0 || state.stdout.trim() !== "running") {
      return {
        ok: false,
        why: `The restored VM stopped ${String(seconds)} s after it started (${state.stdout.trim() || "gone"}), before its guest agent answered.`,
      };
    }
    if (Date.now() - started >= timeoutMs) {
      return {
        ok: false,
        why: `The restored VM's guest agent did not answer within ${formatSeconds(timeoutMs / 1000)} of its start: it did not boot, or the guest has no running qemu-guest-agent (the screenshot shows its screen at the end).`,
      };
    }
    await sleep(POLL_MS, undefined, signal === undefined ? {} : { signal }).catch(() => undefined);
  }
}

function formatSeconds(seconds: number): string {
  return seconds >= 60 && seconds % 60 === 0
    ? `${String(seconds / 60)} min`
    : `${String(Math.round(seconds))} s`;
}

async function runCheck(
  libvirt: LibvirtHost,
  name: string,
  check: NonNullable<DrillRequest["check"]>,
): Promise<NonNullable<DrillRecord["check"]>> {
  const ops = libvirtGuestOps(libvirt.runner, libvirt.uri, name);
  const expected = check.expect ?? null;
  try {
    const ran = await ops.runHook({ where: "guest", argv: [...check.argv], timeoutSeconds: 120 });
    return { argv: [...check.argv], exitCode: ran.code, output: keptOutput(ran.output), expected };
  } catch (error) {
    return { argv: [...check.argv], exitCode: null, output: keptOutput(describeError(error)), expected };
  }
}

function checkFailure(check: NonNullable<DrillRecord["check"]>): string {
  const command = check.argv.join(" ");
  if (check.exitCode === null) {
    return `The check ${command} could not run in the guest: ${check.output.split("\n")[0] ?? ""}`;
  }
  if (check.exitCode !== 0) {
    return `The check ${command} exited with ${String(check.exitCode)} in the guest.`;
  }
  return `The check ${command} printed something else than expected.`;
}

/**
 * The console as evidence. A Linux console is blank for a moment while it switches to its
 * framebuffer (just when the agent starts, often): a nearly empty screen is taken again a few
 * times, a few seconds apart, before it is kept as it is.
 */
async function screenshot(
  libvirt: LibvirtHost,
  name: string,
  signal: AbortSignal | undefined,
): Promise<Buffer> {
  let pixels = await screen(libvirt, name);
  for (let attempt = 0; attempt < SCREEN_RETRIES && inkShare(pixels) < BLANK_INK; attempt += 1) {
    await sleep(SCREEN_RETRY_MS, undefined, signal === undefined ? {} : { signal }).catch(() => undefined);
    pixels = await screen(libvirt, name);
  }
  return encodePng(pixels);
}

async function screen(libvirt: LibvirtHost, name: string): Promise<Pixels> {
  const chunks: Buffer[] = [];
  const result = await libvirt.runner.run(
    [
      "sh",
      "-c",
      SCREENSHOT_SCRIPT,
      "snapkeep-screenshot",
      libvirt.uri,
      name,
      String(MAX_SCREENSHOT_BYTES + 1),
    ],
    { onStdout: (chunk) => chunks.push(chunk), timeoutMs: QUICK_MS },
  );
  if (result.code !== 0) {
    throw new SnapkeepError(
      "COMMAND_FAILED",
      `virsh screenshot failed: ${result.stderr.trim().split("\n").at(-1) ?? ""}`,
    );
  }
  return parseScreenshot(Buffer.concat(chunks));
}

/** Stops the VM (a transient one is then gone), removes the network and the folder; says what stays. */
async function tearDown(libvirt: LibvirtHost, id: string, folder: string | null): Promise<string[]> {
  const name = drillName(id);
  const left: string[] = [];
  const { runner, uri } = libvirt;
  const vm = await runner.run(virsh.destroyArgs(uri, name), { timeoutMs: QUICK_MS }).catch(() => null);
  if (vm !== null && vm.code !== 0 && !/not found|no domain|failed to get domain/i.test(vm.stderr)) {
    left.push(`VM ${name} (${vm.stderr.trim().split("\n").at(-1) ?? ""})`);
  }
  // A VM someone made persistent meanwhile keeps its definition otherwise.
  await runner.run(virsh.undefineArgs(uri, name), { timeoutMs: QUICK_MS }).catch(() => null);
  const net = await runner
    .run(virsh.virsh(uri, "net-destroy", "--network", name), { timeoutMs: QUICK_MS })
    .catch(() => null);
  if (net !== null && net.code !== 0 && !/not found|no network/i.test(net.stderr)) {
    left.push(`network ${name} (${net.stderr.trim().split("\n").at(-1) ?? ""})`);
  }
  if (folder !== null) {
    try {
      await new RemoteFs(runner).removeTree(folder);
    } catch (error) {
      left.push(`folder ${folder} (${describeError(error)})`);
    }
  }
  return left;
}

/**
 * Removes what drills left on the host when they were killed before their teardown. Every drill
 * is registered on the host before it makes anything (DRILL_REGISTRY_SCRIPT); an entry whose
 * process is gone (checked where it ran: this computer) or whose time has passed is torn down
 * (its VM, its network, its folder) and dropped. A throwaway VM that carries the drill marker but
 * has no entry (the register was cleaned away) goes the same way, with its network. Nothing named
 * like a drill without an entry or a marker is touched.
 */
export async function sweepDrills(libvirt: LibvirtHost, now: Date): Promise<string[]> {
  const { runner, uri } = libvirt;
  const swept: string[] = [];
  const entries = parseDrillRegistry((await registry(libvirt, ["list"])).stdout);
  for (const { id, entry } of entries) {
    const parsed = parseEntry(entry);
    if (!isLeftOver(parsed, now)) {
      continue;
    }
    // The folder is removed only when it is where a drill makes it, for this very id.
    const folder = parsed !== null && FOLDER_PATH.exec(parsed.folder)?.[1] === id ? parsed.folder : null;
    const left = await tearDown(libvirt, id, folder);
    if (left.length === 0) {
      await registry(libvirt, ["drop", id]);
      swept.push(drillName(id));
    }
  }
  const registered = new Set(entries.map((e) => e.id));
  const domains = await runner.run(virsh.virsh(uri, "list", "--all", "--name"), { timeoutMs: QUICK_MS });
  for (const domain of domains.stdout.split("\n").map((l) => l.trim())) {
    const id = DRILL_NAME.exec(domain)?.[1];
    if (id === undefined || registered.has(id)) {
      continue;
    }
    const xml = await runner.run(virsh.virsh(uri, "dumpxml", "--domain", domain), { timeoutMs: QUICK_MS });
    const marker = parseMarker(xml.stdout);
    if (marker?.id === id && isLeftOver(marker, now)) {
      await tearDown(libvirt, id, null);
      swept.push(domain);
    }
  }
  return swept;
}

async function registry(libvirt: LibvirtHost, args: readonly string[]): Promise<RunResult> {
  const result = await libvirt.runner.run(["sh", "-c", DRILL_REGISTRY_SCRIPT, "snapkeep-drills", ...args], {
    timeoutMs: QUICK_MS,
  });
  if (result.code === 23) {
    throw new SnapkeepError(
      "PERMISSION_DENIED",
      `The drills' register /var/tmp/snapkeep-drills-UID on ${libvirt.runner.label} is not a folder of this user's own (a link, or another user's); no drill runs there until it is removed.`,
    );
  }
  if (result.code !== 0) {
    throw new SnapkeepError(
      "COMMAND_FAILED",
      `Keeping the drills' register on ${libvirt.runner.label} failed: ${result.stderr.trim().split("\n").at(-1) ?? ""}`,
    );
  }
  return result;
}

async function register(libvirt: LibvirtHost, id: string, folder: string, until: Date): Promise<void> {
  const entry = JSON.stringify({ until: until.toISOString(), owner: thisProcess(), folder });
  await registry(libvirt, ["put", id, entry]);
}

const entrySchema = z.object({
  until: z.string().max(64),
  owner: processOwnerSchema,
  folder: z.string().max(4096),
});

function parseEntry(text: string): (Marker & { readonly folder: string }) | null {
  try {
    const parsed = entrySchema.parse(JSON.parse(text));
    return { id: null, until: parsed.until, owner: parsed.owner, folder: parsed.folder };
  } catch {
    return null;
  }
}

interface Marker {
  readonly id: string | null;
  readonly owner: ProcessOwner | null;
  readonly until: string | null;
}

/** The attributes of a drill's marker: its id, the process running it, when it is over. */
export function markerOf(
  id: string,
  until: Date,
  owner: ProcessOwner = thisProcess(),
): Record<string, string> {
  return {
    id,
    until: until.toISOString(),
    pid: String(owner.pid),
    hostname: owner.hostname,
    ...(owner.bootId === undefined ? {} : { boot: owner.bootId }),
    ...(owner.startTicks === undefined ? {} : { ticks: owner.startTicks }),
  };
}

/** The drill marker in a domain's XML as libvirt prints it back, or null. */
export function parseMarker(xml: string): Marker | null {
  const element = new RegExp(`<drill:drill\\s[^>]*xmlns:drill=["']${DRILL_NAMESPACE}["'][^>]*>`).exec(
    xml,
  )?.[0];
  if (element === undefined) {
    return null;
  }
  const value = (key: string): string | null =>
    new RegExp(`\\s${key}=["']([^"'<>&]{1,256})["']`).exec(element)?.[1] ?? null;
  const pid = Number(value("pid"));
  const hostname = value("hostname");
  const boot = value("boot");
  const ticks = value("ticks");
  return {
    id: value("id"),
    until: value("until"),
    owner:
      Number.isInteger(pid) && pid > 0 && hostname !== null
        ? {
            pid,
            hostname,
            ...(boot === null ? {} : { bootId: boot }),
            ...(ticks === null ? {} : { startTicks: ticks }),
          }
        : null,
  };
}

/**
 * A drill's piece is left over when its process is gone, or its time is up. A register entry
 * that cannot be read was damaged (entries are written by rename): a leftover too.
 */
export function isLeftOver(marker: Marker | null, now: Date): boolean {
  if (marker === null) {
    return true;
  }
  if (marker.owner !== null && !isProcessAlive(marker.owner)) {
    return true;
  }
  return marker.until === null || !(Date.parse(marker.until) >= now.getTime());
}

function later(from: Date, ms: number): Date {
  return new Date(from.getTime() + ms);
}

import type { Command } from "commander";

import { SnapkeepError } from "../errors.js";
import type { Artifact, ArtifactKind } from "../app/library/library.js";
import { displayName, formatBytes, formatTime, table } from "./format.js";
import type { CliContext, CliIo } from "./main.js";
import { splitVmRef } from "./refs.js";

type Print = (value: unknown, json: boolean | undefined, human: () => string) => void;

/** `template ...`, `volume ...`, `vm create|delete` and `orphans`: what a snapshot can become. */
// eslint-disable-next-line max-lines-per-function -- a table: one short declaration per command.
export function registerLibraryCommands(
  program: Command,
  vm: Command,
  io: CliIo,
  context: () => CliContext,
  print: Print,
): void {
  const library = (): CliContext["library"] => context().library;

  for (const kind of ["template", "volume"] as const) {
    const group = program
      .command(kind)
      .description(
        kind === "template"
          ? "OS templates (golden images) from root-disk snapshots"
          : "standalone volumes from additional-disk snapshots, attachable to any VM on the host",
      );
    group
      .command("create <host/vm> <snapshot>")
      .description(
        kind === "template"
          ? "make a read-only template from the snapshot's root disk"
          : "make a volume from one disk of the snapshot",
      )
      .requiredOption("--name <name>", `the ${kind}'s name`)
      .option(
        "--disk <target>",
        kind === "template" ? "the root disk (default: the VM's root disk)" : "the additional disk, e.g. vdb",
      )
      .option(
        "--attach <host/vm>",
        "attach the new volume to this VM on the same host (read-only unless --rw)",
      )
      .option("--rw", "attach read-write")
      .option("--dry-run", "only say what would be made")
      .option("--json", "machine-readable output")
      .action(
        async (
          ref: string,
          snapshotRef: string,
          opts: {
            name: string;
            disk?: string;
            attach?: string;
            rw?: boolean;
            dryRun?: boolean;
            json?: boolean;
          },
        ) => {
          if (kind === "template" && opts.attach !== undefined) {
            throw new SnapkeepError(
              "INVALID_INPUT",
              "--attach is for volumes; make VMs from a template with: snapkeep vm create",
            );
          }
          const [host, vmName] = splitVmRef(ref);
          const request = {
            host,
            vm: vmName,
            snapshot: snapshotRef,
            name: opts.name,
            disk: opts.disk,
            dryRun: opts.dryRun === true,
          };
          const result =
            kind === "template"
              ? await library().createTemplate(request)
              : await library().createVolume(request);
          const attachTo = opts.attach === undefined ? undefined : sameHostVm(host, opts.attach);
          const attached =
            attachTo !== undefined && !result.dryRun
              ? await library().attachVolume(host, opts.name, attachTo, opts.rw === true)
              : null;
          print({ ...result, attached }, opts.json, () => {
            const a = result.artifact;
            const from = `disk ${a.source.disk} of ${displayName(a.source.vmName)} at ${displayName(a.source.snapshotName)}`;
            return result.dryRun
              ? `Would make ${kind} ${a.name} at ${a.image} from ${from}.\n`
              : `Made ${kind} ${a.name} (${formatBytes(a.size)}) at ${a.image} from ${from}.\n` +
                  (attached === null
                    ? ""
                    : `Attached to ${displayName(attached.vm)} as ${attached.target}${attached.readonly ? ", read-only" : ""}.\n`);
          });
        },
      );
    group
      .command("list")
      .description(`list ${kind}s on a host`)
      .requiredOption("--host <name>", "the host")
      .option("--json", "machine-readable output")
      .action(async (opts: { host: string; json?: boolean }) => {
        const list = await library().list(kind, opts.host);
        print(list, opts.json, () => formatArtifacts(kind, list));
      });
    group
      .command("delete <host> <name>")
      .description(
        kind === "template" ? "delete a template no VM is based on" : "delete a volume no VM has attached",
      )
      .option("--dry-run", "only check and say what would be deleted")
      .action(async (host: string, name: string, opts: { dryRun?: boolean }) => {
        const deleted = await library().deleteArtifact(kind, host, name, opts.dryRun === true);
        io.out(
          `${opts.dryRun === true ? "Would delete" : "Deleted"} ${kind} ${deleted.name} (${deleted.image}).\n`,
        );
      });
  }
  const volume = program.commands.find((c) => c.name() === "volume");
  volume
    ?.command("attach <host> <name>")
    .description("attach a volume to a VM on its host, read-only unless --rw (live when it runs)")
    .requiredOption("--to <vm>", "the VM")
    .option("--rw", "attach read-write")
    .action(async (host: string, name: string, opts: { to: string; rw?: boolean }) => {
      const result = await library().attachVolume(host, name, opts.to, opts.rw === true);
      io.out(
        `Attached ${name} to ${displayName(result.vm)} as ${result.target}${result.readonly ? ", read-only" : ", read-write"}.\n`,
      );
    });
  volume
    ?.command("detach <host> <name>")
    .description("detach a volume from a VM")
    .requiredOption("--from <vm>", "the VM")
    .action(async (host: string, name: string, opts: { from: string }) => {
      const result = await library().detachVolume(host, name, opts.from);
      io.out(
        result.pending
          ? `Removed ${name} (${result.target}) from ${displayName(result.vm)}'s definition; the running guest did not release it, so it goes at its next shutdown.\n`
          : `Detached ${name} (${result.target}) from ${displayName(result.vm)}.\n`,
      );
    });

  vm.command("create <host/name>")
    .description("a new VM from a template: a linked clone (default) or a full copy")
    .requiredOption("--from-template <template>", "the template")
    .option("--full", "copy the template instead of an overlay backed by it")
    .option("--start", "start the new VM")
    .option("--dry-run", "only say what would be made")
    .option("--json", "machine-readable output")
    .action(
      async (
        ref: string,
        opts: { fromTemplate: string; full?: boolean; start?: boolean; dryRun?: boolean; json?: boolean },
      ) => {
        const [host, name] = splitVmRef(ref);
        const result = await library().createVm({
          host,
          name,
          template: opts.fromTemplate,
          full: opts.full,
          start: opts.start,
          dryRun: opts.dryRun,
        });
        print(result, opts.json, () =>
          result.dryRun
            ? `Would make VM ${displayName(name)} as a ${result.linked ? "linked clone of" : "full copy of"} ${opts.fromTemplate}, disk ${result.disk}.\n`
            : `Made VM ${displayName(name)} (${result.uuid ?? ""}) as a ${result.linked ? "linked clone of" : "full copy of"} ${opts.fromTemplate}${result.started ? ", started" : ""}.\n`,
        );
      },
    );
  vm.command("delete <host/vm>")
    .description("delete a VM Snapkeep made, with the image files it made for it (see --dry-run first)")
    .option("--dry-run", "only say what goes and what stays")
    .option("--yes", "really delete it")
    .option("--force", "stop it first if it runs")
    .option("--json", "machine-readable output")
    .action(
      async (ref: string, opts: { dryRun?: boolean; yes?: boolean; force?: boolean; json?: boolean }) => {
        const [host, name] = splitVmRef(ref);
        const dryRun = opts.dryRun === true || opts.yes !== true;
        const plan = await library().deleteVm(host, name, { dryRun, force: opts.force === true });
        print(plan, opts.json, () => {
          const lines = [
            `${plan.dryRun ? "Would delete" : "Deleted"} VM ${displayName(plan.vm)}${plan.running ? " (running: stopped first)" : ""}.`,
            ...plan.files.map(
              (f) =>
                `  deleted: ${f.path}${f.snapshots.length > 0 ? `, with its snapshots ${f.snapshots.map(displayName).join(", ")}` : ""}`,
            ),
            ...plan.schedules.map((id) => `  deleted: schedule ${id}`),
            ...plan.survives.map((s) => `  stays: ${s}`),
            ...(plan.dryRun && opts.dryRun !== true ? ["Run again with --yes to delete it."] : []),
          ];
          return `${lines.join("\n")}\n`;
        });
      },
    );

  program
    .command("orphans")
    .description("notes, schedules, templates, volumes and records whose VM is gone")
    .option("--host <name>", "only this host")
    .option("--clean", "forget the notes, pins, schedules and records listed (templates and volumes stay)")
    .option("--dry-run", "with --clean: only say what would be forgotten")
    .option("--json", "machine-readable output")
    .action(async (opts: { host?: string; clean?: boolean; dryRun?: boolean; json?: boolean }) => {
      if (opts.clean === true) {
        const cleaned = await library().cleanOrphans(opts.host, opts.dryRun === true);
        const verb = opts.dryRun === true ? "Would forget" : "Forgot";
        print(cleaned, opts.json, () =>
          [
            ...(cleaned.removed.length === 0
              ? ["Nothing to forget: nothing in the settings points at a VM that is gone.\n"]
              : cleaned.removed.map(
                  (o) => `${verb} ${o.kind} ${displayName(o.what)} on ${o.host} (${o.why}).\n`,
                )),
            ...cleaned.kept.map((o) => `Kept ${o.kind} ${displayName(o.what)} on ${o.host}: ${o.why}.\n`),
            ...cleaned.skipped.map((h) => `Host ${h} could not be reached and was not cleaned.\n`),
          ].join(""),
        );
        return;
      }
      if (opts.dryRun === true) {
        throw new SnapkeepError(
          "INVALID_INPUT",
          "--dry-run goes with --clean: orphans alone changes nothing.",
        );
      }
      const result = await library().orphans(opts.host);
      print(
        result,
        opts.json,
        () =>
          (result.orphans.length === 0
            ? "Nothing points at a VM that is gone.\n"
            : table(
                ["HOST", "KIND", "WHAT", "WHY"],
                result.orphans.map((o) => [o.host, o.kind, displayName(o.what), o.why]),
              )) +
          result.skipped.map((h) => `Host ${h} could not be reached and was not checked.\n`).join(""),
      );
    });
}

/** A volume lives on its VM's host: `--attach` takes VM or HOST/VM with that same host. */
function sameHostVm(host: string, ref: string): string {
  if (!ref.includes("/")) {
    return ref;
  }
  const [other, vm] = splitVmRef(ref);
  if (other !== host) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `A volume on ${host} can only be attached to a VM on ${host}, not ${other}.`,
      {
        hint: "Export the snapshot and import it on the other host instead: snapkeep export ... / snapkeep import ... --into VM",
      },
    );
  }
  return vm;
}

function formatArtifacts(kind: ArtifactKind, list: readonly Artifact[]): string {
  if (list.length === 0) {
    return `No ${kind}s.\n`;
  }
  return table(
    ["NAME", "FROM", "SNAPSHOT", "OS", "SIZE", "CREATED"],
    list.map((a) => [
      a.name,
      `${displayName(a.source.vmName)}/${a.source.disk}`,
      displayName(a.source.snapshotName),
      a.os ?? "-",
      formatBytes(a.virtualSize),
      formatTime(a.createdAt),
    ]),
  );
}

/**
 * Every method of the UI's API and its parameters. A method not listed here does not exist, and
 * parameters are checked here before anything runs, whichever transport brought them.
 *
 * Each field is described in the words a sentence about it uses ("The target name ... may
 * contain only ..."): the API parses with explain.ts's sentenceErrorMap, which reads them.
 */
import { z } from "zod";

import { MAX_BWLIMIT_KIB, MAX_EXPORTS_KEPT, MAX_SAFETY_KEPT, MAX_WAIT_SECONDS } from "../domain/limits.js";
import { NAME_PATTERN, NO_CONTROL_CHARACTERS } from "../domain/names.js";
import { isEmptyPolicy } from "../domain/retention/gfs.js";
import { retentionSchema, whenSchema } from "../domain/schedule/spec.js";

/** A host, target, template or volume name, in the words `what` ("target name"). */
const nameOf = (what: string) => z.string().regex(NAME_PATTERN).describe(what);
/** A path or address a person types. */
const typed = (what: string, max: number) =>
  z.string().min(1).max(max).regex(NO_CONTROL_CHARACTERS).describe(what);
const flag = (what: string) => z.boolean().describe(what);

const hostName = nameOf("host name");
const targetName = nameOf("target name");
const vmName = z.string().min(1).max(300).describe("VM name");
const hostVm = { host: hostName, vm: vmName };
const snapshotRef = { ...hostVm, snapshot: z.string().min(1).max(70_000).describe("snapshot") };
const disks = z
  .array(z.string().min(1).max(32).describe("disk target"))
  .min(1)
  .max(64)
  .describe("list of disks");
const fingerprint = z.string().min(1).max(200).describe("host key fingerprint");
const dryRun = flag("dry-run choice");
const stopOptions = {
  dryRun,
  stopRunning: flag("choice to stop a running VM").default(false),
  force: flag("choice to power the VM off").default(false),
  shutdownTimeoutSeconds: z
    .number()
    .int()
    .min(1)
    .max(MAX_WAIT_SECONDS)
    .describe("shutdown timeout in seconds")
    .default(120),
};

const note = z.string().max(2000).describe("note");
const scheduleDraft = z.object({
  ...hostVm,
  when: whenSchema,
  // The settings file takes a schedule that keeps everything; a person setting one up says how many.
  retention: retentionSchema.refine(
    (policy) => !isEmptyPolicy(policy),
    "Say how many snapshots to keep: the latest N, or how many daily, weekly or monthly ones",
  ),
  disks: disks.optional(),
  note: note.optional(),
});
const scheduleId = z
  .string()
  .regex(/^[a-z0-9]{8}$/)
  .describe("schedule ID");
const artifactKind = z.enum(["template", "volume"]).describe("kind");
const artifactName = z.string().min(1).max(128).describe("template or volume name");
const exportId = z.string().min(1).max(300).describe("export ID");

export const methods = {
  "hosts.list": z.object({}),
  "hosts.add": z
    .object({
      name: hostName,
      local: flag("choice of this computer").default(false),
      ssh: typed("SSH address", 300).optional(),
      identityFile: typed("key file", 4096).optional(),
      uri: typed("libvirt URI", 300).optional(),
    })
    .refine((p) => p.local !== (p.ssh !== undefined), "Choose this computer or an SSH address"),
  "hosts.fingerprint": z.object({ name: hostName }),
  "hosts.trust": z.object({ name: hostName, fingerprint }),
  "hosts.remove": z.object({ name: hostName }),

  "vms.list": z.object({ host: hostName.optional() }),
  "vm.get": z.object(hostVm),

  "snapshot.create": z.object({
    ...hostVm,
    name: z.string().min(1).max(128).describe("snapshot name").optional(),
    note: note.optional(),
    disks: disks.optional(),
  }),
  "snapshot.delete": z.object({ ...snapshotRef, dryRun: dryRun.default(false) }),
  "snapshot.pin": z.object({ ...snapshotRef, pinned: flag("pin choice") }),
  "snapshot.revert": z.object({ ...snapshotRef, disks: disks.optional(), ...stopOptions }),
  "snapshot.undo": z.object({ ...hostVm, ...stopOptions }),

  "schedules.list": z.object({}),
  "schedules.add": scheduleDraft,
  "schedules.update": scheduleDraft.extend({ id: scheduleId }),
  "schedules.remove": z.object({ id: scheduleId }),
  "schedules.setEnabled": z.object({ id: scheduleId, enabled: flag("choice to run the schedule") }),
  "schedules.preview": z.object({ draft: scheduleDraft, editing: scheduleId.optional() }),
  /** Without minutes: until resumed. */
  "schedules.pauseAll": z.object({
    minutes: z.number().int().min(1).max(527_040).describe("pause in minutes").optional(),
  }),
  "schedules.resumeAll": z.object({}),
  "schedules.pauseState": z.object({}),

  "targets.list": z.object({}),
  "targets.add": z
    .object({
      name: targetName,
      dir: typed("folder", 4096).optional(),
      ssh: typed("SSH address", 4096).optional(),
      identityFile: typed("key file", 4096).optional(),
      keep: z
        .number()
        .int()
        .min(1, "Keep at least 1 export per VM, or leave it empty to keep all")
        .max(MAX_EXPORTS_KEPT, `Keep at most ${MAX_EXPORTS_KEPT.toLocaleString("en-US")} exports per VM`)
        .describe("number of exports to keep")
        .optional(),
    })
    .refine((p) => (p.dir === undefined) !== (p.ssh === undefined), "Give a folder or an SSH address"),
  "targets.fingerprint": z.object({ name: targetName }),
  "targets.trust": z.object({ name: targetName, fingerprint }),
  "targets.remove": z.object({ name: targetName }),
  "targets.test": z.object({ name: targetName }),

  "exports.list": z.object({ target: targetName.optional() }),
  "export.start": z.object({
    ...snapshotRef,
    target: targetName,
    disks: disks.optional(),
    bwlimitKiB: z
      .number()
      .int()
      .min(1, "A bandwidth limit must be above 0")
      .max(MAX_BWLIMIT_KIB)
      .describe("bandwidth limit in KiB/s")
      .optional(),
  }),
  "exports.verify": z.object({ target: targetName, export: exportId }),
  "import.start": z
    .object({
      target: targetName,
      export: exportId,
      host: hostName,
      name: z.string().min(1).max(200).describe("name of the new VM").optional(),
      into: vmName.optional(),
      disks: disks.optional(),
      start: flag("choice to start the VM").default(false),
      dryRun,
    })
    .refine((p) => (p.name === undefined) !== (p.into === undefined), "Choose a new VM name or a VM"),

  "artifacts.list": z.object({ kind: artifactKind, host: hostName }),
  "artifact.create": z.object({
    ...snapshotRef,
    kind: artifactKind,
    name: artifactName,
    disk: z.string().min(1).max(32).describe("disk target").optional(),
    dryRun,
  }),
  "artifact.delete": z.object({
    kind: artifactKind,
    host: hostName,
    name: artifactName,
    dryRun,
  }),
  "volume.attach": z.object({
    host: hostName,
    volume: z.string().min(1).max(128).describe("volume name"),
    vm: vmName,
    writable: flag("read-write choice").default(false),
  }),
  "vm.create": z.object({
    host: hostName,
    name: z.string().min(1).max(200).describe("name of the new VM"),
    template: z.string().min(1).max(128).describe("template name"),
    full: flag("full-copy choice").default(false),
    start: flag("choice to start the VM").default(false),
    dryRun,
  }),

  "jobs.list": z.object({}),
  "jobs.cancel": z.object({
    id: z
      .string()
      .regex(/^[0-9a-f]{12}$/)
      .describe("job ID"),
  }),
  "lab.up": z.object({}),
  "settings.get": z.object({}),
  "settings.set": z.object({
    safetyKeep: z
      .number()
      .int(`Keep a whole number of safety snapshots, 1 to ${MAX_SAFETY_KEPT}`)
      .min(1, "Keep at least 1 safety snapshot per VM")
      .max(MAX_SAFETY_KEPT, `Keep at most ${MAX_SAFETY_KEPT} safety snapshots per VM`)
      .describe("number of safety snapshots to keep")
      .optional(),
  }),
} as const;

export type Method = keyof typeof methods;
export type Params<M extends Method> = z.output<(typeof methods)[M]>;
export type ParamsIn<M extends Method> = z.input<(typeof methods)[M]>;

/**
 * Every method of the UI's API and its parameters. A method not listed here does not exist, and
 * parameters are checked here before anything runs, whichever transport brought them.
 */
import { z } from "zod";

import { WEEKDAYS } from "../schedule/spec.js";

const name = z.string().min(1).max(64);
const hostVm = { host: name, vm: z.string().min(1).max(300) };
const snapshotRef = { ...hostVm, snapshot: z.string().min(1).max(70_000) };
const disks = z.array(z.string().min(1).max(32)).min(1).max(64);
const fingerprint = z.string().min(1).max(200);
const stopOptions = {
  dryRun: z.boolean(),
  stopRunning: z.boolean().default(false),
  force: z.boolean().default(false),
  shutdownTimeoutSeconds: z.number().int().min(1).max(3600).default(120),
};

const when = z.discriminatedUnion("every", [
  z.object({ every: z.literal("daily"), at: z.string().max(5) }),
  z.object({ every: z.literal("weekly"), at: z.string().max(5), weekday: z.enum(WEEKDAYS) }),
  z.object({ every: z.literal("monthly"), at: z.string().max(5), day: z.number().int() }),
  z.object({ every: z.literal("cron"), cron: z.string().max(200) }),
]);
// What people type gets a sentence of its own; the rest keeps zod's wording (it is a bug if seen).
const COUNT = "Keep counts are whole numbers from 1 to 10,000; leave one empty for no such rule";
const count = z.number(COUNT).int(COUNT).min(1, COUNT).max(10_000, COUNT).optional();
const scheduleDraft = z.object({
  ...hostVm,
  when,
  retention: z.object({ keepLast: count, daily: count, weekly: count, monthly: count }),
  disks: disks.optional(),
  note: z.string().max(2000).optional(),
});
const scheduleId = z.string().regex(/^[a-z0-9]{8}$/);
const artifactKind = z.enum(["template", "volume"]);

export const methods = {
  "hosts.list": z.object({}),
  "hosts.add": z
    .object({
      name,
      local: z.boolean().default(false),
      ssh: z.string().min(1).max(300).optional(),
      identityFile: z.string().min(1).max(4096).optional(),
      uri: z.string().min(1).max(300).optional(),
    })
    .refine((p) => p.local !== (p.ssh !== undefined), "Choose this computer or an SSH address"),
  "hosts.fingerprint": z.object({ name }),
  "hosts.trust": z.object({ name, fingerprint }),
  "hosts.remove": z.object({ name }),

  "vms.list": z.object({ host: name.optional() }),
  "vm.get": z.object(hostVm),

  "snapshot.create": z.object({
    ...hostVm,
    name: z.string().min(1).max(128).optional(),
    note: z.string().max(2000).optional(),
    disks: disks.optional(),
  }),
  "snapshot.delete": z.object({ ...snapshotRef, dryRun: z.boolean().default(false) }),
  "snapshot.pin": z.object({ ...snapshotRef, pinned: z.boolean() }),
  "snapshot.revert": z.object({ ...snapshotRef, disks: disks.optional(), ...stopOptions }),
  "snapshot.undo": z.object({ ...hostVm, ...stopOptions }),

  "schedules.list": z.object({}),
  "schedules.add": scheduleDraft,
  "schedules.update": scheduleDraft.extend({ id: scheduleId }),
  "schedules.remove": z.object({ id: scheduleId }),
  "schedules.setEnabled": z.object({ id: scheduleId, enabled: z.boolean() }),
  "schedules.preview": z.object({ draft: scheduleDraft, editing: scheduleId.optional() }),
  /** Without minutes: until resumed. */
  "schedules.pauseAll": z.object({ minutes: z.number().int().min(1).max(527_040).optional() }),
  "schedules.resumeAll": z.object({}),
  "schedules.pauseState": z.object({}),

  "targets.list": z.object({}),
  "targets.add": z
    .object({
      name,
      dir: z.string().min(1).max(4096).optional(),
      ssh: z.string().min(1).max(4096).optional(),
      identityFile: z.string().min(1).max(4096).optional(),
      keep: z
        .number()
        .int()
        .min(1, "Keep at least 1 export per VM, or leave it empty to keep all")
        .max(1000, "Keep at most 1,000 exports per VM")
        .optional(),
    })
    .refine((p) => (p.dir === undefined) !== (p.ssh === undefined), "Give a folder or an SSH address"),
  "targets.fingerprint": z.object({ name }),
  "targets.trust": z.object({ name, fingerprint }),
  "targets.remove": z.object({ name }),
  "targets.test": z.object({ name }),

  "exports.list": z.object({ target: name.optional() }),
  "export.start": z.object({
    ...snapshotRef,
    target: name,
    disks: disks.optional(),
    bwlimitKiB: z.number().int().min(1, "A bandwidth limit must be above 0").max(100_000_000).optional(),
  }),
  "exports.verify": z.object({ target: name, export: z.string().min(1).max(300) }),
  "import.start": z
    .object({
      target: name,
      export: z.string().min(1).max(300),
      host: name,
      name: z.string().min(1).max(200).optional(),
      into: z.string().min(1).max(300).optional(),
      disks: disks.optional(),
      start: z.boolean().default(false),
      dryRun: z.boolean(),
    })
    .refine((p) => (p.name === undefined) !== (p.into === undefined), "Choose a new VM name or a VM"),

  "artifacts.list": z.object({ kind: artifactKind, host: name }),
  "artifact.create": z.object({
    ...snapshotRef,
    kind: artifactKind,
    name: z.string().min(1).max(128),
    disk: z.string().min(1).max(32).optional(),
    dryRun: z.boolean(),
  }),
  "artifact.delete": z.object({
    kind: artifactKind,
    host: name,
    name: z.string().min(1).max(128),
    dryRun: z.boolean(),
  }),
  "volume.attach": z.object({
    host: name,
    volume: z.string().min(1).max(128),
    vm: z.string().min(1).max(300),
    writable: z.boolean().default(false),
  }),
  "vm.create": z.object({
    host: name,
    name: z.string().min(1).max(200),
    template: z.string().min(1).max(128),
    full: z.boolean().default(false),
    start: z.boolean().default(false),
    dryRun: z.boolean(),
  }),

  "jobs.list": z.object({}),
  "jobs.cancel": z.object({ id: z.string().regex(/^[0-9a-f]{12}$/) }),
  "lab.up": z.object({}),
  "settings.get": z.object({}),
  "settings.set": z.object({
    safetyKeep: z
      .number()
      .int("Keep a whole number of safety snapshots, 1 to 100")
      .min(1, "Keep at least 1 safety snapshot per VM")
      .max(100, "Keep at most 100 safety snapshots per VM")
      .optional(),
  }),
} as const;

export type Method = keyof typeof methods;
export type Params<M extends Method> = z.output<(typeof methods)[M]>;
export type ParamsIn<M extends Method> = z.input<(typeof methods)[M]>;

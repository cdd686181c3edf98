import { z } from "zod";

/**
 * The settings file, in one schema: zod types it and validates what is read back; the JSON Schema
 * derived from it is what conf (CLI, daemon) and electron-store (desktop) enforce on every write.
 */
export const SETTINGS_VERSION = 1;

const hostName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/,
    "letters, digits, dot, - and _, starting with a letter or digit",
  );

export const localHostSchema = z.object({
  name: hostName,
  kind: z.literal("local"),
  uri: z.string().min(1),
});

export const sshHostSchema = z.object({
  name: hostName,
  kind: z.literal("ssh"),
  alias: z.string().min(1).optional(),
  host: z.string().min(1).optional(),
  user: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  identityFile: z.string().min(1).optional(),
  uri: z.string().min(1),
  hostKey: z
    .string()
    .regex(/^SHA256:[A-Za-z0-9+/]{43}$/)
    .optional(),
});

export const hostSchema = z.discriminatedUnion("kind", [localHostSchema, sshHostSchema]);

/** App-side facts about a snapshot that the qcow2 tag cannot carry. Keyed by snapshotKey(). */
export const annotationSchema = z.object({
  note: z.string().max(2000).nullable(),
  pinned: z.boolean(),
});

export const settingsSchema = z.object({
  version: z.literal(SETTINGS_VERSION),
  hosts: z.array(hostSchema),
  annotations: z.record(z.string(), annotationSchema),
});

export type Settings = z.infer<typeof settingsSchema>;
export type Annotation = z.infer<typeof annotationSchema>;

export function emptySettings(): Settings {
  return { version: SETTINGS_VERSION, hosts: [], annotations: {} };
}

export function snapshotKey(host: string, vmUuid: string, tag: string): string {
  return `${host}/${vmUuid}/${tag}`;
}

/** JSON Schema `properties` for conf/electron-store, derived from the zod schema above. */
export function settingsJsonSchemaProperties(): Record<string, object> {
  const full = z.toJSONSchema(settingsSchema, { target: "draft-2020-12" }) as {
    properties: Record<string, object>;
  };
  return full.properties;
}

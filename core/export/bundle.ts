/**
 * The export bundle: its folder layout, manifest, checksum list and restore notes, and how a
 * listing of a target's folders is read back into exports with a state. Pure, no I/O.
 *
 *   <target>/<vm>-<uuid8>/<id>/           a finished export: the disks, domain.xml, manifest.json,
 *                                          SHA256SUMS, RESTORE.md and status.json
 *   <target>/<vm>-<uuid8>/<id>.partial/   an export still being written (job.json says which)
 *
 * The finished name appears only after every file was hashed on the target and matched, so a
 * folder without `.partial` and with a "verified" status is the only kind listed as good.
 */
import { z } from "zod";

import { SnapkeepError } from "../errors.js";

export const BUNDLE_FORMAT = "snapkeep-export";
export const BUNDLE_VERSION = 1;
export const PARTIAL_SUFFIX = ".partial";

const ID_PATTERN = /^\d{8}T\d{6}Z-[a-z0-9-]{1,40}$/;

/** Folder names on any filesystem: lowercase ASCII, digits and dashes. */
export function slug(text: string, max = 40): string {
  const s = text
    .normalize("NFKD")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, max)
    .replace(/-+$/, "");
  return s.length > 0 ? s : "x";
}

export function vmFolderName(vmName: string, vmUuid: string): string {
  return `${slug(vmName)}-${vmUuid.replaceAll("-", "").slice(0, 8)}`;
}

/** Sortable by time, readable: 20261126T130500Z-nightly-3. */
export function exportId(now: Date, snapshotName: string): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
  return `${stamp}-${slug(snapshotName)}`;
}

export function isExportId(text: string): boolean {
  return ID_PATTERN.test(text);
}

export function diskFileName(target: string): string {
  if (!/^[a-z]{1,8}[a-z0-9]{0,8}$/.test(target)) {
    throw new SnapkeepError("INVALID_INPUT", `"${target}" is not a disk target Snapkeep can export.`);
  }
  return `${target}.qcow2`;
}

const fileSchema = z.object({
  name: z.string(),
  size: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

const diskSchema = fileSchema.extend({
  target: z.string(),
  role: z.enum(["root", "additional"]),
  format: z.literal("qcow2"),
  compression: z.enum(["zstd", "zlib"]),
  virtualSize: z.number().int().min(0).nullable(),
  /** The image the snapshot was in, on the source host; for the record only. */
  sourcePath: z.string().nullable(),
});

export const manifestSchema = z
  .object({
    format: z.literal(BUNDLE_FORMAT),
    formatVersion: z.literal(BUNDLE_VERSION),
    id: z.string(),
    createdAt: z.string(),
    source: z.object({
      host: z.string(),
      vm: z.object({ name: z.string(), uuid: z.string() }),
      snapshot: z.object({
        name: z.string(),
        tag: z.string(),
        kind: z.string(),
        createdAt: z.string(),
        consistency: z.string().nullable(),
        note: z.string().nullable(),
      }),
    }),
    definition: fileSchema,
    // A disk's file is always <target>.qcow2 and the definition domain.xml: a manifest naming any
    // other path (../../root/.ssh/…) is not one Snapkeep wrote, and an import must not follow it.
    disks: z
      .array(
        diskSchema.refine(
          (d) => /^[a-z]{1,8}[a-z0-9]{0,8}$/.test(d.target) && d.name === `${d.target}.qcow2`,
          {
            message: "a disk file must be named <target>.qcow2",
          },
        ),
      )
      .min(1),
    tools: z.record(z.string(), z.string()),
  })
  .refine((m) => m.definition.name === "domain.xml", { message: "the definition must be domain.xml" });

export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestDisk = z.infer<typeof diskSchema>;

/** Written first into a .partial folder: what is being exported, so a re-run can resume it. */
export const jobSchema = z.object({
  format: z.literal(BUNDLE_FORMAT),
  id: z.string(),
  startedAt: z.string(),
  host: z.string(),
  vmUuid: z.string(),
  vmName: z.string(),
  snapshotTag: z.string(),
  disks: z.array(z.string()).min(1),
});
export type ExportJob = z.infer<typeof jobSchema>;

export const statusSchema = z.object({
  state: z.enum(["verified", "corrupt"]),
  checkedAt: z.string(),
  /** Files whose hash did not match (or that were missing) at the last check. */
  badFiles: z.array(z.string()).default([]),
});
export type ExportStatus = z.infer<typeof statusSchema>;

/** `sha256sum -c` input: restoring without Snapkeep starts with checking the files. */
export function sha256sums(manifest: Manifest): string {
  return [manifest.definition, ...manifest.disks].map((f) => `${f.sha256}  ${f.name}\n`).join("");
}

export function restoreNotes(manifest: Manifest): string {
  const vm = manifest.source.vm.name;
  const disks = manifest.disks;
  const copy = disks
    .map((d) => `cp --sparse=always ${d.name} /var/lib/libvirt/images/NEWNAME-${d.target}.qcow2`)
    .join("\n");
  return `# Restoring ${vm} from this export

Snapshot "${manifest.source.snapshot.name}" of VM ${vm} (${manifest.source.vm.uuid}) on host
${manifest.source.host}, taken ${manifest.source.snapshot.createdAt}, exported ${manifest.createdAt}.

| file | disk | role | virtual size |
|---|---|---|---|
${disks.map((d) => `| ${d.name} | ${d.target} | ${d.role} | ${d.virtualSize ?? "?"} bytes |`).join("\n")}

Each disk is a standalone qcow2 image (${disks[0]?.compression ?? "zstd"}-compressed clusters, no backing
file). It needs QEMU 5.1 or newer when compressed with zstd. You need only qemu-img and virsh:

\`\`\`sh
# 1. Check every file against its checksum
sha256sum -c SHA256SUMS

# 2. Copy the disks to where the new VM's images should live
${copy}

# 3. Define a VM from domain.xml: edit it first to give it a new <name>, delete the <uuid> line and
#    every <mac address=.../> (libvirt makes new ones), and point each disk's <source file=.../>
#    at the copies from step 2.
virsh define domain.xml
virsh start NEWNAME
\`\`\`

To put the original VM's disk back instead, shut it down and
\`qemu-img convert -O qcow2 ${disks[0]?.name ?? "vda.qcow2"} /path/of/its/disk.qcow2\`.

With Snapkeep: \`snapkeep import TARGET ${manifest.id} --to HOST --name NEWNAME\`.
`;
}

export type ExportState = "verified" | "corrupt" | "unverified" | "partial";

export interface ExportEntry {
  readonly id: string;
  /** The VM folder, e.g. web01-1b2c3d4e. */
  readonly vmFolder: string;
  /** The export's folder relative to the target root. */
  readonly folder: string;
  readonly state: ExportState;
  /** Why it is not good, in words; null for a verified export. */
  readonly reason: string | null;
  readonly manifest: Manifest | null;
  readonly job: ExportJob | null;
  readonly status: ExportStatus | null;
  readonly vmName: string;
  readonly vmUuid: string;
  readonly snapshotName: string;
  readonly createdAt: string;
}

/** Marks in the listing script's output; JSON never has a line starting with them. */
export const SCAN_DIR = "@@snapkeep-dir ";
export const SCAN_FILE = "@@snapkeep-file ";

/**
 * Prints every `<vm>/<export>/` folder of a target with its job, manifest and status files. A
 * constant script; the root is "$1". A missing root is an empty target, not an error.
 */
export const SCAN_SCRIPT = [
  // A folder as $2 is made first (an export is about to write there), failing loudly.
  'if [ -n "$2" ]; then mkdir -p -- "$2" || exit 3; fi',
  'cd -- "$1" 2>/dev/null || exit 0',
  "for d in */*/; do",
  '  [ -d "$d" ] || continue',
  `  printf '${SCAN_DIR}%s\\n' "$d"`,
  "  for f in job.json manifest.json status.json; do",
  `    if [ -f "$d$f" ]; then printf '${SCAN_FILE}%s\\n' "$f"; head -c 1048576 -- "$d$f"; printf '\\n'; fi`,
  "  done",
  "done",
].join("\n");

/**
 * Reads the scan output into exports. Folders that are not Snapkeep's (no job or manifest of
 * ours) are left out: they are someone else's files and Snapkeep neither lists nor touches them.
 */
export function parseScan(output: string): ExportEntry[] {
  const entries: ExportEntry[] = [];
  const [head = "", ...others] = output.split(`\n${SCAN_DIR}`);
  const blocks = [head.startsWith(SCAN_DIR) ? head.slice(SCAN_DIR.length) : "", ...others];
  for (const block of blocks) {
    if (block.length === 0) {
      continue;
    }
    const [dirLine = "", ...rest] = block.split(`\n${SCAN_FILE}`);
    const folder = (dirLine.split("\n")[0] ?? "").replace(/\/$/, "");
    const files = new Map<string, string>();
    for (const part of rest) {
      const nl = part.indexOf("\n");
      files.set(part.slice(0, nl), part.slice(nl + 1));
    }
    const entry = toEntry(folder, files);
    if (entry !== undefined) {
      entries.push(entry);
    }
  }
  return entries.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
}

function readJson<T>(text: string | undefined, schema: z.ZodType<T>): T | null | "bad" {
  if (text === undefined) {
    return null;
  }
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : "bad";
  } catch {
    return "bad";
  }
}

function toEntry(folder: string, files: Map<string, string>): ExportEntry | undefined {
  const slash = folder.indexOf("/");
  const vmFolder = folder.slice(0, slash);
  const name = folder.slice(slash + 1);
  const partial = name.endsWith(PARTIAL_SUFFIX);
  const id = partial ? name.slice(0, -PARTIAL_SUFFIX.length) : name;
  if (!isExportId(id)) {
    return undefined;
  }
  const manifest = readJson(files.get("manifest.json"), manifestSchema);
  const job = readJson(files.get("job.json"), jobSchema);
  const status = readJson(files.get("status.json"), statusSchema);
  if ((manifest === null || manifest === "bad") && (job === null || job === "bad")) {
    return undefined;
  }
  const m = manifest === "bad" ? null : manifest;
  const j = job === "bad" ? null : job;
  const s = status === "bad" ? null : status;
  let state: ExportState;
  let reason: string | null;
  if (partial) {
    state = "partial";
    reason = "the export did not finish; run the same export again to resume it";
  } else if (m === null) {
    state = "corrupt";
    reason = "its manifest.json is missing or unreadable";
  } else if (s === null) {
    state = "unverified";
    reason = "its checksums were never verified on the target; run `snapkeep exports verify`";
  } else if (s.state === "corrupt") {
    state = "corrupt";
    reason = `${s.badFiles.join(", ") || "a file"} did not match its checksum at the check on ${s.checkedAt}`;
  } else {
    state = "verified";
    reason = null;
  }
  return {
    id,
    vmFolder,
    folder,
    state,
    reason,
    manifest: m,
    job: j,
    status: s,
    vmName: m?.source.vm.name ?? j?.vmName ?? vmFolder,
    vmUuid: m?.source.vm.uuid ?? j?.vmUuid ?? "",
    snapshotName: m?.source.snapshot.name ?? j?.snapshotTag ?? "",
    createdAt: m?.createdAt ?? j?.startedAt ?? "",
  };
}

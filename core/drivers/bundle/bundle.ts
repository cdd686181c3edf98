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
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";

import { SnapkeepError } from "../../errors.js";
import { MAX_CHUNKS, chunkBytesFor, chunkCount } from "./chunks.js";

export const BUNDLE_FORMAT = "snapkeep-export";
export const BUNDLE_VERSION = 1;
export const PARTIAL_SUFFIX = ".partial";

const ID_PATTERN = /^\d{8}T\d{6}Z-[a-z0-9-]{1,40}$/;
/** vmFolderName's output: a slug of at most 40 characters, a dash and 8 hex digits. */
const VM_FOLDER_PATTERN = /^[a-z0-9-]{1,60}$/;

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
  // A size a shell's and dd's arithmetic can take: a manifest is what the target serves.
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

const diskSchema = fileSchema.extend({
  target: z.string(),
  role: z.enum(["root", "additional"]),
  format: z.literal("qcow2"),
  /** "none": streamed by Snapkeep itself, clusters as the source had them (issue 16). */
  compression: z.enum(["zstd", "zlib", "none"]),
  virtualSize: z.number().int().min(0).nullable(),
  /** The image the snapshot was in, on the source host; for the record only. */
  sourcePath: z.string().nullable(),
  /**
   * An incremental image's backing file: exactly `../<basis>/<target>.qcow2` (checked against the
   * manifest's basis below). Absent: a standalone image.
   */
  backing: z.string().max(100).optional(),
  /** The snapshot's id in the source image, for the record. */
  snapshotId: z.string().max(64).optional(),
  /** Full or incremental, and why, in words (the job's log says the same). */
  why: z.string().max(400).optional(),
  /**
   * The image's per-chunk hashes (chunks.ts): written by a streamed export, which hashes the image
   * as it goes. Absent in a converted or merged image, which is verified by its whole hash.
   */
  chunks: z
    .object({
      bytes: z.number().int().positive(),
      sha256: z.array(z.string().regex(/^[0-9a-f]{64}$/)).max(MAX_CHUNKS),
    })
    .optional(),
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
        diskSchema
          .refine((d) => /^[a-z]{1,8}[a-z0-9]{0,8}$/.test(d.target) && d.name === `${d.target}.qcow2`, {
            message: "a disk file must be named <target>.qcow2",
          })
          // The chunk size follows from the image's size: a manifest cannot ask a verify for another.
          .refine(
            (d) =>
              d.chunks === undefined ||
              (d.chunks.bytes === chunkBytesFor(d.size) &&
                d.chunks.sha256.length === chunkCount(d.size, d.chunks.bytes)),
            { message: "a disk's chunk hashes must cover its image in chunks of the size Snapkeep uses" },
          ),
      )
      .min(1),
    tools: z.record(z.string(), z.string()),
    /**
     * The schedule whose copy this is; absent in an export made by hand. A schedule prunes only its
     * own verified copies, and a verified copy's manifest is covered by this Snapkeep's seal.
     */
    scheduleId: z
      .string()
      .regex(/^[a-z0-9]{8}$/)
      .optional(),
    /** The export the incremental disks are built on, in the same VM folder. */
    basis: z.string().regex(ID_PATTERN).optional(),
  })
  .refine((m) => m.definition.name === "domain.xml", { message: "the definition must be domain.xml" })
  // A backing name is followed by qemu-img: only the one Snapkeep writes is accepted, so a
  // manifest cannot point a restore at any other file on the target.
  .refine(
    (m) =>
      m.disks.every(
        (d) =>
          d.backing === undefined ||
          (m.basis !== undefined && d.backing === `../${m.basis}/${d.target}.qcow2`),
      ) &&
      (m.basis === undefined || m.basis !== m.id),
    { message: "a disk's backing file must be ../<basis>/<disk>.qcow2" },
  );

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
  /** When the snapshot was taken (absent from job records before 2026-12). */
  snapshotCreatedAt: z.string().optional(),
  disks: z.array(z.string()).min(1),
  /** The export a streamed one builds on (kept by retention while this one is written). */
  basis: z.string().regex(ID_PATTERN).optional(),
  /**
   * The schedule whose copy this is; absent when made by hand (or by a Snapkeep before 2026-12):
   * an abandoned attempt is cleared by the retention of whoever made it (app/exports/abandoned.ts).
   */
  scheduleId: z
    .string()
    .regex(/^[a-z0-9]{8}$/)
    .optional(),
});
export type ExportJob = z.infer<typeof jobSchema>;

export const statusSchema = z.object({
  state: z.enum(["verified", "corrupt"]),
  checkedAt: z.string(),
  /** Files whose hash did not match (or that were missing) at the last check. */
  badFiles: z.array(z.string()).default([]),
  /** sealVerification's HMAC: present only when this Snapkeep made the check. */
  seal: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});
export type ExportStatus = z.infer<typeof statusSchema>;

/** `sha256sum -c` input: restoring without Snapkeep starts with checking the files. */
export function sha256sums(manifest: Manifest): string {
  return [manifest.definition, ...manifest.disks].map((f) => `${f.sha256}  ${f.name}\n`).join("");
}

export function restoreNotes(manifest: Manifest): string {
  const vm = manifest.source.vm.name;
  const disks = manifest.disks;
  // An incremental image is joined with the exports below it; a standalone one is copied as it is.
  const copy = disks
    .map((d) =>
      d.backing === undefined
        ? `cp --sparse=always ${d.name} /var/lib/libvirt/images/NEWNAME-${d.target}.qcow2`
        : `qemu-img convert -f qcow2 -O qcow2 ${d.name} /var/lib/libvirt/images/NEWNAME-${d.target}.qcow2`,
    )
    .join("\n");
  const chained = disks.filter((d) => d.backing !== undefined);
  const kind =
    chained.length > 0
      ? `${chained.map((d) => d.name).join(", ")} hold${chained.length === 1 ? "s" : ""} only what changed since export
${manifest.basis ?? "?"}: each is a qcow2 image whose backing file is the same disk in that export's folder
(${chained[0]?.backing ?? ""}), which may in turn be built on an earlier one. Keep the folders
side by side; qemu-img follows the chain. Check each export of the chain with step 1 in its own folder.
${disks.length > chained.length ? "The other disks are standalone qcow2 images.\n" : ""}`
      : `Each disk is a standalone qcow2 image (${disks[0]?.compression === "none" ? "uncompressed" : `${disks[0]?.compression ?? "zstd"}-compressed`} clusters, no backing
file).${disks[0]?.compression === "zstd" ? " It needs QEMU 5.1 or newer when compressed with zstd." : ""}\n`;
  return `# Restoring ${vm} from this export

Snapshot "${manifest.source.snapshot.name}" of VM ${vm} (${manifest.source.vm.uuid}) on host
${manifest.source.host}, taken ${manifest.source.snapshot.createdAt}, exported ${manifest.createdAt}.

| file | disk | role | virtual size |
|---|---|---|---|
${disks.map((d) => `| ${d.name} | ${d.target} | ${d.role} | ${d.virtualSize ?? "?"} bytes |`).join("\n")}

${kind}You need only qemu-img and virsh:

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
  /** SHA-256 of manifest.json as read, what a verification's seal covers. */
  readonly manifestSha256: string | null;
  readonly job: ExportJob | null;
  readonly status: ExportStatus | null;
  readonly vmName: string;
  readonly vmUuid: string;
  readonly snapshotName: string;
  readonly createdAt: string;
  /**
   * The manifest a merge on retention wrote and had not yet renamed into place when it was
   * interrupted (core/app/exports/merge.ts finishes it); absent when there is none.
   */
  readonly pendingMerge?: Manifest | null;
}

/**
 * Lists every `<vm>/<export>/` folder of a target with its small files. A constant script; the
 * root is "$1" (a missing root is an empty target, not an error), and "$2", when given, a folder
 * that is made first (an export is about to write there), failing loudly.
 *
 * A target is untrusted: its files may have been written by someone else (a compromised NAS, a
 * hand-made bundle). So nothing in the output can be steered by a file's bytes: only folder names
 * made of the characters Snapkeep's own names use are listed at all (no newline can end a line
 * early), folders and files that are symbolic links are skipped, and file contents travel as hex
 * (`od`), which has no line a file could forge. For each folder the number of entries that are not
 * regular files is printed too: Snapkeep never writes links, devices or subfolders into a bundle.
 * Exit 5: "$2" was given and the target folder "$1" is not there.
 *
 *   D <vm>/<export>      a folder
 *   O <count>            its entries that are not regular files
 *   F <name>             one of its small files, followed by hex lines, then
 *   E                    the end of that file
 */
export const SCAN_SCRIPT = [
  "umask 077",
  // The target's own folder is made when the target is added, never by an export: missing, it is a
  // disk or share that is not mounted, and an export made anyway would fill the disk under it.
  // A VM folder that is a link (planted on the target) would take the export somewhere else.
  'if [ -n "$2" ]; then [ -d "$1" ] || exit 5; mkdir -p -- "$2" || exit 3; { [ -d "$2" ] && [ ! -L "$2" ]; } || exit 4; fi',
  'cd -- "$1" 2>/dev/null || exit 0',
  "for v in *; do",
  "  case $v in *[!a-z0-9-]*) continue ;; esac",
  '  { [ -d "$v" ] && [ ! -L "$v" ]; } || continue',
  '  for e in "$v"/*; do',
  "    n=${e#*/}",
  "    case $n in *[!A-Za-z0-9.-]* | .*) continue ;; esac",
  '    { [ -d "$e" ] && [ ! -L "$e" ]; } || continue',
  `    printf 'D %s\\n' "$e"`,
  '    odd=$(find "$e" ! -path "$e" ! -type f -print | wc -l)',
  "    printf 'O %s\\n' $odd",
  `    for f in ${["job.json", "manifest.json", "status.json", "SHA256SUMS", "manifest.json.merge"].join(" ")}; do`,
  '      if [ -f "$e/$f" ] && [ ! -L "$e/$f" ]; then',
  `        printf 'F %s\\n' "$f"; od -An -v -tx1 -N ${256 * 1024} -- "$e/$f"; printf 'E\\n'`,
  "      fi",
  "    done",
  "  done",
  "done",
].join("\n");

/** What SCAN_SCRIPT printed for one folder, before its files are judged. */
interface ScannedFolder {
  readonly folder: string;
  odd: number;
  readonly files: Map<string, Buffer>;
}

/**
 * Reads the scan output into exports. Folders that are not Snapkeep's (no job or manifest of
 * ours) are left out: they are someone else's files and Snapkeep neither lists nor touches them.
 * `sealKey` is the key Snapkeep seals its verifications with (see sealVerification): only a
 * status.json carrying a seal made with it counts as verified.
 */
export function parseScan(output: string, sealKey: Uint8Array): ExportEntry[] {
  const folders: ScannedFolder[] = [];
  let current: ScannedFolder | undefined;
  let file: { name: string; hex: string[] } | undefined;
  for (const line of output.split("\n")) {
    if (file !== undefined) {
      if (line === "E") {
        current?.files.set(file.name, Buffer.from(file.hex.join("").replace(/\s+/g, ""), "hex"));
        file = undefined;
      } else if (/^[0-9a-f ]*$/.test(line)) {
        file.hex.push(line);
      } else {
        // Not od's output: this folder's listing cannot be trusted, so it is not listed.
        current = undefined;
        file = undefined;
      }
      continue;
    }
    if (line.startsWith("D ")) {
      current = { folder: line.slice(2), odd: 0, files: new Map() };
      folders.push(current);
    } else if (line.startsWith("O ") && current !== undefined) {
      current.odd = Number(line.slice(2).trim()) || 0;
    } else if (line.startsWith("F ") && current !== undefined) {
      file = { name: line.slice(2), hex: [] };
    }
  }
  const entries: ExportEntry[] = [];
  for (const folder of folders) {
    const entry = toEntry(folder, sealKey);
    if (entry !== undefined) {
      entries.push(entry);
    }
  }
  return entries.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
}

/**
 * The seal Snapkeep puts on a verification it made: an HMAC, with a key that never leaves this
 * computer's state folder, over what was checked (the export's folder and the exact manifest) and
 * the result. A status.json someone else wrote, or one copied from another export, has none that
 * matches, so "verified" can only come from a check this Snapkeep ran.
 */
export function sealVerification(
  key: Uint8Array,
  folder: string,
  manifestSha256: string,
  status: Pick<ExportStatus, "state" | "checkedAt" | "badFiles">,
): string {
  const what = JSON.stringify([1, folder, manifestSha256, status.state, status.checkedAt, status.badFiles]);
  return createHmac("sha256", key).update(what).digest("hex");
}

function sealHolds(key: Uint8Array, folder: string, manifest: Buffer, status: ExportStatus): boolean {
  if (status.seal === undefined) {
    return false;
  }
  const manifestSha256 = createHash("sha256").update(manifest).digest("hex");
  const expected = Buffer.from(sealVerification(key, folder, manifestSha256, status), "hex");
  const given = Buffer.from(status.seal, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function readJson<T>(bytes: Buffer | undefined, schema: z.ZodType<T>): T | null | "bad" {
  if (bytes === undefined) {
    return null;
  }
  try {
    const parsed = schema.safeParse(JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)));
    return parsed.success ? parsed.data : "bad";
  } catch {
    return "bad";
  }
}

function pending(bytes: Buffer | undefined): { pendingMerge?: Manifest | null } {
  if (bytes === undefined) {
    return {};
  }
  const parsed = readJson(bytes, manifestSchema);
  return { pendingMerge: parsed === "bad" ? null : parsed };
}

function toEntry(scanned: ScannedFolder, sealKey: Uint8Array): ExportEntry | undefined {
  const { folder, files } = scanned;
  const slash = folder.indexOf("/");
  const vmFolder = folder.slice(0, slash);
  const name = folder.slice(slash + 1);
  const partial = name.endsWith(PARTIAL_SUFFIX);
  const id = partial ? name.slice(0, -PARTIAL_SUFFIX.length) : name;
  if (!VM_FOLDER_PATTERN.test(vmFolder) || !isExportId(id)) {
    return undefined;
  }
  const manifestBytes = files.get("manifest.json");
  const manifest = readJson(manifestBytes, manifestSchema);
  const job = readJson(files.get("job.json"), jobSchema);
  const status = readJson(files.get("status.json"), statusSchema);
  if ((manifest === null || manifest === "bad") && (job === null || job === "bad")) {
    return undefined;
  }
  const m = manifest === "bad" ? null : manifest;
  const j = job === "bad" ? null : job;
  const s = status === "bad" ? null : status;
  const sums = files.get("SHA256SUMS");
  let state: ExportState;
  let reason: string | null;
  if (scanned.odd > 0) {
    // Checked first, partial or not: a link planted where an image goes would be written through
    // by a resumed export, and read through by a restore.
    state = "corrupt";
    reason = `it holds ${scanned.odd} ${scanned.odd === 1 ? "entry that is not a regular file" : "entries that are not regular files"} (links, devices or folders), which Snapkeep never writes`;
  } else if (partial) {
    state = "partial";
    reason = "the export did not finish; run the same export again to resume it";
  } else if (m === null) {
    state = "corrupt";
    reason = "its manifest.json is missing or unreadable";
  } else if (m.id !== id) {
    state = "corrupt";
    reason = `its manifest.json belongs to export ${m.id.slice(0, 60)}, not to this folder`;
  } else if (sums === undefined || sums.toString("utf8") !== sha256sums(m)) {
    state = "corrupt";
    reason = `its SHA256SUMS ${sums === undefined ? "is missing" : "disagrees with manifest.json"}`;
  } else if (s === null) {
    state = "unverified";
    reason = "its checksums were never verified on the target; verify it before relying on it";
  } else if (manifestBytes === undefined || !sealHolds(sealKey, folder, manifestBytes, s)) {
    state = "unverified";
    reason =
      "it was not verified by this Snapkeep (it was made elsewhere, or its status.json was changed); verify it before relying on it";
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
    manifestSha256:
      manifestBytes === undefined ? null : createHash("sha256").update(manifestBytes).digest("hex"),
    job: j,
    status: s,
    vmName: m?.source.vm.name ?? j?.vmName ?? vmFolder,
    vmUuid: m?.source.vm.uuid ?? j?.vmUuid ?? "",
    snapshotName: m?.source.snapshot.name ?? j?.snapshotTag ?? "",
    createdAt: m?.createdAt ?? j?.startedAt ?? "",
    ...pending(files.get("manifest.json.merge")),
  };
}

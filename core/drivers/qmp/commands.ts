import { z } from "zod";
import { SnapkeepError } from "../../errors.js";
import { imageInfoSchema, parseJson, toImageState, type ImageState } from "../qemu-img/parse.js";

/**
 * QMP commands sent through `virsh qemu-monitor-command` to a running VM, and their parsers.
 *
 * A running VM's images are locked by QEMU, so internal snapshots are made by QEMU itself:
 * `blockdev-snapshot-internal-sync` per disk, grouped in one `transaction` so a multi-disk
 * snapshot is all-or-nothing and crash-consistent across disks.
 */
export const queryBlock = { execute: "query-block" } as const;

export function snapshotTransaction(nodes: readonly string[], tag: string): object {
  return {
    execute: "transaction",
    arguments: {
      actions: nodes.map((device) => ({
        type: "blockdev-snapshot-internal-sync",
        data: { device, name: tag },
      })),
    },
  };
}

/** Both id and name: the pair addresses exactly one snapshot even when tags repeat. */
export function deleteInternalSnapshot(node: string, imageSnapshotId: string, tag: string): object {
  return {
    execute: "blockdev-snapshot-delete-internal-sync",
    arguments: { device: node, id: imageSnapshotId, name: tag },
  };
}

const replySchema = z.union([
  z.object({ return: z.unknown() }),
  z.object({ error: z.object({ class: z.string(), desc: z.string() }) }),
]);

/** virsh exits 0 even when QEMU answers with an error, so the reply itself must be checked. */
export function parseQmpReply(text: string, what: string): unknown {
  const reply = parseJson(text, replySchema, what);
  if ("error" in reply) {
    throw new SnapkeepError("COMMAND_FAILED", `QEMU refused ${what}: ${reply.error.desc}`, {
      details: { qmpClass: reply.error.class },
    });
  }
  return reply.return;
}

const blockDeviceSchema = z.object({
  qdev: z.string().optional(),
  inserted: z
    .object({
      "node-name": z.string(),
      file: z.string(),
      ro: z.boolean(),
      image: imageInfoSchema,
    })
    .optional(),
});

export interface BlockDevice {
  /** libvirt's device alias (virtio-disk0), from the qdev path, to match the domain XML. */
  readonly alias: string | null;
  readonly nodeName: string;
  readonly file: string;
  readonly image: ImageState;
}

export function parseQueryBlock(text: string): BlockDevice[] {
  const value = parseQmpReply(text, "query-block");
  const parsed = z.array(blockDeviceSchema).safeParse(value);
  if (!parsed.success) {
    throw new SnapkeepError("UNEXPECTED_OUTPUT", "query-block returned an unexpected shape.");
  }
  return parsed.data.flatMap((device) => {
    if (device.inserted === undefined) {
      return []; // an empty CD-ROM drive
    }
    const alias = /^\/machine\/peripheral\/([^/]+)/.exec(device.qdev ?? "")?.[1] ?? null;
    return [
      {
        alias,
        nodeName: device.inserted["node-name"],
        file: device.inserted.file,
        image: toImageState(device.inserted.image),
      },
    ];
  });
}

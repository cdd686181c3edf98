import { SnapkeepError } from "../errors.js";
import type { SnapshotKind } from "./types.js";

/**
 * How Snapkeep marks its snapshots inside the qcow2 images: `snapkeep:<kind>[@<origin>]:<name>`.
 *
 * The mark lives on the host, not only in Snapkeep's settings, so a reinstall or lost settings can
 * never make Snapkeep prune or delete a snapshot it did not create. Anything without the prefix is
 * "foreign" and is listed, never deleted.
 */
const PREFIX = "snapkeep:";
const MANAGED_KINDS = ["manual", "scheduled", "safety"] as const;
type ManagedKind = (typeof MANAGED_KINDS)[number];

export interface ParsedTag {
  readonly kind: SnapshotKind;
  readonly origin: string | null;
  readonly name: string;
}

/** Longest user-visible name; qcow2 stores tags up to 64 KiB, this keeps tables and paths sane. */
export const MAX_SNAPSHOT_NAME_LENGTH = 128;

export function encodeSnapshotTag(kind: ManagedKind, name: string, origin?: string): string {
  validateSnapshotName(name);
  if (origin !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(origin)) {
    throw new SnapkeepError("INVALID_INPUT", `Snapshot origin "${origin}" must be letters, digits, - or _.`);
  }
  return `${PREFIX}${kind}${origin === undefined ? "" : `@${origin}`}:${name}`;
}

export function parseSnapshotTag(tag: string): ParsedTag {
  if (tag.startsWith(PREFIX)) {
    const rest = tag.slice(PREFIX.length);
    const colon = rest.indexOf(":");
    if (colon > 0) {
      const head = rest.slice(0, colon);
      const at = head.indexOf("@");
      const kind = at === -1 ? head : head.slice(0, at);
      const origin = at === -1 ? null : head.slice(at + 1);
      if ((MANAGED_KINDS as readonly string[]).includes(kind) && origin !== "") {
        return { kind: kind as ManagedKind, origin, name: rest.slice(colon + 1) };
      }
    }
  }
  return { kind: "foreign", origin: null, name: tag };
}

/**
 * Names may hold quotes, `$()`, spaces and any script a person types: they only ever travel as
 * argv elements or JSON strings. Control characters are refused because they break tables and logs.
 */
export function validateSnapshotName(name: string): void {
  if (name.length === 0) {
    throw new SnapkeepError("INVALID_INPUT", "A snapshot name cannot be empty.");
  }
  if ([...name].length > MAX_SNAPSHOT_NAME_LENGTH) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `Snapshot name is too long (${[...name].length} characters; at most ${MAX_SNAPSHOT_NAME_LENGTH}).`,
    );
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "A snapshot name cannot contain control characters such as newlines or tabs.",
    );
  }
}

/** The name given when the user gives none: sortable, readable, unique per second. */
export function defaultSnapshotName(kind: ManagedKind, now: Date): string {
  const iso = now.toISOString(); // 2026-11-26T10:00:00.000Z
  return `${kind}-${iso.slice(0, 10)}-${iso.slice(11, 19).replaceAll(":", "")}`;
}

/**
 * Typed errors that say what went wrong and what to do about it.
 *
 * Every failure a person can act on is a SnapkeepError with a stable `code` (scripts and the UI
 * branch on it) and a message that is one sentence, optionally followed by a hint. The CLI prints
 * `message` and, when present, `hint`; nothing else (no stack traces for expected failures).
 */
export type ErrorCode =
  | "INVALID_INPUT"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "HOST_KEY_UNKNOWN"
  | "HOST_KEY_CHANGED"
  | "HOST_UNREACHABLE"
  | "AUTH_FAILED"
  | "BAD_PASSPHRASE"
  | "TOOL_MISSING"
  | "COMMAND_FAILED"
  | "TIMEOUT"
  | "CANCELLED"
  | "DISK_UNSUPPORTED"
  | "VM_RUNNING"
  | "STORE_CORRUPT"
  | "UNEXPECTED_OUTPUT"
  | "HOOK_FAILED"
  | "TARGET_FULL"
  | "NO_SPACE"
  | "PERMISSION_DENIED"
  | "TARGET_UNWRITABLE"
  /** The target's folder is not there: a disk or share not mounted, a NAS that is off. */
  | "TARGET_OFFLINE"
  | "TRANSFER_FAILED"
  | "VERIFY_FAILED";

/**
 * What the person can do next, as a fact and not a sentence: the CLI says it as a command with its
 * flags, a UI as the button or page that does it (core/domain/hints.ts words both). A hint that is
 * the same advice everywhere ("free space there") stays a plain `hint`.
 */
export type HintAction =
  | { readonly do: "list-hosts" }
  | { readonly do: "add-ssh-host" }
  | {
      readonly do: "trust";
      readonly noun: "host" | "target";
      readonly name: string;
      /** The key it offers now, when known; without it the person looks it up first. */
      readonly offered?: string;
      /** How to read the key on the machine itself (`ssh-keygen -lf FILE`). */
      readonly checkWith?: string;
      /** The pinned key changed: trusting the new one is right only after a reinstall. */
      readonly changed?: boolean;
    }
  | { readonly do: "list-vms"; readonly host: string }
  | { readonly do: "list-snapshots"; readonly host: string; readonly vm: string }
  | { readonly do: "delete-snapshot"; readonly host: string; readonly vm: string; readonly snapshot: string }
  | { readonly do: "unpin"; readonly host: string; readonly vm: string; readonly snapshot: string }
  /** Consent to stop a running VM for the operation (the CLI's --yes). */
  | { readonly do: "allow-stop" }
  /** Consent to power off a guest that ignores the shutdown request (the CLI's --force). */
  | { readonly do: "allow-power-off" }
  | { readonly do: "choose-disks"; readonly disks: readonly string[] }
  /** A disk with several file systems and no OS that says how they mount: name one. */
  | {
      readonly do: "choose-filesystem";
      readonly filesystems: readonly { readonly device: string; readonly type: string }[];
    }
  | { readonly do: "free-vg-or-fewer-disks"; readonly vg: string }
  | { readonly do: "list-targets" }
  /** A target's folder is missing: mount what it is on, or make it on purpose. */
  | { readonly do: "mount-or-create-folder"; readonly target: string }
  | { readonly do: "list-exports"; readonly target: string }
  | { readonly do: "prune-exports" }
  | { readonly do: "restore-elsewhere"; readonly nameToo: boolean }
  | { readonly do: "list-schedules" }
  | { readonly do: "remove-schedule"; readonly id: string }
  | { readonly do: "check-jobs" }
  | { readonly do: "list-library"; readonly kind: "template" | "volume"; readonly host: string }
  | { readonly do: "detach-volume"; readonly host: string; readonly name: string }
  | {
      readonly do: "make-instead";
      readonly kind: "template" | "volume";
      readonly host: string;
      readonly vm: string;
      readonly snapshot: string;
      readonly disk: string;
      readonly name: string;
    };

export class SnapkeepError extends Error {
  readonly code: ErrorCode;
  /** What the person can do next, when it is the same advice for every front end. */
  readonly hint: string | undefined;
  /** What the person can do next, when each front end says it its own way. */
  readonly action: HintAction | undefined;
  /** Structured facts for the UI and `--json` (fingerprints, disk targets, ...). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    options: {
      hint?: string | undefined;
      action?: HintAction | undefined;
      details?: Record<string, unknown>;
      cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SnapkeepError";
    this.code = code;
    this.hint = options.hint;
    this.action = options.action;
    this.details = options.details ?? {};
  }
}

export function isSnapkeepError(value: unknown, code?: ErrorCode): value is SnapkeepError {
  return value instanceof SnapkeepError && (code === undefined || value.code === code);
}

/** The text of any thrown value, for wrapping foreign errors into a SnapkeepError. */
export function describeError(value: unknown): string {
  if (value instanceof Error) {
    return value.message;
  }
  return String(value);
}

// A value longer than this is shown by its start and its length: a message stays one readable line.
const SHOWN_INPUT_CHARACTERS = 60;

/**
 * A value a person gave, for a message: in double quotes, with control characters escaped so that
 * a name holding a newline cannot break the message in two, and cut short when it is long.
 */
export function quoteInput(value: string): string {
  const characters = [...value];
  if (characters.length <= SHOWN_INPUT_CHARACTERS) {
    return JSON.stringify(value);
  }
  return `${JSON.stringify(`${characters.slice(0, 40).join("")}…`)} (${characters.length} characters)`;
}

/**
 * A failure that came after the work itself was done (a VM deleted, a snapshot made, then the
 * settings could not be saved): the sentence says what was done first, so that nobody takes the
 * error for "nothing happened" and does it again. Anything that is not a SnapkeepError is a bug and
 * goes on as it is.
 */
export function afterDone(error: unknown, done: string, notDone: string): unknown {
  if (!isSnapkeepError(error)) {
    return error;
  }
  return new SnapkeepError(error.code, `${done}, but ${notDone}: ${error.message}`, {
    hint: error.hint,
    action: error.action,
    details: { ...error.details },
    cause: error,
  });
}

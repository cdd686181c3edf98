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
  | "TRANSFER_FAILED"
  | "VERIFY_FAILED";

export class SnapkeepError extends Error {
  readonly code: ErrorCode;
  /** What the person can do next, e.g. the exact command to run. */
  readonly hint: string | undefined;
  /** Structured facts for the UI and `--json` (fingerprints, disk targets, ...). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { hint?: string | undefined; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SnapkeepError";
    this.code = code;
    this.hint = options.hint;
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
    details: { ...error.details },
    cause: error,
  });
}

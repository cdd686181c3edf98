/**
 * Every failure as the sentence a person reads. Snapkeep's own errors stay as they are; foreign
 * ones whose cause can be named (a value a schema refused, a file the system would not open, a
 * host that refused the connection) become one; only what is left, a bug, is an "unexpected
 * error". The CLI and every UI transport report failures through here, so they say the same.
 */
import { z } from "zod";

import { NO_CONTROL_CHARACTERS, PATTERN_RULES } from "./names.js";
import {
  SnapkeepError,
  describeError,
  isSnapkeepError,
  quoteInput,
  type ErrorCode,
  type HintAction,
} from "../errors.js";
import { wordHint, type Audience } from "./hints.js";

/**
 * An error as a front end shows it: the sentence the CLI prints too, the hint in this front end's
 * words, and the code (and the hint's action, for a button that does it) to branch on.
 */
export interface ErrorView {
  /** INTERNAL for a failure whose cause cannot be named: a bug. */
  readonly code: ErrorCode | "INTERNAL";
  readonly message: string;
  readonly hint: string | null;
  readonly action: HintAction | null;
}

/** The hint of an error in `audience`'s words, or null when there is none. */
export function hintOf(error: SnapkeepError, audience: Audience): string | null {
  return error.action === undefined ? (error.hint ?? null) : wordHint(error.action, audience);
}

export function toErrorView(error: unknown, audience: Audience = "ui"): ErrorView {
  const explained = explainError(error);
  if (explained === null) {
    return {
      code: "INTERNAL",
      message: `Unexpected error: ${describeError(error)}`,
      hint: null,
      action: null,
    };
  }
  return {
    code: explained.code,
    message: explained.message,
    hint: hintOf(explained, audience),
    action: explained.action ?? null,
  };
}

/** The failure as a SnapkeepError when its cause can be named, else null (a bug). */
export function explainError(error: unknown): SnapkeepError | null {
  if (isSnapkeepError(error)) {
    return error;
  }
  if (error instanceof z.core.$ZodError) {
    // Only the settings store parses with throwing zod calls: something reached it unchecked.
    const issue = error.issues[0];
    const message =
      issue === undefined ? "A value is not valid." : issueSentence(issue, fieldWords(issue.path), null);
    return new SnapkeepError("INVALID_INPUT", message, { cause: error });
  }
  return systemError(error);
}

// ---- values a schema refused -------------------------------------------------------------------

/**
 * A zod error map that words each issue as one sentence naming the field and what it allows, e.g.
 * `The target name "bad name!" may contain only letters, digits, ...`. The field's words are the
 * description of the schema the check sits on (`z.string().max(64).describe("target name")`), and
 * only a described field's value is quoted. A message written on a check itself still wins, and
 * should be a sentence too.
 */
export const sentenceErrorMap: z.core.$ZodErrorMap = (issue) => {
  const described = issue.schema === undefined ? undefined : z.globalRegistry.get(issue.schema)?.description;
  if (described === undefined) {
    // Without words for the field, its value is not shown either: it may be a passphrase.
    return issueSentence(issue as z.core.$ZodIssue, fieldWords(issue.path ?? []), null);
  }
  const value =
    issue.code === "invalid_union" && issue.discriminator !== undefined
      ? propertyOf(issue.input, issue.discriminator)
      : issue.input;
  return issueSentence(issue as z.core.$ZodIssue, described, { value });
};

/** The error for a UI call whose parameters failed their schema, parsed with {@link sentenceErrorMap}. */
export function invalidParams(method: string, error: z.core.$ZodError): SnapkeepError {
  const issue = error.issues[0];
  const where =
    issue === undefined || issue.path.length === 0 ? "" : ` (${issue.path.map(String).join(".")})`;
  // The sentence first (the UI shows it as is); which call and field, for a bug report.
  return new SnapkeepError("INVALID_INPUT", asSentence(issue?.message ?? "The request is not valid"), {
    hint: `In ${method}${where}.`,
  });
}

function fieldWords(path: readonly PropertyKey[]): string {
  return path.length === 0 ? "request" : `field ${path.map(String).join(".")}`;
}

function propertyOf(value: unknown, key: string): unknown {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

/** `given` is null when the value is not known (an issue zod has already finalized). */
function issueSentence(
  issue: z.core.$ZodIssue,
  field: string,
  given: { readonly value: unknown } | null,
): string {
  if (issue.code === "custom") {
    // A refinement's own message is written as a sentence; anything else only says "invalid".
    return issue.message !== undefined && /^[A-Z]/.test(issue.message)
      ? asSentence(issue.message)
      : `The ${field} is not valid.`;
  }
  if (issue.code === "invalid_type" && given !== null && given.value === undefined) {
    return `The ${field} is missing.`;
  }
  const shown = given === null ? "" : shownValue(given.value);
  if (shown === "") {
    return `The ${field} ${ruleOf(issue)}.`;
  }
  // A quoted text reads well right after the field's words; a bare number or a value of the wrong
  // type reads better at the end ("The pause in minutes must be at least 1, not 0.").
  return typeof given?.value === "string" && issue.code !== "invalid_type"
    ? `The ${field} ${shown} ${ruleOf(issue)}.`
    : `The ${field} ${ruleOf(issue)}, not ${shown}.`;
}

function shownValue(value: unknown): string {
  if (typeof value === "string") {
    return quoteInput(value);
  }
  return typeof value === "number" || typeof value === "boolean" || typeof value === "bigint"
    ? String(value)
    : "";
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  string: "text",
  number: "a number",
  int: "a whole number",
  bigint: "a whole number",
  boolean: "true or false",
  array: "a list",
  object: "a set of named fields",
  date: "a date",
};

/** What the field allows, as the end of a sentence that starts with the field ("... must be ..."). */
function ruleOf(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "invalid_type":
      return `must be ${TYPE_WORDS[issue.expected] ?? issue.expected}`;
    case "too_small":
      return tooSmall(issue);
    case "too_big":
      return tooBig(issue);
    case "invalid_format":
      return issue.format === "regex"
        ? (PATTERN_RULES.get(issue.pattern ?? "") ?? "is not in the form Snapkeep expects")
        : `is not a valid ${issue.format}`;
    case "invalid_value":
      return `must be ${orList(issue.values.map(String))}`;
    case "invalid_union":
      return "options" in issue && issue.options !== undefined && issue.options.length > 0
        ? `must be ${orList(issue.options.map(String))}`
        : "does not match any form Snapkeep accepts";
    case "not_multiple_of":
      return `must be a multiple of ${amount(issue.divisor)}`;
    case "unrecognized_keys":
      return `has fields Snapkeep does not know: ${issue.keys.join(", ")}`;
    case "invalid_key":
    case "invalid_element":
      return "has an entry that is not valid";
    case "custom":
      return "is not valid";
  }
}

function tooSmall(issue: z.core.$ZodIssueTooSmall): string {
  const n = amount(issue.minimum);
  switch (issue.origin) {
    case "string":
      return issue.minimum === 1 ? "cannot be empty" : `must be at least ${n} characters long`;
    case "array":
    case "set":
      return issue.minimum === 1 ? "needs at least one entry" : `needs at least ${n} entries`;
    default:
      return issue.inclusive === false ? `must be more than ${n}` : `must be at least ${n}`;
  }
}

function tooBig(issue: z.core.$ZodIssueTooBig): string {
  const n = amount(issue.maximum);
  switch (issue.origin) {
    case "string":
      return `may be at most ${n} characters long`;
    case "array":
    case "set":
      return `may have at most ${n} entries`;
    default:
      return issue.inclusive === false ? `must be less than ${n}` : `may be at most ${n}`;
  }
}

function amount(n: number | bigint): string {
  return n.toLocaleString("en-US");
}

function orList(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? "") : `${items.slice(0, -1).join(", ")} or ${items.at(-1) ?? ""}`;
}

function asSentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

// ---- what the system refused -------------------------------------------------------------------

/** Why a network call failed, in words; SSH connections report the same causes. */
export const NETWORK_CAUSES: Readonly<Record<string, string>> = {
  ECONNREFUSED: "the connection was refused (nothing listens on that port)",
  EHOSTUNREACH: "there is no route to the host",
  ENETUNREACH: "the network is unreachable",
  ETIMEDOUT: "the connection attempt timed out",
  ENOTFOUND: "the host name does not resolve",
  EAI_AGAIN: "the host name could not be resolved right now",
  ECONNRESET: "the host reset the connection",
  EPIPE: "the host closed the connection",
};

const PERMISSIONS_HINT = "Check the owner and permissions of it and of the folders above it.";
const SPACE_HINT = "Free some space there and try again.";

const FILE_CAUSES: Readonly<Record<string, { code: ErrorCode; cause: string; hint?: string }>> = {
  ENOENT: { code: "NOT_FOUND", cause: "it, or a folder above it, does not exist" },
  ENOTDIR: { code: "NOT_FOUND", cause: "a part of the path is a file, not a folder" },
  EISDIR: { code: "INVALID_INPUT", cause: "it is a folder" },
  EEXIST: { code: "ALREADY_EXISTS", cause: "something else is already there" },
  ENOTEMPTY: { code: "INVALID_INPUT", cause: "the folder is not empty" },
  ENAMETOOLONG: { code: "INVALID_INPUT", cause: "the name is too long" },
  ELOOP: { code: "INVALID_INPUT", cause: "it is a loop of symbolic links" },
  EACCES: { code: "PERMISSION_DENIED", cause: "permission denied", hint: PERMISSIONS_HINT },
  EPERM: { code: "PERMISSION_DENIED", cause: "the operation is not permitted", hint: PERMISSIONS_HINT },
  EROFS: { code: "PERMISSION_DENIED", cause: "the file system is read-only" },
  ENOSPC: { code: "NO_SPACE", cause: "the disk is full", hint: SPACE_HINT },
  EDQUOT: { code: "NO_SPACE", cause: "the disk quota is used up", hint: SPACE_HINT },
};

const FILE_VERBS: Readonly<Record<string, string>> = {
  open: "open",
  read: "read",
  write: "write to",
  mkdir: "create the folder",
  mkdtemp: "create a folder in",
  rmdir: "remove the folder",
  rm: "remove",
  unlink: "delete",
  rename: "rename",
  copyfile: "copy",
  scandir: "list the folder",
  opendir: "list the folder",
  chmod: "change the permissions of",
  chown: "change the owner of",
};

/** The facts Node puts on a failed system call (fs, net, dns). */
interface SystemCallError {
  readonly code: string;
  readonly syscall: string;
  readonly path?: string;
  readonly dest?: string;
  readonly address?: string;
  readonly port?: number;
  readonly hostname?: string;
}

function isSystemCallError(error: unknown): error is Error & SystemCallError {
  const facts = error as Partial<Record<keyof SystemCallError, unknown>>;
  return error instanceof Error && typeof facts.code === "string" && typeof facts.syscall === "string";
}

/** Why a system call failed, in words ("the disk is full"); any other error's own text. */
export function systemCause(error: unknown): string {
  if (isSystemCallError(error)) {
    const cause = FILE_CAUSES[error.code]?.cause ?? NETWORK_CAUSES[error.code];
    if (cause !== undefined) {
      return cause;
    }
  }
  return describeError(error);
}

function systemError(error: unknown): SnapkeepError | null {
  if (!isSystemCallError(error)) {
    return null;
  }
  const network = NETWORK_CAUSES[error.code];
  if (network !== undefined) {
    const where = error.hostname ?? endpoint(error.address, error.port);
    const lookup = error.syscall === "getaddrinfo";
    return new SnapkeepError(
      "HOST_UNREACHABLE",
      `Cannot ${lookup ? "look up" : "connect to"} ${where}: ${network}.`,
      {
        hint: lookup
          ? "Check the name, or give an IP address instead."
          : "Check that the other side is up and reachable from here.",
        cause: error,
      },
    );
  }
  const file = FILE_CAUSES[error.code];
  if (file === undefined || error.path === undefined) {
    return null;
  }
  const what = `${shownPath(error.path)}${error.dest === undefined ? "" : ` to ${shownPath(error.dest)}`}`;
  return new SnapkeepError(
    file.code,
    `Cannot ${FILE_VERBS[error.syscall] ?? "use"} ${what}: ${file.cause}.`,
    { hint: file.hint, details: { path: error.path }, cause: error },
  );
}

function endpoint(address: string | undefined, port: number | undefined): string {
  const host = address ?? "that address";
  if (port === undefined) {
    return host;
  }
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function shownPath(path: string): string {
  return NO_CONTROL_CHARACTERS.test(path) ? path : quoteInput(path);
}

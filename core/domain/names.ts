/**
 * What people may call things and type as paths, in one place: the validators, the API's schemas
 * and the sentences about a value that breaks a rule all take the rule from here.
 */
import { SnapkeepError, quoteInput } from "../errors.js";

/**
 * Host, target, template and volume names appear in HOST/VM references, file names and the
 * commands hints show, so they are plain words.
 */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const NAME_RULE =
  "may contain only letters, digits, '.', '_' and '-', starting with a letter or digit (at most 63 characters)";

/**
 * Paths and addresses people type: a control character (a pasted newline, a tab) is never meant,
 * breaks every one-line message and log that shows the value, and the settings file refuses it.
 */
// eslint-disable-next-line no-control-regex
export const NO_CONTROL_CHARACTERS = /^[^\u0000-\u001f\u007f]*$/;
const NO_CONTROL_RULE = "cannot contain control characters such as newlines or tabs";

/** A VM's UUID as libvirt prints it: the one name of a VM that a rename does not change. */
export const UUID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const UUID_RULE = "is not a UUID (8-4-4-4-12 hexadecimal digits, as virsh domuuid prints it)";

/** The rule a pattern stands for, by the pattern's text as a zod issue reports it. */
export const PATTERN_RULES: ReadonlyMap<string, string> = new Map([
  [String(NAME_PATTERN), NAME_RULE],
  [String(NO_CONTROL_CHARACTERS), NO_CONTROL_RULE],
  [String(UUID_PATTERN), UUID_RULE],
]);

/** `what` names the field in words, e.g. "target name": it starts the sentence. */
export function validateName(what: string, name: string): void {
  if (!NAME_PATTERN.test(name)) {
    throw new SnapkeepError("INVALID_INPUT", `The ${what} ${quoteInput(name)} ${NAME_RULE}.`);
  }
}

export function validateNoControlCharacters(what: string, text: string): void {
  if (!NO_CONTROL_CHARACTERS.test(text)) {
    throw new SnapkeepError("INVALID_INPUT", `The ${what} ${quoteInput(text)} ${NO_CONTROL_RULE}.`);
  }
}

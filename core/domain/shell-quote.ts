/**
 * The one place where argv becomes shell text.
 *
 * Local commands are spawned with an argv array and never see a shell. SSH has no argv: the
 * protocol carries one command string that sshd hands to the user's login shell (`$SHELL -c`), so
 * every argument must survive that shell unchanged. Any other quoting helper in the project would
 * be a second place for injection bugs to hide, so there is none.
 */
import { SnapkeepError } from "../errors.js";

// A lone surrogate has no UTF-8 form: Buffer.from() would silently turn it into U+FFFD and the remote
// command would get a different argument from the one we were asked to pass.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * Quotes one argument for a POSIX shell.
 *
 * Inside single quotes a POSIX shell gives no character a special meaning (no `$`, backtick, `\`,
 * `!` history or globbing), so the only thing to handle is the single quote itself: close the
 * quote, add an escaped quote, reopen. Every argument is quoted, even plain words, because an
 * unquoted first word such as `A=b` would turn into a variable assignment.
 */
export function quoteShellArg(arg: string): string {
  if (arg.includes("\0")) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "A command argument contains a NUL byte, which no shell command line can carry.",
      { details: { argument: arg.replaceAll("\0", "\\0") } },
    );
  }
  if (LONE_SURROGATE.test(arg)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "A command argument contains an unpaired UTF-16 surrogate, which has no UTF-8 form.",
    );
  }
  return `'${arg.replaceAll("'", "'\\''")}'`;
}

// Characters that mean nothing to a POSIX shell inside a word that is not the command name: no
// quoting, expansion, globbing, comment or redirection. "=" is left out so that no word can be
// read as an assignment, and "~" and "#" because they mean something at the start of a word.
const PLAIN_WORD = /^[A-Za-z0-9_@%+:,./-]+$/;

/**
 * One argument of a command a person reads and pastes (a hint, "then run: ..."): a plain word stays
 * as it is, so `snapkeep host trust web01` reads naturally; anything else is quoted like
 * {@link quoteShellArg}, so `snapkeep host trust 'we b01'` does what it says when pasted.
 */
export function shellWord(arg: string): string {
  return PLAIN_WORD.test(arg) ? arg : quoteShellArg(arg);
}

/**
 * A command line for a person, written as a template: the literal text is kept as written and
 * every interpolated value becomes one {@link shellWord}, e.g.
 * commandLine`snapkeep snapshot list ${host}/${vm}` gives `snapkeep snapshot list local/'my vm'`
 * (adjacent quoted and plain parts make one word in the shell).
 */
export function commandLine(literals: TemplateStringsArray, ...values: readonly (string | number)[]): string {
  return literals.reduce((line, literal, i) => {
    const value = values[i - 1];
    return line + (value === undefined ? "" : shellWord(String(value))) + literal;
  });
}

/**
 * Turns argv into the command string for an SSH exec request.
 *
 * We assume the remote login shell is POSIX sh compatible (sh, dash, bash, ksh, zsh): that is
 * the default for root and service accounts on every Linux distribution libvirt runs on. csh,
 * tcsh and fish treat `'` and newlines differently and would break the quoting; such hosts need
 * a POSIX login shell for the SSH user.
 *
 * `LC_ALL=C` as a prefix assignment applies to that one command only, so tool output is
 * untranslated (parsers depend on it) without changing the remote user's environment.
 */
export function buildRemoteCommand(argv: readonly string[]): string {
  if (argv.length === 0) {
    throw new SnapkeepError("INVALID_INPUT", "A command needs at least a program name.");
  }
  return `LC_ALL=C ${argv.map(quoteShellArg).join(" ")}`;
}

/** The stderr line prefix that {@link buildTrackedRemoteCommand} writes before the command starts. */
export const REMOTE_PID_MARKER = "snapkeep-pid:";

/**
 * Like {@link buildRemoteCommand}, but the remote shell first reports its process id on stderr
 * (`snapkeep-pid:<pid>` and a newline) and then `exec`s the command, which keeps that id.
 *
 * The id is what makes a remote command killable. sshd refuses SSH "signal" requests for root
 * logins ("session signalling requires privilege separation"), ssh2 drops them once stdin has been
 * closed, and closing the channel does not stop the process, so a timed-out `sleep 60` would run
 * on and hold its channel. sshd starts every non-pty session with setsid(), so the id is also the
 * process group, and `kill -s KILL -- -<pid>` stops the command and anything it started.
 *
 * `exec` also keeps argv semantics equal to a local spawn: the command's own exit status or
 * signal reaches the client (a shell parent would turn SIGTERM into exit 143), and a missing
 * program exits 127. `export` is used instead of a prefix assignment because POSIX leaves it
 * unspecified whether an assignment before `exec` is exported.
 */
export function buildTrackedRemoteCommand(argv: readonly string[]): string {
  if (argv.length === 0) {
    throw new SnapkeepError("INVALID_INPUT", "A command needs at least a program name.");
  }
  return `echo "${REMOTE_PID_MARKER}$$" >&2 && export LC_ALL=C && exec ${argv.map(quoteShellArg).join(" ")}`;
}

/**
 * Where and as whom to connect: the person's `user@host:port` text plus their `~/.ssh/config`.
 *
 * Pure functions over text, so they are tested with config literals and never read the disk
 * themselves: the caller reads `~/.ssh/config` and passes it in.
 */
import SSHConfig from "ssh-config";

import { SnapkeepError, quoteInput } from "../../errors.js";

export interface SshSpec {
  /** A name to look up in `~/.ssh/config`; it is also the host name when the config has no HostName. */
  readonly alias?: string | undefined;
  /** A literal address; it wins over the config's HostName. */
  readonly host?: string | undefined;
  readonly user?: string | undefined;
  readonly port?: number | undefined;
  readonly identityFile?: string | undefined;
}

export interface SshTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /**
   * Private key files to offer, in order, with `~` expanded (and, from the config, the tokens %d,
   * %u, %h, %n, %p, %r and %%). Empty when none was configured.
   */
  readonly identityFiles: string[];
}

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const IPV6 = /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(%[\w.-]+)?$/;
// What OpenSSH accepts as a user or host name on the command line, minus the characters that
// would make the text ambiguous here (`@`, `:`, brackets, whitespace) or open a shell trap later.
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

function invalid(text: string, problem: string): SnapkeepError {
  return new SnapkeepError("INVALID_INPUT", `${quoteInput(text)} is not a valid SSH address: ${problem}.`, {
    hint: "Write it as host, user@host, user@host:port or user@[ipv6]:port.",
    details: { input: text },
  });
}

function parsePort(text: string, portText: string): number {
  if (!/^\d{1,5}$/.test(portText)) {
    throw invalid(text, `the port "${portText}" is not a number`);
  }
  const port = Number(portText);
  if (port < 1 || port > 65535) {
    throw invalid(text, `the port ${port} is outside 1-65535`);
  }
  return port;
}

/**
 * Parses `host`, `alias`, `user@host`, `user@host:port`, `[v6addr]`, `[v6addr]:port` and bare IPv6
 * addresses. IP literals come back as `host`; every other name comes back as `alias`, because
 * OpenSSH looks up every name typed on its command line in `~/.ssh/config`, and a name with no
 * config entry resolves to itself.
 */
export function parseSshSpec(text: string): SshSpec {
  const input = text.trim();
  if (input === "") {
    throw invalid(text, "it is empty");
  }
  let rest = input;
  let user: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at !== -1) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (user === "") {
      throw invalid(text, "the user name before @ is empty");
    }
    if (!NAME.test(user)) {
      throw invalid(text, `the user name "${user}" contains characters SSH user names cannot have`);
    }
  }
  let name: string;
  let port: number | undefined;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close === -1) {
      throw invalid(text, "the [ before the IPv6 address is never closed");
    }
    name = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== "") {
      if (!after.startsWith(":")) {
        throw invalid(text, `unexpected "${after}" after the IPv6 address`);
      }
      port = parsePort(text, after.slice(1));
    }
    if (!IPV6.test(name)) {
      throw invalid(text, `"${name}" is not an IPv6 address`);
    }
  } else if (IPV6.test(rest) && rest.indexOf(":") !== rest.lastIndexOf(":")) {
    // Two or more colons can only be a bare IPv6 address; a port then needs the [addr]:port form.
    name = rest;
  } else {
    const colon = rest.indexOf(":");
    name = colon === -1 ? rest : rest.slice(0, colon);
    if (colon !== -1) {
      port = parsePort(text, rest.slice(colon + 1));
    }
  }
  if (name === "") {
    throw invalid(text, "the host name is empty");
  }
  const isIp = IPV4.test(name) || IPV6.test(name);
  if (!isIp && !NAME.test(name)) {
    throw invalid(text, `the host name "${name}" contains characters host names cannot have`);
  }
  return {
    ...(isIp ? { host: name } : { alias: name }),
    ...(user === undefined ? {} : { user }),
    ...(port === undefined ? {} : { port }),
  };
}

function expandHome(file: string, homeDir: string): string {
  if (file === "~") {
    return homeDir;
  }
  if (file.startsWith("~/")) {
    return `${homeDir.replace(/\/+$/, "")}/${file.slice(2)}`;
  }
  return file;
}

/**
 * Directives whose evaluation makes ssh-config run programs: `Match exec` runs a shell (switched
 * off through `matchExec: false`) and `CanonicalizeHostName` with `CanonicalDomains` runs
 * `nslookup`. Snapkeep resolves names itself, so canonicalisation is dropped before computing.
 */
function withoutSideEffects(config: SSHConfig): SSHConfig {
  const strip = (lines: SSHConfig): void => {
    for (let i = lines.length - 1; i >= 0; i--) {
      const line = lines[i];
      if (line === undefined || line.type !== SSHConfig.DIRECTIVE) {
        continue;
      }
      if (/^CanonicalizeHostName$/i.test(line.param)) {
        lines.splice(i, 1);
      } else if ("config" in line) {
        strip(line.config);
      }
    }
  };
  strip(config);
  return config;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Where to connect, combining explicit values with `~/.ssh/config`. Explicit values always win;
 * the config is looked up under `alias`, or under `host` when there is no alias (as `ssh host`
 * would). `IdentityFile` from the config is used only when no identity file was given.
 */
export function resolveSshTarget(
  spec: SshSpec,
  opts: { readonly configText?: string | undefined; readonly homeDir: string; readonly defaultUser: string },
): SshTarget {
  const lookup = spec.alias ?? spec.host;
  if (lookup === undefined || lookup === "") {
    throw new SnapkeepError("INVALID_INPUT", "An SSH address needs a host name or a ~/.ssh/config alias.");
  }
  let computed: Record<string, string | string[]> = {};
  if (opts.configText !== undefined && opts.configText.trim() !== "") {
    const config = withoutSideEffects(SSHConfig.parse(opts.configText));
    // Match exec would run a shell command taken from the config text: never evaluate it.
    const safety = { ignoreCase: true, matchExec: false };
    computed =
      spec.user === undefined
        ? config.compute(lookup, safety)
        : config.compute({ Host: lookup, User: spec.user }, safety);
  }

  // OpenSSH allows %h (the name typed) and %% in HostName; nothing else is defined there.
  const configHost = single(computed["hostname"])?.replace(/%(.)/g, (token, letter: string) =>
    letter === "h" ? lookup : letter === "%" ? "%" : token,
  );
  const host = spec.host ?? configHost ?? lookup;

  let port = spec.port;
  const configPort = single(computed["port"]);
  if (port === undefined && configPort !== undefined) {
    const parsed = /^\d{1,5}$/.test(configPort) ? Number(configPort) : NaN;
    if (!(parsed >= 1 && parsed <= 65535)) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `~/.ssh/config sets Port ${configPort} for ${lookup}, which is not a port number.`,
        { hint: "Fix the Port line in ~/.ssh/config, or give the port explicitly as host:port." },
      );
    }
    port = parsed;
  }

  const user = spec.user ?? single(computed["user"]) ?? opts.defaultUser;
  const configured = computed["identityfile"];
  // Tokens only in the config's IdentityFile: a path given to Snapkeep is taken literally.
  const tokens: Readonly<Record<string, string>> = {
    "%": "%",
    d: opts.homeDir,
    u: opts.defaultUser,
    h: host,
    n: lookup,
    p: String(port ?? 22),
    r: user,
  };
  const files =
    spec.identityFile !== undefined
      ? [expandHome(spec.identityFile, opts.homeDir)]
      : (Array.isArray(configured) ? configured : configured === undefined ? [] : [configured])
          .filter((file) => file.toLowerCase() !== "none")
          .map((file) =>
            expandHome(file, opts.homeDir).replace(
              /%(.)/g,
              (token, letter: string) => tokens[letter] ?? token,
            ),
          );
  return {
    host,
    port: port ?? 22,
    user,
    identityFiles: files,
  };
}

/**
 * What `snapkeep serve --listen` needs on disk, in SNAPKEEP_HOME/web (0700): the admin password's
 * scrypt hash (`snapkeep serve passwd`), and the TLS certificate: the user's own, or one made on
 * first start (EC P-256, self-signed, for this machine's names and the listening address) whose
 * SHA-256 fingerprint the person compares in the browser. Files are 0600 and replaced whole.
 */
import { X509Certificate, createPrivateKey, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { isIP } from "node:net";
import { hostname } from "node:os";
import { join } from "node:path";
import { z } from "zod";

import { SnapkeepError, describeError } from "../errors.js";
import { replaceFiles } from "./store/files.js";

/** scrypt at 64 MiB (N=2^16, r=8): a guess costs a GPU as much memory as it costs this server. */
const SCRYPT = { N: 65_536, r: 8, p: 1, keyLength: 32, maxmem: 160 * 1024 * 1024 } as const;
export const MIN_PASSWORD_CHARS = 10;

const verifierSchema = z
  .object({
    version: z.literal(1),
    kdf: z.literal("scrypt"),
    N: z.number().int().min(16_384).max(1_048_576),
    r: z.number().int().min(8).max(32),
    p: z.number().int().min(1).max(16),
    salt: z.string().regex(/^[A-Za-z0-9+/]{22,}={0,2}$/),
    hash: z.string().regex(/^[A-Za-z0-9+/]{43}=$/),
  })
  .strict();
export type PasswordVerifier = z.infer<typeof verifierSchema>;

function webDir(home: string): string {
  const dir = join(home, "web");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

function derive(
  password: string,
  salt: Buffer,
  params: { N: number; r: number; p: number },
): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(
      password.normalize("NFC"),
      salt,
      SCRYPT.keyLength,
      { N: params.N, r: params.r, p: params.p, maxmem: SCRYPT.maxmem },
      (error, key) => (error === null ? resolve(key) : reject(error)),
    ),
  );
}

/** Sets (or replaces) the admin password of the web UI. */
export async function setAdminPassword(home: string, password: string): Promise<void> {
  if ([...password].length < MIN_PASSWORD_CHARS) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `The password must have at least ${MIN_PASSWORD_CHARS} characters.`,
    );
  }
  const salt = randomBytes(16);
  const hash = await derive(password, salt, SCRYPT);
  const verifier: PasswordVerifier = {
    version: 1,
    kdf: "scrypt",
    N: SCRYPT.N,
    r: SCRYPT.r,
    p: SCRYPT.p,
    salt: salt.toString("base64"),
    hash: hash.toString("base64"),
  };
  const path = join(webDir(home), "admin.json");
  replaceFiles([{ path, content: Buffer.from(`${JSON.stringify(verifier)}\n`) }], 0o600);
}

/** The admin password's verifier, or null when none was set; a damaged file is an error. */
export function readAdminPassword(home: string): PasswordVerifier | null {
  const path = join(home, "web", "admin.json");
  if (!existsSync(path)) {
    return null;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw damaged(path, describeError(error));
  }
  const verifier = verifierSchema.safeParse(parsed);
  if (!verifier.success) {
    throw damaged(path, "it is not what `snapkeep serve passwd` writes");
  }
  return verifier.data;
}

function damaged(path: string, why: string): SnapkeepError {
  return new SnapkeepError(
    "INVALID_INPUT",
    `${path} cannot be read (${why}): set the password again with snapkeep serve passwd.`,
  );
}

export async function passwordMatches(verifier: PasswordVerifier, password: string): Promise<boolean> {
  const expected = Buffer.from(verifier.hash, "base64");
  const given = await derive(password, Buffer.from(verifier.salt, "base64"), verifier);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export interface WebCertificate {
  readonly cert: string;
  readonly key: string;
  /** SHA-256 of the certificate, as browsers show it (AB:CD:...). */
  readonly fingerprint: string;
  /** Made by Snapkeep (self-signed), or the user's own. */
  readonly selfSigned: boolean;
}

/** The user's certificate and key, checked to belong together. */
export function providedCertificate(certFile: string, keyFile: string): WebCertificate {
  const read = (file: string, what: string): string => {
    try {
      return readFileSync(file, "utf8");
    } catch (error) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `The ${what} ${file} cannot be read: ${describeError(error)}.`,
      );
    }
  };
  const cert = read(certFile, "certificate");
  const key = read(keyFile, "key");
  return { ...checkedPair(cert, key, `${certFile} and ${keyFile}`), selfSigned: false };
}

function checkedPair(
  cert: string,
  key: string,
  where: string,
): { cert: string; key: string; fingerprint: string } {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
    if (!x509.checkPrivateKey(createPrivateKey(key))) {
      throw new Error("the key is not the certificate's");
    }
  } catch (error) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `${where} are not a PEM certificate and its key: ${describeError(error)}.`,
    );
  }
  return { cert, key, fingerprint: x509.fingerprint256 };
}

/**
 * The certificate Snapkeep made for this server, made now if there is none or it does not name
 * `address` (a new listening address); kept across restarts so the fingerprint stays the same.
 */
export async function ownCertificate(home: string, address: string, now: Date): Promise<WebCertificate> {
  const dir = webDir(home);
  const certPath = join(dir, "tls-cert.pem");
  const keyPath = join(dir, "tls-key.pem");
  if (existsSync(certPath) && existsSync(keyPath)) {
    const pair = checkedPair(
      readFileSync(certPath, "utf8"),
      readFileSync(keyPath, "utf8"),
      `${certPath} and ${keyPath}`,
    );
    const x509 = new X509Certificate(pair.cert);
    const named =
      !specific(address) ||
      (isIP(address) !== 0 ? x509.checkIP(address) !== undefined : x509.checkHost(address) !== undefined);
    if (named && Date.parse(x509.validTo) > now.getTime() + 30 * 86_400_000) {
      return { ...pair, selfSigned: true };
    }
  }
  const { generate } = await import("selfsigned");
  const names = [...new Set([hostname(), "localhost"])];
  const ips = [
    ...new Set(["127.0.0.1", "::1", ...(specific(address) && isIP(address) !== 0 ? [address] : [])]),
  ];
  const dns = [...new Set([...names, ...(specific(address) && isIP(address) === 0 ? [address] : [])])];
  const notAfter = new Date(now.getTime() + 5 * 365 * 86_400_000);
  const made = await generate([{ name: "commonName", value: `Snapkeep on ${hostname()}`.slice(0, 64) }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate: new Date(now.getTime() - 3600_000),
    notAfterDate: notAfter,
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, critical: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        altNames: [
          ...dns.map((value) => ({ type: 2 as const, value })),
          ...ips.map((ip) => ({ type: 7 as const, ip })),
        ],
      },
    ],
  });
  replaceFiles(
    [
      { path: keyPath, content: Buffer.from(made.private) },
      { path: certPath, content: Buffer.from(made.cert) },
    ],
    0o600,
  );
  return { ...checkedPair(made.cert, made.private, certPath), selfSigned: true };
}

/** Whether the listening address names one interface (not every one: 0.0.0.0, ::). */
function specific(address: string): boolean {
  return address !== "" && address !== "0.0.0.0" && address !== "::" && address !== "[::]";
}

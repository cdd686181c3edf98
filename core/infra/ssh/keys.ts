/**
 * What can be told about a private key file without ssh2: whether it needs a passphrase.
 *
 * infra/runner/factory.ts decides which key to offer before ssh2 is loaded (it is loaded lazily), and an
 * encrypted default key with no passphrase must be passed over so that the ssh-agent gets its turn:
 * ssh2 would otherwise refuse to connect at all.
 */

const OPENSSH_BLOCK = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/;
const OPENSSH_MAGIC = Buffer.from("openssh-key-v1\0", "latin1");

/**
 * True when the key text is encrypted: an OpenSSH key whose cipher is not `none`, a PEM key with
 * `Proc-Type: 4,ENCRYPTED`, an encrypted PKCS#8 key, or a PuTTY key with an `Encryption` other
 * than `none`. Anything else, including text that is not a key at all, counts as not encrypted,
 * and ssh2 reports what is wrong with it.
 */
export function isEncryptedPrivateKey(text: string): boolean {
  const openssh = OPENSSH_BLOCK.exec(text);
  if (openssh !== null) {
    return openSshCipher(openssh[1] ?? "") !== "none";
  }
  if (text.includes("-----BEGIN ENCRYPTED PRIVATE KEY-----")) {
    return true;
  }
  if (
    /^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/m.test(text) &&
    /^Proc-Type:\s*4,\s*ENCRYPTED\s*$/m.test(text)
  ) {
    return true;
  }
  const putty = /^PuTTY-User-Key-File-\d+:.*\r?\nEncryption:\s*(\S+)/m.exec(text);
  return putty !== null && putty[1] !== "none";
}

/**
 * The cipher named in an OpenSSH key body (`openssh-key-v1\0`, then a length-prefixed cipher name),
 * or "none" when the body is malformed: a broken key is ssh2's to report.
 */
function openSshCipher(base64Body: string): string {
  const body = Buffer.from(base64Body.replace(/\s+/g, ""), "base64");
  const at = OPENSSH_MAGIC.length;
  if (body.length < at + 4 || !body.subarray(0, at).equals(OPENSSH_MAGIC)) {
    return "none";
  }
  const length = body.readUInt32BE(at);
  if (length === 0 || length > 64 || body.length < at + 4 + length) {
    return "none";
  }
  return body.subarray(at + 4, at + 4 + length).toString("latin1");
}

/**
 * `snapkeep serve --listen` on an address other computers reach: HTTPS with the certificate made on
 * first start (Chromium accepts it by its key's fingerprint only, as a person compares it), the
 * admin password set by `snapkeep serve passwd`, a session cookie with the right flags, wrong
 * passwords refused and then rate-limited, no API or metrics without a session, and sign-out.
 * Real processes, real TLS, real Chromium.
 */
import { spawnSync, type ChildProcess } from "node:child_process";
import { X509Certificate, createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";

import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../support/chromium.js";
import { buildForUsers, startServe, stopServe } from "../support/serve.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const shots = join(repo, "artifacts", "screenshots");
const PASSWORD = "correct horse battery staple";
const bin = join(repo, "bin/snapkeep.js");

/** Whether a WebSocket to the API opens with these headers (the server's certificate trusted). */
function apiOpens(origin: string, ca: string, headers: Record<string, string>): Promise<boolean> {
  const ws = new WebSocket(`${origin.replace("https", "wss")}/api`, { ca, headers });
  return new Promise((resolve) => {
    ws.once("open", () => {
      ws.close();
      resolve(true);
    });
    ws.once("unexpected-response", () => resolve(false));
    ws.once("error", () => resolve(false));
  });
}

/** GET over HTTPS with the server's certificate trusted: the status. */
function get(url: string, ca: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, { ca, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on("error", reject)
      .end();
  });
}

describe("serve --listen: TLS and a login", () => {
  let home = "";
  let server: ChildProcess | undefined;
  let browser: Browser | undefined;
  let origin = "";
  let cert = "";
  let printedFingerprint = "";

  beforeAll(async () => {
    buildForUsers(repo);
    mkdirSync(shots, { recursive: true });
    home = mkdtempSync(join(tmpdir(), "snapkeep-login-"));
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await stopServe(server);
    rmSync(home, { recursive: true, force: true });
  });

  it("refuses to listen beyond loopback without a password; passwd stores only a scrypt hash, 0600", async () => {
    await expect(startServe(repo, home, ["--listen", "0.0.0.0:0", "--no-scheduler"])).rejects.toThrow(
      /needs a login: set the admin password first with `snapkeep serve passwd`/,
    );
    const env = { ...process.env, SNAPKEEP_HOME: home };
    const short = spawnSync("node", [bin, "serve", "passwd"], { env, input: "short\n", encoding: "utf8" });
    expect(short.status).toBe(1);
    expect(short.stderr).toMatch(/at least 10 characters/);
    const set = spawnSync("node", [bin, "serve", "passwd"], {
      env,
      input: `${PASSWORD}\n`,
      encoding: "utf8",
    });
    expect(set.stderr).toBe("");
    expect(set.status).toBe(0);
    const file = join(home, "web", "admin.json");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const stored = readFileSync(file, "utf8");
    expect(stored).not.toContain("horse");
    expect(JSON.parse(stored)).toMatchObject({ version: 1, kdf: "scrypt", N: 65536, r: 8, p: 1 });
  });

  it("signs in over TLS accepted by fingerprint, with a Strict HttpOnly Secure cookie; no session, no API", async () => {
    let url: string;
    ({ server, url } = await startServe(repo, home, ["--listen", "0.0.0.0:0", "--no-scheduler"]));
    const port = /:(\d+)\/$/.exec(url)?.[1] ?? "";
    expect(url).toBe(`https://0.0.0.0:${port}/`);
    origin = `https://127.0.0.1:${port}`;
    cert = readFileSync(join(home, "web", "tls-cert.pem"), "utf8");
    const x509 = new X509Certificate(cert);
    expect(statSync(join(home, "web", "tls-key.pem")).mode & 0o777).toBe(0o600);
    // What serve printed is the certificate's own SHA-256.
    printedFingerprint = x509.fingerprint256;
    const spki = createHash("sha256")
      .update(x509.publicKey.export({ type: "spki", format: "der" }))
      .digest("base64");

    // A browser that was not told the fingerprint refuses the certificate.
    const plain = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    try {
      await expect((await plain.newPage()).goto(origin)).rejects.toThrow(/ERR_CERT/);
    } finally {
      await plain.close();
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: [...CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${spki}`],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(`${origin}/`);
    await page.getByRole("heading", { name: "Sign in to Snapkeep" }).waitFor();
    expect(await page.getByLabel("Certificate fingerprint").textContent()).toBe(printedFingerprint);
    await page.screenshot({ path: join(shots, "serve-login.png") });

    // Without a session: no API, no metrics.
    expect(await apiOpens(origin, cert, { Origin: origin })).toBe(false);
    expect(await get(`${origin}/metrics`, cert)).toBe(401);

    await page.getByLabel("Admin password").fill("not the password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("alert").textContent()).resolves.toBe("That is not the admin password.");
    expect((await context.cookies()).length).toBe(0);

    await page.getByLabel("Admin password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "Sign out" }).waitFor();
    await page.getByText("connected", { exact: true }).waitFor();
    const [cookie] = await context.cookies();
    expect(cookie).toMatchObject({
      name: "__Host-snapkeep",
      httpOnly: true,
      secure: true,
      sameSite: "Strict",
      path: "/",
    });
    const session = `${cookie?.name}=${cookie?.value}`;
    expect(await apiOpens(origin, cert, { Origin: origin, Cookie: session })).toBe(true);
    // The cookie from a page of another origin does not open it.
    expect(await apiOpens(origin, cert, { Origin: "https://evil.example", Cookie: session })).toBe(false);
    expect(await get(`${origin}/metrics`, cert, { Cookie: session })).toBe(200);

    // Settings' About: the version and the fingerprint to compare.
    await page.getByRole("button", { name: "Settings" }).click();
    await expect(page.getByLabel("Version").textContent()).resolves.toBe("0.1.0");
    expect(await page.getByLabel("Server certificate fingerprint").textContent()).toBe(printedFingerprint);
    await page.getByRole("heading", { name: "About" }).scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(shots, "serve-login-about.png") });

    // A socket opened with the session (another tab, say) is closed when it signs out.
    const open = new WebSocket(`${origin.replace("https", "wss")}/api`, {
      ca: cert,
      headers: { Origin: origin, Cookie: session },
    });
    await new Promise((resolve, reject) => {
      open.once("open", resolve);
      open.once("error", reject);
    });
    const closed = new Promise<void>((resolve) => open.once("close", () => resolve()));

    // Sign out: back to the sign-in page, and the old cookie opens nothing any more.
    await page.getByRole("button", { name: "Sign out" }).first().click();
    await closed;
    await page.getByRole("heading", { name: "Sign in to Snapkeep" }).waitFor();
    expect(await apiOpens(origin, cert, { Origin: origin, Cookie: session })).toBe(false);
    expect(dialogs).toEqual([]);
    await context.close();
  });

  it("holds a client that keeps guessing, the right password included, and says for how long", async () => {
    const page: Page = await (browser ?? expect.fail("the browser")).newPage();
    await page.goto(`${origin}/`);
    // The sign-in above forgot the wrong attempt before it: five wrong ones reach the limit.
    for (let i = 0; i < 5; i++) {
      await page.getByLabel("Admin password").fill(`wrong ${i}`);
      const answered = page.waitForResponse((r) => r.url().endsWith("/login"));
      await page.getByRole("button", { name: "Sign in" }).click();
      expect((await answered).status()).toBe(401);
      await expect(page.getByRole("alert").textContent()).resolves.toBe("That is not the admin password.");
    }
    await page.getByLabel("Admin password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("alert").textContent()).resolves.toMatch(
      /^Too many attempts\. Try again in 1[45] minutes\.$/,
    );
    await page.screenshot({ path: join(shots, "serve-login-limited.png") });
    await page.close();
  });

  it("holds guesses sent all at once: no more password checks than the limit allows", async () => {
    // A fresh server: a fresh limiter.
    await stopServe(server);
    let url: string;
    ({ server, url } = await startServe(repo, home, ["--listen", "0.0.0.0:0", "--no-scheduler"]));
    const port = /:(\d+)\/$/.exec(url)?.[1] ?? "";
    const target = `https://127.0.0.1:${port}`;
    const attempt = (i: number): Promise<number> =>
      new Promise((resolve, reject) => {
        const body = JSON.stringify({ password: `guess ${i}` });
        request(
          `${target}/login`,
          {
            method: "POST",
            ca: cert,
            headers: {
              Origin: target,
              "Content-Type": "application/json",
              "Content-Length": Buffer.byteLength(body),
            },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        )
          .on("error", reject)
          .end(body);
      });
    const statuses = await Promise.all(Array.from({ length: 40 }, (_, i) => attempt(i)));
    const checked = statuses.filter((s) => s === 401).length;
    expect(checked).toBeGreaterThanOrEqual(1);
    expect(checked).toBeLessThanOrEqual(5);
    expect(statuses.every((s) => s === 401 || s === 429 || s === 503)).toBe(true);
  });
});

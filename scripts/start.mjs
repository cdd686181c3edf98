// `npm start`: the desktop app from this checkout (after `npm run build`). Electron's binary is
// fetched on first use (electron@42+ has no postinstall); where it cannot be fetched, say so in one
// sentence and point to the browser UI instead of a stack trace.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, URL } from "node:url";

const appDir = fileURLToPath(new URL("..", import.meta.url));
const instead = "run `snapkeep serve` to use Snapkeep in a browser instead";

/** Where the binary is, the way electron/index.js finds it, but without downloading as a side effect. */
function electronBinary(packageDir) {
  const pathFile = join(packageDir, "path.txt");
  const relative = existsSync(pathFile) ? readFileSync(pathFile, "utf8") : undefined;
  if (process.env.ELECTRON_OVERRIDE_DIST_PATH) {
    return join(process.env.ELECTRON_OVERRIDE_DIST_PATH, relative ?? "electron");
  }
  return relative === undefined ? undefined : join(packageDir, "dist", relative);
}

function fail(sentence) {
  process.stderr.write(`snapkeep: ${sentence}\n`);
  process.exit(1);
}

let packageDir;
try {
  packageDir = dirname(createRequire(import.meta.url).resolve("electron/package.json"));
} catch {
  fail(`the desktop app needs the electron package, which is not installed (run npm ci); ${instead}.`);
}

let binary = electronBinary(packageDir);
if ((binary === undefined || !existsSync(binary)) && !process.env.ELECTRON_OVERRIDE_DIST_PATH) {
  // The one-time download; its own output (a stack trace when offline) is kept for the last line.
  process.stderr.write("snapkeep: fetching the Electron binary (once)...\n");
  const install = spawnSync(process.execPath, [join(packageDir, "install.js")], { encoding: "utf8" });
  binary = electronBinary(packageDir);
  if (install.status !== 0 || binary === undefined || !existsSync(binary)) {
    const reason = `${install.stderr ?? ""}${install.error?.message ?? ""}`
      .split("\n")
      .map((line) => line.trim())
      .find((line) => line !== "" && !line.startsWith("at "));
    fail(
      `the Electron binary could not be downloaded${reason === undefined ? "" : ` (${reason.replace(/\.$/, "")})`}, so the desktop app cannot start here; ${instead}.`,
    );
  }
}
if (binary === undefined || !existsSync(binary)) {
  fail(
    `there is no Electron binary at ${binary ?? "ELECTRON_OVERRIDE_DIST_PATH"}, so the desktop app cannot start here; ${instead}.`,
  );
}

const child = spawn(binary, [appDir, ...process.argv.slice(2)], { stdio: "inherit" });
child.on("error", (error) =>
  fail(`Electron at ${binary} could not be started (${error.message}); ${instead}.`),
);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => child.kill(signal));
}
child.on("exit", (code, signal) => process.exit(code ?? (signal === null ? 0 : 1)));

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";

/**
 * `snapkeep serve` as a user starts it, on a free port, with its own state folder (and any further
 * options); resolves with the process and the address it printed (token included).
 */
export async function startServe(
  repo: string,
  home: string,
  options: readonly string[] = [],
): Promise<{ server: ChildProcess; url: string }> {
  const server = spawn("node", [join(repo, "bin/snapkeep.js"), "serve", "--port", "0", ...options], {
    env: { ...process.env, SNAPKEEP_HOME: home },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  server.stderr?.on("data", (chunk: Buffer) => {
    err += chunk.toString();
    process.stderr.write(chunk);
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    server.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      // The whole line: http://…/#token=… on loopback, https://…/ with a login.
      const match = /Snapkeep is at (https?:\/\/\S+)\n/.exec(out);
      if (match?.[1] !== undefined) {
        resolve(match[1]);
      }
    });
    server.once("exit", (code) => reject(new Error(`snapkeep serve exited (${code}): ${out}${err}`)));
  });
  return { server, url };
}

/** Ends a server started by startServe (SIGTERM) and waits for it; nothing when it already ended. */
export function stopServe(server: ChildProcess | undefined): Promise<void> {
  if (server === undefined || server.exitCode !== null || server.signalCode !== null) {
    return Promise.resolve();
  }
  const exited = new Promise<void>((resolve) => server.once("exit", () => resolve()));
  server.kill("SIGTERM");
  return exited;
}

/** Builds what users run, the UI included (vitest sets NODE_ENV=test: React's development mode). */
export function buildForUsers(repo: string): void {
  execFileSync("npm", ["run", "build"], {
    cwd: repo,
    stdio: "inherit",
    env: { ...process.env, NODE_ENV: "production" },
  });
}

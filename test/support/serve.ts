import { spawn, type ChildProcess } from "node:child_process";
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

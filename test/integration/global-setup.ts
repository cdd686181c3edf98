import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const script = fileURLToPath(new URL("../../scripts/test-host.sh", import.meta.url));

/** Real test host for the whole integration run: packages, libvirtd and virtlogd. */
export function setup(): void {
  execFileSync("bash", [script, "up"], {
    stdio: "inherit",
    env: { ...process.env, SNAPKEEP_TEST_HOST_USER: String(process.pid) },
  });
}

export function teardown(): void {
  execFileSync("bash", [script, "down"], {
    stdio: "inherit",
    env: { ...process.env, SNAPKEEP_TEST_HOST_USER: String(process.pid) },
  });
}

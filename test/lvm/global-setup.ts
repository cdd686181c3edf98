import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const testHost = fileURLToPath(new URL("../../scripts/test-host.sh", import.meta.url));
const guest = fileURLToPath(new URL("../../scripts/lvm-guest.sh", import.meta.url));

/**
 * The real LVM host: this machine's libvirtd, then the Debian guest booted on it (built first when
 * the cache has no image for this version of scripts/lvm-guest.sh).
 */
export function setup(): void {
  execFileSync("bash", [testHost, "up"], {
    stdio: "inherit",
    env: { ...process.env, SNAPKEEP_TEST_HOST_USER: String(process.pid) },
  });
  execFileSync("bash", [guest, "up"], {
    stdio: "inherit",
    env: { ...process.env, SNAPKEEP_TEST_HOST_USER: String(process.pid) },
  });
}

export function teardown(): void {
  execFileSync("bash", [guest, "down"], {
    stdio: "inherit",
    env: { ...process.env, SNAPKEEP_TEST_HOST_USER: String(process.pid) },
  });
  execFileSync("bash", [testHost, "down"], {
    stdio: "inherit",
    env: { ...process.env, SNAPKEEP_TEST_HOST_USER: String(process.pid) },
  });
}

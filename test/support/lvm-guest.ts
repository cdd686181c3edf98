import { readFileSync } from "node:fs";
import { z } from "zod";

/** Where scripts/lvm-guest.sh up describes the running guest. */
const GUEST_JSON = `${process.env["SNAPKEEP_LVM_RUN"] ?? "/var/lib/libvirt/images/sk-lvm-guest"}/guest.json`;

const guestSchema = z.object({
  domain: z.string(),
  host: z.string(),
  port: z.number(),
  user: z.string(),
  identityFile: z.string(),
  hostFingerprint: z.string().startsWith("SHA256:"),
  accel: z.string(),
});

export type LvmGuest = z.infer<typeof guestSchema>;

export function lvmGuest(): LvmGuest {
  return guestSchema.parse(JSON.parse(readFileSync(GUEST_JSON, "utf8")));
}

/** The request that adds the guest as a trusted Snapkeep host, its key pinned as built. */
export function guestHost(
  name: string,
  guest: LvmGuest,
): { name: string; ssh: string; identityFile: string; trust: string } {
  return {
    name,
    ssh: `${guest.user}@${guest.host}:${guest.port}`,
    identityFile: guest.identityFile,
    trust: guest.hostFingerprint,
  };
}

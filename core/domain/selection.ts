import { SnapkeepError, quoteInput } from "../errors.js";
import type { Snapshot, Vm, VmWithSnapshots } from "./types.js";

/**
 * The libvirt URIs a host may have: QEMU's system or session daemon over its local socket. libvirt
 * URIs can name transports that run programs (`qemu+ext:///…?command=…`) or point elsewhere;
 * Snapkeep reaches remote hosts through its own SSH, so nothing else is needed, or accepted.
 */
export function validateLibvirtUri(uri: string): void {
  if (!/^qemu(\+unix)?:\/\/\/(system|session)$/.test(uri)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `${quoteInput(uri)} is not a libvirt URI Snapkeep uses: give qemu:///system (the default) or qemu:///session.`,
      { action: { do: "add-ssh-host" } },
    );
  }
}

/**
 * The disks a snapshot covers: the chosen ones, or every hard disk. CD-ROMs are not disks and are
 * left out of "every"; any other disk that cannot be snapshotted is an error naming it, so nothing
 * is half-done.
 */
export function chooseSnapshotDisks(vm: Vm, chosen: readonly string[] | undefined): string[] {
  const disks =
    chosen === undefined
      ? vm.disks.filter((d) => d.device === "disk")
      : chosen.map((target) => {
          const disk = vm.disks.find((d) => d.target === target);
          if (disk === undefined) {
            throw new SnapkeepError("NOT_FOUND", `${vm.name} has no disk ${target}.`, {
              hint: `Its disks: ${vm.disks.map((d) => d.target).join(", ") || "none"}.`,
            });
          }
          return disk;
        });
  if (disks.length === 0) {
    throw new SnapkeepError("DISK_UNSUPPORTED", `${vm.name} has no disks to snapshot.`);
  }
  const blocked = disks.filter((d) => d.snapshotBlocker !== null);
  if (blocked.length > 0) {
    throw new SnapkeepError(
      "DISK_UNSUPPORTED",
      `Cannot snapshot ${vm.name}: ${blocked.map((d) => d.snapshotBlocker).join("; ")}.`,
      {
        action:
          chosen === undefined && blocked.length < disks.length
            ? {
                do: "choose-disks",
                disks: disks.filter((d) => d.snapshotBlocker === null).map((d) => d.target),
              }
            : undefined,
        details: { disks: blocked.map((d) => d.target) },
      },
    );
  }
  return [...new Set(disks.map((d) => d.target))];
}

/** A snapshot by its exact tag, else by its name; an ambiguous name is refused, not guessed. */
/**
 * Names a VM's newest complete snapshot wherever a snapshot is named ("export web01 latest"). A
 * snapshot someone named "latest" keeps the word: it is found by its name first.
 */
export const LATEST = "latest";

export function resolveSnapshot(vm: VmWithSnapshots, ref: string): Snapshot {
  const byTag = vm.snapshots.find((s) => s.tag === ref);
  if (byTag !== undefined) {
    return byTag;
  }
  const byName = vm.snapshots.filter((s) => s.name === ref);
  if (byName.length === 1 && byName[0] !== undefined) {
    return byName[0];
  }
  if (ref === LATEST && byName.length === 0) {
    // The newest good snapshot: one an interrupted job left half-made is no recovery point.
    const newest = vm.snapshots.filter((s) => !s.incomplete).at(-1);
    if (newest === undefined) {
      throw new SnapkeepError("NOT_FOUND", `${vm.name} has no snapshot yet, so none is the latest.`);
    }
    return newest;
  }
  if (byName.length > 1) {
    throw new SnapkeepError("INVALID_INPUT", `${vm.name} has ${byName.length} snapshots named "${ref}".`, {
      hint: `Name one by its tag: ${byName.map((s) => JSON.stringify(s.tag)).join(" or ")}`,
    });
  }
  throw new SnapkeepError("NOT_FOUND", `${vm.name} has no snapshot named ${quoteInput(ref)}.`, {
    action: { do: "list-snapshots", host: vm.host, vm: vm.name },
  });
}

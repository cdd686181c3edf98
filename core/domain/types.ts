/** The domain as Snapkeep shows it: hosts, VMs, disks and snapshots. Plain data, no behaviour. */

export type VmState =
  "running" | "paused" | "shut off" | "in shutdown" | "crashed" | "pmsuspended" | "idle" | "unknown";

export type DiskRole = "root" | "additional";

/** Why a disk cannot be snapshotted, or null when it can. */
export type SnapshotBlocker = string | null;

export interface Disk {
  /** The guest-visible target, e.g. "vda": how users and the CLI name a disk. */
  readonly target: string;
  readonly device: string;
  /** libvirt's disk type: file, block, network, volume, dir. */
  readonly type: string;
  readonly source: string | null;
  readonly format: string | null;
  readonly role: DiskRole;
  readonly readonly: boolean;
  readonly virtualSize: number | null;
  /**
   * Bytes the disk takes on its storage, its snapshots included where the storage keeps them with
   * it: a qcow2 file's allocated size (its internal snapshots are inside); a thick LV's size plus
   * the COW space of its thick snapshots; a thin LV's mapped bytes (the blocks only its thin
   * snapshots hold are not known, so not counted). Null when the storage does not say (an
   * inactive thin LV, an image that could not be read).
   */
  readonly allocatedSize: number | null;
  readonly snapshotBlocker: SnapshotBlocker;
}

export interface Vm {
  readonly host: string;
  readonly name: string;
  readonly uuid: string;
  readonly state: VmState;
  /** True while a QEMU process holds the disks (running, paused, ...): images must not be touched. */
  readonly active: boolean;
  readonly disks: readonly Disk[];
}

export type SnapshotKind = "manual" | "scheduled" | "safety" | "foreign";

/**
 * One disk's part of a snapshot: an internal qcow2 snapshot inside the disk's image, or, for a disk
 * that is an LVM logical volume, a snapshot LV of it (then `lv` is set).
 */
export interface DiskSnapshot {
  readonly target: string;
  /** qcow2's own id inside that image, or the snapshot LV's UUID: addresses it exactly. */
  readonly imageSnapshotId: string;
  readonly createdAt: string;
  readonly vmStateSize: number;
  readonly lv?: LvSnapshot | undefined;
  /**
   * Bytes deleting this snapshot alone would free on this disk (domain/space.ts says how each
   * storage knows). Absent: not measured (vms.get leaves it out, vms.space and `snapshot list`
   * fill it in); null: the storage cannot say (a thin LV, an image the reader refuses).
   */
  readonly freesBytes?: number | null | undefined;
}

/** Where an LVM snapshot lives and how full it is. */
export interface LvSnapshot {
  readonly vg: string;
  readonly name: string;
  /** /dev/VG/LV: read it (a thin one after activating it with -K) to copy the snapshot. */
  readonly path: string;
  readonly thin: boolean;
  /** COW space used by a thick snapshot, in percent; null for thin ones and inactive ones. */
  readonly usedPercent: number | null;
  /** COW space a thick snapshot holds in its volume group (its LV size, all of it given back when
   * it is deleted); null for a thin one, which has no space of its own. */
  readonly cowBytes: number | null;
  /** A thick snapshot whose COW space ran out: it no longer holds the past content, only deletable. */
  readonly invalid: boolean;
}

/**
 * A snapshot as users see it: the same tag on one or more disks of a VM. Snapkeep's tag says who
 * made it, so it is recognisable on the host even if Snapkeep's settings are lost.
 */
export interface Snapshot {
  /** The tag stored in the images: the snapshot's identity on the host. */
  readonly tag: string;
  readonly name: string;
  readonly kind: SnapshotKind;
  /** For scheduled snapshots, the schedule that made it. */
  readonly origin: string | null;
  readonly createdAt: string;
  readonly disks: readonly DiskSnapshot[];
  readonly note: string | null;
  readonly pinned: boolean;
  /** crash-consistent, frozen, hooked, frozen+hooked or vm-off; null when not recorded. */
  readonly consistency: string | null;
  /** The job that made it was interrupted: it is never counted as a good snapshot. */
  readonly incomplete: boolean;
  /** True when the snapshot carries VM memory state (made outside Snapkeep, e.g. virsh snapshot-create). */
  readonly hasVmState: boolean;
  /** Verified exports of it made by this Snapkeep, as "TARGET/EXPORT-ID"; absent when none. */
  readonly exportedTo?: readonly string[];
  /** The sum of its disks' freesBytes: absent when not measured, null when a disk cannot say. */
  readonly freesBytes?: number | null | undefined;
}

export interface VmWithSnapshots extends Vm {
  readonly snapshots: readonly Snapshot[];
}

export type HostConfig = LocalHostConfig | SshHostConfig;

export interface LocalHostConfig {
  readonly name: string;
  readonly kind: "local";
  readonly uri: string;
}

export interface SshHostConfig {
  readonly name: string;
  readonly kind: "ssh";
  /** An ~/.ssh/config Host alias, resolved at every connect so config edits take effect. */
  readonly alias?: string | undefined;
  readonly host?: string | undefined;
  readonly user?: string | undefined;
  readonly port?: number | undefined;
  readonly identityFile?: string | undefined;
  readonly uri: string;
  /** The pinned host key, "SHA256:..." as printed by ssh-keygen -lf. Absent until trusted. */
  readonly hostKey?: string | undefined;
}

/** One way a VM's definition differs between a snapshot and today. */
export interface DefinitionChange {
  readonly what: "memory" | "vcpus" | "firmware" | "machine" | "disk" | "nic";
  /** One sentence for a person, naming the value at the snapshot and today's. */
  readonly description: string;
}

/** What a revert (or its dry run, or an undo) does: shown by the CLI and the revert wizard. */
export interface RevertResult {
  readonly vm: string;
  readonly snapshot: Snapshot;
  readonly disks: readonly string[];
  /** The VM was running: it is (or, in a dry run, would be) shut down first and started again after. */
  readonly restarted: boolean;
  /** The VM runs and no consent to stop it was given: the real revert would refuse. */
  readonly needsConsent: boolean;
  readonly dryRun: boolean;
  /** The safety snapshot taken of the same disks just before (in a dry run: its name). */
  readonly safety: { readonly name: string; readonly tag: string };
  /** What changed in the VM's definition since the snapshot (reverting disks does not undo it);
   * null when the snapshot has no saved definition (made before Snapkeep recorded one, or foreign). */
  readonly definitionChanges: readonly DefinitionChange[] | null;
  /** Older safety snapshots deleted to keep the configured number. */
  readonly prunedSafety: readonly string[];
  /**
   * Whether the QEMU guest agent answered, asked while the VM runs (null when it is not running).
   * Without one, a guest may ignore the shutdown request (no OS, no ACPI): the revert would wait
   * out the timeout, so powering it off is offered up front.
   */
  readonly guestAgent: boolean | null;
}

/** Where a revert of a running VM is, for a countdown while the guest shuts down. */
export type RevertProgress =
  | {
      readonly phase: "shutting-down";
      /** When the wait for a clean shutdown ends (ISO time), and the seconds left until then. */
      readonly deadline: string;
      readonly secondsLeft: number;
      /** What happens if the guest is still running then. */
      readonly then: "power-off" | "give-up";
    }
  | { readonly phase: "powering-off" }
  | { readonly phase: "reverting" }
  | { readonly phase: "starting" };

/** One internal snapshot of an image, as qemu-img and QMP report it. */
export interface ImageSnapshot {
  /** qcow2's id: a string, unique within one image. */
  readonly id: string;
  readonly name: string;
  readonly createdAt: Date;
  readonly vmStateSize: number;
  /** Set when the "image" is an LVM logical volume and this snapshot is a snapshot LV of it. */
  readonly lv?: LvSnapshot | undefined;
}

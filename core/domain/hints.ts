/**
 * A hint's action in the words of each front end. The CLI names the command and its flags, which a
 * person can paste; the UI names what to click, and never a flag (nobody passes `--force` to a
 * button). The scheduler's journal and the desktop's notifications use the UI's words: they are
 * read in the UI as often as in `snapkeep jobs list`.
 */
import type { HintAction } from "../errors.js";
import { commandLine } from "./shell-quote.js";

export type Audience = "cli" | "ui";

export function wordHint(action: HintAction, audience: Audience): string {
  return audience === "cli" ? cliWords(action) : uiWords(action);
}

function cliWords(action: HintAction): string {
  switch (action.do) {
    case "list-hosts":
      return "See your hosts with: snapkeep host list";
    case "add-ssh-host":
      return "For another computer, add it as an SSH host: snapkeep host add NAME --ssh USER@HOST";
    case "trust": {
      const command =
        action.offered === undefined
          ? `${commandLine`snapkeep ${action.noun} trust ${action.name}`} SHA256:...`
          : commandLine`snapkeep ${action.noun} trust ${action.name} ${action.offered}`;
      return trustWords(action, `run \`${command}\``);
    }
    case "list-vms":
      return `List them with: ${commandLine`snapkeep vm list --host ${action.host}`}`;
    case "list-snapshots":
      return `List them with: ${commandLine`snapkeep snapshot list ${`${action.host}/${action.vm}`}`}`;
    case "delete-snapshot":
      return `Delete it with: ${commandLine`snapkeep snapshot delete ${`${action.host}/${action.vm}`} ${action.snapshot}`}`;
    case "unpin":
      return `Unpin it first: ${commandLine`snapkeep snapshot unpin ${`${action.host}/${action.vm}`} ${action.snapshot}`}`;
    case "allow-stop":
      return "Run again with --yes to shut it down, revert, and start it again.";
    case "allow-power-off":
      return "Shut it down from inside the guest, or pass --force to power it off after the wait, or --power-off-now to power it off without asking the guest.";
    case "choose-disks":
      return `Choose the other disks with ${commandLine`--disk ${action.disks.join(",")}`}`;
    case "choose-filesystem":
      return `Name one with --fs: ${action.filesystems.map((f) => `${f.device} (${f.type})`).join(", ")}.`;
    case "free-vg-or-fewer-disks":
      return `Free space in ${action.vg} (delete old snapshots, or vgextend ${action.vg} with another disk), or snapshot fewer disks with --disk.`;
    case "list-targets":
      return "See them with: snapkeep target list";
    case "mount-or-create-folder":
      return `Mount the disk or share it is on and try again; if the folder was removed on purpose, make it again: ${commandLine`snapkeep target test ${action.target} --create`}`;
    case "list-exports":
      return `See them with: ${commandLine`snapkeep exports list --target ${action.target}`}`;
    case "prune-exports":
      return "Free space there (snapkeep exports prune), or export to another target.";
    case "restore-elsewhere":
      return action.nameToo
        ? "Choose another name (--name) or folder (--dir)."
        : "Free space there, or restore into another folder (--dir).";
    case "list-schedules":
      return "See them with: snapkeep schedule list";
    case "remove-schedule":
      return `If it was deleted, remove the schedule: ${commandLine`snapkeep schedule remove ${action.id}`}`;
    case "check-jobs":
      return "Wait a moment and check with: snapkeep jobs list";
    case "list-library":
      return `See them with: ${commandLine`snapkeep ${action.kind} list --host ${action.host}`}`;
    case "detach-volume":
      return `Detach it first: ${commandLine`snapkeep volume detach ${action.host} ${action.name}`} --from VM`;
    case "make-instead":
      return action.kind === "volume"
        ? `Make a volume from it instead: ${commandLine`snapkeep volume create ${`${action.host}/${action.vm}`} ${action.snapshot} --disk ${action.disk} --name ${action.name}`}`
        : `Make a template instead: ${commandLine`snapkeep template create ${`${action.host}/${action.vm}`} ${action.snapshot} --name ${action.name}`}`;
  }
}

/** "Check it ..., then <how>", and the warning first when the pinned key changed. */
function trustWords(action: Extract<HintAction, { do: "trust" }>, how: string): string {
  const check =
    action.checkWith === undefined
      ? "Check its fingerprint on the machine itself"
      : `Check it on the machine with \`${action.checkWith}\``;
  return action.changed === true
    ? `This can mean someone is intercepting the connection. Only if the machine was really reinstalled or replaced, ${how}.`
    : `${check}, then ${how}.`;
}

function uiWords(action: HintAction): string {
  switch (action.do) {
    case "list-hosts":
      return "See your hosts under Settings → Hosts.";
    case "add-ssh-host":
      return "For another computer, add it as an SSH host under Settings → Hosts.";
    case "trust":
      return trustWords(
        action,
        `trust it under Settings → ${action.noun === "host" ? "Hosts" : "Export targets"}`,
      );
    case "list-vms":
      return `See the VMs of ${action.host} under Virtual machines.`;
    case "list-snapshots":
      return `See the snapshots of ${action.vm} on its page.`;
    case "delete-snapshot":
      return `Delete it from ${action.vm}'s snapshot list.`;
    case "unpin":
      return `Unpin it first in ${action.vm}'s snapshot list.`;
    case "allow-stop":
      return "Allow stopping the VM to shut it down, revert, and start it again.";
    case "allow-power-off":
      return "Shut it down from inside the guest, or choose to power it off (at once, or when the wait is over).";
    case "choose-disks":
      return `Choose only the other disks: ${action.disks.join(", ")}.`;
    case "choose-filesystem":
      return `Choose one of its file systems: ${action.filesystems.map((f) => `${f.device} (${f.type})`).join(", ")}.`;
    case "free-vg-or-fewer-disks":
      return `Free space in ${action.vg} (delete old snapshots, or extend the volume group with another disk), or snapshot fewer disks.`;
    case "list-targets":
      return "See your targets under Settings → Export targets.";
    case "mount-or-create-folder":
      return `Mount the disk or share it is on and try again; if the folder was removed on purpose, test ${action.target} under Settings → Export targets and choose Create it.`;
    case "list-exports":
      return `See the exports on ${action.target} under Exports.`;
    case "prune-exports":
      return "Free space there (prune old exports under Exports), or export to another target.";
    case "restore-elsewhere":
      return action.nameToo
        ? "Choose another name or folder."
        : "Free space there, or restore into another folder.";
    case "list-schedules":
      return "See them under Schedules.";
    case "remove-schedule":
      return "If the VM was deleted, remove the schedule under Schedules.";
    case "check-jobs":
      return "Wait a moment and look at the Jobs panel.";
    case "list-library":
      return `See the ${action.kind}s of ${action.host} under Library.`;
    case "detach-volume":
      // The UI has no detach yet: say where it is done.
      return `Detach ${action.name} from those VMs first, from the command line (its volume detach command).`;
    case "make-instead":
      return action.kind === "volume"
        ? `Add ${action.disk} to the library as a volume instead.`
        : "Add the snapshot to the library as a template instead.";
  }
}

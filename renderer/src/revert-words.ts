import type { RevertProgress } from "../../core/api/contract.js";

/**
 * What a revert of a running VM is doing, as the wizard's status line says it: while the guest
 * shuts down, the seconds left and what happens when they run out.
 */
export function revertProgressWords(vmName: string, progress: RevertProgress): string {
  switch (progress.phase) {
    case "shutting-down": {
      const then =
        progress.then === "power-off"
          ? "then it is powered off"
          : "then the revert stops and nothing is changed";
      return `Waiting for ${vmName} to shut down: ${progress.secondsLeft} s left, ${then}`;
    }
    case "powering-off":
      return `Powering ${vmName} off`;
    case "reverting":
      return "Reverting the disks";
    case "starting":
      return `Starting ${vmName} again`;
  }
}

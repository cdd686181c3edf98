import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { SnapkeepError } from "../errors.js";
import * as virsh from "../drivers/libvirt/args.js";
import { parseJson } from "../drivers/qemu-img/parse.js";
import { checkResult, runChecked } from "../infra/runner/checked.js";
import type { CommandRunner } from "../infra/runner/types.js";
import type { GuestOps } from "../domain/consistency.js";
import type { Hook } from "../domain/settings.js";

const FREEZE_TIMEOUT_MS = 30_000;

/** GuestOps for a libvirt domain: the QEMU guest agent through virsh, hooks on the host or guest. */
export function libvirtGuestOps(
  runner: CommandRunner,
  uri: string,
  uuid: string,
  agentChannel = true,
): GuestOps {
  return {
    async agentAnswers() {
      if (!agentChannel) {
        return false; // no channel in the definition: no agent can answer, skip the round trip
      }
      const result = await runner.run(virsh.agentCommandArgs(uri, uuid, { execute: "guest-ping" }, 3), {
        timeoutMs: 10_000,
      });
      return result.code === 0;
    },
    async freeze() {
      await runChecked(runner, virsh.fsFreezeArgs(uri, uuid), "Freezing the guest's filesystems", {
        timeoutMs: FREEZE_TIMEOUT_MS,
      });
    },
    async thaw() {
      await runChecked(runner, virsh.fsThawArgs(uri, uuid), "Thawing the guest's filesystems", {
        timeoutMs: FREEZE_TIMEOUT_MS,
      });
    },
    runHook: (hook) =>
      hook.where === "host" ? runHostHook(runner, hook) : runGuestHook(runner, uri, uuid, hook),
  };
}

async function runHostHook(
  runner: CommandRunner,
  hook: Hook,
): Promise<{ code: number | null; output: string }> {
  const result = await runner.run(hook.argv, { timeoutMs: hook.timeoutSeconds * 1000 });
  return { code: result.code, output: `${result.stdout}${result.stderr}` };
}

const execReply = z.object({ return: z.object({ pid: z.number() }) });
const statusReply = z.object({
  return: z.object({
    exited: z.boolean(),
    exitcode: z.number().optional(),
    signal: z.number().optional(),
    "out-data": z.string().optional(),
    "err-data": z.string().optional(),
  }),
});

/** Runs a command inside the guest with the agent's guest-exec, polling until it exits or times out. */
async function runGuestHook(
  runner: CommandRunner,
  uri: string,
  uuid: string,
  hook: Hook,
): Promise<{ code: number | null; output: string }> {
  const [path, ...args] = hook.argv;
  const started = await runChecked(
    runner,
    virsh.agentCommandArgs(
      uri,
      uuid,
      { execute: "guest-exec", arguments: { path, arg: args, "capture-output": true } },
      10,
    ),
    "Starting the hook in the guest",
  );
  const { pid } = parseJson(started.stdout, execReply, "guest-exec").return;
  const deadline = Date.now() + hook.timeoutSeconds * 1000;
  while (Date.now() < deadline) {
    const polled = await runner.run(
      virsh.agentCommandArgs(uri, uuid, { execute: "guest-exec-status", arguments: { pid } }, 10),
    );
    checkResult(runner.label, ["virsh"], polled, "Waiting for the hook in the guest");
    const status = parseJson(polled.stdout, statusReply, "guest-exec-status").return;
    if (status.exited) {
      const decode = (data: string | undefined): string =>
        data === undefined ? "" : Buffer.from(data, "base64").toString("utf8");
      return {
        code: status.exitcode ?? null,
        output: decode(status["out-data"]) + decode(status["err-data"]),
      };
    }
    await sleep(250);
  }
  throw new SnapkeepError(
    "TIMEOUT",
    `The hook ${hook.argv.join(" ")} did not finish in the guest within ${hook.timeoutSeconds} s.`,
  );
}

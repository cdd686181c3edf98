import { SnapkeepError } from "../../errors.js";
import { toolHint } from "./local.js";
import type { CommandRunner, RunOptions, RunResult } from "./types.js";

/**
 * Runs a tool and turns a failed exit into one SnapkeepError whose message is the tool's own first
 * error line, prefixed with what Snapkeep was doing, so a person sees why without a stack trace.
 */
export async function runChecked(
  runner: CommandRunner,
  argv: readonly string[],
  doing: string,
  options?: RunOptions,
): Promise<RunResult> {
  return checkResult(runner.label, argv, await runner.run(argv, options), doing);
}

/** The error mapping of runChecked, for callers that inspect a result before deciding it failed. */
export function checkResult(
  label: string,
  argv: readonly string[],
  result: RunResult,
  doing: string,
): RunResult {
  if (result.code === 0) {
    return result;
  }
  const tool = argv[0] ?? "command";
  if (result.code === 127) {
    throw new SnapkeepError("TOOL_MISSING", `${tool} is not installed on ${label}.`, {
      hint: toolHint(tool),
      details: { tool },
    });
  }
  const reason = firstErrorLine(result.stderr) ?? firstErrorLine(result.stdout) ?? `exit code ${result.code}`;
  if (/failed to connect to the hypervisor/i.test(result.stderr)) {
    throw new SnapkeepError("HOST_UNREACHABLE", `Could not reach libvirt on ${label}: ${reason}`, {
      hint: "Check that libvirtd is running there (systemctl start libvirtd) and that the user may use it.",
    });
  }
  throw new SnapkeepError("COMMAND_FAILED", `${doing} failed on ${label}: ${reason}`, {
    details: { tool, code: result.code, stderr: result.stderr.slice(0, 2000) },
  });
}

/** virsh splits one failure over several `error:` lines (what failed, then why): keep them all. */
function firstErrorLine(text: string): string | null {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const errors = lines.filter((l) => /^error:/i.test(l)).map((l) => l.replace(/^error:\s*/i, ""));
  if (errors.length > 0) {
    return errors.join(": ");
  }
  return lines.find((l) => /error|fail|could not/i.test(l)) ?? lines[0] ?? null;
}

import { SnapkeepError } from "../errors.js";
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
  const result = await runner.run(argv, options);
  if (result.code === 0) {
    return result;
  }
  const tool = argv[0] ?? "command";
  if (result.code === 127) {
    throw new SnapkeepError("TOOL_MISSING", `${tool} is not installed on ${runner.label}.`, {
      hint: toolHint(tool),
      details: { tool },
    });
  }
  const reason = firstErrorLine(result.stderr) ?? firstErrorLine(result.stdout) ?? `exit code ${result.code}`;
  if (/failed to connect to the hypervisor/i.test(result.stderr)) {
    throw new SnapkeepError("HOST_UNREACHABLE", `Could not reach libvirt on ${runner.label}: ${reason}`, {
      hint: "Check that libvirtd is running there (systemctl start libvirtd) and that the user may use it.",
    });
  }
  throw new SnapkeepError("COMMAND_FAILED", `${doing} failed on ${runner.label}: ${reason}`, {
    details: { tool, code: result.code, stderr: result.stderr.slice(0, 2000) },
  });
}

function firstErrorLine(text: string): string | null {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const line = lines.find((l) => /error/i.test(l)) ?? lines[0];
  return line === undefined ? null : line.replace(/^error:\s*/i, "");
}

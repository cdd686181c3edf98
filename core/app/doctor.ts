/**
 * `snapkeep doctor` (issue 17): checks a host as the README's prerequisites describe, through the
 * same runner every other command uses (so an SSH host is reached with its pinned key), and says
 * what to fix. The probe is one read-only command; the judging is pure (domain/doctor.ts).
 */
import { describeError } from "../errors.js";
import { judgeProbe, type DoctorCheck } from "../domain/doctor.js";
import { doctorArgs, parseDoctorProbe } from "../drivers/sh/doctor-script.js";
import type { CommandRunner } from "../infra/runner/types.js";
import { DEFAULT_STAGING_ROOT } from "./exports/exports.js";
import type { Hosts } from "./hosts.js";

export interface HostDiagnosis {
  readonly host: string;
  readonly uri: string;
  readonly checks: readonly DoctorCheck[];
}

const PROBE_MS = 60_000;

/** One host by name: unreachable (or untrusted) is itself a failed check, with the reason. */
export async function diagnoseHost(hosts: Hosts, name: string): Promise<HostDiagnosis> {
  const config = hosts.get(name);
  let runner: CommandRunner;
  try {
    runner = hosts.libvirt(name).runner;
  } catch (error) {
    return { host: name, uri: config.uri, checks: [unreachable(error)] };
  }
  return diagnoseWith(runner, name, config.uri);
}

export async function diagnoseWith(runner: CommandRunner, host: string, uri: string): Promise<HostDiagnosis> {
  try {
    const result = await runner.run(doctorArgs(uri, DEFAULT_STAGING_ROOT), { timeoutMs: PROBE_MS });
    if (result.code !== 0) {
      return {
        host,
        uri,
        checks: [unreachable(new Error(result.stderr.trim() || `the probe exited with ${result.code}`))],
      };
    }
    return { host, uri, checks: judgeProbe(parseDoctorProbe(result.stdout)) };
  } catch (error) {
    return { host, uri, checks: [unreachable(error)] };
  }
}

function unreachable(error: unknown): DoctorCheck {
  return {
    id: "reachable",
    title: "Reachable",
    state: "fail",
    detail: describeError(error),
    fix: "Check that the host is up and its SSH server answers, and that its key is trusted (snapkeep host trust).",
  };
}

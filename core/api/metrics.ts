/**
 * `GET /metrics` of `snapkeep serve` and `snapkeep metrics` (issue 17, part 4): the state of the
 * backups in Prometheus' text format, through prom-client (loaded only when asked). Everything is
 * read at scrape time from what lasts (the hosts' snapshots, the settings, the job journal), not
 * from counters kept in this process: a restart of serve does not reset the job counts, and the
 * CLI prints the same figures for node_exporter's textfile collector.
 */
import type { Registry } from "prom-client";

import type { CoreContext } from "../app/context.js";
import { SNAPKEEP_VERSION } from "../app/exports/steps/finish.js";
import type { OffHostLevel } from "../domain/copy/rpo.js";
import type { RpoLevel } from "../domain/schedule/due.js";
import { Journal, type JobSummary } from "../infra/journal.js";
import { schedulerOwner } from "../infra/scheduler-lock.js";

export interface MetricsContext extends Pick<CoreContext, "vms" | "schedules" | "store"> {
  readonly home: string;
  readonly now: () => Date;
}

const RPO_LEVELS: readonly RpoLevel[] = ["ok", "due", "overdue", "unscheduled"];
const OFFHOST_LEVELS: readonly OffHostLevel[] = ["ok", "due", "overdue", "on-host-only"];
/** Job durations: a snapshot takes seconds, a first export of a big disk hours. */
const DURATION_BUCKETS = [1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600];

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The metrics text, listing every host (a host that cannot be reached is `snapkeep_host_up 0`). */
export async function metricsText(context: MetricsContext): Promise<string> {
  const client = await import("prom-client");
  const registry = new client.Registry();
  const now = context.now();
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new client.Gauge<L>({ name, help, labelNames, registers: [registry] });

  gauge("snapkeep_info", "Snapkeep's version", ["version"]).set({ version: SNAPKEEP_VERSION }, 1);
  const schedulerUp = schedulerOwner(context.home) !== null;
  gauge("snapkeep_scheduler_up", "1 while a scheduler (daemon, serve or the app) runs the schedules").set(
    schedulerUp ? 1 : 0,
  );
  const settings = context.store.read();
  gauge("snapkeep_alert_problems_open", "Problems alerted and not recovered yet").set(
    Object.keys(settings.alertOpen).length,
  );
  const schedules = gauge("snapkeep_schedules", "Schedules, by whether they are enabled", ["enabled"]);
  for (const enabled of [true, false]) {
    schedules.set(
      { enabled: String(enabled) },
      settings.schedules.filter((s) => s.enabled === enabled).length,
    );
  }
  await vmMetrics(context, now, schedulerUp, gauge);
  jobMetrics(new Journal(context.home).jobs(), registry, client);
  return registry.metrics();
}

type GaugeMaker = <L extends string>(
  name: string,
  help: string,
  labelNames?: readonly L[],
) => import("prom-client").Gauge<L>;

async function vmMetrics(
  context: MetricsContext,
  now: Date,
  schedulerUp: boolean,
  gauge: GaugeMaker,
): Promise<void> {
  const hostUp = gauge("snapkeep_host_up", "1 when the host could be listed", ["host"]);
  const snapshots = gauge("snapkeep_vm_snapshots", "Complete snapshots of the VM", ["host", "vm"]);
  const newest = gauge(
    "snapkeep_vm_newest_snapshot_age_seconds",
    "Age of the VM's newest complete snapshot (absent: none)",
    ["host", "vm"],
  );
  const offHostAge = gauge(
    "snapkeep_vm_offhost_copy_age_seconds",
    "Age of the snapshot in the VM's newest verified copy off the host (absent: none known)",
    ["host", "vm"],
  );
  const rpo = gauge(
    "snapkeep_vm_rpo_state",
    "The VM's recovery point against its schedules (1 = current state)",
    ["host", "vm", "state"],
  );
  const offHost = gauge(
    "snapkeep_vm_offhost_rpo_state",
    "The VM's newest copy off the host against its copy schedules (1 = current state)",
    ["host", "vm", "state"],
  );
  for (const listing of await context.vms.list()) {
    hostUp.set({ host: listing.host }, listing.error === null ? 1 : 0);
    const rpos = context.schedules.rpoOf(listing.vms, listing.error === null);
    const offHosts = context.schedules.offHostOf(listing.vms, schedulerUp);
    listing.vms.forEach((vm, i) => {
      const labels = { host: listing.host, vm: vm.name };
      const complete = vm.snapshots.filter((s) => !s.incomplete);
      snapshots.set(labels, complete.length);
      const last = complete.at(-1);
      if (last !== undefined) {
        newest.set(labels, Math.max(0, (now.getTime() - Date.parse(last.createdAt)) / 1000));
      }
      const level = rpos[i]?.level;
      RPO_LEVELS.forEach((state) => rpo.set({ ...labels, state }, state === level ? 1 : 0));
      const off = offHosts[i] ?? null;
      if (off !== null) {
        OFFHOST_LEVELS.forEach((state) => offHost.set({ ...labels, state }, state === off.level ? 1 : 0));
        if (off.ageMs !== null) {
          offHostAge.set(labels, off.ageMs / 1000);
        }
      }
    });
  }
}

/** Job counts, durations and bytes sent, from the journal (it keeps the jobs since its last compaction). */
function jobMetrics(
  jobs: readonly JobSummary[],
  registry: Registry,
  client: typeof import("prom-client"),
): void {
  const total = new client.Counter({
    name: "snapkeep_jobs_total",
    help: "Jobs in the journal, by kind and result",
    labelNames: ["kind", "result"],
    registers: [registry],
  });
  const duration = new client.Histogram({
    name: "snapkeep_job_duration_seconds",
    help: "How long finished jobs took, by kind and result",
    labelNames: ["kind", "result"],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const bytes = new client.Counter({
    name: "snapkeep_exported_bytes_total",
    help: "Bytes sent off the host by scheduled copies and exports, by target where known",
    labelNames: ["kind", "target"],
    registers: [registry],
  });
  const lastSuccess = new client.Gauge({
    name: "snapkeep_last_success_timestamp_seconds",
    help: "When a job of this kind last succeeded (Unix time)",
    labelNames: ["kind"],
    registers: [registry],
  });
  for (const job of jobs) {
    const labels = { kind: job.kind, result: job.status };
    total.inc(labels);
    if (job.endedAt !== null) {
      duration.observe(labels, Math.max(0, (Date.parse(job.endedAt) - Date.parse(job.startedAt)) / 1000));
    }
    if (job.status === "succeeded" && job.endedAt !== null) {
      lastSuccess.set({ kind: job.kind }, Date.parse(job.endedAt) / 1000);
    }
    const sent =
      job.copy === null || job.copy === undefined
        ? job.sent
        : { target: job.copy.target, bytes: job.copy.bytesSent };
    if (sent !== null && sent !== undefined && sent.bytes > 0) {
      bytes.inc({ kind: job.kind, target: sent.target }, sent.bytes);
    }
  }
}

import { useEffect, useId, useRef, useState } from "react";

import type {
  DrillRecord,
  ExportEntry,
  ExportPrune,
  ExportRemoval,
  JobView,
  ListedHost,
  RestorePlan,
  TargetExports,
} from "../../core/api/contract.js";
import { formatBytes, formatTime } from "./format.js";
import { StepButtons, Summary, Wizard, WizardJob, usePlannedJob, type WizardActions } from "./Wizard.js";
import { TableHead } from "./TableHead.js";
import { useConfirm } from "./Confirm.js";
import { RowMenu } from "./RowMenu.js";
import { Modal } from "./Modal.js";

const STATE_TEXT: Record<ExportEntry["state"], string> = {
  verified: "good",
  unverified: "not verified",
  partial: "partial",
  corrupt: "corrupt",
};

function exportSize(entry: ExportEntry): number | null {
  return entry.manifest === null ? null : entry.manifest.disks.reduce((sum, d) => sum + d.size, 0);
}

/**
 * Every export on every target, newest first per target. Only verified exports are "good"; the
 * others say why not. Verify hashes an export again on its target; Restore brings it back.
 */
export function ExportsView({
  exports,
  loading,
  busy,
  onLoad,
  onVerify,
  onRestore,
  onBrowseFiles,
  onRemove,
  onPrune,
  onAddTarget,
  jobs,
  drillsOf,
  onDrill,
}: {
  exports: readonly TargetExports[];
  loading: boolean;
  busy: boolean;
  onLoad: () => void;
  onVerify: (target: string, exportId: string) => void;
  onRestore: (target: string, entry: ExportEntry) => void;
  /** Opens the file browser on the export, read where it is. */
  onBrowseFiles: (target: string, entry: ExportEntry) => void;
  /** Removes exports, or (dryRun) says what that would do; null when the call failed. */
  onRemove: (target: string, ids: readonly string[], dryRun: boolean) => Promise<ExportRemoval | null>;
  /** Keeps the newest `keep` exports of each VM on the target, or (dryRun) says what that would do. */
  onPrune: (target: string, keep: number, dryRun: boolean) => Promise<ExportPrune | null>;
  onAddTarget: () => void;
  /** The app's jobs: a verify that ends reloads the list, so its result shows on its row. */
  jobs: Readonly<Record<string, JobView>>;
  /** Every restore drill, newest first (read again when a drill job ends). */
  drillsOf: () => Promise<readonly DrillRecord[]>;
  /** Boots the export in a throwaway VM on its VM's host. */
  onDrill: (target: string, entry: ExportEntry) => void;
}) {
  useEffect(onLoad, []);
  const drilled = useExportDrills(drillsOf, jobs);
  const verifies = Object.values(jobs).filter((j) => j.kind === "verify");
  // By the export each running check is about (its title is words, free to change).
  const checking = new Set(
    verifies
      .filter((j) => j.state === "running" && j.export !== undefined)
      .map((j) => `${j.export?.target ?? ""}\0${j.export?.id ?? ""}`),
  );
  const ended = verifies.filter((j) => j.state !== "running").length;
  const seen = useRef(ended);
  useEffect(() => {
    if (ended !== seen.current) {
      seen.current = ended;
      onLoad();
    }
  }, [ended]);
  const confirm = useConfirm();
  const [pruning, setPruning] = useState<string | null>(null);
  // The plan first, in the dialog; the removal only when the person chose it after reading it.
  const remove = async (target: string, e: ExportEntry): Promise<void> => {
    const plan = await onRemove(target, [e.id], true);
    if (plan === null) {
      return;
    }
    const yes = await confirm.ask({
      title: `Remove export ${e.id}?`,
      body: <RemovalPlan plan={plan} entry={e} target={target} />,
      action: plan.removed.length === 0 ? "Close" : "Remove export",
      danger: plan.removed.length > 0,
    });
    if (yes && plan.removed.length > 0) {
      await onRemove(target, [e.id], false);
      onLoad();
    }
  };
  return (
    <section className="page" aria-labelledby="exports-title">
      {confirm.dialog}
      {pruning !== null && (
        <PruneDialog
          target={pruning}
          onPlan={(keep) => onPrune(pruning, keep, true)}
          onPrune={async (keep) => {
            const done = await onPrune(pruning, keep, false);
            if (done !== null) {
              setPruning(null);
              onLoad();
            }
          }}
          onClose={() => setPruning(null)}
        />
      )}
      <div className="section-head">
        <h2 id="exports-title">Exports</h2>
        <button type="button" onClick={onLoad} disabled={loading}>
          {loading ? "Reading targets…" : "Refresh"}
        </button>
      </div>
      {exports.length === 0 && !loading && (
        <p className="empty">
          No export targets yet. Exports are copies of snapshots off the host, on a folder or an SSH server.{" "}
          <button type="button" className="link-button" onClick={onAddTarget}>
            Add a target in Settings
          </button>
          , then use Export… on a snapshot.
        </p>
      )}
      {exports.map((t) => (
        <section key={t.target} className="target" aria-labelledby={`target-${t.target}`}>
          <div className="section-head">
            <h3 id={`target-${t.target}`}>{t.target}</h3>
            {t.exports.length > 1 && (
              <button type="button" disabled={busy} onClick={() => setPruning(t.target)}>
                Prune…
              </button>
            )}
          </div>
          {t.error !== null && <p className="host-error">{t.error}</p>}
          {t.error === null && t.exports.length === 0 && <p className="empty">Nothing exported here yet.</p>}
          {t.exports.length > 0 && (
            <table className="exports">
              <TableHead columns={["VM", "Snapshot", "Exported", "Size", "State"]} />
              <tbody>
                {[...t.exports]
                  .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
                  .map((e) => (
                    <tr key={e.id} data-export={e.id}>
                      <td>{e.vmName}</td>
                      <td>
                        {e.snapshotName}
                        {/* What the CLI takes: exports verify/remove TARGET ID. */}
                        <span className="sub mono" title="Export ID (for the snapkeep CLI)">
                          {e.id}
                        </span>
                      </td>
                      <td className="nowrap">{formatTime(e.createdAt)}</td>
                      <td className="nowrap">{formatBytes(exportSize(e))}</td>
                      <td>
                        <span className={`badge export-${e.state}`}>{STATE_TEXT[e.state]}</span>
                        {/* The title the API gives a verify job (api.ts, exports.verify). */}
                        {checking.has(`${t.target}\0${e.id}`) && <span className="hint"> checking now…</span>}
                        {e.reason !== null && <span className="sub hint">{e.reason}</span>}
                        <ExportDrillMark record={drilled.get(`${t.target}\0${e.id}`)} />
                      </td>
                      <td className="actions">
                        <button
                          type="button"
                          disabled={busy || e.state === "partial" || e.state === "corrupt"}
                          onClick={() => onRestore(t.target, e)}
                        >
                          Restore…
                        </button>
                        <RowMenu
                          label={`Actions for export ${e.id}`}
                          items={[
                            {
                              label: "Verify",
                              onSelect: () => onVerify(t.target, e.id),
                              disabled: busy || e.state === "partial",
                              why: "Still being written: nothing to verify yet",
                            },
                            {
                              label: "Browse files…",
                              onSelect: () => onBrowseFiles(t.target, e),
                              disabled: e.state === "partial" || e.state === "corrupt" || e.manifest === null,
                              why: "Only a complete, undamaged export is browsed",
                            },
                            {
                              label: "Restore drill",
                              onSelect: () => onDrill(t.target, e),
                              disabled: busy || e.state !== "verified" || e.manifest === null,
                              why: "Only a verified export is drilled",
                            },
                            {
                              label: "Remove…",
                              danger: true,
                              onSelect: () => void remove(t.target, e),
                              disabled: busy,
                            },
                          ]}
                        />
                      </td>
                    </tr>
                  ))}
              </tbody>
            </table>
          )}
        </section>
      ))}
    </section>
  );
}

/**
 * Prune a target: how many exports of each VM to keep, then the dry run in words, then the
 * removal; nothing goes before the person has read what would.
 */
function PruneDialog({
  target,
  onPlan,
  onPrune,
  onClose,
}: {
  target: string;
  onPlan: (keep: number) => Promise<ExportPrune | null>;
  onPrune: (keep: number) => Promise<void>;
  onClose: () => void;
}) {
  const id = useId();
  const [keep, setKeep] = useState("3");
  const [plan, setPlan] = useState<{ keep: number; result: ExportPrune } | null>(null);
  const count = Number(keep);
  const valid = Number.isInteger(count) && count >= 1 && count <= 1000;
  const goes = plan === null ? 0 : plan.result.removed.length + plan.result.abandoned.length;
  return (
    <Modal
      labelledBy={`${id}-title`}
      onClose={onClose}
      onSubmit={(e) => {
        e.preventDefault();
        if (plan !== null && plan.keep === count && goes > 0) {
          void onPrune(count);
        } else if (valid) {
          void onPlan(count).then((result) => setPlan(result === null ? null : { keep: count, result }));
        }
      }}
    >
      <h2 id={`${id}-title`}>Prune exports on {target}</h2>
      <label htmlFor={`${id}-keep`}>Verified exports to keep per VM</label>
      <input
        id={`${id}-keep`}
        type="number"
        min={1}
        max={1000}
        value={keep}
        onChange={(e) => {
          setKeep(e.target.value);
          setPlan(null);
        }}
      />
      <p className="hint">
        The newest export of each VM always stays. Copies made by a schedule follow that schedule&apos;s own
        rules and are not pruned here.
      </p>
      {plan !== null && plan.keep === count && (
        <div role="status" aria-label="What pruning does">
          {goes === 0 ? (
            <p>Nothing to remove: no VM has more than {count} here.</p>
          ) : plan.result.removed.length > 0 ? (
            <p>
              Removes {plan.result.removed.length} {plan.result.removed.length === 1 ? "export" : "exports"}:{" "}
              {plan.result.removed.join(", ")}.
            </p>
          ) : null}
          {plan.result.abandoned.length > 0 && (
            <p>
              {plan.result.removed.length > 0 ? "And" : "Removes"} {plan.result.abandoned.length} unfinished{" "}
              {plan.result.abandoned.length === 1 ? "export" : "exports"} that will never be resumed:{" "}
              {plan.result.abandoned.map((a) => `${a.folder} (${a.reason})`).join("; ")}.
            </p>
          )}
          {plan.result.abandonedKept.length > 0 && (
            <p>
              Cannot clear {plan.result.abandonedKept.length} unfinished{" "}
              {plan.result.abandonedKept.length === 1 ? "export" : "exports"} that will never be resumed:{" "}
              {plan.result.abandonedKept.map((a) => `${a.folder} (${a.reason})`).join("; ")}.
            </p>
          )}
          <MergesAndHolds plan={plan.result} />
        </div>
      )}
      <div className="buttons">
        <button type="button" onClick={onClose}>
          {plan !== null && goes === 0 ? "Close" : "Cancel"}
        </button>
        {plan !== null && plan.keep === count && goes > 0 ? (
          <button type="submit" className="danger">
            Remove {goes} {goes === 1 ? "export" : "exports"}
          </button>
        ) : (
          <button type="submit" className="primary" disabled={!valid}>
            Check what goes
          </button>
        )}
      </div>
    </Modal>
  );
}

/** The dry run of a removal, in words: what goes, what takes in its data first, what stays. */
function RemovalPlan({ plan, entry, target }: { plan: ExportRemoval; entry: ExportEntry; target: string }) {
  if (plan.removed.length === 0) {
    return <p>Nothing can be removed now: {heldList(plan)}.</p>;
  }
  return (
    <>
      <p>
        The copy of {entry.vmName} “{entry.snapshotName}” on {target} is deleted from the target.
      </p>
      <MergesAndHolds plan={plan} />
    </>
  );
}

/** What a removal or a prune merges first and what it holds back, as both dialogs say it. */
function MergesAndHolds({ plan }: { plan: ExportRemoval }) {
  return (
    <>
      {plan.merged.length > 0 && (
        <p>
          First, so that what stays still restores:{" "}
          {plan.merged.map((m) => `${m.into} takes in the data of ${m.from.join(", ")}`).join("; ")}. This is
          done on the target and may take a while for large disks.
        </p>
      )}
      {plan.held.length > 0 && <p>Kept for now: {heldList(plan)}.</p>}
    </>
  );
}

function heldList(plan: ExportRemoval): string {
  return plan.held.map((h) => `${h.folder} (${h.reason})`).join("; ");
}

/**
 * An export restored onto a host: as a new VM defined from the saved definition, or its disks
 * added to a VM that exists. The summary is the restore's plan, which also checks the bundle.
 */
export function RestoreWizard({
  target,
  entry,
  hosts,
  ...actions
}: WizardActions & {
  target: string;
  entry: ExportEntry;
  hosts: readonly ListedHost[];
}) {
  const id = useId();
  const online = hosts.filter((h) => h.error === null);
  const [host, setHost] = useState(online[0]?.host ?? "");
  const [mode, setMode] = useState<"new-vm" | "attach">("new-vm");
  const [name, setName] = useState(`${entry.vmName}-restored`);
  const [into, setInto] = useState("");
  const [start, setStart] = useState(false);
  const {
    step,
    setStep,
    plan,
    job,
    check,
    start: restore,
  } = usePlannedJob(
    actions,
    { plan: "exports.planRestore", start: "exports.restore" },
    { checking: "Checking the export", starting: "Starting the restore" },
  );
  const vms = online.find((h) => h.host === host)?.vms ?? [];
  const request = {
    target,
    export: entry.id,
    host,
    ...(mode === "new-vm" ? { name, start } : { into }),
  };

  return (
    <Wizard
      title={`Restore ${entry.vmName} “${entry.snapshotName}” from ${target}`}
      steps={["Where", "Check", "Restore"]}
      current={step}
      error={actions.error}
      onClose={actions.onClose}
      buttons={
        <StepButtons
          step={step}
          busy={actions.busy}
          canGoOn={host !== "" && (mode === "new-vm" ? name.trim() !== "" : into !== "")}
          action="Restore"
          job={job}
          onNext={() => void check(request)}
          onBack={() => setStep(0)}
          onAct={() => void restore(request)}
          onClose={actions.onClose}
        />
      }
    >
      {step === 0 && (
        <>
          <label htmlFor={`${id}-host`}>Host</label>
          <select id={`${id}-host`} value={host} onChange={(e) => setHost(e.target.value)}>
            {online.map((h) => (
              <option key={h.host}>{h.host}</option>
            ))}
          </select>
          <fieldset>
            <legend>Restore as</legend>
            <label className="check">
              <input
                type="radio"
                name={`${id}-mode`}
                checked={mode === "new-vm"}
                onChange={() => setMode("new-vm")}
              />
              a new VM, from the saved definition
            </label>
            <label className="check">
              <input
                type="radio"
                name={`${id}-mode`}
                checked={mode === "attach"}
                onChange={() => setMode("attach")}
              />
              extra disks of a VM that exists
            </label>
          </fieldset>
          {mode === "new-vm" ? (
            <>
              <label htmlFor={`${id}-name`}>Name of the new VM</label>
              <input id={`${id}-name`} value={name} onChange={(e) => setName(e.target.value)} />
              <label className="check">
                <input type="checkbox" checked={start} onChange={(e) => setStart(e.target.checked)} />
                Start it afterwards
              </label>
            </>
          ) : (
            <>
              <label htmlFor={`${id}-into`}>VM</label>
              <select id={`${id}-into`} value={into} onChange={(e) => setInto(e.target.value)}>
                <option value="">Choose a VM…</option>
                {vms.map((v) => (
                  <option key={v.uuid} value={v.name}>
                    {v.name}
                  </option>
                ))}
              </select>
            </>
          )}
        </>
      )}
      {step === 1 && plan !== null && (
        <>
          <Summary
            rows={[
              ["Export", `${plan.export} on ${target} (checked against its manifest)`],
              ["Host", plan.host],
              [
                "As",
                plan.mode === "new-vm"
                  ? `new VM ${plan.vm}${plan.start ? ", started" : ""}`
                  : `disks of ${plan.vm}`,
              ],
              ...plan.disks.map((d): [string, string] => [`Disk ${d.target}`, `${d.from} → ${d.file}`]),
              [
                "Space",
                `${formatBytes(plan.bytes)} needed, ${formatBytes(plan.freeBytes)} free on ${plan.host}`,
              ],
            ]}
          />
          {plan.definition !== null && <DefinitionNotes definition={plan.definition} />}
          <p className="hint">
            The images are copied next to their place, checked again, then moved in. Nothing the host has is
            overwritten{plan.mode === "new-vm" ? "; the new VM gets its own UUID and MAC addresses" : ""}.
          </p>
        </>
      )}
      {step === 2 && job !== undefined && (
        <>
          <WizardJob job={job} onCancel={actions.cancelJob} />
          {job.state === "succeeded" && (
            <p className="done" role="status">
              Restored on {host} as {mode === "new-vm" ? `VM ${name}` : `disks of ${into}`}.
            </p>
          )}
        </>
      )}
    </Wizard>
  );
}

/**
 * What the new VM's definition keeps from the export and what it leaves out, with why: an export
 * comes from a target Snapkeep does not trust, so only what a restored VM needs is carried over.
 */
function DefinitionNotes({ definition }: { definition: NonNullable<RestorePlan["definition"]> }) {
  // What was left out first: that is what a person has to judge before restoring.
  return (
    <div className="definition-notes">
      {definition.dropped.length > 0 && (
        <>
          <h3>Left out of the saved definition</h3>
          <ul>
            {definition.dropped.map((n, i) => (
              <li key={i}>
                {n.what}: {n.why}
              </li>
            ))}
          </ul>
        </>
      )}
      <h3>The new VM gets</h3>
      <ul>
        {definition.kept.map((n, i) => (
          <li key={i}>{n.what}</li>
        ))}
      </ul>
    </div>
  );
}

/** The newest drill of each export, by target and id; read again when a drill job ends. */
function useExportDrills(
  drillsOf: () => Promise<readonly DrillRecord[]>,
  jobs: Readonly<Record<string, JobView>>,
): ReadonlyMap<string, DrillRecord> {
  const [drills, setDrills] = useState<readonly DrillRecord[]>([]);
  const ended = Object.values(jobs).filter((j) => j.kind === "drill" && j.state !== "running").length;
  useEffect(() => {
    let live = true;
    drillsOf()
      .then((list) => live && setDrills(list))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [ended]);
  const by = new Map<string, DrillRecord>();
  for (const r of drills) {
    const key = r.source.kind === "export" ? `${r.source.target}\0${r.source.export}` : null;
    if (key !== null && !by.has(key)) {
      by.set(key, r);
    }
  }
  return by;
}

/** "booted in 34 s" or "drill failed", under an export a restore drill booted (or could not). */
function ExportDrillMark({ record }: { record: DrillRecord | undefined }) {
  if (record === undefined) {
    return null;
  }
  return (
    <span
      className={`sub ${record.passed ? "drill-ok-text" : "drill-bad-text"}`}
      title={record.reason ?? `Drilled ${formatTime(record.finishedAt)}`}
    >
      {record.passed
        ? `booted in a drill, ${record.bootSeconds ?? "?"} s (${formatTime(record.finishedAt)})`
        : `drill failed (${formatTime(record.finishedAt)})`}
    </span>
  );
}

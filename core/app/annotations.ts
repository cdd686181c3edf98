/**
 * What Snapkeep remembers beside the hypervisor: per snapshot a note, a pin, the consistency it was
 * taken with, the definition it was taken from, an "incomplete" mark and where it was exported;
 * per VM its freeze and hook settings. The only writer of the settings' `annotations` and
 * `vmSettings`. Keyed by host name and VM UUID, so a renamed VM keeps them.
 */
import { snapshotKey, type Annotation, type Consistency, type Settings } from "../domain/settings.js";
import type { SettingsStore } from "../infra/store/store.js";

/** Exports remembered per snapshot: the newest ones, enough for any timeline. */
const EXPORTS_REMEMBERED = 100;

export class Annotations {
  constructor(private readonly store: SettingsStore) {}

  /** Every snapshot's annotation, in one read: a listing of many VMs reads the file once. */
  all(): Settings["annotations"] {
    return this.store.read().annotations;
  }

  of(host: string, vmUuid: string, tag: string): Annotation | undefined {
    return this.all()[snapshotKey(host, vmUuid, tag)];
  }

  /**
   * The record of a snapshot just taken. A fresh record, not a merge: notes or an "incomplete" mark
   * left on this tag by an earlier, interrupted attempt must not stick to the new, complete snapshot.
   */
  recordNew(host: string, vmUuid: string, tag: string, fresh: Annotation): void {
    const key = snapshotKey(host, vmUuid, tag);
    this.store.update((s) => ({ ...s, annotations: { ...s.annotations, [key]: fresh } }));
  }

  /** Changes part of a snapshot's record (its pin, its "incomplete" mark). */
  annotate(host: string, vmUuid: string, tag: string, change: Partial<Annotation>): void {
    const key = snapshotKey(host, vmUuid, tag);
    this.store.update((s) => ({
      ...s,
      annotations: {
        ...s.annotations,
        [key]: { note: null, pinned: false, ...s.annotations[key], ...change },
      },
    }));
  }

  /** Drops a deleted snapshot's record. */
  forget(host: string, vmUuid: string, tag: string): void {
    const key = snapshotKey(host, vmUuid, tag);
    this.store.update((s) => ({
      ...s,
      annotations: Object.fromEntries(Object.entries(s.annotations).filter(([k]) => k !== key)),
    }));
  }

  /** Marks a snapshot whose job was interrupted, so it is never taken for a good one. */
  markIncomplete(host: string, vmUuid: string, tag: string): void {
    this.annotate(host, vmUuid, tag, { incomplete: true });
  }

  /** Notes a verified export on its snapshot, so timelines can mark exported snapshots. */
  recordExport(host: string, vmUuid: string, tag: string, exportRef: string): void {
    const before = this.of(host, vmUuid, tag)?.exportedTo ?? [];
    this.annotate(host, vmUuid, tag, {
      exportedTo: [...before.filter((e) => e !== exportRef), exportRef].slice(-EXPORTS_REMEMBERED),
    });
  }

  /** Drops exports that were pruned or found damaged from every snapshot that listed them. */
  forgetExports(exportRefs: readonly string[]): void {
    if (exportRefs.length === 0) {
      return;
    }
    const gone = new Set(exportRefs);
    this.store.update((s) => ({
      ...s,
      annotations: Object.fromEntries(
        Object.entries(s.annotations).map(([key, a]) =>
          a.exportedTo?.some((e) => gone.has(e)) === true
            ? [key, { ...a, exportedTo: a.exportedTo.filter((e) => !gone.has(e)) }]
            : [key, a],
        ),
      ),
    }));
  }

  consistencyOf(host: string, vmUuid: string): Consistency | undefined {
    return this.store.read().vmSettings[`${host}/${vmUuid}`]?.consistency;
  }

  /** Freeze and hook settings for a VM's snapshots (manual and scheduled alike). */
  setConsistency(host: string, vmUuid: string, consistency: Consistency): void {
    this.store.update((s) => ({
      ...s,
      vmSettings: { ...s.vmSettings, [`${host}/${vmUuid}`]: { consistency } },
    }));
  }
}

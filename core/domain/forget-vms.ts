/**
 * What the settings keep about VMs that are gone: their snapshots' notes and pins, their schedules
 * (with their run and copy state) and the record that Snapkeep made them. Dropped when Snapkeep
 * removes a VM itself (`vm delete`, `lab down`) or when `orphans --clean` is asked to. Templates
 * and volumes made from a VM are never touched here: they live on after it, on purpose.
 */
import type { Settings } from "./settings.js";

export function forgetVms(settings: Settings, host: string, uuids: ReadonlySet<string>): Settings {
  const gone = (h: string | undefined, uuid: string | undefined): boolean =>
    h === host && uuid !== undefined && uuids.has(uuid);
  const schedules = new Set(settings.schedules.filter((s) => gone(s.host, s.vmUuid)).map((s) => s.id));
  const without = <T>(record: Readonly<Record<string, T>>): Record<string, T> =>
    Object.fromEntries(Object.entries(record).filter(([id]) => !schedules.has(id)));
  return {
    ...settings,
    managedVms: settings.managedVms.filter((m) => !gone(m.host, m.uuid)),
    schedules: settings.schedules.filter((s) => !schedules.has(s.id)),
    scheduleState: without(settings.scheduleState),
    copyState: without(settings.copyState),
    // Keys are host/uuid/tag.
    annotations: Object.fromEntries(
      Object.entries(settings.annotations).filter(([key]) => {
        const [h, uuid] = key.split("/");
        return !gone(h, uuid);
      }),
    ),
  };
}

/**
 * The CLI's long commands (export, verify, import) in the job journal beside the scheduler's and
 * the UI's jobs: `snapkeep jobs list` and every Jobs panel show them, and one cut off by kill -9 or
 * a closed terminal shows as interrupted (the journal knows its process is gone), never as done.
 */
import { describeError, isSnapkeepError } from "../errors.js";
import { Journal, type AppJobKind } from "../infra/journal.js";

export async function journaled<T>(
  home: string,
  job: {
    readonly kind: AppJobKind;
    readonly title: string;
    readonly host: string | null;
    readonly vm: string | null;
  },
  work: () => Promise<T>,
): Promise<T> {
  const journal = new Journal(home);
  const id = `cli-${process.pid}-${Date.now().toString(36)}`;
  const write = (step: () => void): void => {
    try {
      step();
    } catch {
      // A journal that cannot be written (a full disk) must not stop the work itself.
    }
  };
  write(() =>
    journal.start({
      job: id,
      at: new Date().toISOString(),
      kind: job.kind,
      title: job.title,
      host: job.host,
      vmName: job.vm,
    }),
  );
  try {
    const result = await work();
    write(() => journal.end({ job: id, at: new Date().toISOString(), status: "succeeded" }));
    return result;
  } catch (error) {
    const status = isSnapkeepError(error, "CANCELLED") ? "cancelled" : "failed";
    write(() =>
      journal.end({ job: id, at: new Date().toISOString(), status, message: describeError(error) }),
    );
    throw error;
  }
}

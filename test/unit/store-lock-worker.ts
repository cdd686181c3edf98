/**
 * One of the processes in store-lock.test.ts: opens the settings store, says "ready", and on a line
 * from stdin makes `count` updates that each add its own annotation key.
 */
import { openSettingsStore } from "../../core/infra/store/store.js";

const [home, prefix, count] = process.argv.slice(2);
if (home === undefined || prefix === undefined || count === undefined) {
  throw new Error("usage: store-lock-worker <home> <prefix> <count>");
}
const store = openSettingsStore(home, new Date());
process.stdout.write("ready\n");
process.stdin.once("data", () => {
  for (let i = 0; i < Number(count); i++) {
    store.update((settings) => ({
      ...settings,
      annotations: { ...settings.annotations, [`${prefix}-${i}`]: { note: null, pinned: false } },
    }));
  }
  process.stdin.destroy();
});

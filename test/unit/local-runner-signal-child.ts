/**
 * A process that runs `sh -c 'sleep <duration> & wait'` through a LocalRunner and then waits to be
 * signalled, for local-runner-groups.test.ts. With `own-handler` it handles SIGINT itself the way
 * an app with a graceful shutdown would: dispose the runner, then exit 0.
 */
import { LocalRunner } from "../../core/infra/runner/local.js";

const [duration, mode] = process.argv.slice(2);
const runner = new LocalRunner();
if (mode === "own-handler") {
  process.on("SIGINT", () => {
    void runner.dispose().then(() => process.exit(0));
  });
}
runner.run(["sh", "-c", `sleep ${duration ?? "60"} & wait`]).catch(() => undefined);

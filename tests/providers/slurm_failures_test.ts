// A broken worker_init on the REAL one-node Slurm (scripts/local-slurm.sh): every job fails
// before its manager connects. The endpoint backs off between submissions (at most 4 sbatch
// in 2 minutes) and shows Degraded with the job's failure in `status`. Skipped with the reason
// when not root or Slurm cannot start.
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { COMPILE_FLAGS } from "../../src/config/permissions.ts";
import type { StatusFile } from "../../src/daemon/state.ts";
import { runCli } from "../helpers/cli.ts";
import { createWorld } from "../e2e/_world.ts";
import { until } from "../engine/_helpers.ts";
import { ourJobs, slurmSkipReason, slurmTestName } from "./_slurm.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const skip = await slurmSkipReason();

const CONFIG = [
  "heartbeat_period: 1",
  "heartbeat_threshold: 10",
  "provider:",
  "  type: slurm",
  "  walltime: '00:05:00'",
  "  init_blocks: 1",
  "  min_blocks: 1",
  "  max_blocks: 1",
  '  worker_init: "exit 3"',
  "executor:",
  "  max_workers_per_node: 1",
  "  heartbeat_period: 1",
  "  heartbeat_threshold: 20",
  "",
].join("\n");

function submissions(dir: string): number {
  try {
    return [...Deno.readDirSync(join(dir, "submit_scripts"))]
      .filter((e) => e.name.endsWith(".sbatch")).length;
  } catch {
    return 0;
  }
}

Deno.test({
  name: slurmTestName(
    "slurm: worker_init `exit 3` gives at most 4 sbatch in 2 minutes and Degraded in status",
    skip,
  ),
  ignore: !!skip,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const w = await createWorld();
    const dir = join(w.home, "brokeninit");
    let child: Deno.ChildProcess | undefined;
    try {
      w.configure("brokeninit", CONFIG);
      child = new Deno.Command(Deno.execPath(), {
        args: ["run", ...COMPILE_FLAGS, MAIN, "start", "brokeninit", "--foreground"],
        env: { FUNCX_HOME: w.home, NO_COLOR: "1" },
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const status = (): StatusFile | null => {
        try {
          return JSON.parse(Deno.readTextFileSync(join(dir, "status.json")));
        } catch {
          return null;
        }
      };
      await until(() => submissions(dir) >= 1, "the first sbatch", 90_000);
      const t0 = Date.now();
      await until(() => !!status()?.degraded, "Degraded in status.json", 60_000);
      match(
        status()!.degraded!,
        /^block 0: job \d+ ended \(FAILED\) before its manager connected .*; job output: funcx-endpoint: worker_init ended the job script with exit code 3$/,
      );
      const st = await runCli(w.home, ["status", "brokeninit"]);
      assertEquals(st.code, 0, st.stderr);
      match(st.stdout, /^Status: +Degraded/m);
      match(
        st.stdout,
        /^Degraded: +block 0: job \d+ ended \(FAILED\) before its manager connected.*worker_init ended the job script with exit code 3$/m,
      );
      // and in the block's row
      match(st.stdout, /FAILED.*output: funcx-endpoint: worker_init ended the job/);
      // two minutes from the first submission: at most 4 submissions, and it does retry
      await until(() => Date.now() - t0 >= 120_000, "two minutes", 130_000);
      const n = submissions(dir);
      assert(n >= 2 && n <= 4, `${n} sbatch submissions in 2 minutes`);
      const log = Deno.readTextFileSync(join(dir, "endpoint.log"));
      assertEquals((log.match(/Degraded: block \d+: job/g) ?? []).length, 1, log);
      match(log, /next block in (15|30|60)s/);
      child.kill("SIGTERM");
      assertEquals((await child.status).code, 0);
      child = undefined;
      await until(async () => (await ourJobs(dir)).length === 0, "no jobs left", 30_000);
    } finally {
      if (child) {
        child.kill("SIGKILL");
        await child.status;
      }
      await w.close();
    }
  },
});

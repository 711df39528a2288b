// Tests against a REAL one-node Slurm cluster started by scripts/local-slurm.sh.
// Skipped (with the reason printed) when not root or when Slurm cannot be started.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import type { Logger } from "../../src/daemon/log.ts";
import type { PyValue } from "../../src/protocol/pickle/mod.ts";
import { Interchange } from "../../src/engine/interchange.ts";
import { Collector, config, pyTask, tempEndpoint, until } from "../engine/_helpers.ts";
import { ourJobs, sh, slurmSkipReason, slurmTestName } from "./_slurm.ts";

const skip = await slurmSkipReason();
if (skip) console.error(`slurm tests skipped: ${skip}`);

function slurmIx(
  dir: string,
  log: Logger,
  col: Collector,
  provider: Parameters<typeof config>[0],
  executor: Parameters<typeof config>[1] = {},
) {
  return new Interchange({
    endpointDir: dir,
    endpointId: "00000000-0000-0000-0000-00000000510a",
    config: config(
      { type: "slurm", walltime: "00:10:00", nodes_per_block: 1, ...provider },
      {
        max_workers_per_node: 1,
        prefetch_capacity: 2,
        heartbeat_period: 1,
        heartbeat_threshold: 20,
        max_idletime: 3,
        ...executor,
      },
    ),
    log,
    onResults: col.onResults,
    strategyPeriodMs: 250,
    pollPeriodMs: 500,
  });
}

// The 200-task / 0 -> 2 -> 0 scaling check runs end to end in slurm_e2e_test.ts.

Deno.test({
  name: slurmTestName(
    "slurm: rejected sbatch shows Slurm's message in status, with backoff, interchange runs on",
    skip,
  ),
  ignore: !!skip,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const ep = await tempEndpoint();
    const col = new Collector();
    const ix = slurmIx(ep.dir, ep.log, col, {
      init_blocks: 1,
      max_blocks: 1,
      partition: "nonexistent_partition",
    });
    try {
      await ix.start();
      await until(() => ix.status().errors.length > 0, "a provider error", 30_000);
      const err = ix.status().errors[0];
      assertEquals(err.source, "provider");
      assert(/invalid partition/i.test(err.message), err.message);
      assert(err.message.includes("sbatch failed"), err.message);
      // Still serving: tasks are queued and reported, no retry storm.
      ix.submit([pyTask("q1", "ident", [1])]);
      assertEquals(ix.taskStatuses().get("q1"), 1);
      await new Promise((r) => setTimeout(r, 4000));
      assertEquals(ix.status().tasks.queued, 1);
      const attempts = [...Deno.readDirSync(join(ep.dir, "submit_scripts"))]
        .filter((e) => e.name.endsWith(".sbatch")).length;
      assert(attempts <= 2, `${attempts} sbatch attempts in ~5 s`);
      assertEquals(await ourJobs(ep.dir), []);
      await ix.stop();
      // The queued task was not silently dropped.
      assertEquals(col.byId("q1")?.exceptionType, "ManagerLost");
    } finally {
      await ix.stop();
      ep.log.close();
      if (!Deno.env.get("KEEP_TMP")) await Deno.remove(ep.home, { recursive: true });
    }
  },
});

Deno.test({
  name: slurmTestName(
    "slurm: a job cancelled behind our back fails its task clearly and is replaced",
    skip,
  ),
  ignore: !!skip,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const ep = await tempEndpoint();
    const col = new Collector();
    const ix = slurmIx(
      ep.dir,
      ep.log,
      col,
      { init_blocks: 1, max_blocks: 1 },
      { prefetch_capacity: 0 },
    );
    try {
      await ix.start();
      const pidFile = join(ep.dir, "sleeper.pid");
      ix.submit([pyTask("long", "sleeper", [pidFile, 120]), pyTask("after", "ident", ["x"])]);
      await until(
        async () => {
          try {
            return !!(await Deno.readTextFile(pidFile));
          } catch {
            return false;
          }
        },
        "the long task to start",
        60_000,
      );
      const jobId = ix.status().blocks[0].job_id!;
      const r = await sh("scancel", [jobId]);
      assertEquals(r.code, 0, r.stderr);
      await col.waitFor(() => !!col.byId("long"), "failure of the long task", 60_000);
      const lost = col.byId("long")!;
      // scancel signals the whole job: the manager may still report its worker's death
      // (WorkerLost) before it goes itself (ManagerLost); either is a clear failure.
      assert(
        ["ManagerLost", "WorkerLost"].includes(lost.exceptionType ?? ""),
        `unexpected failure type: ${lost.exceptionType}`,
      );
      assert(
        /SIGTERM|CANCELLED|signal|killed|died/i.test(lost.exceptionMessage ?? ""),
        `unclear message: ${lost.exceptionMessage}`,
      );
      // Work remained, so a replacement block runs it.
      await col.waitFor(() => !!col.byId("after"), "the queued task on a new block", 90_000);
      assert(col.byId("after")!.result, JSON.stringify(col.byId("after")));
      assertEquals((col.byId("after")!.result as PyValue[])[0], "x");
      const blocks = ix.status().blocks;
      assert(blocks.some((b) => b.block_id === "1"), JSON.stringify(blocks));
      await until(
        () => ix.status().blocks.find((b) => b.block_id === "0")?.state === "CANCELLED",
        "block 0 reported CANCELLED",
        30_000,
      );
      assert(ix.status().errors.some((e) => e.message.includes(`job ${jobId}`)));
      await ix.stop();
      assertEquals(await ourJobs(ep.dir), []);
    } finally {
      await ix.stop();
      ep.log.close();
      if (!Deno.env.get("KEEP_TMP")) await Deno.remove(ep.home, { recursive: true });
    }
  },
});

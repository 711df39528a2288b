// End to end on a REAL one-node Slurm (scripts/local-slurm.sh): the local service, the SDK,
// and `funcx-endpoint start NAME --foreground` with the Slurm provider. Skipped with the
// reason when not root or Slurm cannot start.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { COMPILE_FLAGS } from "../../src/config/permissions.ts";
import type { StatusFile } from "../../src/daemon/state.ts";
import { runCli } from "../helpers/cli.ts";
import { createWorld, type World } from "../e2e/_world.ts";
import { until } from "../engine/_helpers.ts";
import { ourJobs, slurmSkipReason, slurmTestName } from "./_slurm.ts";
import { waitFor } from "../helpers/wait.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const skip = await slurmSkipReason();
if (skip) console.error(`slurm e2e tests skipped: ${skip}`);

function slurmConfig(provider: string[]): string {
  return [
    "heartbeat_period: 1",
    "heartbeat_threshold: 10",
    "provider:",
    "  type: slurm",
    "  walltime: '00:10:00'",
    ...provider.map((l) => `  ${l}`),
    "executor:",
    "  max_workers_per_node: 1",
    "  prefetch_capacity: 2",
    "  max_idletime: 3",
    "  heartbeat_period: 1",
    "  heartbeat_threshold: 20",
    "",
  ].join("\n");
}

/** Start `funcx-endpoint start NAME --foreground`; resolves once status.json says connected. */
async function startEndpoint(w: World, name: string) {
  const dir = join(w.home, name);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...COMPILE_FLAGS, MAIN, "start", name, "--foreground"],
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
  await until(() => status()?.state === "connected", `endpoint ${name} connected`, 90_000);
  return {
    status,
    async stop() {
      child.kill("SIGTERM");
      return (await child.status).code;
    },
  };
}

Deno.test({
  name: slurmTestName(
    "slurm e2e: endpoint runs 200 tasks in jobs it submitted, 0 -> 2 -> 0 blocks, stop",
    skip,
  ),
  ignore: !!skip,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const w = await createWorld();
    try {
      w.configure("slurmep", slurmConfig(["init_blocks: 0", "min_blocks: 0", "max_blocks: 2"]));
      const ep = await startEndpoint(w, "slurmep");
      const dir = join(w.home, "slurmep");
      assertEquals(ep.status()!.blocks.length, 0);
      const eid = ep.status()!.endpoint_id!;
      const fn = await w.client.registerFunction(
        "def nap(x):\n    import time\n    time.sleep(0.03)\n    return x * 2\n",
        "nap",
      );
      let maxBlocks = 0;
      let maxManagers = 0;
      const watch = setInterval(() => {
        const st = ep.status();
        if (!st) return;
        maxBlocks = Math.max(
          maxBlocks,
          st.blocks.filter((b) => b.state === "RUNNING" || b.state === "PENDING").length,
        );
        maxManagers = Math.max(maxManagers, st.managers.length);
      }, 100);
      const ids = await w.client.submit(
        Array.from({ length: 200 }, (_, i) => ({ functionId: fn, endpointId: eid, args: [i] })),
      );
      const results = await w.client.waitForResults(ids, { timeoutMs: 180_000 });
      clearInterval(watch);
      ids.forEach((id, i) => assertEquals(results.get(id)?.value, i * 2, `task ${i}`));
      assertEquals(maxBlocks, 2);
      assertEquals(maxManagers, 2);
      const sbatch = [...Deno.readDirSync(join(dir, "submit_scripts"))]
        .filter((e) => e.name.endsWith(".sbatch"));
      assertEquals(sbatch.length, 2);
      // Back to min_blocks=0 once idle: nothing of ours left in squeue.
      await until(async () => (await ourJobs(dir)).length === 0, "scale-in to 0", 60_000);
      const cli = await runCli(w.home, ["status", "slurmep"]);
      assertEquals(cli.code, 0, cli.stderr);
      assert(/Blocks \(\d+\)/.test(cli.stdout), cli.stdout);
      // New work scales out again, then stop cancels every job.
      const [late] = await w.client.submit([{ functionId: fn, endpointId: eid, args: [21] }]);
      assertEquals(
        (await w.client.waitForResults([late], { timeoutMs: 90_000 })).get(late)?.value,
        42,
      );
      assert((await ourJobs(dir)).length >= 1);
      assertEquals(await ep.stop(), 0);
      assertEquals(await ourJobs(dir), []);
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  name: slurmTestName(
    "slurm e2e: a rejected sbatch shows in `status` with Slurm's message; endpoint runs on",
    skip,
  ),
  ignore: !!skip,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const w = await createWorld();
    try {
      w.configure(
        "badpart",
        slurmConfig(["init_blocks: 1", "max_blocks: 1", "partition: nonexistent_partition"]),
      );
      const ep = await startEndpoint(w, "badpart");
      await until(
        () => (ep.status()?.errors ?? []).some((e) => /invalid partition/i.test(e.message)),
        "the sbatch error in status.json",
        60_000,
      );
      const cli = await runCli(w.home, ["status", "badpart"]);
      assertEquals(cli.code, 0, cli.stderr);
      assert(/sbatch failed.*invalid partition/i.test(cli.stdout), cli.stdout);
      // still running and heart-beating: status.json is written again after the error
      const seen = Date.parse(ep.status()!.updated_at);
      await waitFor(() => ep.status(), {
        what: "a newer status.json, connected",
        until: (st) => st?.state === "connected" && Date.parse(st.updated_at) > seen,
      });
      assertEquals(await ourJobs(join(w.home, "badpart")), []);
      assertEquals(await ep.stop(), 0);
    } finally {
      await w.close();
    }
  },
});

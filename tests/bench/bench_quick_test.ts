/**
 * Smoke test of the benchmark harness: `scripts/bench.ts --tiny` runs every piece (worker
 * loop, test-side forwarder + endpoint for W = 1, 2, 4, the local service end to end) at
 * tiny sizes and must write a results file with every figure. No timing is asserted.
 * @module
 */
import { assert, assertEquals } from "../auth/_assert.ts";

const _BENCH = new URL("../../scripts/bench.ts", import.meta.url).pathname;

Deno.test("bench --tiny writes every figure and ratio to the results file", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "fx-bench-test-" });
  try {
    const out = `${dir}/results.json`;
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", _BENCH, "--tiny", "--out", out],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(r.stderr);
    assert(r.success, `bench failed: ${stderr.slice(-3000)}`);
    const table = new TextDecoder().decode(r.stdout);
    assert(table.includes("endpoint-only"), table);
    const j = JSON.parse(Deno.readTextFileSync(out));
    assertEquals(j.mode, "tiny");
    for (const k of ["cores", "arch", "cpu", "loadavg", "loadavg_end"]) {
      assert(k in j.machine, `machine.${k} missing`);
    }
    const positive = (v: unknown, what: string) =>
      assert(typeof v === "number" && v > 0, `${what} = ${v}, expected a number > 0`);
    positive(j.limit.tasks_per_second, "limit.tasks_per_second");
    for (const k of ["tasks_per_second", "ratio_to_limit"]) {
      positive(j.endpoint_only[k], `endpoint_only.${k}`);
      positive(j.end_to_end[k], `end_to_end.${k}`);
    }
    assertEquals(j.endpoint_only.tasks, 50);
    for (const k of ["p50", "p95", "p99"]) positive(j.latency_ms[k], `latency_ms.${k}`);
    assert(j.latency_ms.p50 <= j.latency_ms.p99, "p50 above p99");
    for (const k of ["p50", "p95", "p99"]) {
      positive(j.endpoint_only_latency_ms[k], `endpoint_only_latency_ms.${k}`);
    }
    for (const k of ["daemon", "manager", "workers"]) {
      assertEquals(typeof j.idle_cpu_percent_of_core[k], "number", `idle_cpu_percent_of_core.${k}`);
    }
    for (const k of ["daemon", "manager", "workers", "forwarder"]) {
      assertEquals(typeof j.endpoint_only.cpu_us_per_task[k], "number", `cpu_us_per_task.${k}`);
    }
    positive(j.startup_seconds.cli_start_seconds, "startup_seconds.cli_start_seconds");
    for (
      const k of [
        "daemon_idle",
        "daemon_queued_peak",
        "manager_idle",
        "manager_queued_peak",
        "service_idle",
        "service_peak",
      ]
    ) positive(j.memory_mb[k], `memory_mb.${k}`);
    assertEquals(j.memory_mb.queued_tasks >= 50 - 2, true, "the queued tasks were not all held");
    const curve = j.scaling.map((s: { workers: number; sleep_ms: number }) =>
      `${s.workers}/${s.sleep_ms}`
    ).sort();
    assertEquals(curve, ["1/0", "1/10", "2/0", "2/10", "4/0", "4/10"]);
    for (const s of j.scaling) positive(s.tasks_per_second, `scaling ${s.workers}/${s.sleep_ms}`);
    for (const k of Object.keys(j.pass)) assertEquals(typeof j.pass[k], "boolean", `pass.${k}`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/**
 * The interchange half of `deno task bench --scale`: for each N, a fresh interchange host
 * (`scale_interchange.ts`) and a fresh process of N simulated managers
 * (`scale_managers.ts`, W workers each), both on loopback; measured: time until all N are
 * registered, closed-loop dispatch throughput and latency, sequential round-trip latency,
 * interchange RSS per manager and CPU µs per task, idle CPU with heartbeats at that N.
 *
 * @example
 * ```ts
 * import { measureInterchangeAt } from "./scale_ix.ts";
 * const row = await measureInterchangeAt({ managers: 16, workers: 64, tasks: 5000,
 *   concurrency: 2048, latencySamples: 100, idleSeconds: 2, hbPeriod: 1 });
 * ```
 * @module
 */
import { ChildRpc } from "./_rpc.ts";
import type { SimBlock } from "./scale_interchange.ts";

const _HERE = new URL(".", import.meta.url).pathname;

/** Sizes of one interchange measurement. */
export interface IxSizes {
  managers: number;
  workers: number;
  tasks: number;
  concurrency: number;
  latencySamples: number;
  idleSeconds: number;
  /** Heartbeat period of both sides, seconds. */
  hbPeriod: number;
}

/** Figures of one N. */
export interface IxRow {
  managers: number;
  workers: number;
  registerSeconds: number;
  tasks: number;
  tasksPerSecond: number;
  /** Latency in the closed loop (`concurrency` tasks in flight), ms. */
  loadedP50Ms: number;
  loadedP99Ms: number;
  /** Sequential single-task round trips (submit → result back in the endpoint), ms. */
  p50Ms: number;
  p99Ms: number;
  cpuUsPerTask: number;
  /** CPU of the simulated managers' process per task (not the interchange's). */
  simCpuUsPerTask: number;
  rssBaseKb: number;
  rssRegisteredKb: number;
  rssAfterRunKb: number;
  kbPerManager: number;
  /** Idle CPU of the interchange (heartbeats both ways, ticks), ms per second. */
  idleCpuMsPerSecond: number;
  /** That idle CPU per manager heartbeat round trip, µs. */
  idleUsPerManagerBeat: number;
  hbPeriod: number;
}

/**
 * Measure the interchange with `s.managers` simulated managers.
 *
 * @example
 * ```ts
 * await measureInterchangeAt({ managers: 1, workers: 4, tasks: 100, concurrency: 50,
 *   latencySamples: 5, idleSeconds: 1, hbPeriod: 1 });
 * ```
 */
export async function measureInterchangeAt(s: IxSizes): Promise<IxRow> {
  const ix = ChildRpc.spawn(
    [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      // e.g. FX_BENCH_IX_FLAGS=--cpu-prof to profile the interchange
      ...(Deno.env.get("FX_BENCH_IX_FLAGS")?.split(" ").filter(Boolean) ?? []),
      `${_HERE}scale_interchange.ts`,
    ],
    "interchange host",
  );
  const sim = ChildRpc.spawn(
    [
      "run",
      "-A",
      ...(Deno.env.get("FX_BENCH_SIM_FLAGS")?.split(" ").filter(Boolean) ?? []),
      `${_HERE}scale_managers.ts`,
    ],
    "simulated managers",
  );
  try {
    const block = await ix.call<SimBlock & { baseRssKb: number }>("start", {
      nodes: s.managers,
      workers: s.workers,
      hbPeriod: s.hbPeriod,
    });
    await sim.call("tasks"); // the managers' process is up before the clock starts
    const { rssKb: rssBaseKb } = await ix.call<{ rssKb: number }>("rss");
    const t0 = performance.now();
    const registered = ix.call<{ ms: number }>("waitRegistered", {
      n: s.managers,
      timeoutMs: 300_000,
    });
    await sim.call("connect", { ...block, n: s.managers, hbPeriod: s.hbPeriod });
    await registered;
    const registerSeconds = (performance.now() - t0) / 1000;
    const { rssKb: rssRegisteredKb } = await ix.call<{ rssKb: number }>("rss");
    // warm-up: JIT and buffers, not measured
    await ix.call("run", { tasks: Math.min(2000, s.tasks), concurrency: s.concurrency });
    const simCpu0 = (await sim.call<{ cpuUs: number }>("cpu")).cpuUs;
    const run = await ix.call<Record<string, number>>("run", {
      tasks: s.tasks,
      concurrency: s.concurrency,
    });
    const simCpu1 = (await sim.call<{ cpuUs: number }>("cpu")).cpuUs;
    if (run.failed) throw new Error(`${run.failed} task(s) failed at N = ${s.managers}`);
    const lat = await ix.call<{ p50: number; p99: number }>("latency", {
      samples: s.latencySamples,
    });
    const { rssKb: rssAfterRunKb } = await ix.call<{ rssKb: number }>("rss");
    const idle = await ix.call<{ cpuMsPerSecond: number }>("idle", { seconds: s.idleSeconds });
    await ix.call("stop");
    return {
      managers: s.managers,
      workers: s.workers,
      registerSeconds,
      tasks: s.tasks,
      tasksPerSecond: run.tasksPerSecond,
      loadedP50Ms: run.p50,
      loadedP99Ms: run.p99,
      p50Ms: lat.p50,
      p99Ms: lat.p99,
      cpuUsPerTask: run.cpuUsPerTask,
      simCpuUsPerTask: (simCpu1 - simCpu0) / s.tasks,
      rssBaseKb,
      rssRegisteredKb,
      rssAfterRunKb,
      kbPerManager: (rssRegisteredKb - rssBaseKb) / s.managers,
      idleCpuMsPerSecond: idle.cpuMsPerSecond,
      idleUsPerManagerBeat: (idle.cpuMsPerSecond * 1000 * s.hbPeriod) / s.managers,
      hbPeriod: s.hbPeriod,
    };
  } finally {
    await sim.close();
    await ix.close();
  }
}

if (import.meta.main) {
  const n = Number(Deno.args[0] ?? 16);
  console.log(
    await measureInterchangeAt({
      managers: n,
      workers: 64,
      tasks: Number(Deno.args[1] ?? 5000),
      concurrency: 2048,
      latencySamples: 100,
      idleSeconds: 2,
      hbPeriod: 1,
    }),
  );
}

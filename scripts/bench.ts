/**
 * `deno task bench [--quick] [--out FILE]`: measures, in one run on loopback, the figures
 * of issue 6 side by side and prints one table with the targets beside the measured
 * values; writes every figure to `bench/results.json`.
 *
 * 1. limit — the embedded Python worker's own loop, W processes;
 * 2. endpoint-only throughput — test-side CURVE forwarder → real endpoint daemon;
 * 3. end-to-end throughput — real local service HTTP API → endpoint → results fetched;
 * 4. latency — sequential single-task round trips;
 * 5. start-up — `start` until connected with a worker ready;
 * 6. memory — daemon / manager idle and with the tasks queued, service;
 * 7. scaling — endpoint-only for W = 1, 2, 4 and 0 / 10 ms task bodies.
 *
 * `--hostile` measures instead `/v2/version` and task round-trip latency idle vs under a
 * login flood (scripts/bench/hostile.ts), side by side.
 *
 * @example
 * ```sh
 * deno task bench --quick     # ~1 minute: 2,000 tasks, 200 latency samples
 * deno task bench             # full: 20,000 tasks, 500 latency samples
 * deno task bench --scale     # managers and endpoints at scale (scripts/bench/scale.ts)
 * ```
 * @module
 */
import { type Progress, progress } from "../src/cli/progress.ts";
import { parseArgs } from "node:util";
import { dirname } from "node:path";
import { LimitRunner } from "./bench/limit.ts";
import { EndpointBench, type EndpointRun } from "./bench/endpoint_only.ts";
import { BenchForwarder } from "./bench/forwarder.ts";
import { useBinary } from "./bench/endpoint_proc.ts";
import { measureEndToEnd, type PreparedService, prepareService } from "./bench/e2e.ts";
import { machineInfo } from "./bench/machine.ts";
import { measureHostile, renderHostile } from "./bench/hostile.ts";
import { buildReport, renderMarkdown, renderTable, type Sizes } from "./bench/report.ts";
import { type CompareRow, compareWith, renderCompare, ZEROMQ_BASELINE } from "./bench/compare.ts";
import { scaleMain } from "./bench/scale.ts";

const USAGE =
  "usage: deno task bench [--quick] [--out FILE] [--workers N] [--prefetch N] [--binary PATH] [--compare REV] [--hostile] | --scale [--quick] (see scripts/bench/scale.ts)";

function _sizes(mode: "quick" | "full" | "tiny", workers: number): Sizes {
  if (mode === "tiny") {
    // smoke test of the harness (tests/bench): every figure, tiny sizes
    return {
      mode,
      workers,
      tasks: 50,
      scalingTasks: 20,
      sleepTasksPerWorker: 5,
      queueTasks: 50,
      latencyTasks: 5,
      endpointLatencyTasks: 5,
      batch: 20,
      limitTasks: 200,
    };
  }
  return mode === "quick"
    ? {
      mode: "quick",
      workers,
      tasks: 2000,
      scalingTasks: 1000,
      sleepTasksPerWorker: 50,
      queueTasks: 2000,
      latencyTasks: 200,
      endpointLatencyTasks: 100,
      batch: 500,
      limitTasks: 5000,
    }
    : {
      mode: "full",
      workers,
      tasks: 20_000,
      scalingTasks: 5000,
      sleepTasksPerWorker: 200,
      queueTasks: 20_000,
      latencyTasks: 500,
      endpointLatencyTasks: 500,
      batch: 1000,
      limitTasks: 20_000,
    };
}

/** Stop what was started for later phases when an earlier phase failed. */
async function _cleanup(
  others: Promise<PromiseSettledResult<EndpointBench>[]> | undefined,
  preparing: Promise<PreparedService> | undefined,
): Promise<void> {
  for (const r of (await others) ?? []) if (r.status === "fulfilled") await r.value.close();
  await preparing?.then(async (p) => {
    await p.svc.stop();
    Deno.removeSync(p.home, { recursive: true });
  }, () => {});
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes("--scale")) return await scaleMain(argv.filter((a) => a !== "--scale"));
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        quick: { type: "boolean", default: false },
        tiny: { type: "boolean", default: false },
        out: {
          type: "string",
          default: new URL("../bench/results.json", import.meta.url).pathname,
        },
        workers: { type: "string", default: "2" },
        prefetch: { type: "string" },
        binary: { type: "string" },
        compare: { type: "string" },
        "compare-only": { type: "boolean", default: false },
        hostile: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    console.error(`bench: ${(e as Error).message}; ${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
    console.error(`bench: --workers: "${values.workers}" is not an integer from 1 to 64; ${USAGE}`);
    return 2;
  }
  const prefetch = values.prefetch === undefined ? undefined : Number(values.prefetch);
  if (prefetch !== undefined && (!Number.isInteger(prefetch) || prefetch < 0)) {
    console.error(`bench: --prefetch: "${values.prefetch}" is not an integer ≥ 0; ${USAGE}`);
    return 2;
  }
  if (values.binary !== undefined) {
    try {
      if (!Deno.statSync(values.binary).isFile) throw new Error("not a file");
    } catch (e) {
      console.error(
        `bench: --binary: ${values.binary}: ${
          (e as Error).message
        }; expected the executable of \`deno task compile\``,
      );
      return 2;
    }
    useBinary(values.binary);
  }
  if (values.hostile) {
    const sizes = values.tiny
      ? { versionSamples: 20, taskSamples: 3 }
      : values.quick
      ? { versionSamples: 200, taskSamples: 20 }
      : { versionSamples: 500, taskSamples: 60 };
    const r = await measureHostile(sizes);
    console.log(renderHostile(r));
    const out = values.out.replace(/results\.json$/, "hostile.json");
    Deno.mkdirSync(dirname(out), { recursive: true });
    Deno.writeTextFileSync(
      out,
      JSON.stringify({ machine: await machineInfo(), ...r }, null, 2) + "\n",
    );
    console.log(`\nwritten: ${out}`);
    return 0;
  }
  const s = _sizes(values.tiny ? "tiny" : values.quick ? "quick" : "full", workers);
  const started = performance.now();
  // each phase's line, then (on a terminal only) a progress line while it runs
  let phase: Progress | undefined;
  const step = (what: string) => {
    phase?.done();
    console.error(`[bench ${((performance.now() - started) / 1000).toFixed(1)} s] ${what}`);
    phase = what === "done" ? undefined : progress(what.replace(/:.*/, ""));
  };
  if (values["compare-only"] && values.compare === undefined) values.compare = ZEROMQ_BASELINE;
  let compared: CompareRow[] | undefined;
  if (values.compare !== undefined) {
    const fwd = await BenchForwarder.start();
    try {
      compared = await compareWith(fwd, {
        rev: values.compare,
        workers,
        tasks: s.tasks,
        latency: s.endpointLatencyTasks,
        idleSeconds: s.mode === "tiny" ? 2 : 20,
      }, step);
    } finally {
      await fwd.close();
    }
    phase?.done();
    phase = undefined;
    console.log(renderCompare(compared));
    if (values["compare-only"]) {
      const out = values.out.replace(/\.json$/, "") + "-compare.json";
      Deno.writeTextFileSync(
        out,
        JSON.stringify({ compared, machine: await machineInfo() }, null, 2) + "\n",
      );
      console.log(`\nwritten: ${out}`);
      return 0;
    }
  }

  const scalingWorkers = [...new Set([1, 2, 4, workers])].sort((a, b) => a - b);
  const machineStart = await machineInfo();
  step(`limit: worker loop in ${Math.max(...scalingWorkers)} python3 processes`);
  const limits = new Map<number, number>();
  const limitSleep = new Map<number, number>();
  const lim = await LimitRunner.start(Math.max(...scalingWorkers));
  try {
    for (const w of scalingWorkers) {
      limits.set(w, (await lim.measure({ workers: w, tasks: s.limitTasks })).tasksPerSecond);
      const n = Math.max(w * 20, Math.round((s.sleepTasksPerWorker * w) / 4));
      limitSleep.set(w, (await lim.measure({ workers: w, tasks: n, sleepMs: 10 })).tasksPerSecond);
    }
  } finally {
    await lim.close();
  }

  let preparing: Promise<PreparedService> | undefined;
  let othersStarting: Promise<PromiseSettledResult<EndpointBench>[]> | undefined;
  const fwd = await BenchForwarder.start();
  const scaling: (EndpointRun & { workers: number })[] = [];
  const others = scalingWorkers.filter((w) => w !== workers);
  // The scaling endpoints and the service of (3) start while other things run: their
  // start-up is not a figure. --quick starts them right away (they idle while W is
  // measured); the full run starts them after W is done, so nothing else runs meanwhile.
  const startOthers = () => {
    preparing = prepareService();
    preparing.catch(() => {});
    othersStarting = Promise.allSettled(
      others.map((w) => EndpointBench.start(fwd, { workers: w, prefetch })),
    );
  };
  let main;
  try {
    step(`endpoint-only: W = ${workers}, ${s.tasks} tasks, then ${s.queueTasks} queued`);
    if (s.mode !== "full") startOthers();
    const eb = await EndpointBench.start(fwd, { workers, prefetch });
    try {
      const run = await eb.run(s.tasks, 0);
      for (const sleepMs of [0, 10]) {
        const n = sleepMs === 0 ? s.scalingTasks : s.sleepTasksPerWorker * workers;
        scaling.push({ ...(await eb.run(n, sleepMs)), workers });
      }
      const latencyMs = await eb.latency(s.endpointLatencyTasks);
      const idleCpuPercent = await eb.idleCpu(s.mode === "full" ? 5 : 2);
      const memory = await eb.queueMemory(s.queueTasks);
      main = { startupSeconds: eb.startupSeconds, run, memory, latencyMs, idleCpuPercent };
    } catch (e) {
      await eb.close();
      throw e;
    }
    if (!othersStarting) startOthers();
    await eb.close();
    step(`endpoint-only: scaling W = ${others.join(", ")}`);
  } catch (e) {
    await _cleanup(othersStarting, preparing);
    await fwd.close();
    throw e;
  }
  try {
    const started = await othersStarting!;
    const ebs = started.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
    try {
      const failed = started.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      for (const o of ebs) {
        for (const sleepMs of [0, 10]) {
          const n = sleepMs === 0 ? s.scalingTasks : s.sleepTasksPerWorker * o.workers;
          scaling.push({ ...(await o.run(n, sleepMs)), workers: o.workers });
        }
        await o.close();
      }
    } finally {
      await Promise.allSettled(ebs.map((o) => o.close()));
    }
  } catch (e) {
    await _cleanup(undefined, preparing);
    throw e;
  } finally {
    await fwd.close();
  }

  step(`end-to-end: service + endpoint, ${s.tasks} tasks, ${s.latencyTasks} round trips`);
  const e2e = await measureEndToEnd({
    workers,
    tasks: s.tasks,
    batch: s.batch,
    latencyTasks: s.latencyTasks,
    prepared: await preparing,
  });
  step("done");

  const report = buildReport({
    sizes: s,
    machine: machineStart,
    loadEnd: Deno.loadavg(),
    prefetch: prefetch ?? null,
    binary: values.binary ?? null,
    limits,
    limitSleep,
    main,
    scaling,
    e2e,
    seconds: (performance.now() - started) / 1000,
  });
  if (compared) (report as unknown as Record<string, unknown>).compare = compared;
  Deno.mkdirSync(dirname(values.out), { recursive: true });
  Deno.writeTextFileSync(values.out, JSON.stringify(report, null, 2) + "\n");
  console.log(renderTable(report));
  if (compared) {
    console.log(
      `\ntransport before/after (--compare ${values.compare}):\n${renderCompare(compared)}`,
    );
  }
  Deno.writeTextFileSync(values.out.replace(/\.json$/, "") + ".md", renderMarkdown(report) + "\n");
  console.log(`\nwritten: ${values.out}`);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
    Deno.exit(1);
  }
}

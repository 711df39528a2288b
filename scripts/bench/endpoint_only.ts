/**
 * Figures (2), (6, endpoint part) and (7): the real endpoint daemon (CLI, local provider,
 * W python3 workers) fed by the test-side {@linkcode BenchForwarder} — tasks pushed as
 * fast as the endpoint takes them, results counted (and acked) at the results socket.
 *
 * @example
 * ```ts
 * import { measureEndpointOnly } from "./endpoint_only.ts";
 * const r = await measureEndpointOnly({ workers: 2, runs: [{ tasks: 20_000, sleepMs: 0 }] });
 * r.runs[0].tasksPerSecond;
 * ```
 * @module
 */
import { noopTaskBody, readRss, RssSampler } from "./_util.ts";
import { prepareHome, startEndpointProcess } from "./endpoint_proc.ts";
import { BenchForwarder, type RunResult } from "./forwarder.ts";

/** One measured run. */
export interface EndpointRun extends RunResult {
  sleepMs: number;
}

/** Memory of the endpoint side, KiB. */
export interface EndpointMemory {
  /** Daemon VmRSS when connected and idle (after start-up, before any load). */
  daemonIdleKb: number;
  /** One manager's VmRSS when idle. */
  managerIdleKb: number;
  /** Daemon peak RSS while holding `queued` tasks. */
  daemonQueuedPeakKb: number;
  /** The manager's peak RSS during the same time. */
  managerQueuedPeakKb: number;
  /** Tasks the daemon held (not yet run) at the peak. */
  queued: number;
}

/** Result of {@linkcode measureEndpointOnly}. */
export interface EndpointOnlyResult {
  workers: number;
  startupSeconds: number;
  runs: EndpointRun[];
  memory?: EndpointMemory;
}

/**
 * Start a bench forwarder and an endpoint with `workers` workers, warm it up, then do
 * each run in order. With `queueTasks`, finally push that many tasks that sleep long
 * enough to stay queued, and record the peak RSS of the daemon and a manager.
 *
 * @example
 * ```ts
 * await measureEndpointOnly({ workers: 1, runs: [{ tasks: 1000, sleepMs: 0 }] });
 * ```
 */
export async function measureEndpointOnly(opts: {
  workers: number;
  runs: { tasks: number; sleepMs: number }[];
  queueTasks?: number;
  warmup?: number;
}): Promise<EndpointOnlyResult> {
  const fwd = await BenchForwarder.start();
  const home = prepareHome({ serviceUrl: fwd.serviceUrl, workers: opts.workers, token: "bench" });
  let ep;
  try {
    ep = await startEndpointProcess({
      home,
      workers: opts.workers,
      ready: async () => {
        await fwd.connected;
        const r = await fwd.run(1, noopTaskBody(0));
        if (r.ok !== 1) throw new Error(`bench: probe task failed: ${r.firstError}`);
      },
    });
    const out: EndpointOnlyResult = {
      workers: opts.workers,
      startupSeconds: ep.startupSeconds,
      runs: [],
    };
    const idleDaemon = readRss(ep.pid)?.rssKb ?? 0;
    const idleManager = ep.managerPids.length ? readRss(ep.managerPids[0])?.rssKb ?? 0 : 0;
    const warm = await fwd.run(opts.warmup ?? 200, noopTaskBody(0));
    _check(warm, "warm-up");
    for (const r of opts.runs) {
      const res = await fwd.run(r.tasks, noopTaskBody(r.sleepMs));
      _check(res, `${r.tasks} tasks of ${r.sleepMs} ms`);
      out.runs.push({ ...res, sleepMs: r.sleepMs });
    }
    if (opts.queueTasks) {
      const manager = ep.managerPids[0];
      const sampler = new RssSampler(() => [ep!.pid, ...(manager ? [manager] : [])], 20);
      // each task sleeps for 10 minutes: nothing finishes while we look
      await fwd.push(opts.queueTasks, noopTaskBody(600_000));
      let queued = 0;
      const until = Date.now() + 60_000;
      while (Date.now() < until) {
        const s = ep.status();
        const held = s ? s.tasks.queued + s.tasks.running : 0;
        queued = Math.max(queued, held);
        if (held >= opts.queueTasks) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 300));
      sampler.stop();
      out.memory = {
        daemonIdleKb: idleDaemon,
        managerIdleKb: idleManager,
        daemonQueuedPeakKb: sampler.peakKb(ep.pid),
        managerQueuedPeakKb: manager ? sampler.peakKb(manager) : 0,
        queued,
      };
    }
    return out;
  } finally {
    await ep?.stop();
    await fwd.close();
    Deno.removeSync(home, { recursive: true });
  }
}

function _check(r: RunResult, what: string): void {
  if (r.failed > 0) {
    throw new Error(`bench: ${r.failed} of ${r.tasks} tasks failed in ${what}: ${r.firstError}`);
  }
}

/**
 * Figures (2), (6, endpoint part) and (7): the real endpoint daemon (CLI
 * `start NAME --foreground`, local provider, W python3 workers) fed by the test-side
 * {@linkcode BenchForwarder} — tasks pushed as fast as the endpoint takes them, results
 * counted (and acked) at the results socket.
 *
 * @example
 * ```ts
 * import { EndpointBench } from "./endpoint_only.ts";
 * import { BenchForwarder } from "./forwarder.ts";
 * const fwd = await BenchForwarder.start();
 * const eb = await EndpointBench.start(fwd, { workers: 2 });
 * const run = await eb.run(20_000, 0);
 * await eb.close(); await fwd.close();
 * ```
 * @module
 */
import { childPids, cpuPerTask, cpuSnapshot, noopTaskBody, readRss, RssSampler } from "./_util.ts";
import { type EndpointProcess, prepareHome, startEndpointProcess } from "./endpoint_proc.ts";
import type { BenchForwarder, RunResult } from "./forwarder.ts";

/** One measured run. */
export interface EndpointRun extends RunResult {
  sleepMs: number;
  /** CPU microseconds per task of the daemon, the manager, its workers, the forwarder. */
  cpuUsPerTask: Record<string, number>;
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

/** A running endpoint wired to a bench forwarder. */
export class EndpointBench {
  readonly workers: number;
  /** Spawn → connected and a probe task answered (seconds). */
  readonly startupSeconds: number;
  /** Daemon / manager RSS right after start-up (KiB). */
  readonly idle: { daemonKb: number; managerKb: number };
  #fwd: BenchForwarder;
  #ep: EndpointProcess;
  #home: string;
  #closing: Promise<void> | undefined;

  private constructor(fwd: BenchForwarder, ep: EndpointProcess, home: string, workers: number) {
    this.#fwd = fwd;
    this.#ep = ep;
    this.#home = home;
    this.workers = workers;
    this.startupSeconds = ep.startupSeconds;
    this.idle = {
      daemonKb: readRss(ep.pid)?.rssKb ?? 0,
      managerKb: ep.managerPids.length ? readRss(ep.managerPids[0])?.rssKb ?? 0 : 0,
    };
  }

  /**
   * Configure a home, start the endpoint against `fwd`, wait for a probe task, warm up.
   *
   * @example
   * ```ts ignore
   * const eb = await EndpointBench.start(fwd, { workers: 4, prefetch: 100 });
   * ```
   */
  static async start(
    fwd: BenchForwarder,
    opts: { workers: number; prefetch?: number; warmup?: number },
  ): Promise<EndpointBench> {
    const home = prepareHome({
      serviceUrl: fwd.serviceUrl,
      workers: opts.workers,
      token: "bench",
      prefetch: opts.prefetch,
    });
    const endpointId = crypto.randomUUID();
    let ep: EndpointProcess | undefined;
    try {
      ep = await startEndpointProcess({
        home,
        workers: opts.workers,
        args: ["--endpoint-uuid", endpointId],
        ready: async () => {
          await fwd.connected(endpointId);
          _check(await fwd.run(endpointId, 1, noopTaskBody(0)), "the probe task");
        },
      });
      const eb = new EndpointBench(fwd, ep, home, opts.workers);
      _check(await fwd.run(endpointId, opts.warmup ?? 200, noopTaskBody(0)), "warm-up");
      return eb;
    } catch (e) {
      await ep?.stop();
      Deno.removeSync(home, { recursive: true });
      throw e;
    }
  }

  /**
   * Push `tasks` tasks with a `sleepMs` body and count the results; CPU per task too.
   *
   * @example
   * ```ts ignore
   * const r = await eb.run(5000, 10);
   * ```
   */
  async run(tasks: number, sleepMs: number): Promise<EndpointRun> {
    const ep = this.#ep;
    const groups = () => ({
      daemon: [ep.pid],
      manager: ep.managerPids,
      workers: ep.managerPids.flatMap(childPids),
      forwarder: [Deno.pid],
    });
    const before = cpuSnapshot(groups());
    const res = await this.#fwd.run(ep.endpointId, tasks, noopTaskBody(sleepMs));
    const cpu = cpuPerTask(before, cpuSnapshot(groups()), tasks);
    _check(res, `${tasks} tasks of ${sleepMs} ms`);
    return { ...res, sleepMs, cpuUsPerTask: cpu };
  }

  /**
   * CPU used by the idle daemon, manager and workers over `seconds` (percent of one
   * core): what the polling loops cost when there is nothing to do.
   *
   * @example
   * ```ts ignore
   * (await eb.idleCpu(2)).daemon; // e.g. 3.5 (% of a core)
   * ```
   */
  async idleCpu(seconds: number): Promise<Record<string, number>> {
    const ep = this.#ep;
    const groups = () => ({
      daemon: [ep.pid],
      manager: ep.managerPids,
      workers: ep.managerPids.flatMap(childPids),
    });
    const before = cpuSnapshot(groups());
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const after = cpuSnapshot(groups());
    const ms = performance.now() - t0;
    const out: Record<string, number> = {};
    for (const k of Object.keys(after)) {
      out[k] = Math.round(((after[k] - before[k]) / ms) * 1000) / 10;
    }
    return out;
  }

  /**
   * `n` sequential single no-op task round trips through the endpoint alone (forwarder
   * send → result received), in milliseconds.
   *
   * @example
   * ```ts ignore
   * const ms = await eb.latency(200);
   * ```
   */
  async latency(n: number): Promise<number[]> {
    const body = noopTaskBody(0);
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      _check(await this.#fwd.run(this.#ep.endpointId, 1, body), "a latency probe");
      out.push(performance.now() - t0);
    }
    return out;
  }

  /**
   * Push `tasks` tasks that sleep long enough to stay queued; report the peak RSS of
   * the daemon and its manager while it holds them. Leaves the endpoint busy: close it
   * afterwards.
   *
   * @example
   * ```ts ignore
   * const m = await eb.queueMemory(20_000);
   * ```
   */
  async queueMemory(tasks: number): Promise<EndpointMemory> {
    const ep = this.#ep;
    const manager = ep.managerPids[0];
    const sampler = new RssSampler(() => [ep.pid, ...(manager ? [manager] : [])], 20);
    // each task sleeps for 10 minutes: nothing finishes while we look
    await this.#fwd.push(ep.endpointId, tasks, noopTaskBody(600_000));
    let queued = 0;
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      const s = ep.status();
      const held = s ? s.tasks.queued + s.tasks.running : 0;
      queued = Math.max(queued, held);
      if (held >= tasks) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 300));
    sampler.stop();
    return {
      daemonIdleKb: this.idle.daemonKb,
      managerIdleKb: this.idle.managerKb,
      daemonQueuedPeakKb: sampler.peakKb(ep.pid),
      managerQueuedPeakKb: manager ? sampler.peakKb(manager) : 0,
      queued,
    };
  }

  /** Stop the endpoint and remove its home (once; later calls return the same promise). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#ep.stop();
      Deno.removeSync(this.#home, { recursive: true });
    })();
    return this.#closing;
  }
}

function _check(r: RunResult, what: string): void {
  if (r.failed > 0 || r.ok !== r.tasks) {
    throw new Error(`bench: ${r.failed} of ${r.tasks} tasks failed in ${what}: ${r.firstError}`);
  }
}

/**
 * Figures (3)–(6) through the real local service: the service process
 * (`service start --foreground`), a user logged in through the real PKCE form flow, the
 * endpoint started with the user command `start` (detached daemon, local provider, W
 * python3 workers), and tasks submitted and fetched with {@linkcode FuncXClient} over HTTP.
 *
 * @example
 * ```ts
 * import { measureEndToEnd } from "./e2e.ts";
 * const r = await measureEndToEnd({ workers: 2, tasks: 20_000, batch: 1000, latencyTasks: 500 });
 * r.tasksPerSecond; r.latencyMs.p50; r.startupSeconds;
 * ```
 * @module
 */
import { curveKeyPairZ85 } from "../../src/io/zmtp/mod.ts";
import { ENDPOINT_VERSION } from "../../src/config/types.ts";
import { WebServiceClient } from "../../src/registration/client.ts";
import { FuncXClient } from "../../src/sdk/client.ts";
import {
  addUser,
  loginViaForm,
  type StartedService,
  startService,
  writeTokens,
} from "../../tests/helpers/service.ts";
import {
  BENCH_FUNCTION_NAME,
  BENCH_FUNCTION_SOURCE,
  percentile,
  readRss,
  RssSampler,
} from "./_util.ts";
import {
  BENCH_ENDPOINT,
  type EndpointProcess,
  prepareHome,
  startEndpointProcess,
} from "./endpoint_proc.ts";

/** Result of {@linkcode measureEndToEnd}. */
export interface EndToEndResult {
  workers: number;
  tasks: number;
  batch: number;
  seconds: number;
  tasksPerSecond: number;
  /** `start` until connected with a worker ready (a queued probe task came back). */
  startupSeconds: number;
  latencyMs: { n: number; p50: number; p95: number; p99: number; mean: number; max: number };
  memory: {
    serviceIdleKb: number;
    servicePeakKb: number;
    daemonIdleKb: number;
    daemonPeakKb: number;
    managerPeakKb: number;
  };
}

/** A started service with a logged-in user, ready for {@linkcode measureEndToEnd}. */
export interface PreparedService {
  home: string;
  svc: StartedService;
  token: string;
}

/**
 * Start the local service in a new home, create a user and log in through the form flow
 * (so it can run while something else is measured).
 *
 * @example
 * ```ts
 * const prepared = await prepareService();
 * ```
 */
export async function prepareService(args: string[] = []): Promise<PreparedService> {
  const home = Deno.makeTempDirSync({ prefix: "fx-bench-e2e-" });
  let svc: StartedService | undefined;
  try {
    svc = await startService({ home, heartbeatPeriod: 30, timeoutMs: 300_000, args });
    await addUser(home, "bench", "bench-pw");
    const tokens = await loginViaForm(svc.authUrl, "bench", "bench-pw");
    await writeTokens(home, tokens);
    return { home, svc, token: tokens.access_token };
  } catch (e) {
    await svc?.stop();
    Deno.removeSync(home, { recursive: true });
    throw e;
  }
}

/**
 * Run the end-to-end figures. `tasks` are submitted in `batch`-sized requests while a
 * poller fetches finished results with `batch_status`; throughput counts until the last
 * result was fetched. Then `latencyTasks` sequential single-task round trips.
 *
 * @example
 * ```ts
 * await measureEndToEnd({ workers: 2, tasks: 2000, batch: 500, latencyTasks: 50 });
 * ```
 */
export async function measureEndToEnd(opts: {
  workers: number;
  tasks: number;
  batch: number;
  latencyTasks: number;
  /** From {@linkcode prepareService} (started here when not given); stopped at the end. */
  prepared?: PreparedService;
}): Promise<EndToEndResult> {
  const prepared = opts.prepared ?? await prepareService();
  const { home, svc, token } = prepared;
  let ep: EndpointProcess | undefined;
  try {
    prepareHome({ serviceUrl: svc.url, workers: opts.workers, home });
    const fx = new FuncXClient({ serviceAddress: svc.url, token });
    const functionId = await fx.registerFunction(BENCH_FUNCTION_SOURCE, BENCH_FUNCTION_NAME);
    // Register the endpoint id first (as a previous start would have), so a probe task can
    // be queued at the service before the daemon even runs.
    const endpointId = crypto.randomUUID();
    await new WebServiceClient(svc.url, () => Promise.resolve(token))
      .registerEndpoint({
        endpoint_name: BENCH_ENDPOINT,
        endpoint_uuid: endpointId,
        version: ENDPOINT_VERSION,
        endpoint_pubkey: curveKeyPairZ85().publicKey,
      }, { maxAttempts: 1 });
    const serviceIdleKb = readRss(svc.pid)?.rssKb ?? 0;
    ep = await startEndpointProcess({
      home,
      workers: opts.workers,
      detached: true,
      args: ["--endpoint-uuid", endpointId, "--timeout", "300"],
      ready: async () => {
        const id = await fx.run({ functionId, endpointId });
        // a long poll: no client loop takes CPU from the booting endpoint
        await _wait(fx, id, 300_000);
      },
    });
    const daemonIdleKb = readRss(ep.pid)?.rssKb ?? 0;
    const manager = ep.managerPids[0];
    const pids = [svc.pid, ep.pid, ...(manager ? [manager] : [])];
    const sampler = new RssSampler(() => pids, 50);
    // warm-up
    await _throughput(fx, functionId, endpointId, Math.min(500, opts.tasks), opts.batch);
    const t = await _throughput(fx, functionId, endpointId, opts.tasks, opts.batch);
    sampler.stop();
    const lat: number[] = [];
    for (let i = 0; i < 20; i++) await _wait(fx, await fx.run({ functionId, endpointId }), 60_000);
    for (let i = 0; i < opts.latencyTasks; i++) {
      const t0 = performance.now();
      const id = await fx.run({ functionId, endpointId });
      await _wait(fx, id, 60_000);
      lat.push(performance.now() - t0);
    }
    return {
      workers: opts.workers,
      tasks: opts.tasks,
      batch: opts.batch,
      seconds: t.seconds,
      tasksPerSecond: opts.tasks / t.seconds,
      startupSeconds: ep.startupSeconds,
      latencyMs: {
        n: lat.length,
        p50: percentile(lat, 50),
        p95: percentile(lat, 95),
        p99: percentile(lat, 99),
        mean: lat.reduce((a, b) => a + b, 0) / lat.length,
        max: Math.max(...lat),
      },
      memory: {
        serviceIdleKb,
        servicePeakKb: sampler.peakKb(svc.pid),
        daemonIdleKb,
        daemonPeakKb: sampler.peakKb(ep.pid),
        managerPeakKb: manager ? sampler.peakKb(manager) : 0,
      },
    };
  } finally {
    await ep?.stop();
    await svc.stop();
    Deno.removeSync(home, { recursive: true });
  }
}

/**
 * Wait for one task's result with the service's long poll (`GET /tasks/<id>?wait=5`: the
 * answer comes when the result is stored).
 */
async function _wait(fx: FuncXClient, id: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const o = await fx.getTask(id, { waitSeconds: 5 });
    if (!o.pending) {
      if (o.error) throw new Error(`bench: task ${id} failed: ${o.error.message}`);
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`bench: task ${id} still ${o.status} after ${timeoutMs} ms`);
    }
  }
}

/** Submit `n` tasks in batches while fetching results; seconds until the last result. */
async function _throughput(
  fx: FuncXClient,
  functionId: string,
  endpointId: string,
  n: number,
  batch: number,
): Promise<{ seconds: number }> {
  const pending = new Set<string>();
  let submitted = 0;
  let failed = 0;
  let firstError = "";
  const t0 = performance.now();
  const submitter = (async () => {
    while (submitted < n) {
      const k = Math.min(batch, n - submitted);
      const ids = await fx.submit(
        Array.from({ length: k }, () => ({ functionId, endpointId })),
      );
      for (const id of ids) pending.add(id);
      submitted += k;
    }
  })();
  let submitError: unknown;
  submitter.catch((e) => submitError = e);
  const deadline = Date.now() + 600_000;
  let done = 0;
  while (done < n) {
    if (submitError) throw submitError;
    if (Date.now() > deadline) {
      throw new Error(`bench: ${n - done} of ${n} results missing after 600 s`);
    }
    const ids = [...pending].slice(0, 5000);
    let got = 0;
    if (ids.length > 0) {
      const res = await fx.getBatchResult(ids);
      for (const [id, o] of res) {
        if (o.pending) continue;
        pending.delete(id);
        got++;
        if (o.error) {
          failed++;
          firstError ||= o.error.message;
        }
      }
    }
    done += got;
    if (got === 0) await new Promise((r) => setTimeout(r, 5));
  }
  await submitter;
  if (failed > 0) throw new Error(`bench: ${failed} of ${n} tasks failed: ${firstError}`);
  return { seconds: (performance.now() - t0) / 1000 };
}

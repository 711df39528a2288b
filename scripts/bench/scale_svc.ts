/**
 * The service half of `deno task bench --scale`: for each E, a fresh local service (the
 * real `service start` process: HTTP API, forwarder, SQLite) with a logged-in user, E
 * endpoints registered through `POST /endpoints` and connected from one process of
 * simulated endpoints (`scale_endpoints.ts`, three CURVE DEALERs each), then tasks
 * submitted through the HTTP API with the SDK client, spread over all E endpoints, and
 * their results fetched with `batch_status`. Measured: time until all E are accepted,
 * throughput, sequential round-trip latency, service RSS per endpoint and during the run,
 * SQLite (database + WAL) growth per task.
 *
 * @example
 * ```ts
 * import { measureServiceAt } from "./scale_svc.ts";
 * const row = await measureServiceAt({ endpoints: 100, tasks: 2000, batch: 500,
 *   latencySamples: 50, hbPeriod: 5 });
 * ```
 * @module
 */
import { join } from "node:path";
import { curveKeyPairZ85 } from "../../src/io/zmtp/mod.ts";
import { FuncXClient } from "../../src/sdk/client.ts";
import { cpuMs, percentile, readRss, RssSampler } from "./_util.ts";
import { BENCH_FUNCTION_NAME, BENCH_FUNCTION_SOURCE } from "./_util.ts";
import { ChildRpc } from "./_rpc.ts";
import { type PreparedService, prepareService } from "./e2e.ts";
import type { SimEndpointRegistration } from "./scale_endpoints.ts";

const _HERE = new URL(".", import.meta.url).pathname;

/** Sizes of one service measurement. */
export interface SvcSizes {
  endpoints: number;
  tasks: number;
  batch: number;
  latencySamples: number;
  /** Heartbeat period of the simulated endpoints, seconds. */
  hbPeriod: number;
}

/** Figures of one E. */
export interface SvcRow {
  endpoints: number;
  /** Connections the simulated endpoints had to open again (the service closed them). */
  reconnects: number;
  /** Why the service closed connections (from its log), by reason. */
  disconnectReasons: Record<string, number>;
  connectSeconds: number;
  tasks: number;
  tasksPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  serviceCpuUsPerTask: number;
  rssBaseKb: number;
  rssConnectedKb: number;
  rssPeakKb: number;
  kbPerEndpoint: number;
  sqliteBytesPerTask: number;
}

/** Bytes of the service's SQLite files (database, WAL). */
function _dbBytes(home: string): number {
  let n = 0;
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) walk(p);
      else if (/\.(sqlite|db)(-wal)?$/.test(e.name)) n += Deno.statSync(p).size;
    }
  };
  walk(join(home, "service"));
  return n;
}

async function _register(
  url: string,
  token: string,
  n: number,
): Promise<SimEndpointRegistration[]> {
  const out: SimEndpointRegistration[] = [];
  let next = 0;
  const one = async () => {
    while (next < n) {
      const i = next++;
      const keys = curveKeyPairZ85();
      const res = await fetch(`${url}/endpoints`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({
          endpoint_name: `bench-scale-${i}`,
          endpoint_uuid: null,
          version: "0.3.4",
          endpoint_pubkey: keys.publicKey,
        }),
      });
      const body = await res.json();
      if (res.status !== 200) throw new Error(`register endpoint ${i}: HTTP ${res.status}`);
      out.push({ ...body, keys });
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, n) }, one));
  return out;
}

/**
 * Measure the service with `s.endpoints` simulated endpoints.
 *
 * @example
 * ```ts
 * await measureServiceAt({ endpoints: 2, tasks: 50, batch: 25, latencySamples: 3, hbPeriod: 5 });
 * ```
 */
export async function measureServiceAt(
  s: SvcSizes,
  prepared?: PreparedService,
): Promise<SvcRow> {
  const { home, svc, token } = prepared ?? await prepareService();
  const sim = ChildRpc.spawn(["run", "-A", `${_HERE}scale_endpoints.ts`], "simulated endpoints");
  try {
    const fx = new FuncXClient({ serviceAddress: svc.url, token });
    const functionId = await fx.registerFunction(BENCH_FUNCTION_SOURCE, BENCH_FUNCTION_NAME);
    const regs = await _register(svc.url, token, s.endpoints);
    const ids = regs.map((r) => r.endpoint_id);
    const reasons = () => {
      const why: Record<string, number> = {};
      for (const m of svc.stderr().matchAll(/disconnected \(([^:)0-9]*)([^)]*)/g)) {
        why[m[1]] = (why[m[1]] ?? 0) + 1;
        if (Deno.env.get("FX_BENCH_VERBOSE") && why[m[1]] <= 5) console.error(m[0]);
      }
      return why;
    };
    const stalled = async () =>
      `simulated endpoints: ${JSON.stringify(await sim.call("accepted"))}; service: ${
        JSON.stringify(reasons())
      } ${svc.stderr().slice(-500)}`;
    const rssBaseKb = readRss(svc.pid)?.rssKb ?? 0;
    const t0 = performance.now();
    await sim.call("connect", { registrations: regs, hbPeriod: s.hbPeriod });
    const deadline = Date.now() + 600_000;
    let accepted = 0;
    while ((accepted = (await sim.call<{ n: number }>("accepted")).n) < s.endpoints) {
      if (Date.now() > deadline) {
        throw new Error(`only ${accepted} of ${s.endpoints} endpoints were accepted in 600 s`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const connectSeconds = (performance.now() - t0) / 1000;
    const rssConnectedKb = readRss(svc.pid)?.rssKb ?? 0;

    // warm-up, then the measured run
    await _throughput(fx, functionId, ids, Math.min(500, s.tasks), s.batch, stalled);
    const db0 = _dbBytes(home);
    const cpu0 = cpuMs(svc.pid);
    const sampler = new RssSampler(() => [svc.pid], 50);
    const seconds = await _throughput(fx, functionId, ids, s.tasks, s.batch, stalled);
    sampler.stop();
    const cpu1 = cpuMs(svc.pid);
    const db1 = _dbBytes(home);
    const lat: number[] = [];
    for (let i = 0; i < s.latencySamples; i++) {
      const endpointId = ids[i % ids.length];
      const t = performance.now();
      const id = await fx.run({ functionId, endpointId });
      await _wait(fx, id);
      lat.push(performance.now() - t);
    }
    const simStats = await sim.call<{ connects: number }>("accepted");
    return {
      endpoints: s.endpoints,
      reconnects: simStats.connects - 3 * s.endpoints,
      disconnectReasons: reasons(),
      connectSeconds,
      tasks: s.tasks,
      tasksPerSecond: s.tasks / seconds,
      p50Ms: percentile(lat, 50),
      p99Ms: percentile(lat, 99),
      serviceCpuUsPerTask: ((cpu1 - cpu0) * 1000) / s.tasks,
      rssBaseKb,
      rssConnectedKb,
      rssPeakKb: sampler.peakKb(svc.pid),
      kbPerEndpoint: (rssConnectedKb - rssBaseKb) / s.endpoints,
      sqliteBytesPerTask: (db1 - db0) / s.tasks,
    };
  } finally {
    await sim.close();
    await svc.stop();
    Deno.removeSync(home, { recursive: true });
  }
}

async function _wait(fx: FuncXClient, id: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (true) {
    const o = await fx.getTask(id, { waitSeconds: 5 });
    if (!o.pending) {
      if (o.error) throw new Error(`bench: task ${id} failed: ${o.error.message}`);
      return;
    }
    if (Date.now() > deadline) throw new Error(`bench: task ${id} still ${o.status} after 60 s`);
  }
}

/** Submit `n` tasks (round robin over `endpoints`) in batches while fetching results. */
async function _throughput(
  fx: FuncXClient,
  functionId: string,
  endpoints: string[],
  n: number,
  batch: number,
  stalled: () => Promise<string>,
): Promise<number> {
  const pending = new Set<string>();
  let submitted = 0, done = 0, failed = 0, firstError = "";
  let progressAt = performance.now();
  const t0 = performance.now();
  const submitter = (async () => {
    while (submitted < n) {
      const k = Math.min(batch, n - submitted);
      const spec = Array.from({ length: k }, (_, i) => ({
        functionId,
        endpointId: endpoints[(submitted + i) % endpoints.length],
      }));
      for (const id of await fx.submit(spec)) pending.add(id);
      submitted += k;
    }
  })();
  let submitError: unknown;
  submitter.catch((e) => submitError = e);
  const deadline = Date.now() + 600_000;
  while (done < n) {
    if (submitError) throw submitError;
    if (Date.now() > deadline) throw new Error(`bench: ${n - done} of ${n} results missing`);
    if (performance.now() - progressAt > 60_000) {
      throw new Error(
        `bench: no result for 60 s, ${n - done} of ${n} missing (${await stalled()})`,
      );
    }
    const ids = [...pending].slice(0, 5000);
    let got = 0;
    if (ids.length > 0) {
      for (const [id, o] of await fx.getBatchResult(ids)) {
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
    if (got > 0) progressAt = performance.now();
    else await new Promise((r) => setTimeout(r, 5));
  }
  await submitter;
  if (failed > 0) throw new Error(`bench: ${failed} of ${n} tasks failed: ${firstError}`);
  return (performance.now() - t0) / 1000;
}

if (import.meta.main) {
  console.log(
    await measureServiceAt({
      endpoints: Number(Deno.args[0] ?? 10),
      tasks: Number(Deno.args[1] ?? 2000),
      batch: 500,
      latencySamples: 30,
      hbPeriod: 5,
    }),
  );
}

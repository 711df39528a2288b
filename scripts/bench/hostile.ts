/**
 * `deno task bench --hostile`: latency of `GET /v2/version` and of a running endpoint's
 * task round trip, idle and then while 8 unauthenticated clients (another process) flood
 * the login form with wrong passwords, printed side by side with the ratio (target ≤ 2×).
 *
 * @example
 * ```ts
 * import { measureHostile, renderHostile } from "./hostile.ts";
 * console.log(renderHostile(await measureHostile({ versionSamples: 300, taskSamples: 40 })));
 * ```
 * @module
 */
import { curveKeyPairZ85 } from "../../src/io/zmtp/mod.ts";
import { ENDPOINT_VERSION } from "../../src/config/types.ts";
import { WebServiceClient } from "../../src/registration/client.ts";
import { FuncXClient } from "../../src/sdk/client.ts";
import { BENCH_FUNCTION_NAME, BENCH_FUNCTION_SOURCE, percentile } from "./_util.ts";
import {
  BENCH_ENDPOINT,
  type EndpointProcess,
  prepareHome,
  startEndpointProcess,
} from "./endpoint_proc.ts";
import { prepareService } from "./e2e.ts";

/** Latency summary, ms. */
export interface Lat {
  n: number;
  p50: number;
  p95: number;
}

/** Result of {@linkcode measureHostile}. */
export interface HostileResult {
  clients: number;
  version: { idle: Lat; flooded: Lat };
  roundTrip: { idle: Lat; flooded: Lat };
  flood: { attempts: number; seconds: number; byStatus: Record<string, number> };
}

function _lat(v: number[]): Lat {
  return { n: v.length, p50: percentile(v, 50), p95: percentile(v, 95) };
}

async function _wait(fx: FuncXClient, id: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const o = await fx.getTask(id, { waitSeconds: 5 });
    if (!o.pending) {
      if (o.error) throw new Error(`bench: task ${id} failed: ${o.error.message}`);
      return;
    }
  }
  throw new Error(`bench: task ${id} did not finish in 60 s`);
}

/**
 * Start a service and an endpoint (1 worker), measure idle, flood, measure again.
 *
 * @example
 * ```ts
 * const r = await measureHostile({ versionSamples: 300, taskSamples: 40 });
 * ```
 */
export async function measureHostile(
  opts: { versionSamples: number; taskSamples: number; clients?: number },
): Promise<HostileResult> {
  const clients = opts.clients ?? 8;
  // with the connection gate, as a network-exposed service has it
  const { home, svc, token } = await prepareService(["--max-connections-per-address", "64"]);
  let ep: EndpointProcess | undefined;
  let flood: Deno.ChildProcess | undefined;
  try {
    prepareHome({ serviceUrl: svc.url, workers: 1, home });
    const fx = new FuncXClient({ serviceAddress: svc.url, token });
    const functionId = await fx.registerFunction(BENCH_FUNCTION_SOURCE, BENCH_FUNCTION_NAME);
    const endpointId = crypto.randomUUID();
    await new WebServiceClient(svc.url, () => Promise.resolve(token)).registerEndpoint({
      endpoint_name: BENCH_ENDPOINT,
      endpoint_uuid: endpointId,
      version: ENDPOINT_VERSION,
      endpoint_pubkey: curveKeyPairZ85().publicKey,
    }, { maxAttempts: 1 });
    ep = await startEndpointProcess({
      home,
      workers: 1,
      detached: true,
      args: ["--endpoint-uuid", endpointId, "--timeout", "300"],
      ready: async () => await _wait(fx, await fx.run({ functionId, endpointId })),
    });
    const measure = async () => {
      const version: number[] = [];
      for (let i = 0; i < opts.versionSamples; i++) {
        const t0 = performance.now();
        const r = await fetch(`${svc.url}/version`);
        await r.body?.cancel();
        version.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 5));
      }
      const trips: number[] = [];
      for (let i = 0; i < opts.taskSamples; i++) {
        const t0 = performance.now();
        await _wait(fx, await fx.run({ functionId, endpointId }));
        trips.push(performance.now() - t0);
      }
      return { version: _lat(version), trips: _lat(trips) };
    };
    for (let i = 0; i < 10; i++) await _wait(fx, await fx.run({ functionId, endpointId }));
    const idle = await measure();
    // long enough to cover the flooded measurement (same sizes as the idle one)
    const seconds = Math.max(20, Math.ceil(opts.versionSamples * 0.02 + opts.taskSamples * 0.5));
    flood = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./flood.ts", import.meta.url).pathname,
        svc.authUrl,
        String(clients),
        String(seconds),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const floodOut = flood.output();
    await new Promise((r) => setTimeout(r, 1500)); // the flood is under way
    const flooded = await measure();
    const out = await floodOut;
    flood = undefined;
    const counts = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
    return {
      clients,
      version: { idle: idle.version, flooded: flooded.version },
      roundTrip: { idle: idle.trips, flooded: flooded.trips },
      flood: counts,
    };
  } finally {
    try {
      flood?.kill("SIGKILL");
      await flood?.status;
    } catch { /* gone */ }
    await ep?.stop();
    await svc.stop();
    Deno.removeSync(home, { recursive: true });
  }
}

/**
 * The side-by-side table.
 *
 * @example
 * ```ts ignore
 * console.log(renderHostile(result));
 * ```
 */
export function renderHostile(r: HostileResult): string {
  const f = (v: number) => v.toFixed(2).padStart(8);
  const row = (name: string, idle: Lat, flooded: Lat) => {
    const ratio = flooded.p50 / idle.p50;
    return `${name.padEnd(28)} ${f(idle.p50)} ${f(flooded.p50)} ${ratio.toFixed(2).padStart(6)}×  ${
      ratio <= 2 ? "met" : "NOT met"
    }   (p95 ${idle.p95.toFixed(1)} → ${flooded.p95.toFixed(1)} ms, n=${idle.n})`;
  };
  const perSec = (r.flood.attempts / r.flood.seconds).toFixed(0);
  return [
    `hostile traffic: ${r.clients} clients posting wrong passwords to the login form`,
    `${"p50 latency, ms".padEnd(28)} ${"idle".padStart(8)} ${"flooded".padStart(8)} ${
      "ratio".padStart(6)
    }   target ≤ 2×`,
    row("GET /v2/version", r.version.idle, r.version.flooded),
    row("task round trip (endpoint)", r.roundTrip.idle, r.roundTrip.flooded),
    `flood: ${r.flood.attempts} attempts in ${r.flood.seconds} s (${perSec}/s), replies by status ${
      JSON.stringify(r.flood.byStatus)
    }`,
  ].join("\n");
}

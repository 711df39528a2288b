/**
 * Child process of `deno task bench --scale`: the real {@linkcode Interchange}, alone in its
 * process so its RSS and CPU are its own, with a provider whose one block of N nodes is
 * "run" by the simulated managers of `scale_managers.ts` (the provider hands the block's
 * command line and token to the benchmark instead of starting processes). The endpoint's
 * part is played here: tasks are submitted with `submit()` and results counted in
 * `onResults`, each stamped to measure dispatch latency. Driven over `_rpc.ts`.
 *
 * Run with `--v8-flags=--expose-gc` so memory is read after a full collection.
 *
 * @example
 * ```sh
 * deno run -A --v8-flags=--expose-gc scripts/bench/scale_interchange.ts
 * ```
 * @module
 */
import { cpuUsage } from "node:process";
import { DEFAULT_ENDPOINT_CONFIG, type EndpointConfig } from "../../src/config/types.ts";
import { createLogger } from "../../src/daemon/log.ts";
import { packTask } from "../../src/protocol/messages.ts";
import { Interchange, type InterchangeResult } from "../../src/engine/interchange.ts";
import type { BlockSpec, JobStatus, Provider } from "../../src/providers/provider.ts";
import { noopTaskBody, percentile, readRss } from "./_util.ts";
import { serveRpc } from "./_rpc.ts";

/** The block the provider was asked for: what the simulated managers need to register. */
export interface SimBlock {
  address: string;
  blockId: string;
  token: string;
  workers: number;
  nodes: number;
}

/** A provider whose blocks are run by the benchmark's simulated managers. */
class _SimProvider implements Provider {
  readonly label = "bench-sim";
  #jobs = new Map<string, JobStatus>();
  #next = 0;
  blocks: BlockSpec[] = [];
  #waiters: (() => void)[] = [];

  submit(block: BlockSpec): Promise<string> {
    const id = `sim-${this.#next++}`;
    this.#jobs.set(id, { state: "RUNNING", message: "" });
    this.blocks.push(block);
    for (const w of this.#waiters.splice(0)) w();
    return Promise.resolve(id);
  }

  status(ids: string[]): Promise<Map<string, JobStatus>> {
    return Promise.resolve(
      new Map(ids.flatMap((id) => {
        const s = this.#jobs.get(id);
        return s ? [[id, s]] : [];
      })),
    );
  }

  cancel(ids: string[]): Promise<void> {
    for (const id of ids) this.#jobs.set(id, { state: "CANCELLED", message: "" });
    return Promise.resolve();
  }

  async firstBlock(timeoutMs: number): Promise<BlockSpec> {
    const deadline = Date.now() + timeoutMs;
    while (this.blocks.length === 0) {
      if (Date.now() > deadline) throw new Error("the interchange asked for no block");
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.#waiters.push(() => (clearTimeout(t), r()));
      });
    }
    return this.blocks[0];
  }
}

const _gc = (globalThis as { gc?: () => void }).gc;

function _rssKb(): number {
  _gc?.();
  _gc?.();
  return readRss(Deno.pid)?.rssKb ?? 0;
}

function _cpuUs(): number {
  const u = cpuUsage();
  return u.user + u.system;
}

let ix: Interchange | undefined;
let provider: _SimProvider | undefined;
let dir = "";
const body = new TextEncoder().encode(noopTaskBody(0));
let seq = 0;
/** taskId → submit time (ms) */
const sentAt = new Map<string, number>();
let onResult: ((r: InterchangeResult, now: number) => void) | undefined;

function _task(now: number) {
  const taskId = `t${seq++}-${crypto.randomUUID()}`;
  sentAt.set(taskId, now);
  return { taskId, containerId: "RAW", body: packTask(taskId, "RAW", body) };
}

async function start(a: Record<string, unknown>): Promise<SimBlock & { baseRssKb: number }> {
  const nodes = a.nodes as number, workers = a.workers as number;
  dir = Deno.makeTempDirSync({ prefix: "fx-bench-scale-ix-" });
  const config: EndpointConfig = {
    ...DEFAULT_ENDPOINT_CONFIG,
    provider: {
      ...DEFAULT_ENDPOINT_CONFIG.provider,
      init_blocks: 1,
      min_blocks: 1,
      max_blocks: 1,
      nodes_per_block: nodes,
    },
    executor: {
      ...DEFAULT_ENDPOINT_CONFIG.executor,
      max_workers_per_node: workers,
      heartbeat_period: a.hbPeriod as number,
      heartbeat_threshold: Math.max(120, (a.hbPeriod as number) * 4),
      max_idletime: 3600,
    },
  };
  provider = new _SimProvider();
  ix = new Interchange({
    endpointDir: dir,
    endpointId: "bench-scale",
    config,
    log: createLogger({ level: "warn" }),
    provider,
    workerScript: "/nonexistent/bench-sim-managers-run-no-worker.py",
    selfCommand: { cmd: "bench-sim", args: [] },
    onResults: (rs) => {
      const now = performance.now();
      for (const r of rs) onResult?.(r, now);
    },
  });
  const baseRssKb = _rssKb();
  await ix.start();
  const b = await provider.firstBlock(30_000);
  const flag = (f: string) => b.command[b.command.indexOf(f) + 1];
  return {
    address: flag("--task-url"),
    blockId: b.blockId,
    token: b.env?.FUNCX_MANAGER_TOKEN ?? "",
    workers,
    nodes: b.nodes,
    baseRssKb,
  };
}

async function waitRegistered(a: Record<string, unknown>): Promise<{ ms: number }> {
  const n = a.n as number, t0 = performance.now();
  const deadline = t0 + (a.timeoutMs as number ?? 300_000);
  while (ix!.status().managers.length < n) {
    if (performance.now() > deadline) {
      throw new Error(`only ${ix!.status().managers.length} of ${n} managers registered`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return { ms: performance.now() - t0 };
}

/** Closed loop: `concurrency` tasks in flight until `tasks` have come back. */
function run(a: Record<string, unknown>) {
  const tasks = a.tasks as number, concurrency = a.concurrency as number;
  const batch = Math.max(1, Math.min(256, a.batch as number ?? 64));
  const lat: number[] = [];
  let submitted = 0, done = 0, failed = 0;
  const cpu0 = _cpuUs();
  const t0 = performance.now();
  return new Promise<Record<string, number>>((resolve) => {
    let owed = 0;
    const top = () => {
      // refill in batches, as the endpoint hands the interchange what the forwarder sent
      while (owed >= batch || (owed > 0 && submitted + owed >= tasks)) {
        const n = Math.min(owed, tasks - submitted);
        owed -= n;
        if (n <= 0) break;
        const now = performance.now();
        const ts = [];
        for (let i = 0; i < n; i++) ts.push(_task(now));
        submitted += n;
        ix!.submit(ts);
      }
    };
    onResult = (r, now) => {
      const s = sentAt.get(r.taskId);
      if (s === undefined) return;
      sentAt.delete(r.taskId);
      if (r.lost) failed++;
      lat.push(now - s);
      done++;
      if (submitted + owed < tasks) owed++;
      if (done === tasks) {
        const seconds = (performance.now() - t0) / 1000;
        onResult = undefined;
        resolve({
          tasks,
          failed,
          seconds,
          tasksPerSecond: tasks / seconds,
          p50: percentile(lat, 50),
          p99: percentile(lat, 99),
          cpuUsPerTask: (_cpuUs() - cpu0) / tasks,
        });
      } else top();
    };
    owed = Math.min(concurrency, tasks);
    top();
  });
}

/** Sequential single-task round trips. */
async function latency(a: Record<string, unknown>) {
  const n = a.samples as number;
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const got = new Promise<number>((resolve) => {
      onResult = (r, now) => {
        const s = sentAt.get(r.taskId);
        if (s === undefined) return;
        sentAt.delete(r.taskId);
        resolve(now - s);
      };
    });
    ix!.submit([_task(performance.now())]);
    lat.push(await got);
  }
  onResult = undefined;
  return { samples: n, p50: percentile(lat, 50), p99: percentile(lat, 99) };
}

/** CPU used while idle (heartbeats, strategy ticks) over `seconds`. */
async function idle(a: Record<string, unknown>) {
  const seconds = a.seconds as number;
  const c0 = _cpuUs(), t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const s = (performance.now() - t0) / 1000;
  return { seconds: s, cpuMsPerSecond: (_cpuUs() - c0) / 1000 / s };
}

if (import.meta.main) {
  await serveRpc({
    start,
    waitRegistered,
    run,
    latency,
    idle,
    rss: () => ({ rssKb: _rssKb() }),
    stop: async () => {
      await ix?.stop();
      ix = undefined;
      if (dir) Deno.removeSync(dir, { recursive: true });
      dir = "";
    },
    exit: async () => {
      await ix?.stop();
      if (dir) Deno.removeSync(dir, { recursive: true });
    },
  });
}

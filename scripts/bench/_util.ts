/**
 * Shared helpers of the benchmark (`deno task bench`): no-op task payloads in the
 * upstream format, RSS readings from `/proc`, percentiles, process discovery.
 *
 * @example
 * ```ts
 * import { noopTaskBody, percentile, readRss } from "./_util.ts";
 * const body = noopTaskBody(0); // "<len>\n03\n..." — fn, args, kwargs packed buffers
 * percentile([1, 2, 3, 4], 50); // 2
 * readRss(Deno.pid); // { rssKb, hwmKb }
 * ```
 * @module
 */
import {
  buildTaskPayload,
  serializeData,
  serializeSource,
  tuple,
} from "../../src/protocol/serialize.ts";

/** Source of the no-op function the benchmark runs (optionally sleeping `ms`). */
export const BENCH_FUNCTION_SOURCE =
  "def bench_noop(ms=0):\n    if ms:\n        import time\n        time.sleep(ms / 1000.0)\n    return None\n";

/** Name of the function in {@linkcode BENCH_FUNCTION_SOURCE}. */
export const BENCH_FUNCTION_NAME = "bench_noop";

/**
 * The task body (packed fn/args/kwargs buffers, as the service stores it) of one
 * no-op task whose body sleeps `sleepMs` milliseconds (0 = return right away).
 *
 * @example
 * ```ts
 * const body = noopTaskBody(10); // sleeps 10 ms in the worker
 * ```
 */
export function noopTaskBody(sleepMs: number): string {
  return buildTaskPayload(
    serializeSource(BENCH_FUNCTION_NAME, BENCH_FUNCTION_SOURCE),
    serializeData(sleepMs > 0 ? tuple(sleepMs) : tuple()),
    serializeData({}),
  );
}

/** Resident set sizes of a process, in KiB. */
export interface Rss {
  /** Current resident set size (`VmRSS`). */
  rssKb: number;
  /** Peak resident set size (`VmHWM`). */
  hwmKb: number;
}

/**
 * `VmRSS` and `VmHWM` of `pid` from `/proc/<pid>/status`, or `null` once it is gone.
 *
 * @example
 * ```ts
 * readRss(Deno.pid)?.hwmKb;
 * ```
 */
export function readRss(pid: number): Rss | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/status`);
  } catch {
    return null;
  }
  const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  const hwm = /^VmHWM:\s+(\d+)\s+kB/m.exec(text);
  if (!rss || !hwm) return null;
  return { rssKb: Number(rss[1]), hwmKb: Number(hwm[1]) };
}

/**
 * Follow the peak RSS of processes while something runs: samples every `everyMs`
 * and keeps the largest `VmRSS` seen per pid and the last `VmHWM`.
 *
 * @example
 * ```ts ignore
 * const s = new RssSampler(() => [daemonPid], 50);
 * // ... load ...
 * s.stop(); s.peakKb(daemonPid);
 * ```
 */
export class RssSampler {
  #peak = new Map<number, number>();
  #timer: ReturnType<typeof setInterval>;
  #pids: () => number[];

  /** @param pids the pids to sample (called at every tick), @param everyMs interval */
  constructor(pids: () => number[], everyMs = 50) {
    this.#pids = pids;
    this.sample();
    this.#timer = setInterval(() => this.sample(), everyMs);
  }

  /** Take one sample now. */
  sample(): void {
    for (const pid of this.#pids()) {
      const r = readRss(pid);
      if (!r) continue;
      const m = Math.max(r.rssKb, r.hwmKb, this.#peak.get(pid) ?? 0);
      this.#peak.set(pid, m);
    }
  }

  /** Stop sampling (takes a last sample). */
  stop(): void {
    this.sample();
    clearInterval(this.#timer);
  }

  /** Peak seen for `pid` in KiB (0 if never seen). */
  peakKb(pid: number): number {
    return this.#peak.get(pid) ?? 0;
  }
}

/**
 * The `p`-th percentile (nearest rank) of `values`.
 *
 * @example
 * ```ts
 * percentile([5, 1, 3], 50); // 3
 * ```
 */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))];
}

/**
 * Pids of the `funcx-endpoint manager` processes whose `--logdir` lies below `dir`.
 *
 * @example
 * ```ts
 * findManagerPids("/tmp/home/default"); // [12345]
 * ```
 */
export function findManagerPids(dir: string): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    let argv: string[];
    try {
      argv = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
    } catch {
      continue;
    }
    const i = argv.indexOf("--logdir");
    if (argv.includes("manager") && i >= 0 && (argv[i + 1] ?? "").startsWith(dir)) {
      out.push(Number(e.name));
    }
  }
  return out;
}

/**
 * Pids of the children (python3 workers) of `pid`.
 *
 * @example
 * ```ts ignore
 * childPids(managerPid).length; // number of workers
 * ```
 */
export function childPids(pid: number): number[] {
  // (the children file of one thread misses children spawned from other threads)
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const text = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const ppid = Number(text.slice(text.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(e.name));
    } catch { /* gone */ }
  }
  return out;
}

/**
 * Round `v` to `digits` decimals (NaN/Infinity become `null` for JSON).
 *
 * @example
 * ```ts
 * round(3.14159, 2); // 3.14
 * ```
 */
export function round(v: number, digits = 1): number | null {
  if (!Number.isFinite(v)) return null;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/**
 * Wait until `cond()` is true, checking every `everyMs`; throws `what` after `timeoutMs`.
 *
 * @example
 * ```ts ignore
 * await waitFor(() => done === n, 60_000, "all results");
 * ```
 */
export async function waitFor(
  cond: () => boolean,
  timeoutMs: number,
  what: string,
  everyMs = 5,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) {
      throw new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * CPU time (user + system) used so far by `pid`, in milliseconds (`/proc/<pid>/stat`,
 * 100 ticks/s); 0 when the process is gone.
 *
 * @example
 * ```ts
 * cpuMs(Deno.pid);
 * ```
 */
export function cpuMs(pid: number): number {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // fields after the ")" of the command name; utime and stime are fields 14 and 15
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) * 10;
  } catch {
    return 0;
  }
}

/**
 * Snapshot the CPU time of named groups of processes; `since(prev, tasks)` turns two
 * snapshots into microseconds of CPU per task for each group.
 *
 * @example
 * ```ts ignore
 * const groups = () => ({ daemon: [pid], workers: childPids(manager) });
 * const a = cpuSnapshot(groups());
 * // ... run n tasks ...
 * cpuPerTask(a, cpuSnapshot(groups()), n); // { daemon: 120, workers: 45 }
 * ```
 */
export function cpuSnapshot(groups: Record<string, number[]>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, pids] of Object.entries(groups)) {
    out[name] = pids.reduce((n, p) => n + cpuMs(p), 0);
  }
  return out;
}

/**
 * Microseconds of CPU per task between two {@linkcode cpuSnapshot}s.
 *
 * @example
 * ```ts
 * cpuPerTask({ daemon: 100 }, { daemon: 300 }, 1000); // { daemon: 200 }
 * ```
 */
export function cpuPerTask(
  before: Record<string, number>,
  after: Record<string, number>,
  tasks: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(after)) {
    out[k] = Math.round(((after[k] - (before[k] ?? 0)) * 1000) / Math.max(1, tasks));
  }
  return out;
}

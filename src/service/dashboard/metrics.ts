/**
 * Chart series of the dashboard, computed from data (no I/O): per endpoint, over a window
 * cut into equal buckets, the finished tasks per second, the latency percentiles (received
 * to finished) of the tasks finished in each bucket, and the busy/total workers of the
 * endpoint's status reports.
 *
 * @example
 * ```ts
 * import { endpointSeries } from "./metrics.ts";
 * const s = endpointSeries({
 *   now: 3600, window: 3600, step: 60,
 *   finished: [{ created_at: 3500, finished_at: 3550, status: "success" }],
 *   reports: [{ ts: 3590, info: { total_workers: 4, idle_workers: 1 } }],
 * });
 * s.tasksPerSecond.at(-1); // 1 / 60
 * ```
 * @module
 */

/** Series of one endpoint. */
export interface EndpointSeries {
  /** Start of the first bucket, epoch seconds. */
  start: number;
  /** Bucket width, seconds. */
  step: number;
  /** Finished tasks per second, per bucket. */
  tasksPerSecond: number[];
  /** Failed tasks per bucket. */
  failed: number[];
  /** Latency percentiles (seconds, received → finished) per bucket; null without tasks. */
  latency: { p50: (number | null)[]; p90: (number | null)[]; p99: (number | null)[] };
  /** Workers from the status reports, in time order. */
  workers: { t: number; busy: number; total: number }[];
}

/**
 * The `q` quantile (0..1) of sorted numbers, nearest rank; null when empty.
 *
 * @example
 * ```ts
 * percentile([1, 2, 3, 4], 0.5); // 2
 * ```
 */
export function percentile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1];
}

function _num(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) ? v : 0;
}

/**
 * The series of one endpoint.
 *
 * @example
 * ```ts
 * endpointSeries({ now: 60, window: 60, step: 60, finished: [], reports: [] }).tasksPerSecond; // [0]
 * ```
 */
export function endpointSeries(d: {
  now: number;
  window: number;
  step: number;
  finished: readonly { created_at: number; finished_at: number; status: string }[];
  reports: readonly { ts: number; info: unknown }[];
}): EndpointSeries {
  const n = Math.max(1, Math.ceil(d.window / d.step));
  const start = d.now - n * d.step;
  const counts = new Array<number>(n).fill(0);
  const failed = new Array<number>(n).fill(0);
  const lat: number[][] = Array.from({ length: n }, () => []);
  for (const t of d.finished) {
    const i = Math.floor((t.finished_at - start) / d.step);
    if (i < 0 || i >= n) continue;
    counts[i]++;
    if (t.status === "failed") failed[i]++;
    lat[i].push(Math.max(0, t.finished_at - t.created_at));
  }
  for (const l of lat) l.sort((a, b) => a - b);
  const workers = d.reports
    .filter((r) => r.ts >= start && r.ts <= d.now)
    .map((r) => {
      const info = (r.info ?? {}) as Record<string, unknown>;
      const total = _num(info.total_workers);
      return { t: r.ts, total, busy: Math.max(0, total - _num(info.idle_workers)) };
    });
  return {
    start,
    step: d.step,
    tasksPerSecond: counts.map((c) => c / d.step),
    failed,
    latency: {
      p50: lat.map((l) => percentile(l, 0.5)),
      p90: lat.map((l) => percentile(l, 0.9)),
      p99: lat.map((l) => percentile(l, 0.99)),
    },
    workers,
  };
}

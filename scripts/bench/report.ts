/**
 * Turn the raw measurements of `deno task bench` into `bench/results.json` (every figure,
 * ratios, targets, pass/fail) and the printed table.
 *
 * @example
 * ```ts ignore
 * import { buildReport, renderTable } from "./report.ts";
 * const report = buildReport({
 *   sizes, machine, limits, limitSleep, main, scaling, e2e, loadEnd, prefetch, binary, seconds,
 * });
 * console.log(renderTable(report));
 * ```
 * @module
 */
import Table from "cli-table3";
import type { EndpointMemory, EndpointRun } from "./endpoint_only.ts";
import type { EndToEndResult } from "./e2e.ts";
import type { MachineInfo } from "./machine.ts";
import { percentile, round } from "./_util.ts";

/** Sizes of one benchmark run. */
export interface Sizes {
  mode: "quick" | "full" | "tiny";
  workers: number;
  tasks: number;
  scalingTasks: number;
  sleepTasksPerWorker: number;
  queueTasks: number;
  latencyTasks: number;
  /** Sequential round trips through the endpoint alone (test-side forwarder). */
  endpointLatencyTasks: number;
  batch: number;
  limitTasks: number;
}

/** Targets of issue 6 (2-core machine). */
export const TARGETS = {
  endpoint_only_ratio_min: 0.6,
  endpoint_only_tasks_per_second_min: 5000,
  end_to_end_tasks_per_second_min: 2000,
  latency_p50_ms_max: 5,
  latency_p99_ms_max: 20,
  startup_seconds_max: 1.5,
  daemon_idle_mb_max: 80,
  daemon_queued_mb_max: 150,
} as const;

/** Inputs of {@linkcode buildReport}. */
export interface ReportInput {
  sizes: Sizes;
  machine: MachineInfo;
  /** W → limit tasks/s (no-op). */
  limits: Map<number, number>;
  /** W → limit tasks/s (10 ms body). */
  limitSleep: Map<number, number>;
  /** The main endpoint-only measurement (W workers). */
  main: {
    startupSeconds: number;
    run: EndpointRun;
    memory: EndpointMemory;
    /** Sequential round trips through the endpoint alone (ms). */
    latencyMs: number[];
    /** CPU of the idle processes, % of one core. */
    idleCpuPercent: Record<string, number>;
  };
  scaling: (EndpointRun & { workers: number })[];
  e2e: EndToEndResult;
  /** Load averages at the end. */
  loadEnd: number[];
  prefetch: number | null;
  /** The compiled executable the endpoint ran from (`null`: `deno run main.ts`). */
  binary: string | null;
  seconds: number;
}

const _mb = (kb: number) => round(kb / 1024, 1);

/** The JSON report (shape of `bench/results.json`). */
export type Report = ReturnType<typeof buildReport>;

/**
 * Build the report object.
 *
 * @example
 * ```ts ignore
 * const r = buildReport(input); r.endpoint_only.ratio_to_limit;
 * ```
 */
export function buildReport(i: ReportInput) {
  const W = i.sizes.workers;
  const limit = i.limits.get(W)!;
  const mainRun = i.main.run;
  const mem = i.main.memory;
  const scaling = [];
  for (const run of [...i.scaling].sort((a, b) => a.workers - b.workers || a.sleepMs - b.sleepMs)) {
    const w = run.workers;
    const lim = run.sleepMs === 0 ? i.limits.get(w)! : i.limitSleep.get(w)!;
    // worker-time per task (ms) minus the body = what the pipeline adds per task
    const perTaskMs = (w * 1000) / run.tasksPerSecond;
    scaling.push({
      workers: w,
      sleep_ms: run.sleepMs,
      tasks: run.tasks,
      tasks_per_second: round(run.tasksPerSecond, 0),
      limit_tasks_per_second: round(lim, 0),
      ratio_to_limit: round(run.tasksPerSecond / lim, 3),
      ideal_tasks_per_second: run.sleepMs > 0 ? round((w * 1000) / run.sleepMs, 0) : null,
      overhead_ms_per_task: round(perTaskMs - run.sleepMs, 3),
      cpu_us_per_task: run.cpuUsPerTask,
    });
  }
  const eo = {
    workers: W,
    tasks: mainRun.tasks,
    seconds: round(mainRun.seconds, 3),
    tasks_per_second: round(mainRun.tasksPerSecond, 0),
    ratio_to_limit: round(mainRun.tasksPerSecond / limit, 3),
    cpu_us_per_task: mainRun.cpuUsPerTask,
    prefetch_capacity: i.prefetch,
  };
  const e2e = {
    workers: W,
    tasks: i.e2e.tasks,
    batch: i.e2e.batch,
    seconds: round(i.e2e.seconds, 3),
    tasks_per_second: round(i.e2e.tasksPerSecond, 0),
    ratio_to_limit: round(i.e2e.tasksPerSecond / limit, 3),
  };
  const lat = i.e2e.latencyMs;
  const latency_ms = {
    n: lat.n,
    p50: round(lat.p50, 2),
    p95: round(lat.p95, 2),
    p99: round(lat.p99, 2),
    mean: round(lat.mean, 2),
    max: round(lat.max, 2),
  };
  const memory_mb = {
    daemon_idle: _mb(mem.daemonIdleKb),
    daemon_queued_peak: _mb(mem.daemonQueuedPeakKb),
    queued_tasks: mem.queued,
    manager_idle: _mb(mem.managerIdleKb),
    manager_queued_peak: _mb(mem.managerQueuedPeakKb),
    service_idle: _mb(i.e2e.memory.serviceIdleKb),
    service_peak: _mb(i.e2e.memory.servicePeakKb),
    daemon_e2e_peak: _mb(i.e2e.memory.daemonPeakKb),
    manager_e2e_peak: _mb(i.e2e.memory.managerPeakKb),
  };
  const startup = {
    cli_start_seconds: round(i.e2e.startupSeconds, 3),
    foreground_seconds: round(i.main.startupSeconds, 3),
  };
  const pass = {
    endpoint_only_ratio: eo.ratio_to_limit !== null &&
      eo.ratio_to_limit >= TARGETS.endpoint_only_ratio_min,
    endpoint_only_tasks_per_second: (eo.tasks_per_second ?? 0) >=
      TARGETS.endpoint_only_tasks_per_second_min,
    end_to_end_tasks_per_second: (e2e.tasks_per_second ?? 0) >=
      TARGETS.end_to_end_tasks_per_second_min,
    latency_p50: (latency_ms.p50 ?? Infinity) <= TARGETS.latency_p50_ms_max,
    latency_p99: (latency_ms.p99 ?? Infinity) <= TARGETS.latency_p99_ms_max,
    startup: (startup.cli_start_seconds ?? Infinity) <= TARGETS.startup_seconds_max,
    daemon_idle_memory: (memory_mb.daemon_idle ?? Infinity) <= TARGETS.daemon_idle_mb_max,
    daemon_queued_memory: (memory_mb.daemon_queued_peak ?? Infinity) <=
      TARGETS.daemon_queued_mb_max,
  };
  return {
    date: new Date().toISOString(),
    mode: i.sizes.mode,
    machine: { ...i.machine, loadavg_end: i.loadEnd },
    sizes: i.sizes,
    bench_seconds: round(i.seconds, 1),
    endpoint_program: i.binary ?? "deno run main.ts",
    limit: {
      workers: W,
      tasks_per_second: round(limit, 0),
      by_workers: Object.fromEntries([...i.limits].map(([w, v]) => [String(w), round(v, 0)])),
      sleep_10ms_by_workers: Object.fromEntries(
        [...i.limitSleep].map(([w, v]) => [String(w), round(v, 0)]),
      ),
    },
    endpoint_only: eo,
    end_to_end: e2e,
    latency_ms,
    endpoint_only_latency_ms: {
      n: i.main.latencyMs.length,
      p50: round(percentile(i.main.latencyMs, 50), 2),
      p95: round(percentile(i.main.latencyMs, 95), 2),
      p99: round(percentile(i.main.latencyMs, 99), 2),
    },
    idle_cpu_percent_of_core: i.main.idleCpuPercent,
    startup_seconds: startup,
    memory_mb,
    scaling,
    targets: TARGETS,
    pass,
  };
}

const _f = (v: number | null, digits = 0) =>
  v === null ? "n/a" : v.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
const _ok = (b: boolean) => (b ? "yes" : "NO");

/** The body rows shared by {@linkcode renderTable} and {@linkcode renderMarkdown}. */
function _rows(r: Report): string[][] {
  const T = r.targets;
  const W = r.limit.workers;
  return [
    [
      "1",
      `limit: worker loop, W=${W}`,
      `${_f(r.limit.tasks_per_second)} tasks/s`,
      "ceiling",
      "1.00",
      "",
    ],
    [
      "2",
      `endpoint-only, ${_f(r.endpoint_only.tasks)} no-op tasks, W=${W}`,
      `${_f(r.endpoint_only.tasks_per_second)} tasks/s`,
      `≥ ${_f(T.endpoint_only_tasks_per_second_min)}/s and ≥ ${
        T.endpoint_only_ratio_min * 100
      }% of (1)`,
      `${_f(r.endpoint_only.ratio_to_limit, 3)} of (1)`,
      _ok(r.pass.endpoint_only_tasks_per_second && r.pass.endpoint_only_ratio),
    ],
    [
      "3",
      `end-to-end via HTTP, ${_f(r.end_to_end.tasks)} tasks, batches of ${r.end_to_end.batch}`,
      `${_f(r.end_to_end.tasks_per_second)} tasks/s`,
      `≥ ${_f(T.end_to_end_tasks_per_second_min)}/s`,
      `${_f(r.end_to_end.ratio_to_limit, 3)} of (1)`,
      _ok(r.pass.end_to_end_tasks_per_second),
    ],
    [
      "4",
      `latency, ${r.latency_ms.n} sequential round trips`,
      `p50 ${_f(r.latency_ms.p50, 1)} / p95 ${_f(r.latency_ms.p95, 1)} / p99 ${
        _f(r.latency_ms.p99, 1)
      } ms`,
      `p50 ≤ ${T.latency_p50_ms_max} ms, p99 ≤ ${T.latency_p99_ms_max} ms`,
      `endpoint-only p50 ${_f(r.endpoint_only_latency_ms.p50, 1)} / p99 ${
        _f(r.endpoint_only_latency_ms.p99, 1)
      } ms`,
      _ok(r.pass.latency_p50 && r.pass.latency_p99),
    ],
    [
      "5",
      "start-up: `start` → connected, worker ready",
      `${_f(r.startup_seconds.cli_start_seconds, 2)} s`,
      `≤ ${T.startup_seconds_max} s`,
      `foreground: ${_f(r.startup_seconds.foreground_seconds, 2)} s`,
      _ok(r.pass.startup),
    ],
    [
      "6",
      "daemon RSS idle",
      `${_f(r.memory_mb.daemon_idle, 1)} MB`,
      `≤ ${T.daemon_idle_mb_max} MB`,
      `manager idle ${_f(r.memory_mb.manager_idle, 1)} MB; idle CPU daemon ${
        _f(r.idle_cpu_percent_of_core.daemon ?? null, 1)
      }%, manager ${_f(r.idle_cpu_percent_of_core.manager ?? null, 1)}% of a core`,
      _ok(r.pass.daemon_idle_memory),
    ],
    [
      "6",
      `daemon peak RSS, ${_f(r.memory_mb.queued_tasks)} tasks queued`,
      `${_f(r.memory_mb.daemon_queued_peak, 1)} MB`,
      `≤ ${T.daemon_queued_mb_max} MB`,
      `manager peak ${_f(r.memory_mb.manager_queued_peak, 1)} MB`,
      _ok(r.pass.daemon_queued_memory),
    ],
    [
      "6",
      "service RSS idle / peak during (3)",
      `${_f(r.memory_mb.service_idle, 1)} / ${_f(r.memory_mb.service_peak, 1)} MB`,
      "reported",
      `daemon peak during (3) ${_f(r.memory_mb.daemon_e2e_peak, 1)} MB`,
      "",
    ],
    ...r.scaling.map((s) => [
      "7",
      `endpoint-only W=${s.workers}, body ${s.sleep_ms} ms, ${_f(s.tasks)} tasks`,
      `${_f(s.tasks_per_second)} tasks/s`,
      s.ideal_tasks_per_second === null ? "curve" : `ideal ${_f(s.ideal_tasks_per_second)}/s`,
      `${_f(s.ratio_to_limit, 3)} of limit ${_f(s.limit_tasks_per_second)}/s, +${
        _f(s.overhead_ms_per_task, 2)
      } ms/task`,
      "",
    ]),
  ];
}

const _HEAD = ["#", "figure", "measured", "target", "ratio / note", "met"];

/**
 * The printed table (plain text, no colours).
 *
 * @example
 * ```ts ignore
 * console.log(renderTable(report));
 * ```
 */
export function renderTable(r: Report): string {
  const t = new Table({ head: _HEAD, style: { head: [], border: [] } });
  t.push(..._rows(r));
  const m = r.machine;
  return [
    `funcx-endpoint benchmark (${r.mode}), ${r.date}`,
    `machine: ${m.cores} cores, ${m.arch}, ${m.cpu}; ${m.kernel}; deno ${m.deno}, python ${m.python}, libzmq ${m.libzmq}`,
    `endpoint program: ${r.endpoint_program}; load average at start ${
      m.loadavg.map((x) => x.toFixed(2)).join(" ")
    }, at end ${m.loadavg_end.map((x) => x.toFixed(2)).join(" ")}`,
    t.toString(),
  ].join("\n");
}

/**
 * The report as a Markdown table (for the README's Performance section).
 *
 * @example
 * ```ts ignore
 * console.log(renderMarkdown(report));
 * ```
 */
export function renderMarkdown(r: Report): string {
  const m = r.machine;
  const rows = [_HEAD, ..._rows(r)];
  const line = (cells: string[]) => `| ${cells.map((c) => c.replace(/\|/g, "\\|")).join(" | ")} |`;
  return [
    `Run of ${r.date} (${r.mode}), endpoint program: ${r.endpoint_program}. Machine: ${m.cores} cores, ` +
    `\`uname -m\` ${m.arch}, ${m.cpu}, ${m.kernel}; deno ${m.deno}, python ${m.python}, ` +
    `libzmq ${m.libzmq}. Load average at start ${
      m.loadavg.map((x) => x.toFixed(1)).join(" / ")
    }, ` +
    `at end ${m.loadavg_end.map((x) => x.toFixed(1)).join(" / ")}.`,
    "",
    line(rows[0]),
    line(rows[0].map(() => "---")),
    ...rows.slice(1).map(line),
  ].join("\n");
}

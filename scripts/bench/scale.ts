/**
 * `deno task bench --scale [--quick] [--managers LIST] [--endpoints LIST] [--out FILE]`:
 * how the interchange's cost grows with the number of managers (N = 1 … 2,048, 64 workers
 * each) and the service's with the number of endpoints (E = 1 … 1,000), measured in one
 * run on loopback with simulated managers and endpoints that speak the real protocols over
 * the real transport (`scale_ix.ts`, `scale_svc.ts`). Prints a table with the targets of
 * issue 18 as ratios within the run, writes every figure to `bench/scale.json` and a chart
 * of throughput and p99 latency against N to `bench/scale.svg`.
 *
 * @example
 * ```sh
 * deno task bench --scale            # N = 1, 16, 128, 1024, 2048; E = 1, 100, 1000
 * deno task bench --scale --quick    # N = 1, 16, 128; E = 1, 100 (smoke run)
 * ```
 * @module
 */
import { parseArgs } from "node:util";
import { dirname } from "node:path";
import { machineInfo } from "./machine.ts";
import { round } from "./_util.ts";
import { type IxRow, type IxSizes, measureInterchangeAt } from "./scale_ix.ts";
import { measureServiceAt, type SvcRow, type SvcSizes } from "./scale_svc.ts";
import { scaleChartSvg } from "./scale_chart.ts";

const USAGE =
  "usage: deno task bench --scale [--quick] [--managers N,N,...] [--endpoints N,N,...] [--workers W] [--out FILE]";

/** A row that could not be measured, with why. */
interface Failed {
  n: number;
  error: string;
}

/** The sizes of one run. */
export interface ScaleSizes {
  mode: "quick" | "full";
  managers: number[];
  endpoints: number[];
  ix: Omit<IxSizes, "managers">;
  svc: Omit<SvcSizes, "endpoints">;
}

function _sizes(quick: boolean, workers: number): ScaleSizes {
  return quick
    ? {
      mode: "quick",
      managers: [1, 16, 128],
      endpoints: [1, 100],
      ix: {
        workers,
        tasks: 5000,
        concurrency: 2048,
        latencySamples: 100,
        idleSeconds: 2,
        hbPeriod: 1,
      },
      svc: { tasks: 2000, batch: 500, latencySamples: 30, hbPeriod: 5 },
    }
    : {
      mode: "full",
      managers: [1, 16, 128, 1024, 2048],
      endpoints: [1, 100, 1000],
      ix: {
        workers,
        tasks: 20_000,
        concurrency: 4096,
        latencySamples: 300,
        idleSeconds: 5,
        hbPeriod: 1,
      },
      svc: { tasks: 5000, batch: 500, latencySamples: 100, hbPeriod: 5 },
    };
}

function _list(v: string | undefined, flag: string, max: number): number[] | undefined {
  if (v === undefined) return undefined;
  const out = v.split(",").map((s) => Number(s.trim()));
  if (out.length === 0 || out.some((n) => !Number.isInteger(n) || n < 1 || n > max)) {
    throw new Error(`${flag}: "${v}" is not a comma-separated list of integers from 1 to ${max}`);
  }
  return [...new Set(out)].sort((a, b) => a - b);
}

/** Ratios against the targets of issue 18 (null when the run lacks the figures). */
export function scaleTargets(ix: IxRow[], svc: SvcRow[]) {
  const base = ix.find((r) => r.managers === 16) ?? ix[0];
  const top = ix[ix.length - 1];
  const sBase = svc[0], sTop = svc[svc.length - 1];
  const ratio = (a?: number, b?: number) => (a !== undefined && b ? a / b : null);
  const t = {
    interchange_base_managers: base?.managers ?? null,
    interchange_top_managers: top?.managers ?? null,
    interchange_throughput_ratio: ratio(top?.tasksPerSecond, base?.tasksPerSecond),
    interchange_p99_ratio: ratio(top?.p99Ms, base?.p99Ms),
    interchange_loaded_p99_ratio: ratio(top?.loadedP99Ms, base?.loadedP99Ms),
    interchange_kib_per_manager: top ? top.kbPerManager : null,
    service_base_endpoints: sBase?.endpoints ?? null,
    service_top_endpoints: sTop?.endpoints ?? null,
    service_throughput_ratio: ratio(sTop?.tasksPerSecond, sBase?.tasksPerSecond),
    service_kib_per_endpoint: sTop ? sTop.kbPerEndpoint : null,
  };
  const ok = (v: number | null, f: (v: number) => boolean) => v === null ? null : f(v);
  return {
    ...t,
    pass: {
      interchange_throughput: ok(t.interchange_throughput_ratio, (v) => v >= 0.8),
      interchange_p99: ok(t.interchange_p99_ratio, (v) => v <= 2),
      interchange_memory: ok(t.interchange_kib_per_manager, (v) => v <= 64),
      service_throughput: ok(t.service_throughput_ratio, (v) => v >= 0.8),
      service_memory: ok(t.service_kib_per_endpoint, (v) => v <= 64),
    },
  };
}

function _fmt(v: number | null | undefined, d = 1): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "-";
  return v >= 100 ? Math.round(v).toLocaleString("en-US") : String(round(v, d));
}

function _table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => "| " + r.map((c, i) => c.padStart(w[i])).join(" | ") + " |";
  return [line(head), "|" + w.map((n) => "-".repeat(n + 2)).join("|") + "|", ...rows.map(line)]
    .join("\n");
}

/** The terminal (and Markdown) tables of a report. */
export function renderScale(r: ReturnType<typeof buildScaleReport>): string {
  const ix = _table(
    [
      "managers",
      "register s",
      "tasks/s",
      "p50 ms",
      "p99 ms",
      "loaded p50",
      "loaded p99",
      "CPU µs/task",
      "KiB/manager",
      "idle CPU ms/s",
    ],
    [
      ...r.interchange.map((x) => [
        String(x.managers),
        _fmt(x.registerSeconds, 2),
        _fmt(x.tasksPerSecond),
        _fmt(x.p50Ms, 2),
        _fmt(x.p99Ms, 2),
        _fmt(x.loadedP50Ms),
        _fmt(x.loadedP99Ms),
        _fmt(x.cpuUsPerTask),
        _fmt(x.kbPerManager),
        _fmt(x.idleCpuMsPerSecond),
      ]),
      ...r.interchange_failed.map((f) =>
        [String(f.n), `failed: ${f.error.slice(0, 60)}`]
          .concat(Array(8).fill(""))
      ),
    ],
  );
  const svc = _table(
    [
      "endpoints",
      "connect s",
      "tasks/s",
      "p50 ms",
      "p99 ms",
      "CPU µs/task",
      "KiB/endpoint",
      "peak RSS MiB",
      "SQLite B/task",
      "reconnects",
    ],
    [
      ...r.service.map((x) => [
        String(x.endpoints),
        _fmt(x.connectSeconds, 2),
        _fmt(x.tasksPerSecond),
        _fmt(x.p50Ms, 2),
        _fmt(x.p99Ms, 2),
        _fmt(x.serviceCpuUsPerTask),
        _fmt(x.kbPerEndpoint),
        _fmt(x.rssPeakKb / 1024),
        _fmt(x.sqliteBytesPerTask),
        String(x.reconnects),
      ]),
      ...r.service_failed.map((f) =>
        [String(f.n), `failed: ${f.error.slice(0, 60)}`]
          .concat(Array(8).fill(""))
      ),
    ],
  );
  const t = r.targets;
  const mark = (p: boolean | null) => p === null ? "n/a" : p ? "pass" : "FAIL";
  const targets = _table(
    ["target (issue 18)", "measured", ""],
    [
      [
        `interchange tasks/s at ${t.interchange_top_managers} ≥ 80 % of ${t.interchange_base_managers}`,
        `${_fmt((t.interchange_throughput_ratio ?? NaN) * 100)} %`,
        mark(t.pass.interchange_throughput),
      ],
      [
        `p99 dispatch latency at ${t.interchange_top_managers} ≤ 2 × ${t.interchange_base_managers}`,
        `${_fmt(t.interchange_p99_ratio, 2)} ×`,
        mark(t.pass.interchange_p99),
      ],
      [
        "interchange memory ≤ 64 KiB per manager",
        `${_fmt(t.interchange_kib_per_manager)} KiB`,
        mark(t.pass.interchange_memory),
      ],
      [
        `service tasks/s at ${t.service_top_endpoints} ≥ 80 % of ${t.service_base_endpoints}`,
        `${_fmt((t.service_throughput_ratio ?? NaN) * 100)} %`,
        mark(t.pass.service_throughput),
      ],
      [
        "service memory ≤ 64 KiB per endpoint",
        `${_fmt(t.service_kib_per_endpoint)} KiB`,
        mark(t.pass.service_memory),
      ],
    ],
  );
  return [
    `Interchange: N simulated managers × ${r.sizes.ix.workers} workers; closed loop of ${r.sizes.ix.concurrency} tasks in flight, ${r.sizes.ix.tasks} tasks; p50/p99: sequential round trips; heartbeats every ${r.sizes.ix.hbPeriod} s`,
    ix,
    "",
    `Service: E simulated CURVE endpoints; ${r.sizes.svc.tasks} tasks through the HTTP API in batches of ${r.sizes.svc.batch}, spread over all E; p50/p99: sequential round trips`,
    svc,
    "",
    targets,
    "",
    `load average ${r.machine.loadavg.map((v) => v.toFixed(1)).join(" ")} → ${
      r.loadavg_end.map((v) => v.toFixed(1)).join(" ")
    } on ${r.machine.cores} cores (other work on the machine skews every figure)`,
  ].join("\n");
}

/** Everything of one run, as written to `scale.json`. */
export function buildScaleReport(o: {
  sizes: ScaleSizes;
  machine: Awaited<ReturnType<typeof machineInfo>>;
  interchange: IxRow[];
  interchangeFailed: Failed[];
  service: SvcRow[];
  serviceFailed: Failed[];
  seconds: number;
}) {
  return {
    mode: o.sizes.mode,
    sizes: o.sizes,
    machine: o.machine,
    loadavg_end: Deno.loadavg(),
    seconds: o.seconds,
    interchange: o.interchange,
    interchange_failed: o.interchangeFailed,
    service: o.service,
    service_failed: o.serviceFailed,
    targets: scaleTargets(o.interchange, o.service),
  };
}

/**
 * Run the scale benchmark with `argv` (after `--scale`); returns the exit code.
 *
 * @example
 * ```ts
 * await scaleMain(["--quick", "--managers", "1,4", "--endpoints", "1,3", "--out", "/tmp/s.json"]);
 * ```
 */
export async function scaleMain(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        quick: { type: "boolean", default: false },
        managers: { type: "string" },
        endpoints: { type: "string" },
        workers: { type: "string", default: "64" },
        out: {
          type: "string",
          default: new URL("../../bench/scale.json", import.meta.url).pathname,
        },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    console.error(`bench --scale: ${(e as Error).message}; ${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 1024) {
    console.error(`bench --scale: --workers: "${values.workers}" is not an integer from 1 to 1024`);
    return 2;
  }
  const s = _sizes(values.quick, workers);
  try {
    s.managers = _list(values.managers, "--managers", 16_384) ?? s.managers;
    s.endpoints = _list(values.endpoints, "--endpoints", 10_000) ?? s.endpoints;
  } catch (e) {
    console.error(`bench --scale: ${(e as Error).message}; ${USAGE}`);
    return 2;
  }
  const started = performance.now();
  const step = (what: string) =>
    console.error(`[bench --scale ${((performance.now() - started) / 1000).toFixed(1)} s] ${what}`);
  const machine = await machineInfo();
  const interchange: IxRow[] = [], interchangeFailed: Failed[] = [];
  for (const n of s.managers) {
    step(`interchange: ${n} managers × ${workers} workers`);
    try {
      interchange.push(await measureInterchangeAt({ ...s.ix, managers: n }));
    } catch (e) {
      console.error(`bench --scale: interchange at ${n} managers: ${(e as Error).message}`);
      interchangeFailed.push({ n, error: (e as Error).message.split("\n")[0] });
    }
  }
  const service: SvcRow[] = [], serviceFailed: Failed[] = [];
  for (const n of s.endpoints) {
    step(`service: ${n} endpoints`);
    try {
      service.push(await measureServiceAt({ ...s.svc, endpoints: n }));
    } catch (e) {
      console.error(`bench --scale: service at ${n} endpoints: ${(e as Error).message}`);
      serviceFailed.push({ n, error: (e as Error).message.split("\n")[0] });
    }
  }
  step("done");
  const report = buildScaleReport({
    sizes: s,
    machine,
    interchange,
    interchangeFailed,
    service,
    serviceFailed,
    seconds: (performance.now() - started) / 1000,
  });
  const text = renderScale(report);
  console.log(text);
  Deno.mkdirSync(dirname(values.out), { recursive: true });
  Deno.writeTextFileSync(values.out, JSON.stringify(report, null, 2) + "\n");
  const base = values.out.replace(/\.json$/, "");
  Deno.writeTextFileSync(
    `${base}.md`,
    text.replace(/^(Interchange|Service)(.*)$/gm, "$1$2\n") + "\n",
  );
  Deno.writeTextFileSync(
    `${base}.svg`,
    scaleChartSvg(
      [
        {
          title: `interchange: N managers × ${workers} workers`,
          xLabel: "managers",
          points: interchange.map((r) => ({
            n: r.managers,
            tasksPerSecond: r.tasksPerSecond,
            p99Ms: r.loadedP99Ms,
          })),
        },
        {
          title: "service: E endpoints",
          xLabel: "endpoints",
          points: service.map((r) => ({
            n: r.endpoints,
            tasksPerSecond: r.tasksPerSecond,
            p99Ms: r.p99Ms,
          })),
        },
      ],
      `throughput (solid) and p99 latency (dashed; interchange: under load) — ${
        new Date().toISOString().slice(0, 10)
      }, load ${machine.loadavg[0].toFixed(1)} on ${machine.cores} cores`,
    ),
  );
  console.log(`\nwritten: ${values.out}, ${base}.md, ${base}.svg`);
  return interchangeFailed.length + serviceFailed.length > 0 ? 1 : 0;
}

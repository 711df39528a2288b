/**
 * `deno task bench --compare REV`: the endpoint of this checkout and the endpoint of an
 * earlier revision (by default the last one on the native `zeromq` addon), side by side in
 * one run against the same bench forwarder, alternately and twice each: CPU µs per task per process, endpoint-only
 * throughput and latency, the idle endpoint's CPU (daemon + manager + workers, connected,
 * 20 s) and the idle daemon's RSS. The baseline is unpacked from git (`git archive`) into
 * a temporary directory with its own locked npm dependencies; nothing of it is kept.
 *
 * @example
 * ```ts ignore
 * import { compareWith } from "./compare.ts";
 * const rows = await compareWith(fwd, { rev: "ee2db7e", workers: 2, tasks: 2000, latency: 200, idleSeconds: 20 });
 * ```
 * @module
 */
import { join } from "node:path";
import { EndpointBench } from "./endpoint_only.ts";
import type { BenchForwarder } from "./forwarder.ts";
import { currentProgram, type Program, useProgram } from "./endpoint_proc.ts";

/** The last revision whose endpoint ran on `npm:zeromq` (the transport's "before"). */
export const ZEROMQ_BASELINE = "ee2db7e";

/** One side of the comparison. */
export interface CompareRow {
  /** "this checkout" or the baseline revision. */
  label: string;
  tasksPerSecond: number;
  /** CPU µs per task: daemon, manager, workers, forwarder (the bench's own). */
  cpuUsPerTask: Record<string, number>;
  /** Endpoint-only single-task round trips, ms. */
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Idle CPU, % of one core, per process group and in total. */
  idleCpuPercent: Record<string, number>;
  /** Daemon VmRSS when connected and idle, MB. */
  daemonIdleMb: number;
}

function _pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function _run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await new Deno.Command(cmd, { args, cwd, stdin: "null", stderr: "piped" }).output();
  if (!r.success) {
    throw new Error(
      `bench --compare: ${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(r.stderr)}`,
    );
  }
  return new TextDecoder().decode(r.stdout);
}

/**
 * Unpack `rev` of this repository into a temporary directory, install its locked npm
 * dependencies, and return how to run its `main.ts` under its own permission flags.
 */
export async function prepareBaseline(rev: string): Promise<{ dir: string; program: Program }> {
  const repo = new URL("../..", import.meta.url).pathname;
  const dir = Deno.makeTempDirSync({ prefix: `fx-bench-${rev.slice(0, 12)}-` });
  const tar = join(dir, ".src.tar");
  await _run("git", ["-C", repo, "archive", "--format=tar", "-o", tar, rev]);
  await _run("tar", ["-xf", tar, "-C", dir]);
  Deno.removeSync(tar);
  await _run(Deno.execPath(), ["install", "--frozen"], dir);
  const perms = await import(join(dir, "src/config/permissions.ts")) as {
    COMPILE_FLAGS: readonly string[];
  };
  return {
    dir,
    program: {
      cmd: Deno.execPath(),
      args: ["run", ...perms.COMPILE_FLAGS, join(dir, "main.ts")],
    },
  };
}

async function _measure(
  fwd: BenchForwarder,
  label: string,
  o: { workers: number; tasks: number; latency: number; idleSeconds: number },
): Promise<CompareRow> {
  const eb = await EndpointBench.start(fwd, { workers: o.workers });
  try {
    const idle = await eb.idleCpu(o.idleSeconds);
    idle.total = Math.round(Object.values(idle).reduce((a, b) => a + b, 0) * 10) / 10;
    const run = await eb.run(o.tasks, 0);
    const lat = await eb.latency(o.latency);
    return {
      label,
      tasksPerSecond: run.tasksPerSecond,
      cpuUsPerTask: run.cpuUsPerTask,
      latencyP50Ms: _pct(lat, 50),
      latencyP99Ms: _pct(lat, 99),
      idleCpuPercent: idle,
      daemonIdleMb: eb.idle.daemonKb / 1024,
    };
  } finally {
    await eb.close();
  }
}

/**
 * Measure this checkout's endpoint and `rev`'s endpoint alternately, twice each (this one,
 * the baseline, this one, the baseline), against the same forwarder, and report the better
 * of each side's two runs per figure. Both sides thus run once with a warm V8 code cache: the
 * baseline is a fresh copy whose first start compiles every module (more memory, slower).
 */
export async function compareWith(
  fwd: BenchForwarder,
  o: { rev: string; workers: number; tasks: number; latency: number; idleSeconds: number },
  step: (what: string) => void = () => {},
): Promise<CompareRow[]> {
  const base = await prepareBaseline(o.rev);
  const ours = currentProgram();
  const runs: { ours: CompareRow[]; base: CompareRow[] } = { ours: [], base: [] };
  try {
    for (const round of [1, 2]) {
      step(`compare: this checkout (${round}/2)`);
      runs.ours.push(await _measure(fwd, "this checkout", o));
      step(`compare: baseline ${o.rev} (${round}/2)`);
      useProgram(base.program);
      try {
        runs.base.push(await _measure(fwd, o.rev, o));
      } finally {
        useProgram(ours);
      }
    }
    return [_best(runs.ours[0], runs.ours[1]), _best(runs.base[0], runs.base[1])];
  } finally {
    Deno.removeSync(base.dir, { recursive: true });
  }
}

function _best(a: CompareRow, b: CompareRow): CompareRow {
  const min = (x: Record<string, number>, y: Record<string, number>) =>
    Object.fromEntries(Object.keys(x).map((k) => [k, Math.min(x[k], y[k] ?? x[k])]));
  return {
    label: a.label,
    tasksPerSecond: Math.max(a.tasksPerSecond, b.tasksPerSecond),
    cpuUsPerTask: min(a.cpuUsPerTask, b.cpuUsPerTask),
    latencyP50Ms: Math.min(a.latencyP50Ms, b.latencyP50Ms),
    latencyP99Ms: Math.min(a.latencyP99Ms, b.latencyP99Ms),
    idleCpuPercent: min(a.idleCpuPercent, b.idleCpuPercent),
    daemonIdleMb: Math.min(a.daemonIdleMb, b.daemonIdleMb),
  };
}

/** The targets for this checkout's row. */
export const COMPARE_TARGETS = {
  idle_total_percent_max: 0.5,
  daemon_plus_manager_us_max: 60,
  latency_p50_ms_max: 1.5,
  daemon_idle_mb_max: 60,
};

/** A terminal table of the comparison, with the targets. */
export function renderCompare(rows: CompareRow[]): string {
  const [ours, base] = rows;
  const f = (n: number | undefined, d = 1) => n === undefined ? "—" : n.toFixed(d);
  const dm = (r: CompareRow) => (r.cpuUsPerTask.daemon ?? 0) + (r.cpuUsPerTask.manager ?? 0);
  const T = COMPARE_TARGETS;
  const lines: [string, string, string, string, string][] = [
    ["figure", ours.label, base.label, "target", "met"],
    [
      "idle CPU, % of a core (daemon+manager+workers, 20 s)",
      f(ours.idleCpuPercent.total, 2),
      f(base.idleCpuPercent.total, 2),
      `≤ ${T.idle_total_percent_max}`,
      ours.idleCpuPercent.total <= T.idle_total_percent_max ? "yes" : "NO",
    ],
    [
      "CPU µs/task daemon + manager",
      f(dm(ours), 0),
      f(dm(base), 0),
      `≤ ${T.daemon_plus_manager_us_max}`,
      dm(ours) <= T.daemon_plus_manager_us_max ? "yes" : "NO",
    ],
    ...["daemon", "manager", "workers", "forwarder"].map((k) =>
      [
        `  CPU µs/task ${k}`,
        f(ours.cpuUsPerTask[k], 0),
        f(base.cpuUsPerTask[k], 0),
        "",
        "",
      ] as [string, string, string, string, string]
    ),
    [
      "endpoint-only latency p50, ms",
      f(ours.latencyP50Ms, 2),
      f(base.latencyP50Ms, 2),
      `≤ ${T.latency_p50_ms_max}`,
      ours.latencyP50Ms <= T.latency_p50_ms_max ? "yes" : "NO",
    ],
    ["endpoint-only latency p99, ms", f(ours.latencyP99Ms, 2), f(base.latencyP99Ms, 2), "", ""],
    [
      "idle daemon RSS, MB",
      f(ours.daemonIdleMb),
      f(base.daemonIdleMb),
      `≤ ${T.daemon_idle_mb_max}`,
      ours.daemonIdleMb <= T.daemon_idle_mb_max ? "yes" : "NO",
    ],
    [
      "endpoint-only throughput, tasks/s",
      f(ours.tasksPerSecond, 0),
      f(base.tasksPerSecond, 0),
      "≥ before",
      ours.tasksPerSecond >= base.tasksPerSecond ? "yes" : "NO",
    ],
  ];
  const w = lines[0].map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  return lines.map((l) => l.map((c, i) => c.padEnd(w[i])).join("  ")).join("\n");
}

/**
 * `funcx-endpoint manager ...` (hidden): the per-node manager that providers launch.
 * It connects back to the interchange and runs Python workers; see
 * `src/engine/manager.ts`.
 *
 * @example
 * ```ts
 * import { parseManagerFlags } from "./manager.ts";
 * parseManagerFlags({ taskUrl: "tcp://127.0.0.1:5000", blockId: "0", workers: "2",
 *   workerScript: "/h/ep/worker/funcx_worker.py", logdir: "/h/ep/worker_logs/0" });
 * ```
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import type { ManagerOptions } from "../engine/manager.ts";
import { type CliContext, CliError } from "./context.ts";

/** Raw flag values as commander gives them. */
export interface ManagerFlags {
  /** `--task-url`. */
  taskUrl: string;
  /** `--block-id`. */
  blockId: string;
  /** `--workers`. */
  workers?: string;
  /** `--cores-per-worker`. */
  coresPerWorker?: string;
  /** `--python`. */
  python?: string;
  /** `--python-from` (only `interchange`). */
  pythonFrom?: string;
  /** `--worker-script`. */
  workerScript: string;
  /** `--logdir`. */
  logdir: string;
  /** `--hb-period`. */
  hbPeriod?: string;
  /** `--hb-threshold`. */
  hbThreshold?: string;
  /** `--max-idletime`. */
  maxIdletime?: string;
  /** `--result-size-limit`. */
  resultSizeLimit?: string;
  /** `--uid`. */
  uid?: string;
  /** `--log-level`. */
  logLevel?: string;
}

function _num(flag: string, v: string | undefined, def: number, min: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v.trim()) || !Number.isFinite(n) || n < min) {
    throw new CliError(`--${flag}: "${v}" is invalid; expected a number >= ${min}`);
  }
  return n;
}

/**
 * Validate the flags into {@linkcode ManagerOptions}; a one-line CliError names the bad flag.
 *
 * @example
 * ```ts
 * parseManagerFlags({ taskUrl: "tcp://h:1", blockId: "0", workerScript: "/w.py", logdir: "/l" }).workers; // 0
 * ```
 */
export function parseManagerFlags(f: ManagerFlags): ManagerOptions {
  if (!/^tcp:\/\/[^\s:]+:\d{1,5}$/.test(f.taskUrl)) {
    throw new CliError(`--task-url: "${f.taskUrl}" is invalid; expected tcp://HOST:PORT`);
  }
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(f.blockId)) {
    throw new CliError(`--block-id: "${f.blockId}" is invalid; expected 1-64 letters/digits`);
  }
  if (f.uid !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(f.uid)) {
    throw new CliError(`--uid: "${f.uid}" is invalid; expected 1-64 letters/digits`);
  }
  if (f.pythonFrom !== undefined && f.pythonFrom !== "interchange") {
    throw new CliError(`--python-from: "${f.pythonFrom}" is invalid; expected interchange`);
  }
  const levels = ["debug", "info", "warn", "error"];
  if (f.logLevel !== undefined && !levels.includes(f.logLevel)) {
    throw new CliError(`--log-level: "${f.logLevel}" is invalid; expected ${levels.join("|")}`);
  }
  return {
    taskUrl: f.taskUrl,
    blockId: f.blockId,
    workers: Math.floor(_num("workers", f.workers, 0, 0)),
    coresPerWorker: _num("cores-per-worker", f.coresPerWorker, 1, 1),
    python: f.python ?? "python3",
    pythonFromInterchange: f.pythonFrom === "interchange",
    workerScript: f.workerScript,
    logdir: f.logdir,
    hbPeriod: _num("hb-period", f.hbPeriod, 5, 0.1),
    hbThreshold: _num("hb-threshold", f.hbThreshold, 30, 0.5),
    maxIdletime: _num("max-idletime", f.maxIdletime, 300, 0),
    resultSizeLimit: Math.floor(_num("result-size-limit", f.resultSizeLimit, 10485760, 1)),
    uid: f.uid,
    logLevel: f.logLevel as ManagerOptions["logLevel"],
  };
}

/**
 * Add the hidden `manager` command.
 *
 * @example
 * ```ts ignore
 * register(program, ctx); // funcx-endpoint manager --task-url tcp://h:p --block-id 0 ...
 * ```
 */
export function register(program: Command, ctx: CliContext) {
  program
    .command("manager", { hidden: true })
    .description("run a block's manager (started by the endpoint's provider)")
    .requiredOption("--task-url <url>", "interchange address, tcp://HOST:PORT")
    .requiredOption("--block-id <id>", "block this manager belongs to")
    .requiredOption("--worker-script <path>", "the Python worker script")
    .requiredOption("--logdir <dir>", "directory for manager and worker logs")
    .option("--workers <n>", "worker processes (0 = cores / cores-per-worker)")
    .option("--cores-per-worker <n>", "cores per worker")
    .option("--python <exe>", "Python interpreter for workers")
    .option("--python-from <source>", "interchange: wait for it to name the interpreter")
    .option("--hb-period <s>", "heartbeat period in seconds")
    .option("--hb-threshold <s>", "seconds of interchange silence before exiting")
    .option("--max-idletime <s>", "seconds an idle worker is kept (0 = forever)")
    .option("--result-size-limit <bytes>", "largest result a worker may return")
    .option("--uid <id>", "manager id (default random)")
    .option("--log-level <level>", "debug|info|warn|error")
    .action(async (flags) => {
      const opts = parseManagerFlags(flags);
      if (ctx.debug()) opts.logLevel = "debug";
      await Deno.mkdir(opts.logdir, { recursive: true, mode: 0o700 });
      const { runManager } = await import("../engine/manager.ts");
      ctx.setExitCode(await runManager(opts));
    });
}

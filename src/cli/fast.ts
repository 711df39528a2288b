/**
 * Start-up fast path for the hidden `manager` command, which providers start once per
 * block on the critical path of every start: a well-formed command line runs the manager
 * without loading commander or the other commands (~60 ms less per manager start). Anything
 * else (help, a flag it does not know, a missing or invalid value) returns `undefined` and
 * the full CLI handles it, with its usual messages.
 *
 * @example
 * ```ts
 * import { runFastPath } from "./fast.ts";
 * const code = await runFastPath(["manager", "--task-url", "tcp://127.0.0.1:5000", "..."]);
 * // undefined: not handled here, run the full CLI
 * ```
 * @module
 */
import { type ManagerFlags, parseManagerFlags } from "./manager.ts";

const _FLAGS: Record<string, keyof ManagerFlags> = {
  "--task-url": "taskUrl",
  "--block-id": "blockId",
  "--workers": "workers",
  "--cores-per-worker": "coresPerWorker",
  "--python": "python",
  "--worker-script": "workerScript",
  "--logdir": "logdir",
  "--hb-period": "hbPeriod",
  "--hb-threshold": "hbThreshold",
  "--max-idletime": "maxIdletime",
  "--result-size-limit": "resultSizeLimit",
  "--uid": "uid",
  "--log-level": "logLevel",
};

/**
 * The manager's flags from `argv` (after `manager`), or `undefined` unless every argument is
 * a known `--flag value` pair (each at most once) and the required ones are present.
 *
 * @example
 * ```ts
 * managerFlagsOf(["--task-url", "tcp://h:1", "--block-id", "0", "--worker-script", "/w.py", "--logdir", "/l"]);
 * ```
 */
export function managerFlagsOf(argv: readonly string[]): ManagerFlags | undefined {
  const out: Partial<Record<keyof ManagerFlags, string>> = {};
  if (argv.length % 2 !== 0) return undefined;
  for (let i = 0; i < argv.length; i += 2) {
    const key = _FLAGS[argv[i]];
    const value = argv[i + 1];
    if (!key || key in out || value.startsWith("-")) return undefined;
    out[key] = value;
  }
  const { taskUrl, blockId, workerScript, logdir } = out;
  if (!taskUrl || !blockId || !workerScript || !logdir) return undefined;
  return { ...out, taskUrl, blockId, workerScript, logdir };
}

/**
 * Run `argv` here when it is a well-formed `manager` command line; returns its exit code, or
 * `undefined` when the full CLI must run it.
 *
 * @example
 * ```ts
 * const code = await runFastPath(Deno.args) ?? await runCli(Deno.args, home);
 * ```
 */
export async function runFastPath(argv: readonly string[]): Promise<number | undefined> {
  if (argv[0] !== "manager") return undefined;
  const flags = managerFlagsOf(argv.slice(1));
  if (!flags) return undefined;
  let opts;
  try {
    opts = parseManagerFlags(flags);
  } catch {
    return undefined; // the full CLI reports it
  }
  if (Deno.env.get("FUNCX_DEBUG")) opts.logLevel = "debug";
  try {
    await Deno.mkdir(opts.logdir, { recursive: true, mode: 0o700 });
    const { runManager } = await import("../workers/manager.ts");
    return await runManager(opts);
  } catch (e) {
    console.error(`funcx-endpoint: ${(e as Error)?.message ?? e}`);
    return 1;
  }
}

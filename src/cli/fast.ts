/**
 * Start-up fast path for the three command lines on the critical path of every start: the
 * user's `[--debug] start [NAME] [--endpoint-uuid U] [--timeout S]`, the detached daemon's
 * `[--debug] start NAME --foreground --daemon [--endpoint-uuid U]` (started by `start`; also
 * without `--daemon`: a foreground endpoint started by hand or by systemd) and a block's
 * `manager ...` (started by providers). Well formed, they run without loading commander or the
 * other commands (a shorter start for each of those processes). Anything else (help, a flag it
 * does not know, a missing or invalid value) returns `undefined` and the full CLI handles it,
 * with its usual messages.
 *
 * @example
 * ```ts
 * import { runFastPath } from "./fast.ts";
 * const code = await runFastPath(
 *   ["manager", "--task-url", "tcp://127.0.0.1:5000", "..."],
 *   "/home/u/.funcx",
 * );
 * // undefined: not handled here, run the full CLI
 * ```
 * @module
 */
import { checkUuid, endpointName } from "./common.ts";
import { reportError } from "./context.ts";
import { type ManagerFlags, parseManagerFlags } from "./manager.ts";

const _FLAGS: Record<string, keyof ManagerFlags> = {
  "--task-url": "taskUrl",
  "--block-id": "blockId",
  "--workers": "workers",
  "--cores-per-worker": "coresPerWorker",
  "--python": "python",
  "--python-from": "pythonFrom",
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
 * The daemon's own command line (`[--debug|-d] start NAME --foreground --daemon
 * [--endpoint-uuid U]`, as `start` writes it), or the same without `--daemon` as a user types
 * it for systemd or a container (logs echoed to the terminal, as the full CLI does), or
 * `undefined` for anything else. Skipping the command-line library there keeps it out of the
 * long-lived daemon's memory.
 *
 * @example
 * ```ts
 * daemonArgsOf(["start", "default", "--foreground", "--daemon"]);
 * // { name: "default", endpointUuid: undefined, debug: false, daemon: true }
 * ```
 */
export function daemonArgsOf(
  argv: readonly string[],
): { name: string; endpointUuid?: string; debug: boolean; daemon: boolean } | undefined {
  const debug = argv[0] === "--debug" || argv[0] === "-d";
  const a = debug ? argv.slice(1) : argv;
  if (a[0] !== "start" || a[2] !== "--foreground") return undefined;
  const daemon = a[3] === "--daemon";
  const n = daemon ? 4 : 3;
  if (a.length !== n && !(a.length === n + 2 && a[n] === "--endpoint-uuid")) return undefined;
  try {
    return { name: endpointName(a[1]), endpointUuid: checkUuid(a[n + 1]), debug, daemon };
  } catch {
    return undefined; // the full CLI reports it
  }
}

/**
 * The user's `[--debug|-d] start [NAME] [--endpoint-uuid U] [--timeout S]` (detached start;
 * each option once, as `--opt value`), or `undefined` for anything else, including values
 * the full CLI must report (a bad name, uuid or timeout).
 *
 * @example
 * ```ts
 * startArgsOf(["start", "hpc", "--timeout", "120"]);
 * // { name: "hpc", endpointUuid: undefined, timeoutSeconds: 120, debug: false }
 * ```
 */
export function startArgsOf(
  argv: readonly string[],
): { name: string; endpointUuid?: string; timeoutSeconds: number; debug: boolean } | undefined {
  const debug = argv[0] === "--debug" || argv[0] === "-d";
  const a = debug ? argv.slice(1) : argv;
  if (a[0] !== "start") return undefined;
  let i = 1;
  const name = a[i] !== undefined && !a[i].startsWith("-") ? a[i++] : undefined;
  const opts: Record<string, string> = {};
  for (; i < a.length; i += 2) {
    const [flag, value] = [a[i], a[i + 1]];
    if (flag !== "--endpoint-uuid" && flag !== "--timeout") return undefined;
    if (flag in opts || value === undefined || value.startsWith("-")) return undefined;
    opts[flag] = value;
  }
  const timeoutSeconds = Number(opts["--timeout"] ?? "60");
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) return undefined;
  try {
    return {
      name: endpointName(name),
      endpointUuid: checkUuid(opts["--endpoint-uuid"]),
      timeoutSeconds,
      debug,
    };
  } catch {
    return undefined; // the full CLI reports it
  }
}

/**
 * Run `argv` here when it is a well-formed `manager`, daemon or `start` command line; returns its
 * exit code, or `undefined` when the full CLI must run it.
 *
 * @example
 * ```ts ignore
 * const code = await runFastPath(Deno.args, home) ?? await runCli(Deno.args, home);
 * ```
 */
export async function runFastPath(
  argv: readonly string[],
  home: string,
): Promise<number | undefined> {
  const envDebug = !!Deno.env.get("FUNCX_DEBUG");
  const daemon = daemonArgsOf(argv);
  if (daemon) {
    return await _run(envDebug || daemon.debug, async () => {
      const { runForeground } = await import("./foreground.ts");
      return await runForeground({
        home,
        name: daemon.name,
        endpointUuid: daemon.endpointUuid,
        debug: envDebug || daemon.debug,
        daemon: daemon.daemon,
      });
    });
  }
  const start = startArgsOf(argv);
  if (start) {
    return await _run(envDebug || start.debug, async () => {
      const { startEndpoint, startedMessage } = await import("./launch.ts");
      const r = await startEndpoint({ home, ...start, debug: envDebug || start.debug });
      console.log(startedMessage(start.name, r));
      return 0;
    });
  }
  if (argv[0] !== "manager") return undefined;
  const flags = managerFlagsOf(argv.slice(1));
  if (!flags) return undefined;
  let opts;
  try {
    opts = parseManagerFlags(flags);
  } catch {
    return undefined; // the full CLI reports it
  }
  if (envDebug) opts.logLevel = "debug";
  const manager = opts;
  return await _run(envDebug, async () => {
    await Deno.mkdir(manager.logdir, { recursive: true, mode: 0o700 });
    const { runManager } = await import("../engine/manager.ts");
    return await runManager(manager);
  });
}

/** Errors as the full CLI prints them: one line (the stack with debug), CliError's code. */
async function _run(debug: boolean, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (e) {
    return reportError(e, debug);
  }
}

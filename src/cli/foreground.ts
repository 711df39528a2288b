/**
 * The endpoint daemon itself (`start NAME --foreground`): take the pid file, run the
 * {@linkcode Endpoint} until SIGTERM/SIGINT, stop it cleanly and release the pid file.
 *
 * @example
 * ```ts
 * import { runForeground } from "./foreground.ts";
 * const code = await runForeground({ home: "/home/u/.funcx", name: "default", debug: false, daemon: false });
 * ```
 * @module
 */
import { endpointPaths } from "../config/paths.ts";
import { createLogger } from "../daemon/log.ts";
import { resolveShimmedPython } from "../daemon/python.ts";
import { acquirePidFile, AlreadyRunningError, type PidFile } from "../daemon/pidfile.ts";
import { watchStopRequest } from "../daemon/stop_request.ts";
import { alreadyRunning } from "./common.ts";
import { CliError } from "./context.ts";
import { preflight } from "./preflight.ts";

/** Options of {@linkcode runForeground}. */
export interface ForegroundOptions {
  home: string;
  name: string;
  debug: boolean;
  endpointUuid?: string;
  /** True when started detached by `start` (log only to the file, not the terminal). */
  daemon: boolean;
}

/**
 * Run the endpoint in this process; returns the exit code once it has stopped.
 *
 * @example
 * ```ts ignore
 * Deno.exit(await runForeground({ home, name: "default", debug: true, daemon: false }));
 * ```
 */
export async function runForeground(opts: ForegroundOptions): Promise<number> {
  const { home, name } = opts;
  const p = endpointPaths(home, name);
  const { config, global } = await preflight(home, name);
  // in the background while the daemon's modules load (start-up: see daemon/python.ts)
  const python = resolveShimmedPython(config, p.dir);
  const loading = import("../endpoint/endpoint.ts");
  const log = createLogger({
    file: p.log,
    level: opts.debug ? "debug" : config.log_level,
    echo: !opts.daemon,
  });
  let pidFile: PidFile;
  try {
    pidFile = await acquirePidFile(p.pidFile);
  } catch (e) {
    log.close();
    if (e instanceof AlreadyRunningError) throw new CliError(alreadyRunning(name, e.pid, e.host));
    throw e;
  }
  const stopRequested = Promise.withResolvers<string>();
  const onSignal = (sig: Deno.Signal) => () => stopRequested.resolve(sig);
  const handlers = (["SIGTERM", "SIGINT"] as const).map((s) => [s, onSignal(s)] as const);
  for (const [sig, h] of handlers) Deno.addSignalListener(sig, h);
  // `stop` on another login node of a shared home asks through a file (no signals there)
  const stopWatch = watchStopRequest(
    p.stopRequest,
    { pid: pidFile.info.pid, host: pidFile.info.host ?? "" },
    (r) => stopRequested.resolve(`a stop request from host ${r.from}`),
  );
  log.info("daemon", "starting endpoint %s (pid %d)", name, Deno.pid);
  try {
    const { Endpoint } = await loading;
    const starting = Endpoint.start({
      home,
      name,
      config,
      python: python.then((choice) => {
        if (choice.python !== config.executor.python) {
          log.info("daemon", "workers run %s directly (%s)", choice.python, choice.reason);
        } else log.debug("daemon", "workers run %s (%s)", choice.python, choice.reason);
        return choice.python;
      }),
      global,
      log,
      endpointUuid: opts.endpointUuid,
    });
    const first = await Promise.race([
      starting.then((endpoint) => ({ endpoint })),
      stopRequested.promise.then((signal) => ({ signal })),
    ]);
    if ("signal" in first) {
      log.info("daemon", "%s received while starting; stopping", first.signal);
      // Stop it if it comes up shortly; otherwise the process exit ends it.
      const late = await Promise.race([
        starting.catch(() => undefined),
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000)),
      ]);
      if (late) await late.stop(`signal ${first.signal}`);
      return 0;
    }
    const endpoint = first.endpoint;
    // Endpoint.start returns at the first failed attempt too (it keeps retrying): "up" is
    // said only once it is connected
    let upTimer: ReturnType<typeof setInterval> | undefined;
    if (endpoint.state === "connected") log.info("daemon", "endpoint %s is up", name);
    else {
      log.info("daemon", "endpoint %s started; connecting to the service", name);
      upTimer = setInterval(() => {
        if (endpoint.state !== "connected") return;
        clearInterval(upTimer);
        log.info("daemon", "endpoint %s is up", name);
      }, 100);
      endpoint.done.finally(() => clearInterval(upTimer));
    }
    stopRequested.promise.then((sig) => {
      log.info("daemon", "%s received: stopping", sig);
      return endpoint.stop(`signal ${sig}`);
    }).catch((e) => log.error("daemon", "stop failed: %s", (e as Error).message));
    await endpoint.done;
    log.info("daemon", "endpoint %s stopped", name);
    return 0;
  } catch (e) {
    log.error("daemon", "endpoint %s failed: %s", name, (e as Error).message);
    throw e;
  } finally {
    for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
    stopWatch.close();
    pidFile.release();
    log.close();
  }
}

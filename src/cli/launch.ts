/**
 * Start an endpoint as a detached daemon and wait until it reports `connected`: the part of
 * `funcx-endpoint start` shared by `start`, `restart` and the start-up fast path (no
 * commander: see `fast.ts`).
 *
 * @example
 * ```ts
 * import { startEndpoint } from "./launch.ts";
 * const { pid, endpointId } = await startEndpoint({ home: "/home/u/.funcx", name: "default", debug: false });
 * ```
 * @module
 */
import { homePaths } from "../config/paths.ts";
import { spawnDetached } from "../daemon/detach.ts";
import { killLeftovers, stopDaemon } from "../daemon/stop.ts";
import { probeService } from "../registration/reach.ts";
import { cleanStalePidFile } from "../daemon/pidfile.ts";
import { readStatusFile } from "../daemon/state.ts";
import { alreadyRunning, requireConfigured } from "./common.ts";
import { preflight } from "./preflight.ts";
import { CliError } from "./context.ts";
import { logTail } from "./logs.ts";
import { checkOwner, ownerMismatchFromLog } from "./owner.ts";
import { progress } from "./progress.ts";

/** Options of {@linkcode startEndpoint}. */
export interface StartOptions {
  home: string;
  name: string;
  debug: boolean;
  endpointUuid?: string;
  /** Seconds to wait for the daemon to connect (default 60). */
  timeoutSeconds?: number;
  /**
   * Start even when the service cannot be reached, and leave the daemon retrying in the
   * background when it has not connected within the timeout. Otherwise an unreachable
   * service fails `start` at once (within 5 s) and nothing is left running.
   */
  keepRetrying?: boolean;
}

/** How long `start` gives the service to answer before it says why it cannot reach it. */
export const PROBE_TIMEOUT_MS = 5000;

function _fileSize(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * Start the endpoint daemon detached and wait until it is connected.
 * Returns the daemon pid and the endpoint id.
 *
 * @example
 * ```ts ignore
 * const { pid, endpointId } = await startEndpoint({ home, name: "default", debug: false });
 * ```
 */
export async function startEndpoint(
  opts: StartOptions,
): Promise<{ pid: number; endpointId: string | null }> {
  const { home, name } = opts;
  const p = requireConfigured(home, name);
  const { config, global } = await preflight(home, name);
  const service = config.service_address ?? global.service_address;
  const pid = cleanStalePidFile(p.pidFile);
  if (pid.state === "running") throw new CliError(alreadyRunning(name, pid.pid));
  if (pid.state === "remote") throw new CliError(alreadyRunning(name, pid.pid, pid.host));
  if (pid.state === "stale") {
    const left = pid.pid !== undefined && pid.startTicks !== undefined
      ? killLeftovers(pid.pid, pid.startTicks, home)
      : 0;
    console.error(
      `Cleaned up a stale pid file: ${pid.reason}${
        left ? `; killed ${left} leftover process(es) of the dead daemon` : ""
      }`,
    );
  }
  if (!opts.keepRetrying) {
    const checking = progress(`checking the funcX service at ${service}`);
    const problem = await probeService(service, PROBE_TIMEOUT_MS).finally(() => checking.done());
    if (problem) {
      const where = config.service_address ? p.config : homePaths(home).globalConfig;
      throw new CliError(
        `cannot reach the funcX service at ${service}: ${problem} (service_address in ${where}; ` +
          `--keep-retrying starts the endpoint anyway)`,
      );
    }
  }
  await checkOwner(home, name, global);
  const logOffset = _fileSize(p.log);
  const args = ["start", name, "--foreground", "--daemon"];
  if (opts.endpointUuid) args.push("--endpoint-uuid", opts.endpointUuid);
  if (opts.debug) args.unshift("--debug");
  const daemon = spawnDetached({ args, home, logFile: p.log, cwd: p.dir });
  let exit: Deno.CommandStatus | undefined;
  daemon.exited.then((s) => exit = s);
  const timeoutMs = (opts.timeoutSeconds ?? 60) * 1000;
  const deadline = performance.now() + timeoutMs;
  const waiting = progress(`waiting for endpoint "${name}" to connect`);
  try {
    while (performance.now() < deadline) {
      // a short poll: the daemon writes status.json the moment it connects
      await new Promise((r) => setTimeout(r, 25));
      if (exit) {
        waiting.done();
        const tail = logTail(p.log, 30, logOffset);
        const owner = ownerMismatchFromLog(home, name, tail ?? "");
        if (owner) throw new CliError(owner);
        if (tail) console.error(tail);
        const how = exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
        throw new CliError(`endpoint "${name}" failed to start (${how}); see ${p.log}`);
      }
      const s = readStatusFile(p.statusFile);
      if (s && s.pid === daemon.pid && s.state === "connected") {
        return { pid: daemon.pid, endpointId: s.endpoint_id };
      }
    }
  } finally {
    waiting.done();
    daemon.unref();
  }
  if (!opts.keepRetrying) {
    const last = readStatusFile(p.statusFile)?.errors.at(-1)?.message;
    const stopping = progress(`stopping endpoint "${name}"`);
    await stopDaemon({ pidFile: p.pidFile, timeoutMs: 10_000, home }).finally(() =>
      stopping.done()
    );
    throw new CliError(
      `endpoint "${name}" did not connect within ${timeoutMs / 1000} s${
        last ? `: ${last}` : ""
      }; stopped it (see ${p.log}; --keep-retrying leaves it retrying in the background)`,
    );
  }
  const tail = logTail(p.log, 30, logOffset);
  if (tail) console.error(tail);
  throw new CliError(
    `endpoint "${name}" (pid ${daemon.pid}) did not connect within ${
      timeoutMs / 1000
    } s; it keeps retrying in the background: see \`funcx-endpoint logs ${name}\`, or \`funcx-endpoint stop ${name}\``,
  );
}

/**
 * What `start` prints once the daemon is connected.
 *
 * @example
 * ```ts
 * startedMessage("default", { pid: 4242, endpointId: null });
 * // 'Endpoint "default" started (pid 4242), endpoint id unknown'
 * ```
 */
export function startedMessage(
  name: string,
  r: { pid: number; endpointId: string | null },
): string {
  return `Endpoint "${name}" started (pid ${r.pid}), endpoint id ${r.endpointId ?? "unknown"}`;
}

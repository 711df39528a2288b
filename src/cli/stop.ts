/**
 * `funcx-endpoint stop [NAME]`: stop the daemon the first time (SIGTERM, clean shutdown,
 * SIGKILL of its process group after the timeout); a stopped endpoint is a no-op. A daemon
 * on another login node sharing the funcX home is asked through a stop request it watches
 * for; `--clear-dead-host` removes the lock of a daemon whose host is gone for good.
 *
 * @example
 * ```ts
 * import { stopEndpoint } from "./stop.ts";
 * console.log(await stopEndpoint("/home/u/.funcx", "default", 30));
 * ```
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { checkPidFile, clearRemotePidFile, localHost } from "../daemon/pidfile.ts";
import { readStatusFile, STATUS_STALE_MS } from "../daemon/state.ts";
import { stopDaemon } from "../daemon/stop.ts";
import { writeStopRequest } from "../daemon/stop_request.ts";
import { sleep } from "../util/sleep.ts";
import { endpointName, requireConfigured } from "./common.ts";
import { type CliContext, CliError } from "./context.ts";
import { withProgress } from "./progress.ts";

/**
 * Stop endpoint `name`; returns the message to print.
 *
 * @example
 * ```ts ignore
 * await stopEndpoint(home, "default", 30); // 'Endpoint "default" stopped (pid 123)'
 * ```
 */
export async function stopEndpoint(
  home: string,
  name: string,
  timeoutSeconds: number,
  opts: { clearDeadHost?: boolean; now?: () => number } = {},
) {
  const p = requireConfigured(home, name);
  if (opts.clearDeadHost) return _clearDeadHost(p, name, (opts.now ?? Date.now)());
  const r = await withProgress(
    `stopping endpoint "${name}"`,
    stopDaemon({ pidFile: p.pidFile, timeoutMs: timeoutSeconds * 1000, home }),
  );
  switch (r.result) {
    case "not-running":
      return `Endpoint "${name}" is not running`;
    case "stale":
      return `Endpoint "${name}" was not running; cleaned up its stale pid file (${r.reason})${
        r.leftovers ? ` and killed ${r.leftovers} leftover process(es) of the dead daemon` : ""
      }`;
    case "stopped":
      return `Endpoint "${name}" stopped (pid ${r.pid})`;
    case "killed":
      return `Endpoint "${name}" did not stop within ${timeoutSeconds} s; killed its process group (pid ${r.pid})`;
    case "remote":
      return await _stopRemote(p, name, r, timeoutSeconds);
  }
}

/** True while the pid file still names `host`/`pid`. */
function _stillHeld(pidFile: string, host: string, pid: number): boolean {
  const s = checkPidFile(pidFile, localHost());
  return s.state === "remote" && s.host === host && s.pid === pid;
}

async function _stopRemote(
  p: { pidFile: string; stopRequest: string },
  name: string,
  r: { host: string; pid: number },
  timeoutSeconds: number,
): Promise<string> {
  writeStopRequest(p.stopRequest, r, localHost());
  const deadline = performance.now() + timeoutSeconds * 1000;
  while (performance.now() < deadline) {
    if (!_stillHeld(p.pidFile, r.host, r.pid)) {
      return `Endpoint "${name}" stopped on host ${r.host} (pid ${r.pid})`;
    }
    await sleep(200);
  }
  throw new CliError(
    `endpoint "${name}" on host ${r.host} (pid ${r.pid}) did not stop within ${timeoutSeconds} s; stop it on ${r.host}, or if ${r.host} is gone for good: \`funcx-endpoint stop ${name} --clear-dead-host\``,
  );
}

function _clearDeadHost(
  p: { pidFile: string; statusFile: string; stopRequest: string },
  name: string,
  now: number,
): string {
  const s = checkPidFile(p.pidFile, localHost());
  if (s.state !== "remote") {
    throw new CliError(
      `--clear-dead-host: endpoint "${name}" is not locked by another host (${
        s.state === "running" ? `it runs here, pid ${s.pid}` : "no daemon recorded"
      }); use \`funcx-endpoint stop ${name}\``,
    );
  }
  const st = readStatusFile(p.statusFile);
  const updated = st && st.pid === s.pid ? Date.parse(st.updated_at) : NaN;
  if (Number.isFinite(updated) && now - updated <= STATUS_STALE_MS) {
    throw new CliError(
      `--clear-dead-host: endpoint "${name}" on host ${s.host} (pid ${s.pid}) is alive (status.json updated ${
        Math.round((now - updated) / 1000)
      } s ago); use \`funcx-endpoint stop ${name}\``,
    );
  }
  if (!clearRemotePidFile(p.pidFile, s.host, s.pid)) {
    throw new CliError(
      `--clear-dead-host: the lock of endpoint "${name}" changed meanwhile; retry`,
    );
  }
  for (const f of [p.statusFile, p.stopRequest]) {
    try {
      Deno.removeSync(f);
    } catch { /* absent */ }
  }
  return `Endpoint "${name}": cleared the lock of the dead daemon on host ${s.host} (pid ${s.pid}); no process was signalled`;
}

/**
 * Parse a `--timeout` value in seconds.
 *
 * @example
 * ```ts
 * parseTimeout("30"); // 30
 * ```
 */
export function parseTimeout(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    throw new CliError(`--timeout: "${value}" is not a positive number of seconds`);
  }
  return n;
}

/**
 * Add the `stop` command.
 *
 * @example
 * ```ts ignore
 * register(program, ctx); // funcx-endpoint stop [NAME] [--timeout S]
 * ```
 */
export function register(program: Command, ctx: CliContext) {
  program
    .command("stop")
    .description("stop a running endpoint (clean shutdown, then kill after --timeout)")
    .argument("[name]", "endpoint name", "default")
    .option("--timeout <seconds>", "how long to wait for a clean shutdown", "30")
    .option(
      "--clear-dead-host",
      "remove the lock of a daemon on another login node that is gone for good (status.json no longer updated)",
    )
    .action(async (nameArg, opts) => {
      const name = endpointName(nameArg);
      console.log(
        await stopEndpoint(ctx.home, name, parseTimeout(opts.timeout), {
          clearDeadHost: opts.clearDeadHost === true,
        }),
      );
    });
}

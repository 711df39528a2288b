/**
 * `funcx-endpoint stop [NAME]`: stop the daemon the first time (SIGTERM, clean shutdown,
 * SIGKILL of its process group after the timeout); a stopped endpoint is a no-op.
 *
 * @example
 * ```ts
 * import { stopEndpoint } from "./stop.ts";
 * console.log(await stopEndpoint("/home/u/.funcx", "default", 30));
 * ```
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { stopDaemon } from "../daemon/stop.ts";
import { endpointName, requireConfigured } from "./common.ts";
import { type CliContext, CliError } from "./context.ts";
import { withProgress } from "./progress.ts";

/**
 * Stop endpoint `name`; returns the message to print.
 *
 * @example
 * ```ts
 * await stopEndpoint(home, "default", 30); // 'Endpoint "default" stopped (pid 123)'
 * ```
 */
export async function stopEndpoint(home: string, name: string, timeoutSeconds: number) {
  const p = requireConfigured(home, name);
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
  }
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
 * ```ts
 * register(program, ctx); // funcx-endpoint stop [NAME] [--timeout S]
 * ```
 */
export function register(program: Command, ctx: CliContext) {
  program
    .command("stop")
    .description("stop a running endpoint (clean shutdown, then kill after --timeout)")
    .argument("[name]", "endpoint name", "default")
    .option("--timeout <seconds>", "how long to wait for a clean shutdown", "30")
    .action(async (nameArg, opts) => {
      const name = endpointName(nameArg);
      console.log(await stopEndpoint(ctx.home, name, parseTimeout(opts.timeout)));
    });
}

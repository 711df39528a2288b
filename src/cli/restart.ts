/**
 * `funcx-endpoint restart [NAME]`: stop (if running), then start and wait until connected.
 *
 * @example
 * ```ts ignore
 * register(program, ctx); // funcx-endpoint restart [NAME]
 * ```
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { checkUuid, endpointName } from "./common.ts";
import type { CliContext } from "./context.ts";
import { startEndpoint } from "./launch.ts";
import { preflight } from "./preflight.ts";
import { checkOwner } from "./owner.ts";
import { parseTimeout, stopEndpoint } from "./stop.ts";

/**
 * Add the `restart` command.
 *
 * @example
 * ```ts ignore
 * register(program, ctx);
 * ```
 */
export function register(program: Command, ctx: CliContext) {
  program
    .command("restart")
    .description("stop the endpoint if it runs, then start it again")
    .argument("[name]", "endpoint name", "default")
    .option("--endpoint-uuid <uuid>", "endpoint id to register with (when never registered)")
    .option("--timeout <seconds>", "how long to wait for the stop and for the start", "60")
    .action(async (nameArg, opts) => {
      const name = endpointName(nameArg);
      const endpointUuid = checkUuid(opts.endpointUuid);
      const timeout = parseTimeout(opts.timeout);
      // Check config, credentials and ownership first, so that a broken config or another
      // identity does not stop a running daemon.
      const { global } = await preflight(ctx.home, name);
      await checkOwner(ctx.home, name, global);
      console.log(await stopEndpoint(ctx.home, name, timeout));
      const r = await startEndpoint({
        home: ctx.home,
        name,
        debug: ctx.debug(),
        endpointUuid,
        timeoutSeconds: timeout,
      });
      console.log(
        `Endpoint "${name}" started (pid ${r.pid}), endpoint id ${r.endpointId ?? "unknown"}`,
      );
    });
}

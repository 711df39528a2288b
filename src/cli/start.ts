/**
 * `funcx-endpoint start [NAME]`: check the config and credentials, then re-exec this
 * program detached as the endpoint daemon and return once it reports `connected` in
 * `status.json` (or print the log tail and fail). `--foreground` runs the daemon in
 * this process instead (systemd, tests, and the detached child itself).
 *
 * @example
 * ```ts ignore
 * import { register } from "./start.ts";
 * register(program, ctx); // funcx-endpoint start [NAME] [--foreground] ...
 * ```
 * @module
 */
import { Option } from "@commander-js/extra-typings";
import type { Command } from "@commander-js/extra-typings";
import { checkUuid, endpointName } from "./common.ts";
import { type CliContext, CliError } from "./context.ts";
import { startedMessage, startEndpoint } from "./launch.ts";

/**
 * Add the `start` command.
 *
 * @example
 * ```ts ignore
 * register(program, ctx); // funcx-endpoint start [NAME] [--endpoint-uuid U] [--foreground]
 * ```
 */
export function register(program: Command, ctx: CliContext) {
  program
    .command("start")
    .description("start an endpoint as a background daemon and wait until it is connected")
    .argument("[name]", "endpoint name", "default")
    .option("--endpoint-uuid <uuid>", "endpoint id to register with (when never registered)")
    .option("--foreground", "run in this process instead of detaching (systemd, containers)")
    .option("--timeout <seconds>", "how long to wait for the daemon to connect", "60")
    .option(
      "--keep-retrying",
      "start even if the service cannot be reached, and leave the daemon retrying",
    )
    .addOption(new Option("--daemon", "internal: this process is the detached daemon").hideHelp())
    .action(async (nameArg, opts) => {
      const name = endpointName(nameArg);
      const endpointUuid = checkUuid(opts.endpointUuid);
      const timeoutSeconds = Number(opts.timeout);
      if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
        throw new CliError(`--timeout: "${opts.timeout}" is not a positive number of seconds`);
      }
      if (opts.foreground) {
        // the daemon's code (endpoint, interchange, zeromq) is loaded only by the daemon
        const { runForeground } = await import("./foreground.ts");
        ctx.setExitCode(
          await runForeground({
            home: ctx.home,
            name,
            endpointUuid,
            debug: ctx.debug(),
            daemon: !!opts.daemon,
          }),
        );
        return;
      }
      const r = await startEndpoint({
        home: ctx.home,
        name,
        debug: ctx.debug(),
        endpointUuid,
        timeoutSeconds,
        keepRetrying: !!opts.keepRetrying,
      });
      console.log(startedMessage(name, r));
    });
}

/**
 * `funcx-endpoint delete NAME [--yes]`: stop the endpoint and remove its directory
 * (config, keys, logs, state). The service's record is kept, as upstream.
 *
 * @example
 * ```ts ignore
 * register(program, ctx); // funcx-endpoint delete NAME [--yes]
 * ```
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { endpointPaths } from "../config/paths.ts";
import { stopDaemon } from "../daemon/stop.ts";
import { endpointName } from "./common.ts";
import { type CliContext, CliError } from "./context.ts";
import { withProgress } from "./progress.ts";

/**
 * Print `question` and read one line from stdin; true for y/yes.
 *
 * @example
 * ```ts
 * if (!await confirm("Delete? [y/N] ")) throw new Error("Aborted!");
 * ```
 */
export async function confirm(question: string): Promise<boolean> {
  await Deno.stdout.write(new TextEncoder().encode(question));
  const buf = new Uint8Array(1024);
  let line = "";
  const dec = new TextDecoder();
  for (;;) {
    const n = await Deno.stdin.read(buf);
    if (n === null) break;
    line += dec.decode(buf.subarray(0, n), { stream: true });
    if (line.includes("\n")) break;
  }
  if (!line.endsWith("\n")) await Deno.stdout.write(new TextEncoder().encode("\n"));
  return /^\s*y(es)?\s*$/i.test(line.split("\n")[0]);
}

/**
 * Add the `delete` command.
 *
 * @example
 * ```ts ignore
 * register(program, ctx);
 * ```
 */
export function register(program: Command, ctx: CliContext) {
  program
    .command("delete")
    .description("stop an endpoint and delete its directory (config, keys, logs)")
    .argument("<name>", "endpoint name")
    .option("-y, --yes", "do not ask for confirmation")
    .action(async (nameArg, opts) => {
      const name = endpointName(nameArg);
      const p = endpointPaths(ctx.home, name);
      try {
        if (!Deno.statSync(p.dir).isDirectory) throw new Deno.errors.NotFound();
      } catch {
        throw new CliError(`endpoint "${name}" does not exist (no directory ${p.dir})`);
      }
      if (
        !opts.yes &&
        !await confirm(`Are you sure you want to delete the endpoint ${name}? [y/N] `)
      ) {
        throw new CliError("Aborted!");
      }
      const r = await withProgress(
        `stopping endpoint "${name}"`,
        stopDaemon({ pidFile: p.pidFile, timeoutMs: 30_000, home: ctx.home }),
      );
      if (r.result === "remote") {
        throw new CliError(
          `endpoint "${name}" runs on host ${r.host} (pid ${r.pid}): stop it first with \`funcx-endpoint stop ${name}\``,
        );
      }
      if (r.result === "stopped" || r.result === "killed") {
        console.log(`Endpoint "${name}" stopped (pid ${r.pid})`);
      }
      Deno.removeSync(p.dir, { recursive: true });
      console.log(`Endpoint "${name}" deleted (${p.dir})`);
    });
}

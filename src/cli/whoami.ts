/**
 * `funcx-endpoint whoami [--json]`: show the identity of the stored login (userinfo).
 *
 * @example
 * ```ts
 * import { register } from "./whoami.ts";
 * register(program, ctx); // funcx-endpoint whoami
 * ```
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { whoami } from "../auth/login.ts";
import { homePaths } from "../config/paths.ts";
import { loadGlobalConfig } from "../config/schema.ts";
import type { CliContext } from "./context.ts";

/**
 * Add the `whoami` command.
 *
 * @example
 * ```ts
 * register(program, ctx);
 * ```
 */
export function register(program: Command, ctx: CliContext) {
  program
    .command("whoami")
    .description("show who the stored tokens belong to")
    .option("--json", "print the full userinfo as JSON")
    .action(async (opts) => {
      const global = loadGlobalConfig(homePaths(ctx.home).globalConfig);
      const info = await whoami(ctx.home, global);
      if (opts.json) {
        console.log(JSON.stringify(info, null, 2));
        return;
      }
      const name = info.preferred_username ?? info.username ?? info.name ?? info.sub;
      console.log(`${name}${info.email ? ` <${info.email}>` : ""} (sub ${info.sub ?? "?"})`);
    });
}

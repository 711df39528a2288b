/**
 * `funcx-endpoint logout`: revoke the stored tokens (when the server allows it) and
 * delete the token file.
 *
 * @example
 * ```ts ignore
 * import { register } from "./logout.ts";
 * register(program, ctx); // funcx-endpoint logout
 * ```
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { logout } from "../auth/login.ts";
import { homePaths } from "../config/paths.ts";
import { loadGlobalConfig } from "../config/schema.ts";
import type { CliContext } from "./context.ts";

/**
 * Add the `logout` command.
 *
 * @example
 * ```ts ignore
 * register(program, ctx);
 * ```
 */
export function register(program: Command, ctx: CliContext) {
  program
    .command("logout")
    .description("revoke and delete the stored tokens")
    .action(async () => {
      const global = loadGlobalConfig(homePaths(ctx.home).globalConfig);
      const r = await logout(ctx.home, global);
      if (!r.hadTokens) {
        console.log("Not logged in; nothing to do.");
        return;
      }
      if (r.revokeErrors.length) {
        console.error(
          `warning: tokens could not be revoked (${r.revokeErrors[0]}); deleted locally`,
        );
      }
      console.log(`Logged out: ${r.revoked} token(s) revoked, token file deleted.`);
    });
}

/**
 * `funcx-endpoint login [--force]`: the PKCE native-app login (prints a URL, reads the
 * pasted code from stdin; works on a headless login node over ssh).
 *
 * @example
 * ```ts
 * import { register } from "./login.ts";
 * register(program, ctx); // funcx-endpoint login [--force]
 * ```
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { envClientCredentials, getAccessToken } from "../auth/access.ts";
import { login } from "../auth/login.ts";
import { TokenStore } from "../auth/tokens.ts";
import { homePaths } from "../config/paths.ts";
import { loadGlobalConfig } from "../config/schema.ts";
import type { CliContext } from "./context.ts";

/**
 * Add the `login` command.
 *
 * @example
 * ```ts
 * register(program, ctx);
 * ```
 */
export function register(program: Command, ctx: CliContext) {
  program
    .command("login")
    .description("log in to the funcX auth server (prints a URL, then reads the code you paste)")
    .option("-f, --force", "log in again even if valid tokens are stored")
    .action(async (opts) => {
      const global = loadGlobalConfig(homePaths(ctx.home).globalConfig);
      if (envClientCredentials()) {
        await getAccessToken(ctx.home, global, { force: true });
        console.log(
          "Using client credentials from FUNCX_SDK_CLIENT_ID/FUNCX_SDK_CLIENT_SECRET: token obtained.",
        );
        return;
      }
      const r = await login({ home: ctx.home, global, force: !!opts.force });
      if (r === "already") {
        console.log("Already logged in (use --force to log in again).");
      } else {
        console.log(`\nLogged in; tokens saved to ${new TokenStore(ctx.home).path}`);
      }
    });
}

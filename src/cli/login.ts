/**
 * `funcx-endpoint login [--force] [--user NAME [--password-stdin]]`: log in to the auth
 * server. With the local service: prints a URL and a short code to approve from any browser
 * that reaches the service (device authorization grant), or, with `--user`, approves it here
 * with the user's password (headless machines). Other servers: the PKCE paste-the-code flow.
 *
 * @example
 * ```ts ignore
 * import { register } from "./login.ts";
 * register(program, ctx); // funcx-endpoint login [--force] [--user NAME]
 * ```
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { envClientCredentials, getAccessToken } from "../auth/access.ts";
import { login } from "../auth/login.ts";
import { TokenStore } from "../auth/tokens.ts";
import { homePaths } from "../config/paths.ts";
import { loadGlobalConfig } from "../config/schema.ts";
import { type CliContext, CliError } from "./context.ts";
import { readPassword } from "./password.ts";
import { type Progress, progress } from "./progress.ts";

/**
 * Add the `login` command.
 *
 * @example
 * ```ts ignore
 * register(program, ctx);
 * ```
 */
export function register(program: Command, ctx: CliContext) {
  program
    .command("login")
    .description(
      "log in to the funcX auth server (prints a URL and a code to approve in any browser)",
    )
    .option("-f, --force", "log in again even if valid tokens are stored")
    .option("-u, --user <name>", "approve the login here as this user (asks for the password)")
    .option("--password-stdin", "with --user: read the password from stdin")
    .action(async (opts) => {
      if (opts.passwordStdin && !opts.user) {
        throw new CliError("--password-stdin needs --user NAME");
      }
      const global = loadGlobalConfig(homePaths(ctx.home).globalConfig);
      if (envClientCredentials()) {
        await getAccessToken(ctx.home, global, { force: true });
        console.log(
          "Using client credentials from FUNCX_SDK_CLIENT_ID/FUNCX_SDK_CLIENT_SECRET: token obtained.",
        );
        return;
      }
      const user = opts.user;
      // started at the first wait, after any password prompt
      let wait: Progress | undefined;
      let r;
      try {
        r = await login({
          home: ctx.home,
          global,
          force: !!opts.force,
          approveAs: user === undefined ? undefined : {
            username: user,
            password: () => readPassword(!!opts.passwordStdin, `Password for ${user}: `),
          },
          onWait: (left) =>
            (wait ??= progress("waiting for the login to be approved")).update(
              `${Math.floor(left / 60)}:${`${left % 60}`.padStart(2, "0")} left`,
            ),
        });
      } finally {
        wait?.done();
      }
      if (r === "already") {
        console.log("Already logged in (use --force to log in again).");
      } else {
        console.log(`Logged in; tokens saved to ${new TokenStore(ctx.home).path}`);
      }
    });
}

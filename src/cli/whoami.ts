/**
 * `funcx-endpoint whoami [--json]`: the identity of the credentials in use (user name,
 * email, groups) and where it comes from (environment client credentials or stored login).
 *
 * @example
 * ```ts ignore
 * import { register } from "./whoami.ts";
 * register(program, ctx); // funcx-endpoint whoami
 * ```
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { type IdentityReport, identityReport } from "../auth/login.ts";
import { homePaths } from "../config/paths.ts";
import { loadGlobalConfig } from "../config/schema.ts";
import type { CliContext } from "./context.ts";

/**
 * The lines `whoami` prints.
 *
 * @example
 * ```ts
 * renderIdentity({ info: { preferred_username: "alice", sub: "s" }, groups: [],
 *   source: { kind: "login", tokenFile: "/h/credentials/funcx_sdk_tokens.json" } });
 * ```
 */
export function renderIdentity(r: IdentityReport): string {
  const i = r.info;
  const name = i.preferred_username ?? i.username ?? i.name ?? i.sub;
  const lines = [`${name}${i.email ? ` <${i.email}>` : ""} (sub ${i.sub ?? "?"})`];
  if (r.groups === null) lines.push(`Groups: unknown (${r.groupsError})`);
  else {
    lines.push(
      `Groups: ${
        r.groups.length ? r.groups.map((g) => `${g.name} (${g.role})`).join(", ") : "none"
      }`,
    );
  }
  lines.push(
    r.source.kind === "environment"
      ? `Identity from: FUNCX_SDK_CLIENT_ID/FUNCX_SDK_CLIENT_SECRET (client ${r.source.clientId}); they take precedence over stored login tokens`
      : `Identity from: stored login tokens (${r.source.tokenFile})`,
  );
  return lines.join("\n");
}

/**
 * Add the `whoami` command.
 *
 * @example
 * ```ts ignore
 * register(program, ctx);
 * ```
 */
export function register(program: Command, ctx: CliContext) {
  program
    .command("whoami")
    .description(
      "show who the credentials in use belong to, their groups, and where they come from",
    )
    .option("--json", "print the userinfo, groups and identity source as JSON")
    .action(async (opts) => {
      const global = loadGlobalConfig(homePaths(ctx.home).globalConfig);
      const r = await identityReport(ctx.home, global);
      if (opts.json) {
        console.log(JSON.stringify(
          { ...r.info, groups: r.groups, groups_error: r.groupsError, identity_source: r.source },
          null,
          2,
        ));
        return;
      }
      console.log(renderIdentity(r));
    });
}

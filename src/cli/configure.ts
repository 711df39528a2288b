/**
 * `funcx-endpoint configure [NAME]`: create `NAME/config.yaml` from the commented
 * template (and the global `config.yaml` when missing).
 *
 * @example
 * ```ts
 * import { configureEndpoint } from "./configure.ts";
 * const path = configureEndpoint("/home/u/.funcx", "default");
 * ```
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { endpointPaths, homePaths } from "../config/paths.ts";
import { loadGlobalConfig } from "../config/schema.ts";
import { endpointConfigTemplate, globalConfigTemplate } from "../config/templates.ts";
import type { CliContext } from "./context.ts";
import { CliError } from "./context.ts";
import { endpointName } from "./common.ts";

function _exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Write the global config template unless a config (YAML or legacy Python) exists.
 * Returns the path when it was written.
 *
 * @example
 * ```ts
 * ensureGlobalConfig("/home/u/.funcx"); // "/home/u/.funcx/config.yaml" the first time
 * ```
 */
export function ensureGlobalConfig(home: string): string | undefined {
  const hp = homePaths(home);
  if (_exists(hp.globalConfig) || _exists(hp.legacyGlobalConfig)) return undefined;
  Deno.writeTextFileSync(hp.globalConfig, globalConfigTemplate(), { mode: 0o600, createNew: true });
  return hp.globalConfig;
}

/**
 * Create `home/name/config.yaml` from the template; a CliError when it already exists.
 * Returns the path of the new file.
 *
 * @example
 * ```ts
 * configureEndpoint("/home/u/.funcx", "hpc"); // "/home/u/.funcx/hpc/config.yaml"
 * ```
 */
export function configureEndpoint(home: string, name: string): string {
  const p = endpointPaths(home, name);
  if (_exists(p.config)) {
    throw new CliError(
      `endpoint "${name}" is already configured at ${p.config}; edit that file, or \`funcx-endpoint delete ${name}\` first`,
    );
  }
  Deno.mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  Deno.writeTextFileSync(p.config, endpointConfigTemplate(name), { mode: 0o600, createNew: true });
  return p.config;
}

/**
 * Add the `configure` command.
 *
 * @example
 * ```ts ignore
 * register(program, ctx); // funcx-endpoint configure [NAME]
 * ```
 */
export function register(program: Command, ctx: CliContext) {
  program
    .command("configure")
    .description("create an endpoint's config.yaml from a fully commented template")
    .argument("[name]", "endpoint name", "default")
    .action((nameArg) => {
      const name = endpointName(nameArg);
      const globalWritten = ensureGlobalConfig(ctx.home);
      // A broken global config is reported now rather than at `start`.
      loadGlobalConfig(homePaths(ctx.home).globalConfig);
      const p = endpointPaths(ctx.home, name);
      const hadLegacy = _exists(p.legacyConfig);
      const path = configureEndpoint(ctx.home, name);
      if (globalWritten) console.log(`Wrote the global configuration ${globalWritten}`);
      console.log(`A default profile has been created for ${name} at ${path}`);
      if (hadLegacy) {
        console.log(
          `Note: ${p.legacyConfig} is a Python config and is not read: translate its settings into config.yaml, then remove it.`,
        );
      }
      console.log(`Configure this file and try starting with:\n    $ funcx-endpoint start ${name}`);
    });
}

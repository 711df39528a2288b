/**
 * What `start` checks before it detaches (and the daemon again when it starts): the endpoint
 * name, `--endpoint-uuid`, the configs and the credentials. Kept apart from `start.ts` so the
 * daemon's fast path (`fast.ts`) does not load the command-line library.
 *
 * @example
 * ```ts
 * import { preflight } from "./preflight.ts";
 * const { config, global } = await preflight("/home/u/.funcx", "default");
 * ```
 * @module
 */
import { getAccessToken } from "../auth/access.ts";
import { homePaths } from "../config/paths.ts";
import { loadEndpointConfig, loadGlobalConfig } from "../config/schema.ts";
import type { EndpointConfig, GlobalConfig } from "../config/types.ts";
import { requireConfigured } from "./common.ts";
import { CliError } from "./context.ts";

/**
 * Load the global and endpoint configs and make sure we have credentials: everything
 * that can be checked before detaching.
 *
 * @example
 * ```ts
 * const { config, global } = await preflight("/home/u/.funcx", "default");
 * ```
 */
export async function preflight(
  home: string,
  name: string,
): Promise<{ config: EndpointConfig; global: GlobalConfig }> {
  const p = requireConfigured(home, name);
  const global = loadGlobalConfig(homePaths(home).globalConfig);
  const config = loadEndpointConfig(p.config);
  try {
    await getAccessToken(home, global);
  } catch (e) {
    throw new CliError(`cannot start endpoint "${name}": ${(e as Error).message}`);
  }
  return { config, global };
}

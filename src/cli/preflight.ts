/**
 * What `start` checks before it detaches (and the daemon again when it starts): the endpoint
 * name, `--endpoint-uuid`, the configs (an executable `executor.python` for local blocks, an
 * `executor.address` that resolves on this host) and the credentials. Kept apart from `start.ts` so the
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
import { checkPython } from "../daemon/python.ts";
import { resolveSystemAddress } from "../engine/address.ts";
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
  // batch nodes may have another file system: the interpreter is checked only for local blocks
  const problems = await Promise.all([
    config.provider.type === "local" ? checkPython(config.executor.python) : null,
    resolveSystemAddress(config.executor.address).then(() => null, (e) => (e as Error).message),
  ]);
  for (const problem of problems) {
    if (problem) throw new CliError(`cannot start endpoint "${name}": ${p.config}: ${problem}`);
  }
  try {
    await getAccessToken(home, global);
  } catch (e) {
    throw new CliError(`cannot start endpoint "${name}": ${(e as Error).message}`);
  }
  return { config, global };
}

/**
 * Pick the provider an endpoint config names (`provider.type`).
 *
 * @example
 * ```ts
 * import { createProvider } from "./providers.ts";
 * import { DEFAULT_ENDPOINT_CONFIG } from "../config/types.ts";
 * import { createLogger } from "../daemon/log.ts";
 * const p = createProvider({
 *   config: DEFAULT_ENDPOINT_CONFIG, endpointDir: "/home/u/.funcx/default", log: createLogger(),
 * });
 * p.label; // "local"
 * ```
 * @module
 */
import { dirname, join } from "node:path";
import type { EndpointConfig } from "../config/types.ts";
import type { Logger } from "../daemon/log.ts";
import { LocalProvider } from "./local.ts";
import { PBSProProvider } from "./pbs.ts";
import type { Provider } from "./provider.ts";
import { SlurmProvider } from "./slurm.ts";

/** What {@linkcode createProvider} needs. */
export interface ProviderInput {
  /** The endpoint config (`provider.type` picks the provider). */
  config: EndpointConfig;
  /** `$FUNCX_HOME/<NAME>`. */
  endpointDir: string;
  /** Logger for provider messages. */
  log: Logger;
}

/** The provider for `config.provider.type`. */
export function createProvider(input: ProviderInput): Provider {
  const home = dirname(input.endpointDir);
  const type = input.config.provider.type;
  switch (type) {
    case "local":
      return new LocalProvider({
        home,
        logDir: join(input.endpointDir, "worker_logs"),
        workerInit: input.config.provider.worker_init,
      });
    case "slurm":
      return new SlurmProvider({
        config: input.config.provider,
        endpointDir: input.endpointDir,
        home,
      });
    case "pbs":
      return new PBSProProvider({
        config: input.config.provider,
        endpointDir: input.endpointDir,
        home,
      });
    default:
      throw new Error(`provider.type: "${type}" is not supported; expected local, slurm or pbs`);
  }
}

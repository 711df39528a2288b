/**
 * Helpers shared by the endpoint commands: name validation and "is it configured".
 *
 * @example
 * ```ts
 * import { endpointName } from "./common.ts";
 * endpointName("default"); // "default"
 * endpointName("a/b"); // throws CliError: endpoint name "a/b" must not contain a path separator
 * ```
 * @module
 */
import { checkEndpointName, endpointPaths } from "../config/paths.ts";
import { CliError } from "./context.ts";
import { isUuid } from "../endpoint/files.ts";

/** Default endpoint name when NAME is omitted. */
export const DEFAULT_ENDPOINT = "default";

/**
 * Validate an endpoint name argument (default `default`), or throw a one-line CliError.
 *
 * @example
 * ```ts
 * endpointName(undefined); // "default"
 * ```
 */
export function endpointName(name: string | undefined): string {
  const n = name ?? DEFAULT_ENDPOINT;
  const problem = checkEndpointName(n);
  if (problem) throw new CliError(problem);
  return n;
}

/**
 * The paths of a configured endpoint; a CliError when it is not configured.
 *
 * @example
 * ```ts
 * const p = requireConfigured("/home/u/.funcx", "default");
 * ```
 */
export function requireConfigured(home: string, name: string): ReturnType<typeof endpointPaths> {
  const p = endpointPaths(home, name);
  const has = (f: string) => {
    try {
      return Deno.statSync(f).isFile;
    } catch {
      return false;
    }
  };
  if (!has(p.config) && !has(p.legacyConfig)) {
    throw new CliError(
      `endpoint "${name}" is not configured (no ${p.config}): run \`funcx-endpoint configure ${name}\``,
    );
  }
  return p;
}

/**
 * Validate `--endpoint-uuid`.
 *
 * @example
 * ```ts
 * checkUuid("not-a-uuid"); // throws CliError
 * ```
 */
export function checkUuid(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!isUuid(value)) {
    throw new CliError(
      `--endpoint-uuid: "${value}" is not a UUID; expected the form 12345678-9abc-def0-1234-56789abcdef0`,
    );
  }
  return value.toLowerCase();
}

/**
 * The one-line refusal to start an endpoint that runs already, here or on another host.
 *
 * @example
 * ```ts
 * alreadyRunning("default", 42, "login2");
 * // 'endpoint "default" is already running on host login2 (pid 42); stop it with `funcx-endpoint stop default` (from any login node)'
 * ```
 */
export function alreadyRunning(name: string, pid: number, host?: string): string {
  if (!host) return `endpoint "${name}" is already running (pid ${pid})`;
  return `endpoint "${name}" is already running on host ${host} (pid ${pid}); stop it with \`funcx-endpoint stop ${name}\` (from any login node), or if ${host} is gone for good: \`funcx-endpoint stop ${name} --clear-dead-host\``;
}

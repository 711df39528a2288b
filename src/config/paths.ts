/**
 * Locations of everything the endpoint keeps on disk, all below the funcX home.
 *
 * The home is, in order: the `--config-dir` option, `FUNCX_HOME`, `~/.funcx`.
 *
 * @example
 * ```ts
 * import { resolveHome, endpointPaths } from "./paths.ts";
 * const home = resolveHome({ env: { HOME: "/home/u" } });
 * endpointPaths(home, "default").pidFile; // "/home/u/.funcx/default/daemon.pid"
 * ```
 * @module
 */
import { join, resolve } from "node:path";

/** Inputs for {@linkcode resolveHome}. */
export interface HomeInput {
  configDir?: string;
  env: Record<string, string | undefined>;
  cwd?: string;
}

/** The funcX home directory (absolute). */
export function resolveHome(input: HomeInput): string {
  const cwd = input.cwd ?? "/";
  if (input.configDir) return resolve(cwd, input.configDir);
  if (input.env.FUNCX_HOME) return resolve(cwd, input.env.FUNCX_HOME);
  const userHome = input.env.HOME ?? input.env.USERPROFILE;
  if (!userHome) throw new Error("cannot find the funcX home: set FUNCX_HOME or HOME");
  return join(userHome, ".funcx");
}

/** Files of the funcX home itself. */
export function homePaths(home: string) {
  return {
    home,
    globalConfig: join(home, "config.yaml"),
    legacyGlobalConfig: join(home, "config.py"),
    credentialsDir: join(home, "credentials"),
    tokens: join(home, "credentials", "funcx_sdk_tokens.json"),
    serviceDir: join(home, "service"),
  };
}

/** Files of one endpoint, `home/NAME/...`. */
export function endpointPaths(home: string, name: string) {
  const dir = join(home, name);
  return {
    dir,
    config: join(dir, "config.yaml"),
    legacyConfig: join(dir, "config.py"),
    endpointJson: join(dir, "endpoint.json"),
    pidFile: join(dir, "daemon.pid"),
    lockFile: join(dir, "daemon.lock"),
    /** Written by `stop` on another login node; the daemon polls for it (daemon/stop_request.ts). */
    stopRequest: join(dir, "stop.request"),
    /** The systemd user unit of `enable-on-boot` (linked into ~/.config/systemd/user). */
    userUnit: join(dir, `funcx-endpoint-${name}.service`),
    statusFile: join(dir, "status.json"),
    log: join(dir, "endpoint.log"),
    certificates: join(dir, "certificates"),
    endpointKey: join(dir, "certificates", "endpoint.key"),
    endpointSecret: join(dir, "certificates", "endpoint.key_secret"),
    serverKey: join(dir, "certificates", "server.key"),
    unackedResults: join(dir, "unacked_results.json"),
    workerDir: join(dir, "worker"),
    workerLogs: join(dir, "worker_logs"),
    submitScripts: join(dir, "submit_scripts"),
  };
}

/** Files of the local service, `home/service/...`. */
export function servicePaths(home: string) {
  const dir = join(home, "service");
  return {
    dir,
    db: join(dir, "funcx.sqlite"),
    pidFile: join(dir, "service.pid"),
    infoFile: join(dir, "service.json"),
    log: join(dir, "service.log"),
    curveDir: join(dir, "curve"),
    serverKey: join(dir, "curve", "server.key"),
    serverSecret: join(dir, "curve", "server.key_secret"),
  };
}

/**
 * Validate an endpoint name: a single path segment of letters, digits, `.`, `_`, `-`,
 * not starting with `.`. Returns an error message or `undefined` when valid.
 */
export function checkEndpointName(name: string): string | undefined {
  if (name === "") return "endpoint name must not be empty";
  if (name.includes("/") || name.includes("\\")) {
    return `endpoint name "${name}" must not contain a path separator`;
  }
  if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/.test(name)) {
    return `endpoint name "${name}" is invalid: use 1-64 letters, digits, '.', '_' or '-', not starting with '.' or '-'`;
  }
  if (name === "credentials" || name === "service") {
    return `endpoint name "${name}" is reserved`;
  }
  return undefined;
}

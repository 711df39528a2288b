/**
 * `service.json`: where a running local service listens, written once it is listening.
 *
 * @example
 * ```ts
 * import { readServiceInfo, serviceUrl } from "./info.ts";
 * const info = await readServiceInfo("/home/u/.funcx");
 * if (info) console.log(serviceUrl(info)); // "http://127.0.0.1:8400/v2"
 * ```
 * @module
 */
import { servicePaths } from "../config/paths.ts";

/** Contents of `service.json` (DESIGN.md §7). */
export interface ServiceInfo {
  /** Process id. */
  pid: number;
  /** Interface the HTTP server listens on. */
  host: string;
  /** HTTP port. */
  port: number;
  /** Address endpoints connect to. */
  public_host: string;
  /** Forwarder tasks port. */
  tasks_port: number;
  /** Forwarder results port. */
  results_port: number;
  /** Forwarder commands port. */
  commands_port: number;
  /** Start time (ISO 8601). */
  started_at: string;
  /** Reported version. */
  version: string;
  /** The HTTP listener serves HTTPS. */
  tls?: boolean;
}

/** Version of this service's API (also returned by `GET /version`). */
export const SERVICE_VERSION = "0.3.4";
/** Oldest endpoint version accepted (compared as a string, like upstream). */
export const MIN_EP_VERSION = "0.2.1";
/** Oldest SDK version accepted. */
export const MIN_SDK_VERSION = "0.2.2";

/**
 * Read `service.json` of the funcX home, or `undefined` when absent or unreadable.
 *
 * @example
 * ```ts
 * await readServiceInfo("/nonexistent"); // undefined
 * ```
 */
export async function readServiceInfo(home: string): Promise<ServiceInfo | undefined> {
  try {
    const v = JSON.parse(await Deno.readTextFile(servicePaths(home).infoFile));
    if (typeof v?.port !== "number" || typeof v?.pid !== "number") return undefined;
    return v as ServiceInfo;
  } catch {
    return undefined;
  }
}

/**
 * Write `service.json` atomically.
 *
 * @example
 * ```ts ignore
 * await writeServiceInfo("/tmp/h", info);
 * ```
 */
export async function writeServiceInfo(home: string, info: ServiceInfo): Promise<void> {
  const path = servicePaths(home).infoFile;
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(info, null, 2) + "\n", { mode: 0o600 });
  await Deno.rename(tmp, path);
}

/**
 * The host to put in URLs (brackets for IPv6, `0.0.0.0` → `127.0.0.1`).
 *
 * @example
 * ```ts
 * urlHost("::1"); // "[::1]"
 * ```
 */
export function urlHost(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}

/**
 * The web service base URL (`.../v2`) of a running service.
 *
 * @example
 * ```ts
 * serviceUrl({ host: "127.0.0.1", port: 8400 } as ServiceInfo); // "http://127.0.0.1:8400/v2"
 * ```
 */
export function serviceUrl(info: Pick<ServiceInfo, "host" | "port" | "tls">): string {
  return `${info.tls ? "https" : "http"}://${urlHost(info.host)}:${info.port}/v2`;
}

/**
 * The auth server base URL (`.../auth`) of a running service.
 *
 * @example
 * ```ts
 * authUrl({ host: "127.0.0.1", port: 8400 } as ServiceInfo); // "http://127.0.0.1:8400/auth"
 * ```
 */
export function authUrl(info: Pick<ServiceInfo, "host" | "port" | "tls">): string {
  return `${info.tls ? "https" : "http"}://${urlHost(info.host)}:${info.port}/auth`;
}

/**
 * The state of an endpoint as the CLI sees it (`list`, `status`), computed from the
 * files in its directory: `endpoint.json`, `daemon.pid` and the daemon's `status.json`
 * (DESIGN.md §5). A stale pid file found here is cleaned up, and what is left of the dead
 * daemon's process group (managers, workers) is killed.
 *
 * @example
 * ```ts
 * import { endpointState } from "./state.ts";
 * const s = endpointState("/home/u/.funcx", "default");
 * console.log(s.status); // "Initialized" | "Running" | "Stopped" | "Disconnected" | "Starting"
 * ```
 * @module
 */
import type { BuildInfo } from "../config/build.ts";
import { endpointPaths } from "../config/paths.ts";
import { cleanStalePidFile, localHost, type PidFileState } from "./pidfile.ts";
import { killLeftovers } from "./stop.ts";

/** `status.json` written by the running daemon (DESIGN.md §5). */
export interface StatusFile {
  pid: number;
  /** Host the daemon runs on (absent in files of older versions). */
  host?: string;
  name: string;
  endpoint_id: string | null;
  /** Release, commit and protocol version of the running daemon (absent in files of older daemons). */
  build?: BuildInfo;
  state: "starting" | "connected" | "disconnected" | "stopping";
  started_at: string;
  updated_at: string;
  last_heartbeat: string | null;
  heartbeat_threshold: number;
  /** `tcp://host:port` managers connect to, as resolved from `executor.address` at start. */
  address?: string;
  /** The configured `executor.address`. */
  executor_address?: string;
  /** Why work cannot run although the daemon is connected (engine/degraded.ts), or null. */
  degraded?: string | null;
  tasks: { queued: number; running: number; completed: number; failed: number };
  unacked_results: number;
  blocks: {
    block_id: string;
    job_id: string | null;
    state: string;
    nodes: number;
    message?: string;
  }[];
  managers: {
    id: string;
    block_id: string;
    hostname: string;
    workers: number;
    idle_workers: number;
    running: number;
  }[];
  errors: { time: string; source: string; message: string }[];
}

/** What `list` shows for an endpoint. */
export type EndpointStatus =
  | "Initialized"
  | "Starting"
  | "Running"
  | "Degraded"
  | "Disconnected"
  | "Stopped";

/** The computed state of one endpoint. */
export interface EndpointState {
  name: string;
  status: EndpointStatus;
  endpoint_id: string | null;
  pid: number | null;
  /** Host the daemon runs on, when it runs (this host or another login node). */
  host: string | null;
  /** True when the daemon runs on another host sharing this funcX home. */
  remote: boolean;
  /** Seconds since the daemon started, when it is running. */
  uptime_seconds: number | null;
  /** Why a pid file was cleaned, if it was. */
  cleaned?: string;
  /** The daemon's status file, when present and from the running daemon. */
  status_file: StatusFile | null;
}

/** A status.json older than this (ms) means the daemon is not making progress. */
export const STATUS_STALE_MS = 15_000;

/**
 * Read `endpoint.json`'s `endpoint_id`; `null` when absent or unreadable.
 *
 * @example
 * ```ts
 * readEndpointId("/home/u/.funcx/default/endpoint.json"); // "0b1c..." or null
 * ```
 */
export function readEndpointId(path: string): string | null {
  try {
    const j = JSON.parse(Deno.readTextFileSync(path));
    return typeof j?.endpoint_id === "string" ? j.endpoint_id : null;
  } catch {
    return null;
  }
}

/**
 * Read and sanity-check `status.json`; `null` when absent or malformed.
 *
 * @example
 * ```ts
 * readStatusFile("/home/u/.funcx/default/status.json")?.state; // "connected"
 * ```
 */
export function readStatusFile(path: string): StatusFile | null {
  try {
    const j = JSON.parse(Deno.readTextFileSync(path));
    if (typeof j !== "object" || j === null || typeof j.pid !== "number") return null;
    return {
      ...j,
      tasks: { queued: 0, running: 0, completed: 0, failed: 0, ...(j.tasks ?? {}) },
      blocks: Array.isArray(j.blocks) ? j.blocks : [],
      managers: Array.isArray(j.managers) ? j.managers : [],
      errors: Array.isArray(j.errors) ? j.errors : [],
    } as StatusFile;
  } catch {
    return null;
  }
}

/**
 * Live/dead classification of a running daemon from its status file.
 *
 * @example
 * ```ts
 * liveStatus(null, Date.now()); // "Disconnected"
 * ```
 */
export function liveStatus(s: StatusFile | null, now: number): EndpointStatus {
  if (!s) return "Starting";
  const updated = Date.parse(s.updated_at);
  if (!Number.isFinite(updated) || now - updated > STATUS_STALE_MS) return "Disconnected";
  if (s.state === "starting") return "Starting";
  if (s.state !== "connected") return "Disconnected";
  const hb = s.last_heartbeat ? Date.parse(s.last_heartbeat) : NaN;
  const threshold = (s.heartbeat_threshold > 0 ? s.heartbeat_threshold : 120) * 1000;
  if (Number.isFinite(hb) && now - hb > threshold) return "Disconnected";
  // connected, but workers cannot run (the reason is in s.degraded)
  if (s.degraded) return "Degraded";
  return "Running";
}

/**
 * Compute the state of endpoint `name` (cleaning a stale pid file).
 *
 * @example
 * ```ts
 * endpointState("/home/u/.funcx", "default").status; // "Stopped"
 * ```
 */
export function endpointState(
  home: string,
  name: string,
  now = Date.now(),
  host = localHost(),
): EndpointState {
  const p = endpointPaths(home, name);
  const endpoint_id = readEndpointId(p.endpointJson);
  const pid: PidFileState = cleanStalePidFile(p.pidFile, host);
  if (pid.state === "remote") {
    // another login node: judged only by the freshness of the daemon's own heartbeat file
    let s = readStatusFile(p.statusFile);
    if (s && (s.pid !== pid.pid || (s.host !== undefined && s.host !== pid.host))) s = null;
    const started = s ? Date.parse(s.started_at) : NaN;
    // no heartbeat file yet: starting, unless the lock is older than a heartbeat may lag
    const status = s || now - _mtime(p.pidFile) <= STATUS_STALE_MS
      ? liveStatus(s, now)
      : "Disconnected";
    return {
      name,
      status,
      endpoint_id: s?.endpoint_id ?? endpoint_id,
      pid: pid.pid,
      host: pid.host,
      remote: true,
      uptime_seconds: Number.isFinite(started)
        ? Math.max(0, Math.round((now - started) / 1000))
        : null,
      status_file: s,
    };
  }
  if (pid.state === "stale" && pid.pid !== undefined && pid.startTicks !== undefined) {
    killLeftovers(pid.pid, pid.startTicks, home);
  }
  if (pid.state === "running") {
    let s = readStatusFile(p.statusFile);
    if (s && s.pid !== pid.pid) s = null;
    const started = s ? Date.parse(s.started_at) : NaN;
    return {
      name,
      status: liveStatus(s, now),
      endpoint_id: s?.endpoint_id ?? endpoint_id,
      pid: pid.pid,
      host,
      remote: false,
      uptime_seconds: Number.isFinite(started)
        ? Math.max(0, Math.round((now - started) / 1000))
        : null,
      status_file: s,
    };
  }
  return {
    name,
    status: endpoint_id ? "Stopped" : "Initialized",
    endpoint_id,
    pid: null,
    host: null,
    remote: false,
    uptime_seconds: null,
    cleaned: pid.state === "stale" ? pid.reason : undefined,
    status_file: null,
  };
}

/**
 * Names of the configured endpoints of a funcX home (dirs with a config.yaml or a
 * legacy config.py), sorted.
 *
 * @example
 * ```ts
 * listEndpointNames("/home/u/.funcx"); // ["default", "hpc"]
 * ```
 */
export function listEndpointNames(home: string): string[] {
  const names: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(home)];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  for (const ent of entries) {
    if (!ent.isDirectory || ent.name === "credentials" || ent.name === "service") continue;
    const p = endpointPaths(home, ent.name);
    if (_exists(p.config) || _exists(p.legacyConfig)) names.push(ent.name);
  }
  return names.sort();
}

function _mtime(path: string): number {
  try {
    return Deno.statSync(path).mtime?.getTime() ?? 0;
  } catch {
    return 0;
  }
}

function _exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Human form of a duration: `3d 4h`, `2h 5m`, `4m 10s`, `9s`.
 *
 * @example
 * ```ts
 * formatUptime(3725); // "1h 2m"
 * ```
 */
export function formatUptime(seconds: number | null): string {
  if (seconds === null) return "-";
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

/**
 * Configuration types shared by every room, with their defaults.
 * Validation of YAML files into these types lives in `schema.ts`.
 *
 * @example
 * ```ts
 * import { DEFAULT_ENDPOINT_CONFIG } from "./types.ts";
 * DEFAULT_ENDPOINT_CONFIG.provider.type; // "local"
 * ```
 * @module
 */

/** Global options, `$FUNCX_HOME/config.yaml`. */
export interface GlobalConfig {
  service_address: string;
  auth_address: string;
  client_id: string;
  /** PEM CA bundle trusted for https:// service and auth addresses (a site CA), or null. */
  ca_file: string | null;
}

/** Batch-system / local provider options. */
export interface ProviderConfig {
  type: "local" | "slurm" | "pbs";
  init_blocks: number;
  min_blocks: number;
  max_blocks: number;
  nodes_per_block: number;
  parallelism: number;
  walltime: string;
  partition: string | null;
  queue: string | null;
  account: string | null;
  scheduler_options: string;
  worker_init: string;
  launcher: "srun" | "mpiexec" | "pbsdsh" | "none";
}

/** Worker-side execution options (upstream HighThroughputExecutor). */
export interface ExecutorConfig {
  max_workers_per_node: number;
  cores_per_worker: number;
  /** IP/host name, `*`, `by-interface:<name>`, `by-hostname` or `by-route` (engine/address.ts). */
  address: string;
  /** `"LO-HI"`: the interchange listens on a port of this range (null: any free port). */
  worker_ports: string | null;
  python: string;
  prefetch_capacity: number;
  max_idletime: number;
  worker_max_idletime: number;
  result_size_limit: number;
  heartbeat_period: number;
  heartbeat_threshold: number;
}

/** One endpoint, `$FUNCX_HOME/<NAME>/config.yaml`. */
export interface EndpointConfig {
  service_address: string | null;
  heartbeat_period: number;
  heartbeat_threshold: number;
  log_level: "debug" | "info" | "warn" | "error";
  /** Function ids this endpoint runs (null: any the service sends). */
  allowed_functions: string[] | null;
  /** Anyone with a funcX token may submit tasks (sent at registration). */
  public: boolean;
  /** Groups (names or ids) whose members may submit tasks (sent at registration). */
  allowed_groups: string[];
  provider: ProviderConfig;
  executor: ExecutorConfig;
}

/** Upstream native-app client id, also the built-in public client of the local service. */
export const NATIVE_CLIENT_ID = "4cf29807-cf21-49ec-9443-ff9a3fb9f81c";
/** The funcX scope string. */
export const FUNCX_SCOPE =
  "https://auth.globus.org/scopes/facd7ccc-c5f4-42aa-916b-a0e270e2c2a9/all";
/** The Globus Groups scope: read the user's groups and memberships. */
export const GROUPS_SCOPE =
  "urn:globus:auth:scope:groups.api.globus.org:view_my_groups_and_memberships";
/** Version this endpoint reports to the service (compared as a string upstream). */
export const ENDPOINT_VERSION = "0.3.4";

/** Defaults of the global config. */
export const DEFAULT_GLOBAL_CONFIG: GlobalConfig = {
  service_address: "http://127.0.0.1:8400/v2",
  auth_address: "http://127.0.0.1:8400/auth",
  client_id: NATIVE_CLIENT_ID,
  ca_file: null,
};

/** Defaults of an endpoint config. */
export const DEFAULT_ENDPOINT_CONFIG: EndpointConfig = {
  service_address: null,
  heartbeat_period: 30,
  heartbeat_threshold: 120,
  log_level: "info",
  allowed_functions: null,
  public: false,
  allowed_groups: [],
  provider: {
    type: "local",
    init_blocks: 1,
    min_blocks: 0,
    max_blocks: 1,
    nodes_per_block: 1,
    parallelism: 1,
    walltime: "01:00:00",
    partition: null,
    queue: null,
    account: null,
    scheduler_options: "",
    worker_init: "",
    launcher: "srun",
  },
  executor: {
    max_workers_per_node: 0,
    cores_per_worker: 1,
    address: "127.0.0.1",
    worker_ports: null,
    python: "python3",
    prefetch_capacity: 100,
    max_idletime: 60,
    worker_max_idletime: 300,
    result_size_limit: 10 * 1024 * 1024,
    heartbeat_period: 5,
    heartbeat_threshold: 30,
  },
};

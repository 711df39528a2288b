/**
 * The fully commented config files written by `funcx-endpoint configure`.
 * Every key is present with its default value, so the templates parse to exactly
 * the defaults of `types.ts` (checked by the tests).
 *
 * @example
 * ```ts
 * import { endpointConfigTemplate } from "./templates.ts";
 * Deno.writeTextFileSync("/tmp/config.yaml", endpointConfigTemplate("default"));
 * ```
 * @module
 */
import { DEFAULT_ENDPOINT_CONFIG as D, DEFAULT_GLOBAL_CONFIG as G } from "./types.ts";

/**
 * The global `$FUNCX_HOME/config.yaml` template.
 *
 * @example
 * ```ts
 * globalConfigTemplate().includes("service_address:"); // true
 * ```
 */
export function globalConfigTemplate(): string {
  return `# funcx-endpoint global configuration (YAML).
# Options here apply to every endpoint of this funcX home; an endpoint's own
# config.yaml may override service_address. Unknown keys are errors.

# Base URL of the funcX web service (the HTTP API, usually ending in /v2).
service_address: ${G.service_address}

# Base URL of the OAuth2 server used by \`funcx-endpoint login\`
# (endpoints are {auth_address}/v2/oauth2/authorize, /token, ...).
auth_address: ${G.auth_address}

# OAuth2 client id of this program (the funcX native app client).
client_id: ${G.client_id}

# PEM file of the CA that signed an https:// service's certificate (a site CA), trusted
# besides the system roots; null uses SSL_CERT_FILE / REQUESTS_CA_BUNDLE if set.
ca_file: null
`;
}

/**
 * The per-endpoint `$FUNCX_HOME/<name>/config.yaml` template.
 *
 * @example
 * ```ts
 * endpointConfigTemplate("hpc").startsWith("# funcx-endpoint configuration for endpoint \"hpc\""); // true
 * ```
 */
export function endpointConfigTemplate(name: string): string {
  const p = D.provider;
  const e = D.executor;
  return `# funcx-endpoint configuration for endpoint "${name}" (YAML).
# Every key is optional; the values shown are the defaults. Unknown keys are errors.
# After editing, (re)start the endpoint:  funcx-endpoint restart ${name}
# Start it on boot (systemd):              funcx-endpoint enable-on-boot ${name}
#   (undo with disable-on-boot). On login nodes sharing this home, \`list\`/\`status\` show
#   the host it runs on and \`stop\` works from any of them (a host gone for good:
#   funcx-endpoint stop ${name} --clear-dead-host).

# funcX web service for this endpoint; null means the global config.yaml value.
service_address: null

# Seconds between status reports/heartbeats sent to the forwarder.
heartbeat_period: ${D.heartbeat_period}

# Seconds without traffic from the forwarder after which the endpoint re-registers
# and reconnects (must be larger than heartbeat_period).
heartbeat_threshold: ${D.heartbeat_threshold}

# Log level of endpoint.log: debug | info | warn | error (--debug forces debug).
log_level: ${D.log_level}

# Functions this endpoint may run, by function id; null = any function its owner may use.
# The list is sent to the service at registration (which then refuses other functions
# with FunctionNotPermitted), and every task's code is checked here again before it runs.
# The SDK's add_to_whitelist/delete_from_whitelist change the service's copy until the
# next start; functions outside this list never run here.
#   allowed_functions:
#     - 0b2c4a8e-0a8b-4c43-9b8c-0d1b6f4e9a11
allowed_functions: null
# Who besides you may submit tasks to this endpoint (sent to the service at every
# registration, so a restart applies changes). Tasks of other users run under your
# account here. public: true lets anyone with a funcX login use it.
public: ${D.public}
# Names (or ids) of groups of the funcX service whose members may use it, e.g. [lab].
allowed_groups: []

# Where workers run: blocks of nodes obtained from a provider.
provider:
  # local: blocks are processes on this machine; slurm: sbatch jobs; pbs: qsub jobs.
  type: ${p.type}

  # Blocks started when the endpoint starts, and the bounds the scaler keeps to.
  init_blocks: ${p.init_blocks}
  min_blocks: ${p.min_blocks}
  max_blocks: ${p.max_blocks}

  # Nodes per block (one manager per node).
  nodes_per_block: ${p.nodes_per_block}

  # 0..1: fraction of waiting tasks that ask for new worker slots when scaling out.
  parallelism: ${p.parallelism}

  # Batch job walltime, quoted "HH:MM:SS" (slurm, pbs).
  walltime: "${p.walltime}"

  # Slurm partition (sbatch --partition); null = the cluster default.
  partition: null

  # PBS queue (qsub -q); null = the cluster default.
  queue: null

  # Account/allocation to charge (sbatch --account, qsub -A); null = none.
  account: null

  # Extra lines for the submit script, e.g. "#SBATCH --mem=4G" (one per line).
  scheduler_options: ""

  # Shell commands run before the manager starts (module load, venv activation...).
  worker_init: ""

  # How a multi-node block starts one manager per node.
  # slurm: srun | none ; pbs: mpiexec | pbsdsh | none (pbs defaults to mpiexec).
  launcher: ${p.launcher}

# How tasks are executed on the nodes (upstream HighThroughputExecutor options).
executor:
  # Workers per node; 0 = number of cores / cores_per_worker.
  max_workers_per_node: ${e.max_workers_per_node}

  # Cores reserved per worker.
  cores_per_worker: ${e.cores_per_worker}

  # Where the managers on the nodes connect back to (resolved at start, logged,
  # shown by \`status\`). For slurm/pbs use the login node's cluster-facing address:
  #   an IP address or host name | * (all interfaces, announced by host name)
  #   by-interface:<name>  the IPv4 address of that interface, e.g. by-interface:ib0
  #   by-hostname          this host's name, resolved
  #   by-route             the address of the interface of the default route
  address: ${e.address}

  # Port range the interchange listens on for managers, e.g. "54000-55000", so a
  # firewall can let exactly that through; null = any free port.
  worker_ports: null

  # Python interpreter (3.8+) that runs the workers on the nodes. For local blocks
  # \`start\` refuses a missing or non-executable one.
  python: ${e.python}

  # Extra tasks queued per manager beyond its idle workers.
  prefetch_capacity: ${e.prefetch_capacity}

  # Seconds a block may be idle before it is scaled in (down to min_blocks).
  max_idletime: ${e.max_idletime}

  # Seconds an idle worker process is kept before being reaped (0 = never).
  worker_max_idletime: ${e.worker_max_idletime}

  # Largest result (bytes) sent back; bigger results fail with a clear error.
  result_size_limit: ${e.result_size_limit}

  # Seconds between interchange <-> manager heartbeats, and the silence after
  # which a manager is declared lost (its tasks fail with ManagerLost).
  heartbeat_period: ${e.heartbeat_period}
  heartbeat_threshold: ${e.heartbeat_threshold}
`;
}

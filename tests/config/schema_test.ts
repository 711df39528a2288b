import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { join } from "node:path";
import {
  ConfigError,
  loadEndpointConfig,
  loadGlobalConfig,
  parseEndpointConfig,
  parseGlobalConfig,
} from "../../src/config/schema.ts";
import { endpointConfigTemplate, globalConfigTemplate } from "../../src/config/templates.ts";
import { DEFAULT_ENDPOINT_CONFIG, DEFAULT_GLOBAL_CONFIG } from "../../src/config/types.ts";

const FILE = "/h/ep/config.yaml";

function errorOf(text: string): string {
  try {
    parseEndpointConfig(text, FILE);
  } catch (e) {
    assert(e instanceof ConfigError, `not a ConfigError: ${e}`);
    assert(!e.message.includes("\n"), `multi-line message: ${e.message}`);
    return e.message;
  }
  throw new Error(`accepted: ${JSON.stringify(text)}`);
}

Deno.test("allowed_functions: a list of function ids, lower-cased and deduplicated", () => {
  const id = "0B2C4A8E-0A8B-4C43-9B8C-0D1B6F4E9A11";
  const cfg = parseEndpointConfig(`allowed_functions:\n  - ${id}\n  - ${id.toLowerCase()}\n`, FILE);
  assertEquals(cfg.allowed_functions, [id.toLowerCase()]);
  assertEquals(parseEndpointConfig("allowed_functions: null\n", FILE).allowed_functions, null);
});

Deno.test("templates parse to exactly the defaults", () => {
  assertEquals(parseEndpointConfig(endpointConfigTemplate("x"), FILE), DEFAULT_ENDPOINT_CONFIG);
  assertEquals(parseGlobalConfig(globalConfigTemplate(), FILE), DEFAULT_GLOBAL_CONFIG);
});

Deno.test("empty file and partial sections get defaults", () => {
  assertEquals(parseEndpointConfig("", FILE), DEFAULT_ENDPOINT_CONFIG);
  const c = parseEndpointConfig(
    "provider:\n  type: slurm\n  max_blocks: 4\n  partition: debug\nexecutor:\n  cores_per_worker: 0.5\n",
    FILE,
  );
  assertEquals(c.provider.type, "slurm");
  assertEquals(c.provider.max_blocks, 4);
  assertEquals(c.provider.partition, "debug");
  assertEquals(c.provider.init_blocks, DEFAULT_ENDPOINT_CONFIG.provider.init_blocks);
  assertEquals(c.executor.cores_per_worker, 0.5);
  assertEquals(c.executor.python, "python3");
  assertEquals(c.executor.worker_ports, null);
  const n = parseEndpointConfig(
    "executor:\n  address: by-interface:ib0\n  worker_ports: 54000-55000\n",
    FILE,
  );
  assertEquals([n.executor.address, n.executor.worker_ports], ["by-interface:ib0", "54000-55000"]);
});

Deno.test("pbs defaults its launcher to mpiexec; trailing slashes of URLs are dropped", () => {
  assertEquals(parseEndpointConfig("provider:\n  type: pbs\n", FILE).provider.launcher, "mpiexec");
  assertEquals(
    parseEndpointConfig("service_address: http://h:1/v2/\n", FILE).service_address,
    "http://h:1/v2",
  );
});

// [yaml, expected message (exact)]
const BAD: [string, string][] = [
  [
    "provider: [",
    `${FILE}: malformed YAML at line 1, column 12: Flow sequence in block collection must be sufficiently indented and end with a ]; expected a YAML mapping`,
  ],
  [
    "a: 1\na: 2\n",
    `${FILE}: malformed YAML at line 2, column 1: Map keys must be unique; expected a YAML mapping`,
  ],
  ["- 1\n- 2\n", `${FILE}: (top level): a list is not a mapping; expected key: value pairs`],
  ["just text", `${FILE}: (top level): "just text" is not a mapping; expected key: value pairs`],
  [
    "foo: 1\n",
    `${FILE}: foo: unknown key; expected one of service_address, heartbeat_period, heartbeat_threshold, log_level, public, allowed_groups, provider, executor, allowed_functions`,
  ],
  [
    "allowed_functions: []\n",
    `${FILE}: allowed_functions: an empty list allows nothing; expected a list of function ids (UUIDs), or null for no restriction`,
  ],
  [
    "allowed_functions:\n  - not-a-uuid\n",
    `${FILE}: allowed_functions[0]: "not-a-uuid" is not a UUID; expected a list of function ids (UUIDs), or null for no restriction`,
  ],
  [
    "public: yes please\n",
    `${FILE}: public: "yes please" is not true or false; expected true or false`,
  ],
  [
    "allowed_groups: lab\n",
    `${FILE}: allowed_groups: "lab" is not a list; expected a list of at most 64 group names or ids of the funcX service`,
  ],
  [
    "allowed_groups: [lab, 'a b']\n",
    `${FILE}: allowed_groups[1]: "a b" is not valid; expected a list of at most 64 group names or ids of the funcX service`,
  ],
  [
    "provider:\n  nodes: 2\n",
    `${FILE}: provider.nodes: unknown key; expected one of type, init_blocks, min_blocks, max_blocks, nodes_per_block, parallelism, walltime, partition, queue, account, scheduler_options, worker_init, launcher`,
  ],
  [
    "executor:\n  workers: 2\n",
    `${FILE}: executor.workers: unknown key; expected one of max_workers_per_node, cores_per_worker, address, worker_ports, python, prefetch_capacity, max_idletime, worker_max_idletime, result_size_limit, heartbeat_period, heartbeat_threshold`,
  ],
  ["provider: 3\n", `${FILE}: provider: 3 is not a mapping; expected key: value pairs`],
  [
    "provider:\n  type: k8s\n",
    `${FILE}: provider.type: "k8s" is not valid; expected one of local, slurm, pbs`,
  ],
  [
    "provider:\n  max_blocks: -1\n",
    `${FILE}: provider.max_blocks: -1 is out of range; expected an integer >= 0 and <= 10000`,
  ],
  [
    "provider:\n  max_blocks: two\n",
    `${FILE}: provider.max_blocks: "two" is not a number; expected an integer >= 0 and <= 10000`,
  ],
  [
    "provider:\n  init_blocks: 1.5\n",
    `${FILE}: provider.init_blocks: 1.5 is not an integer; expected an integer >= 0 and <= 10000`,
  ],
  [
    "provider:\n  parallelism: 2\n",
    `${FILE}: provider.parallelism: 2 is out of range; expected a number >= 0 and <= 1`,
  ],
  [
    "provider:\n  walltime: 3600\n",
    `${FILE}: provider.walltime: 3600 is not a string; expected a quoted "HH:MM:SS" walltime such as "01:00:00"`,
  ],
  [
    'provider:\n  walltime: "1h"\n',
    `${FILE}: provider.walltime: "1h" is not valid; expected a quoted "HH:MM:SS" walltime such as "01:00:00"`,
  ],
  [
    "provider:\n  partition: [a]\n",
    `${FILE}: provider.partition: a list is not a string; expected a string or null`,
  ],
  [
    "provider:\n  type: slurm\n  launcher: mpiexec\n",
    `${FILE}: provider.launcher: "mpiexec" is not valid for provider type slurm; expected one of srun, none`,
  ],
  [
    "provider:\n  min_blocks: 3\n  max_blocks: 2\n  init_blocks: 2\n",
    `${FILE}: provider.min_blocks: 3 is greater than provider.max_blocks (2); expected min_blocks <= max_blocks`,
  ],
  [
    "provider:\n  init_blocks: 3\n",
    `${FILE}: provider.init_blocks: 3 is greater than provider.max_blocks (1); expected init_blocks <= max_blocks`,
  ],
  [
    "executor:\n  cores_per_worker: 0\n",
    `${FILE}: executor.cores_per_worker: 0 is out of range; expected a number > 0 and <= 100000`,
  ],
  [
    "executor:\n  python: python3; rm -rf /\n",
    `${FILE}: executor.python: "python3; rm -rf /" is not valid; expected a program name or path without spaces or shell characters`,
  ],
  [
    "executor:\n  address: by-magic\n",
    `${FILE}: executor.address: "by-magic" is not valid; expected an IP address, a host name, *, by-interface:<name> (e.g. by-interface:ib0), by-hostname or by-route`,
  ],
  [
    'executor:\n  address: "by-interface:"\n',
    `${FILE}: executor.address: "by-interface:" is not valid; expected an IP address, a host name, *, by-interface:<name> (e.g. by-interface:ib0), by-hostname or by-route`,
  ],
  [
    "executor:\n  worker_ports: 55000-54000\n",
    `${FILE}: executor.worker_ports: "55000-54000" is not a valid range; expected a port range "LO-HI" with 1 <= LO <= HI <= 65535, e.g. "54000-55000"`,
  ],
  [
    "executor:\n  worker_ports: 54000\n",
    `${FILE}: executor.worker_ports: 54000 is not a string; expected a port range "LO-HI" within 1-65535, e.g. "54000-55000" or null`,
  ],
  [
    "log_level: verbose\n",
    `${FILE}: log_level: "verbose" is not valid; expected one of debug, info, warn, error`,
  ],
  [
    "service_address: ftp://x\n",
    `${FILE}: service_address: "ftp://x" is not valid; expected an http:// or https:// URL or null`,
  ],
  [
    "heartbeat_period: 200\n",
    `${FILE}: heartbeat_threshold: 120 is not greater than the heartbeat period (200); expected a threshold larger than the period`,
  ],
  [
    "heartbeat_period: true\n",
    `${FILE}: heartbeat_period: true is not a number; expected a number > 0 and <= 86400`,
  ],
];

for (const [yaml, expected] of BAD) {
  Deno.test(`invalid endpoint config: ${JSON.stringify(yaml)}`, () => {
    assertEquals(errorOf(yaml), expected);
  });
}

Deno.test("global config: unknown key, bad URL, defaults", () => {
  assertEquals(parseGlobalConfig("", "g.yaml"), DEFAULT_GLOBAL_CONFIG);
  throws(
    () => parseGlobalConfig("broker_address: 1.2.3.4\n", "g.yaml"),
    {
      message:
        "g.yaml: broker_address: unknown key; expected one of service_address, auth_address, client_id, ca_file",
    },
  );
  throws(
    () => parseGlobalConfig("auth_address: nope\n", "g.yaml"),
    { message: 'g.yaml: auth_address: "nope" is not valid; expected an http:// or https:// URL' },
  );
});

Deno.test("config.py where config.yaml is expected explains the translation", () => {
  const dir = Deno.makeTempDirSync({ prefix: "fx-cfg-" });
  Deno.mkdirSync(join(dir, "ep"));
  Deno.writeTextFileSync(join(dir, "ep", "config.py"), "config = Config()\n");
  Deno.writeTextFileSync(join(dir, "config.py"), "global_options = {}\n");
  for (
    const [fn, path, py] of [
      [loadEndpointConfig, join(dir, "ep", "config.yaml"), join(dir, "ep", "config.py")],
      [loadGlobalConfig, join(dir, "config.yaml"), join(dir, "config.py")],
    ] as const
  ) {
    try {
      fn(path);
      throw new Error("accepted config.py");
    } catch (e) {
      assert(e instanceof ConfigError);
      assert(e.message.startsWith(`${py}: Python `), e.message);
      assert(e.message.includes(path));
      assert(e.message.includes("provider.type local/slurm/pbs"));
      assert(e.message.includes("funcx_service_address -> service_address"));
      assert(!e.message.includes("\n"));
    }
  }
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("missing endpoint config and missing global config", () => {
  const dir = Deno.makeTempDirSync({ prefix: "fx-cfg-" });
  throws(() => loadEndpointConfig(join(dir, "x", "config.yaml")), {
    message: `${
      join(dir, "x", "config.yaml")
    }: not found; expected an endpoint config: run \`funcx-endpoint configure\``,
  });
  assertEquals(loadGlobalConfig(join(dir, "config.yaml")), DEFAULT_GLOBAL_CONFIG);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("endpoint config: public and allowed_groups (deduplicated)", () => {
  const c = parseEndpointConfig("public: true\nallowed_groups: [lab, lab, ops]\n", FILE);
  assertEquals([c.public, c.allowed_groups], [true, ["lab", "ops"]]);
});

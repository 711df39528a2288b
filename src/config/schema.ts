/**
 * Validation of the YAML configuration files into the typed configs of `types.ts`.
 *
 * Every problem becomes a {@linkcode ConfigError} whose message is one line:
 * `<file>: <key>: <problem>; expected <what is valid>`. Unknown keys are errors, and a
 * Python `config.py` where a `config.yaml` is expected gets an error that says how to
 * translate it.
 *
 * @example
 * ```ts
 * import { parseEndpointConfig } from "./schema.ts";
 * const cfg = parseEndpointConfig("provider:\n  max_blocks: 4\n", "config.yaml");
 * cfg.provider.max_blocks; // 4
 * ```
 * @module
 */
import { parseDocument } from "yaml";
import {
  DEFAULT_ENDPOINT_CONFIG,
  DEFAULT_GLOBAL_CONFIG,
  type EndpointConfig,
  type ExecutorConfig,
  type GlobalConfig,
  type ProviderConfig,
} from "./types.ts";

export type { EndpointConfig, ExecutorConfig, GlobalConfig, ProviderConfig } from "./types.ts";

/**
 * A configuration problem, always a one-line message naming the file and key.
 *
 * @example
 * ```ts
 * import { ConfigError } from "./schema.ts";
 * const e = new ConfigError("/h/default/config.yaml", "provider.max_blocks", "-1 is negative", "an integer >= 0");
 * e.message; // "/h/default/config.yaml: provider.max_blocks: -1 is negative; expected an integer >= 0"
 * ```
 */
export class ConfigError extends Error {
  /**
   * @param file the file the problem is in
   * @param key dotted key path (empty for the whole file)
   * @param problem what is wrong, including the bad value
   * @param expected what would be valid (omitted when it does not apply)
   */
  constructor(
    readonly file: string,
    readonly key: string,
    readonly problem: string,
    readonly expected?: string,
  ) {
    super(
      `${file}: ${key ? `${key}: ` : ""}${problem}${expected ? `; expected ${expected}` : ""}`
        .replace(/\s*\n\s*/g, " "),
    );
    this.name = "ConfigError";
  }
}

type _Rule =
  | { kind: "int"; min: number; max?: number }
  | { kind: "number"; min: number; max?: number; minExclusive?: boolean }
  | { kind: "string"; nullable?: boolean; pattern?: RegExp; patternText?: string }
  | { kind: "enum"; values: readonly string[] }
  | { kind: "url"; nullable?: boolean }
  | { kind: "bool" }
  | { kind: "list"; max: number; pattern: RegExp; patternText: string };

const _GLOBAL_RULES: Record<keyof GlobalConfig, _Rule> = {
  service_address: { kind: "url" },
  auth_address: { kind: "url" },
  client_id: {
    kind: "string",
    pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/,
    patternText: "a client id (letters, digits, '.', '_', '-')",
  },
  ca_file: { kind: "string", nullable: true },
};

const _TOP_RULES: Record<
  Exclude<keyof EndpointConfig, "provider" | "executor" | "allowed_functions">,
  _Rule
> = {
  service_address: { kind: "url", nullable: true },
  heartbeat_period: { kind: "number", min: 0, minExclusive: true, max: 86400 },
  heartbeat_threshold: { kind: "number", min: 0, minExclusive: true, max: 7 * 86400 },
  log_level: { kind: "enum", values: ["debug", "info", "warn", "error"] },
  public: { kind: "bool" },
  allowed_groups: {
    kind: "list",
    max: 64,
    pattern: /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/,
    patternText: "group names or ids of the funcX service",
  },
};

const _PROVIDER_RULES: Record<keyof ProviderConfig, _Rule> = {
  type: { kind: "enum", values: ["local", "slurm", "pbs"] },
  init_blocks: { kind: "int", min: 0, max: 10000 },
  min_blocks: { kind: "int", min: 0, max: 10000 },
  max_blocks: { kind: "int", min: 0, max: 10000 },
  nodes_per_block: { kind: "int", min: 1, max: 100000 },
  parallelism: { kind: "number", min: 0, max: 1 },
  walltime: {
    kind: "string",
    pattern: /^\d{1,4}:[0-5]\d:[0-5]\d$/,
    patternText: 'a quoted "HH:MM:SS" walltime such as "01:00:00"',
  },
  partition: { kind: "string", nullable: true },
  queue: { kind: "string", nullable: true },
  account: { kind: "string", nullable: true },
  scheduler_options: { kind: "string" },
  worker_init: { kind: "string" },
  launcher: { kind: "enum", values: ["srun", "mpiexec", "pbsdsh", "none"] },
};

const _EXECUTOR_RULES: Record<keyof ExecutorConfig, _Rule> = {
  max_workers_per_node: { kind: "int", min: 0, max: 100000 },
  cores_per_worker: { kind: "number", min: 0, minExclusive: true, max: 100000 },
  address: {
    kind: "string",
    pattern: /^(?!by-)[A-Za-z0-9.:_-]+$|^\*$|^by-(hostname|route|interface:[A-Za-z0-9._@-]{1,15})$/,
    patternText:
      "an IP address, a host name, *, by-interface:<name> (e.g. by-interface:ib0), by-hostname or by-route",
  },
  worker_ports: {
    kind: "string",
    nullable: true,
    pattern: /^\d{1,5}-\d{1,5}$/,
    patternText: 'a port range "LO-HI" within 1-65535, e.g. "54000-55000"',
  },
  python: {
    kind: "string",
    pattern: /^[^\s'"`$;|&<>]+$/,
    patternText: "a program name or path without spaces or shell characters",
  },
  prefetch_capacity: { kind: "int", min: 0, max: 1000000 },
  max_idletime: { kind: "number", min: 0 },
  worker_max_idletime: { kind: "number", min: 0 },
  result_size_limit: { kind: "int", min: 1, max: 2 ** 31 },
  heartbeat_period: { kind: "number", min: 0, minExclusive: true, max: 86400 },
  heartbeat_threshold: { kind: "number", min: 0, minExclusive: true, max: 7 * 86400 },
};

const _LAUNCHERS: Record<ProviderConfig["type"], readonly string[]> = {
  local: ["srun", "mpiexec", "pbsdsh", "none"],
  slurm: ["srun", "none"],
  pbs: ["mpiexec", "pbsdsh", "none"],
};

function _show(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return String(v);
}

function _describe(rule: _Rule): string {
  switch (rule.kind) {
    case "int":
      return `an integer >= ${rule.min}${rule.max !== undefined ? ` and <= ${rule.max}` : ""}`;
    case "number":
      return `a number ${rule.minExclusive ? ">" : ">="} ${rule.min}${
        rule.max !== undefined ? ` and <= ${rule.max}` : ""
      }`;
    case "string":
      return `${rule.patternText ?? "a string"}${rule.nullable ? " or null" : ""}`;
    case "enum":
      return `one of ${rule.values.join(", ")}`;
    case "url":
      return `an http:// or https:// URL${rule.nullable ? " or null" : ""}`;
    case "bool":
      return "true or false";
    case "list":
      return `a list of at most ${rule.max} ${rule.patternText}`;
  }
}

function _check(file: string, key: string, rule: _Rule, v: unknown): unknown {
  const bad = (problem = `${_show(v)} is not valid`): never => {
    throw new ConfigError(file, key, problem, _describe(rule));
  };
  switch (rule.kind) {
    case "int":
    case "number": {
      if (typeof v !== "number" || !Number.isFinite(v)) bad(`${_show(v)} is not a number`);
      const n = v as number;
      if (rule.kind === "int" && !Number.isInteger(n)) bad(`${n} is not an integer`);
      const tooLow = "minExclusive" in rule && rule.minExclusive ? n <= rule.min : n < rule.min;
      if (tooLow || (rule.max !== undefined && n > rule.max)) bad(`${n} is out of range`);
      return n;
    }
    case "string": {
      if (v === null && rule.nullable) return null;
      if (typeof v !== "string") bad(`${_show(v)} is not a string`);
      if (rule.pattern && !rule.pattern.test(v as string)) bad();
      return v;
    }
    case "enum": {
      if (typeof v !== "string" || !rule.values.includes(v)) bad();
      return v;
    }
    case "url": {
      if (v === null && rule.nullable) return null;
      if (typeof v !== "string") bad(`${_show(v)} is not a string`);
      let u: URL | undefined;
      try {
        u = new URL(v as string);
      } catch {
        bad();
      }
      if (u!.protocol !== "http:" && u!.protocol !== "https:") bad();
      return (v as string).replace(/\/+$/, "");
    }
    case "bool": {
      if (typeof v !== "boolean") bad(`${_show(v)} is not true or false`);
      return v;
    }
    case "list": {
      if (v === null) return [];
      if (!Array.isArray(v)) bad(`${_show(v)} is not a list`);
      const list = v as unknown[];
      if (list.length > rule.max) bad(`${list.length} entries is too many`);
      list.forEach((x, i) => {
        if (typeof x !== "string" || !rule.pattern.test(x)) {
          throw new ConfigError(file, `${key}[${i}]`, `${_show(x)} is not valid`, _describe(rule));
        }
      });
      return [...new Set(list as string[])];
    }
  }
}

function _mapping(file: string, key: string, v: unknown): Record<string, unknown> {
  if (v === null || v === undefined) return {};
  if (typeof v !== "object" || Array.isArray(v)) {
    throw new ConfigError(
      file,
      key || "(top level)",
      `${_show(v)} is not a mapping`,
      "key: value pairs",
    );
  }
  return v as Record<string, unknown>;
}

function _section<T extends object>(
  file: string,
  prefix: string,
  raw: Record<string, unknown>,
  rules: Record<string, _Rule>,
  defaults: T,
  skip: readonly string[] = [],
): T {
  const out = { ...defaults } as Record<string, unknown>;
  for (const [k, v] of Object.entries(raw)) {
    if (skip.includes(k)) continue;
    const rule = rules[k];
    const key = prefix ? `${prefix}.${k}` : k;
    if (!rule) {
      const valid = [...Object.keys(rules), ...skip].join(", ");
      throw new ConfigError(file, key, "unknown key", `one of ${valid}`);
    }
    out[k] = _check(file, key, rule, v);
  }
  return out as T;
}

function _parseYaml(text: string, file: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    const where = pos ? `line ${pos.line}, column ${pos.col}` : "unknown position";
    const what = err.message.split("\n")[0].replace(/ at line \d+, column \d+:?\s*$/, "");
    throw new ConfigError(file, "", `malformed YAML at ${where}: ${what}`, "a YAML mapping");
  }
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    // e.g. an alias without its anchor, or an alias "billion laughs" expansion
    const what = (e as Error).message.split("\n")[0];
    throw new ConfigError(file, "", `invalid YAML: ${what}`, "a YAML mapping");
  }
}

/**
 * Parse and validate the text of an endpoint `config.yaml`; missing keys get the defaults.
 *
 * @example
 * ```ts
 * parseEndpointConfig("", "config.yaml").provider.type; // "local"
 * ```
 */
export function parseEndpointConfig(text: string, file: string): EndpointConfig {
  const raw = _mapping(file, "", _parseYaml(text, file));
  const top = _section(file, "", raw, _TOP_RULES, {
    service_address: DEFAULT_ENDPOINT_CONFIG.service_address,
    heartbeat_period: DEFAULT_ENDPOINT_CONFIG.heartbeat_period,
    heartbeat_threshold: DEFAULT_ENDPOINT_CONFIG.heartbeat_threshold,
    log_level: DEFAULT_ENDPOINT_CONFIG.log_level,
    public: DEFAULT_ENDPOINT_CONFIG.public,
    allowed_groups: DEFAULT_ENDPOINT_CONFIG.allowed_groups,
  }, ["provider", "executor", "allowed_functions"]);
  const allowed = _allowedFunctions(file, raw.allowed_functions);
  const rawProvider = _mapping(file, "provider", raw.provider);
  const provider = _section(
    file,
    "provider",
    rawProvider,
    _PROVIDER_RULES,
    DEFAULT_ENDPOINT_CONFIG.provider,
  );
  const executor = _section(
    file,
    "executor",
    _mapping(file, "executor", raw.executor),
    _EXECUTOR_RULES,
    DEFAULT_ENDPOINT_CONFIG.executor,
  );
  if (provider.type === "pbs" && !("launcher" in rawProvider)) provider.launcher = "mpiexec";
  if (!_LAUNCHERS[provider.type].includes(provider.launcher)) {
    throw new ConfigError(
      file,
      "provider.launcher",
      `${_show(provider.launcher)} is not valid for provider type ${provider.type}`,
      `one of ${_LAUNCHERS[provider.type].join(", ")}`,
    );
  }
  if (provider.min_blocks > provider.max_blocks) {
    throw new ConfigError(
      file,
      "provider.min_blocks",
      `${provider.min_blocks} is greater than provider.max_blocks (${provider.max_blocks})`,
      "min_blocks <= max_blocks",
    );
  }
  if (provider.init_blocks > provider.max_blocks) {
    throw new ConfigError(
      file,
      "provider.init_blocks",
      `${provider.init_blocks} is greater than provider.max_blocks (${provider.max_blocks})`,
      "init_blocks <= max_blocks",
    );
  }
  for (
    const [key, period, threshold] of [
      ["heartbeat_threshold", top.heartbeat_period, top.heartbeat_threshold],
      ["executor.heartbeat_threshold", executor.heartbeat_period, executor.heartbeat_threshold],
    ] as const
  ) {
    if (threshold <= period) {
      throw new ConfigError(
        file,
        key,
        `${threshold} is not greater than the heartbeat period (${period})`,
        "a threshold larger than the period",
      );
    }
  }
  if (executor.worker_ports !== null) {
    const [lo, hi] = executor.worker_ports.split("-").map(Number);
    if (lo < 1 || hi > 65535 || lo > hi) {
      throw new ConfigError(
        file,
        "executor.worker_ports",
        `${_show(executor.worker_ports)} is not a valid range`,
        'a port range "LO-HI" with 1 <= LO <= HI <= 65535, e.g. "54000-55000"',
      );
    }
  }
  return { ...top, allowed_functions: allowed, provider, executor };
}

const _UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `allowed_functions`: absent or null (no restriction), or a non-empty list of uuids. */
function _allowedFunctions(file: string, v: unknown): string[] | null {
  if (v === undefined || v === null) return null;
  const expected = "a list of function ids (UUIDs), or null for no restriction";
  if (!Array.isArray(v) || v.length === 0) {
    throw new ConfigError(
      file,
      "allowed_functions",
      Array.isArray(v) ? "an empty list allows nothing" : `${_show(v)} is not a list`,
      expected,
    );
  }
  const out: string[] = [];
  for (const [i, f] of v.entries()) {
    if (typeof f !== "string" || !_UUID_RE.test(f)) {
      throw new ConfigError(file, `allowed_functions[${i}]`, `${_show(f)} is not a UUID`, expected);
    }
    if (!out.includes(f.toLowerCase())) out.push(f.toLowerCase());
  }
  return out;
}

/**
 * Parse and validate the text of the global `config.yaml`.
 *
 * @example
 * ```ts
 * parseGlobalConfig("service_address: http://h:1/v2\n", "config.yaml").service_address;
 * // "http://h:1/v2"
 * ```
 */
export function parseGlobalConfig(text: string, file: string): GlobalConfig {
  const raw = _mapping(file, "", _parseYaml(text, file));
  return _section(file, "", raw, _GLOBAL_RULES, { ...DEFAULT_GLOBAL_CONFIG });
}

function _readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    if (e instanceof Deno.errors.IsADirectory) {
      throw new ConfigError(path, "", "is a directory", "a YAML file");
    }
    throw new ConfigError(path, "", `cannot be read (${(e as Error).message})`);
  }
}

function _legacyError(pyPath: string, yamlPath: string, what: string): ConfigError {
  return new ConfigError(
    pyPath,
    "",
    `Python ${what} configs (funcX <= 0.3 config.py) are not supported by this single-binary endpoint`,
    `a YAML config at ${yamlPath}: run \`funcx-endpoint configure\` for a commented template, ` +
      "then translate: funcx_service_address -> service_address, the provider " +
      "(LocalProvider/SlurmProvider/TorqueProvider) -> provider.type local/slurm/pbs with its " +
      "init_blocks/min_blocks/max_blocks/nodes_per_block/walltime/partition/worker_init, " +
      "HighThroughputExecutor options (max_workers_per_node, cores_per_worker, address, " +
      "heartbeat_*) -> executor.*, and remove config.py",
  );
}

/**
 * Load an endpoint config file. A `config.py` next to a missing `config.yaml` is an error
 * explaining the translation; a missing file is an error naming it.
 *
 * @example
 * ```ts
 * const cfg = loadEndpointConfig("/home/u/.funcx/default/config.yaml");
 * ```
 */
export function loadEndpointConfig(path: string): EndpointConfig {
  const text = _readText(path);
  if (text === undefined) {
    const py = path.replace(/config\.yaml$/, "config.py");
    if (py !== path && _readText(py) !== undefined) throw _legacyError(py, path, "endpoint");
    throw new ConfigError(
      path,
      "",
      "not found",
      "an endpoint config: run `funcx-endpoint configure`",
    );
  }
  return parseEndpointConfig(text, path);
}

/**
 * Load the global config; a missing file gives the defaults, a stray `config.py` an error.
 *
 * @example
 * ```ts
 * const g = loadGlobalConfig("/home/u/.funcx/config.yaml");
 * g.auth_address; // "http://127.0.0.1:8400/auth" unless configured
 * ```
 */
export function loadGlobalConfig(path: string): GlobalConfig {
  const text = _readText(path);
  if (text === undefined) {
    const py = path.replace(/config\.yaml$/, "config.py");
    if (py !== path && _readText(py) !== undefined) throw _legacyError(py, path, "global");
    return { ...DEFAULT_GLOBAL_CONFIG };
  }
  return parseGlobalConfig(text, path);
}

/**
 * The web service address an endpoint uses: its own `service_address`, else the global one.
 *
 * @example
 * ```ts
 * effectiveServiceAddress({ service_address: "http://a/v2" } as GlobalConfig, { service_address: null } as EndpointConfig);
 * // "http://a/v2"
 * ```
 */
export function effectiveServiceAddress(global: GlobalConfig, endpoint: EndpointConfig): string {
  return endpoint.service_address ?? global.service_address;
}

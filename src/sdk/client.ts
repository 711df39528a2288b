/**
 * A TypeScript funcX client (the subset of upstream `FuncXClient` the demo, tests and
 * bench need): register Python functions from source (`03`), submit batches with
 * args/kwargs (`00`), poll, and decode results and remote exceptions. Payload formats are
 * upstream's (§9).
 *
 * @example
 * ```ts ignore
 * import { FuncXClient } from "./client.ts";
 * const fx = new FuncXClient({ serviceAddress: "http://127.0.0.1:8400/v2", token });
 * const fn = await fx.registerFunction("def double(x):\n    return 2 * x\n", "double");
 * const [id] = await fx.submit([{ functionId: fn, endpointId, args: [21] }]);
 * const results = await fx.waitForResults([id]);
 * results.get(id)?.value; // 42
 * ```
 * @module
 */
import type { PyValue } from "../protocol/pickle/mod.ts";
import {
  decodeRemoteException,
  deserialize,
  packBuffers,
  serializeData,
  serializeSource,
  tuple,
} from "../protocol/serialize.ts";
import { clientForCaFile, trustedFetch } from "../config/trust.ts";
import { SHELL_FUNCTION_NAME, type ShellFunctionOptions, shellFunctionSource } from "./shell.ts";

/** Options of {@linkcode FuncXClient}. */
export interface FuncXClientOptions {
  /** Web service base, e.g. `http://127.0.0.1:8400/v2`. */
  serviceAddress: string;
  /** Bearer token, or a function returning a fresh one. */
  token: string | (() => string | Promise<string>);
  /** Upper bound of one HTTP request in ms (default 60,000). */
  requestTimeoutMs?: number;
  /**
   * PEM CA bundle to trust for an `https://` service (a site CA). Default: the
   * `SSL_CERT_FILE` / `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE` environment variables.
   */
  caFile?: string;
}

/** An error record returned by the service (non-2xx). */
export class FuncXApiError extends Error {
  constructor(
    /** HTTP status. */
    readonly httpStatus: number,
    /** Upstream error code (0 when the body was not an error record). */
    readonly code: number,
    /** The service's reason. */
    readonly reason: string,
  ) {
    super(`funcX service error ${httpStatus} (code ${code}): ${reason}`);
    this.name = "FuncXApiError";
  }
}

/**
 * Some tasks of a submitted batch were refused (HTTP 207). The accepted ones were queued
 * and will run: their ids are in `taskIds` (null for the refused ones).
 */
export class SubmitError extends FuncXApiError {
  constructor(
    httpStatus: number,
    code: number,
    reason: string,
    /** Per task of the batch: its id when accepted, `null` when refused. */
    readonly taskIds: (string | null)[],
  ) {
    super(httpStatus, code, reason);
    this.name = "SubmitError";
  }
}

/** A task raised on the endpoint (or the service failed it). */
export class RemoteError extends Error {
  constructor(
    /** Python exception type name, e.g. `ValueError`, `ManagerLost`. */
    readonly type: string,
    /** `str(exception)`. */
    readonly remoteMessage: string,
    /** The remote traceback text. */
    readonly remoteTraceback: string,
    /** Task id. */
    readonly taskId: string,
  ) {
    super(`task ${taskId} raised ${type}: ${remoteMessage}`);
    this.name = "RemoteError";
  }
}

/** The task has no result yet. */
export class TaskPending extends Error {
  constructor(readonly taskId: string, readonly status: string) {
    super(`task ${taskId} is pending (${status})`);
    this.name = "TaskPending";
  }
}

/** One task of a {@linkcode FuncXClient.submit} batch. */
export interface TaskSpec {
  /** Function id. */
  functionId: string;
  /** Endpoint id. */
  endpointId: string;
  /** Positional arguments. */
  args?: PyValue[];
  /** Keyword arguments. */
  kwargs?: Record<string, PyValue>;
}

/** What happened to a task. */
export interface TaskOutcome {
  /** Task id. */
  taskId: string;
  /** Task state. */
  status: string;
  /** True while there is no result or exception. */
  pending: boolean;
  /** Decoded return value (when it succeeded). */
  value?: PyValue;
  /** The failure (when it failed). */
  error?: RemoteError;
  /** Completion time (epoch seconds) when known. */
  completionTime?: number;
}

/** Options of {@linkcode FuncXClient.waitForResults}. */
export interface WaitOptions {
  /** Give up after this many ms (default 5 minutes). Pending tasks are reported as pending. */
  timeoutMs?: number;
  /** Largest poll interval in ms (default 1000; polling starts at 20 ms). */
  maxPollMs?: number;
  /** Ids per batch_status request (default 5000). */
  chunk?: number;
  /** Called with each outcome as it arrives. */
  onResult?: (o: TaskOutcome) => void;
}

/** The client. */
export class FuncXClient {
  /** Web service base, e.g. `http://127.0.0.1:8400/v2`. */
  readonly serviceAddress: string;
  #token: FuncXClientOptions["token"];
  #client?: Deno.HttpClient;

  /** Upper bound of one HTTP request (ms). */
  readonly requestTimeoutMs: number;

  constructor(opts: FuncXClientOptions) {
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 60_000;
    this.serviceAddress = opts.serviceAddress.replace(/\/+$/, "");
    this.#token = opts.token;
    this.#client = opts.caFile ? clientForCaFile(opts.caFile) : undefined;
  }

  /** Release the HTTP client of a `caFile` (nothing to do otherwise). */
  close(): void {
    this.#client?.close();
    this.#client = undefined;
  }

  async #request(method: string, path: string, body?: unknown): Promise<unknown> {
    const token = typeof this.#token === "function" ? await this.#token() : this.#token;
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    let payload: string | undefined;
    if (body !== undefined) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
    // Bounded: a request caught by a service restart must fail (and be retried by the
    // caller), not hang forever.
    const res = await trustedFetch(`${this.serviceAddress}${path}`, {
      method,
      headers,
      body: payload,
      signal: AbortSignal.timeout(this.requestTimeoutMs),
      client: this.#client,
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch { /* not JSON */ }
    if (res.status >= 400) {
      const rec = parsed as { code?: number; reason?: string };
      throw new FuncXApiError(
        res.status,
        typeof rec?.code === "number" ? rec.code : 0,
        typeof rec?.reason === "string" ? rec.reason : text.slice(0, 300),
      );
    }
    return parsed;
  }

  /**
   * `GET /version?service=all`.
   *
   * @example
   * ```ts ignore
   * (await fx.version()).api; // "0.3.4"
   * ```
   */
  async version(): Promise<Record<string, string>> {
    return await this.#request("GET", "/version?service=all") as Record<string, string>;
  }

  /**
   * Register a Python function from its source text (serializer `03`); `name` is the
   * function's name in the source. Returns the function id.
   *
   * @example
   * ```ts ignore
   * const id = await fx.registerFunction("def add(a, b):\n    return a + b\n", "add");
   * ```
   */
  async registerFunction(
    source: string,
    name: string,
    opts: {
      description?: string;
      /** Anyone may run it. */
      public?: boolean;
      /** Share with the members of this group (id or name), as upstream's `group=`. */
      group?: string | null;
    } = {},
  ): Promise<string> {
    const reply = await this.#request("POST", "/functions", {
      function_name: name,
      function_code: packBuffers([serializeSource(name, source)]),
      function_source: source,
      container_uuid: null,
      entry_point: name,
      description: opts.description ?? "",
      public: opts.public ?? false,
      group: opts.group ?? null,
      searchable: false,
    }) as { function_uuid: string };
    return reply.function_uuid;
  }

  /**
   * Register a shell command (a `str.format` template filled from kwargs); the task
   * returns `{cmd, returncode, stdout, stderr}`.
   *
   * @example
   * ```ts ignore
   * const id = await fx.registerShellFunction("echo {msg}", { timeout: 30 });
   * ```
   */
  registerShellFunction(cmd: string, opts: ShellFunctionOptions = {}): Promise<string> {
    return this.registerFunction(shellFunctionSource(cmd, opts), SHELL_FUNCTION_NAME, {
      description: `shell: ${cmd}`,
    });
  }

  /**
   * Submit a batch (one request, one task group). Returns the task ids in order; throws
   * {@linkcode SubmitError} naming the first refused task if any was refused (the accepted
   * ones still run; their ids are in the error).
   *
   * @example
   * ```ts ignore
   * const ids = await fx.submit([{ functionId, endpointId, args: [1, 2] }]);
   * ```
   */
  async submit(batch: TaskSpec[], opts: { taskGroupId?: string } = {}): Promise<string[]> {
    const tasks = batch.map((t) => [
      t.functionId,
      t.endpointId,
      packBuffers([serializeData(tuple(...(t.args ?? []))), serializeData(t.kwargs ?? {})]),
    ]);
    const reply = await this.#request("POST", "/submit", {
      task_group_id: opts.taskGroupId ?? crypto.randomUUID(),
      tasks,
    }) as {
      results: {
        status: string;
        task_uuid: string;
        reason?: string;
        code?: number;
        http_status_code?: number;
      }[];
    };
    const bad = reply.results.findIndex((r) => r.status !== "Success");
    if (bad >= 0) {
      const r = reply.results[bad];
      throw new SubmitError(
        r.http_status_code ?? 400,
        r.code ?? 0,
        `task ${bad} of the batch was refused: ${r.reason}`,
        reply.results.map((x) => (x.status === "Success" ? x.task_uuid : null)),
      );
    }
    return reply.results.map((r) => r.task_uuid);
  }

  /**
   * Submit one task; returns its id.
   *
   * @example
   * ```ts ignore
   * const id = await fx.run({ functionId, endpointId, args: [3] });
   * ```
   */
  async run(task: TaskSpec): Promise<string> {
    return (await this.submit([task]))[0];
  }

  #outcome(taskId: string, rec: Record<string, unknown>): TaskOutcome {
    const status = String(rec.status ?? "unknown");
    const out: TaskOutcome = { taskId, status, pending: true };
    if (rec.completion_t !== undefined) out.completionTime = Number(rec.completion_t);
    if (typeof rec.result === "string") {
      out.pending = false;
      out.value = deserialize(rec.result);
    } else if (typeof rec.exception === "string") {
      out.pending = false;
      out.error = _remoteError(taskId, rec.exception);
    } else if (status === "Failed" && typeof rec.reason === "string") {
      out.pending = false;
      out.error = new RemoteError("UnknownTask", rec.reason, "", taskId);
    }
    return out;
  }

  /**
   * Status of one task; a finished task's result is handed out once (then deleted, like
   * upstream).
   *
   * @example
   * ```ts ignore
   * const o = await fx.getTask(id); // {status: "running", pending: true, ...}
   * const r = await fx.getTask(id, { waitSeconds: 10 }); // held until done or 10 s (local service)
   * ```
   */
  async getTask(taskId: string, opts: { waitSeconds?: number } = {}): Promise<TaskOutcome> {
    const wait = opts.waitSeconds ? `?wait=${opts.waitSeconds}` : "";
    const rec = await this.#request("GET", `/tasks/${encodeURIComponent(taskId)}${wait}`);
    return this.#outcome(taskId, rec as Record<string, unknown>);
  }

  /**
   * The result of one task: its value, or throws {@linkcode RemoteError} /
   * {@linkcode TaskPending}.
   *
   * @example
   * ```ts ignore
   * const v = await fx.getResult(id);
   * ```
   */
  async getResult(taskId: string): Promise<PyValue> {
    const o = await this.getTask(taskId);
    if (o.error) throw o.error;
    if (o.pending) throw new TaskPending(taskId, o.status);
    return o.value ?? null;
  }

  /**
   * Status of many tasks in one request (`POST /batch_status`).
   *
   * @example
   * ```ts ignore
   * const m = await fx.getBatchResult(ids); // Map<id, TaskOutcome>
   * ```
   */
  async getBatchResult(taskIds: string[]): Promise<Map<string, TaskOutcome>> {
    const reply = await this.#request("POST", "/batch_status", { task_ids: taskIds }) as {
      results: Record<string, Record<string, unknown>>;
    };
    const out = new Map<string, TaskOutcome>();
    for (const id of taskIds) {
      const rec = reply.results[id];
      if (rec) out.set(id, this.#outcome(id, rec));
    }
    return out;
  }

  /**
   * Poll until every task has a result or exception (or the timeout passes), with few
   * requests: batch_status in chunks, back-off from 20 ms to `maxPollMs` while nothing new
   * arrives. Returns an outcome per id (still-pending ones have `pending: true`).
   *
   * @example
   * ```ts ignore
   * const all = await fx.waitForResults(ids, { timeoutMs: 60_000 });
   * ```
   */
  async waitForResults(
    taskIds: string[],
    opts: WaitOptions = {},
  ): Promise<Map<string, TaskOutcome>> {
    const deadline = Date.now() + (opts.timeoutMs ?? 300_000);
    const chunk = opts.chunk ?? 5000;
    const maxPoll = opts.maxPollMs ?? 1000;
    const done = new Map<string, TaskOutcome>();
    const last = new Map<string, TaskOutcome>();
    let pending = [...new Set(taskIds)];
    let poll = 20;
    while (pending.length > 0) {
      let progressed = false;
      const still: string[] = [];
      for (let i = 0; i < pending.length; i += chunk) {
        const ids = pending.slice(i, i + chunk);
        const got = await this.getBatchResult(ids);
        for (const id of ids) {
          const o = got.get(id);
          if (o && !o.pending) {
            done.set(id, o);
            opts.onResult?.(o);
            progressed = true;
          } else {
            if (o) last.set(id, o);
            still.push(id);
          }
        }
      }
      pending = still;
      if (pending.length === 0 || Date.now() >= deadline) break;
      poll = progressed ? 20 : Math.min(maxPoll, poll * 2);
      await new Promise((r) => setTimeout(r, Math.min(poll, Math.max(0, deadline - Date.now()))));
    }
    const out = new Map<string, TaskOutcome>();
    for (const id of taskIds) {
      out.set(id, done.get(id) ?? last.get(id) ?? { taskId: id, status: "unknown", pending: true });
    }
    return out;
  }

  /**
   * `GET /endpoints/<id>/status`.
   *
   * @example
   * ```ts ignore
   * (await fx.endpointStatus(endpointId)).status; // "online" | "offline"
   * ```
   */
  async endpointStatus(endpointId: string): Promise<{ status: string; logs: unknown[] }> {
    return await this.#request(
      "GET",
      `/endpoints/${encodeURIComponent(endpointId)}/status`,
    ) as { status: string; logs: unknown[] };
  }
}

function _remoteError(taskId: string, serialized: string): RemoteError {
  try {
    const info = decodeRemoteException(serialized);
    return new RemoteError(info.type, info.message, info.traceback, taskId);
  } catch (e) {
    return new RemoteError(
      "UndecodableException",
      `the remote exception could not be decoded: ${(e as Error).message}`,
      "",
      taskId,
    );
  }
}

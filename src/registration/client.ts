/**
 * Client of the funcX web service for the endpoint: version check, endpoint registration
 * (`POST /endpoints` with our `endpoint_pubkey`), endpoint status.
 *
 * 5xx replies and connection errors are retried with capped exponential backoff
 * (1 s → 60 s by default, until the abort signal fires or `maxAttempts` is reached); a 4xx
 * reply becomes a {@linkcode RegistrationError} carrying the service's `reason`. A 401 is
 * retried once with a freshly refreshed token.
 *
 * @example
 * ```ts
 * import { WebServiceClient } from "./client.ts";
 * const ws = new WebServiceClient("http://127.0.0.1:8400/v2", () => Promise.resolve("token"));
 * const reply = await ws.registerEndpoint({ endpoint_name: "default", endpoint_uuid: null,
 *   version: "0.3.4", endpoint_pubkey: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7" });
 * console.log(reply.endpoint_id);
 * ```
 * @module
 */
import { trustedFetch } from "../config/trust.ts";
import { ENDPOINT_VERSION } from "../config/types.ts";
import { sleep } from "../util/sleep.ts";
import { describeFetchError } from "./reach.ts";

/** Supplies a bearer token; `force` asks for a refreshed one (after a 401). */
export type TokenProvider = (force?: boolean) => Promise<string>;

/**
 * The service refused a request (4xx) or the reply is unusable: not retried.
 *
 * @example
 * ```ts
 * new RegistrationError("POST /endpoints", 400, "Endpoint is out of date", 19).message;
 * // "POST /endpoints: HTTP 400: Endpoint is out of date (code 19)"
 * ```
 */
export class RegistrationError extends Error {
  /**
   * @param what the request, @param status HTTP status, @param reason the service's reason,
   * @param code the service's error code when given
   */
  constructor(
    readonly what: string,
    readonly status: number,
    readonly reason: string,
    readonly code?: number,
  ) {
    super(`${what}: HTTP ${status}: ${reason}${code !== undefined ? ` (code ${code})` : ""}`);
    this.name = "RegistrationError";
  }
}

/**
 * A retryable failure (5xx or connection error) after the last allowed attempt.
 *
 * @example
 * ```ts
 * new ServiceUnavailableError("POST /endpoints", "connection refused", 3);
 * ```
 */
export class ServiceUnavailableError extends Error {
  /** @param what the request, @param detail last failure, @param attempts how many were made */
  constructor(readonly what: string, readonly detail: string, readonly attempts: number) {
    super(`${what}: service unavailable after ${attempts} attempt(s): ${detail}`);
    this.name = "ServiceUnavailableError";
  }
}

/** Body of `POST /endpoints` (upstream fields plus our `endpoint_pubkey`). */
export interface RegisterRequest {
  endpoint_name: string;
  endpoint_uuid: string | null;
  version: string;
  endpoint_pubkey: string;
  /** config.yaml `allowed_functions` (null: not restricted); upstream endpoints omit it. */
  allowed_functions?: string[] | null;
  /** Anyone may use the endpoint (from config.yaml). */
  public?: boolean;
  /** Groups whose members may use it (from config.yaml). */
  allowed_groups?: string[];
}

/** The registration reply (upstream §5.1 plus our `endpoint_secret`). */
export interface RegistrationReply {
  endpoint_id: string;
  forwarder_pubkey: string;
  public_ip: string;
  tasks_port: number;
  results_port: number;
  commands_port: number;
  endpoint_secret?: string;
  [key: string]: unknown;
}

/** The `GET /version?service=all` reply. */
export interface VersionInfo {
  api: string;
  forwarder: string;
  min_sdk_version: string;
  min_ep_version: string;
}

/** Backoff and attempt limits. */
export interface RetryOptions {
  /** First delay (ms), default 1000. */
  initialDelayMs?: number;
  /** Cap of the delay (ms), default 60000. */
  maxDelayMs?: number;
  /** Give up after this many attempts (default: never). */
  maxAttempts?: number;
  /** Stop retrying (and abort the request) when this fires. */
  signal?: AbortSignal;
  /** Called before each wait, e.g. to log and record the failure. */
  onRetry?: (info: { attempt: number; delayMs: number; error: string }) => void;
  /** Per-request timeout (ms), default 30000. */
  timeoutMs?: number;
}

function _cmpVersion(a: string, b: string): number {
  const pa = a.split(/[.+-]/).map((x) => parseInt(x, 10));
  const pb = b.split(/[.+-]/).map((x) => parseInt(x, 10));
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = Number.isFinite(pa[i]) ? pa[i] : 0;
    const y = Number.isFinite(pb[i]) ? pb[i] : 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

class _Retryable extends Error {}

/**
 * The web-service client used by the endpoint daemon.
 *
 * @example
 * ```ts ignore
 * const ws = new WebServiceClient("http://127.0.0.1:8400/v2", tokenProvider(home, global));
 * await ws.checkVersion();
 * ```
 */
export class WebServiceClient {
  readonly baseUrl: string;

  /**
   * @param baseUrl service base such as `http://127.0.0.1:8400/v2`
   * @param tokens bearer token provider
   * @param retry default retry options for every call
   */
  constructor(
    baseUrl: string,
    readonly tokens: TokenProvider,
    readonly retry: RetryOptions = {},
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
  }

  /**
   * `GET /version?service=all`.
   *
   * @example
   * ```ts ignore
   * (await ws.version()).min_ep_version; // "0.3.0"
   * ```
   */
  async version(opts: RetryOptions = {}): Promise<VersionInfo> {
    const v = await this.#call("GET", "/version?service=all", undefined, false, opts);
    if (!v || typeof v !== "object" || typeof (v as VersionInfo).min_ep_version !== "string") {
      throw new RegistrationError("GET /version", 200, "reply has no min_ep_version");
    }
    return v as VersionInfo;
  }

  /**
   * Check that this endpoint's version is at least the service's `min_ep_version`.
   *
   * @example
   * ```ts ignore
   * await ws.checkVersion(); // throws RegistrationError when too old
   * ```
   */
  async checkVersion(version = ENDPOINT_VERSION, opts: RetryOptions = {}): Promise<VersionInfo> {
    const v = await this.version(opts);
    if (_cmpVersion(version, v.min_ep_version) < 0) {
      throw new RegistrationError(
        "GET /version",
        200,
        `endpoint version ${version} is older than the service's minimum ${v.min_ep_version}; upgrade funcx-endpoint`,
      );
    }
    return v;
  }

  /**
   * `POST /endpoints`: register (or re-register) the endpoint; validates the reply.
   *
   * @example
   * ```ts ignore
   * const r = await ws.registerEndpoint({ endpoint_name: "default", endpoint_uuid: id,
   *   version: "0.3.4", endpoint_pubkey: pub });
   * ```
   */
  async registerEndpoint(
    req: RegisterRequest,
    opts: RetryOptions = {},
  ): Promise<RegistrationReply> {
    const r = await this.#call("POST", "/endpoints", req, true, opts) as Record<string, unknown>;
    const what = "POST /endpoints";
    const bad = (field: string, expected: string) =>
      new RegistrationError(what, 200, `reply field ${field} is invalid; expected ${expected}`);
    if (!r || typeof r !== "object") throw bad("(body)", "a JSON object");
    if (typeof r.endpoint_id !== "string" || !r.endpoint_id) throw bad("endpoint_id", "a string");
    if (typeof r.forwarder_pubkey !== "string") throw bad("forwarder_pubkey", "a ZPL certificate");
    if (typeof r.public_ip !== "string" || !r.public_ip) throw bad("public_ip", "a host");
    for (const p of ["tasks_port", "results_port", "commands_port"]) {
      const v = Number(r[p]);
      if (!Number.isInteger(v) || v < 1 || v > 65535) throw bad(p, "a TCP port");
      r[p] = v;
    }
    if (r.endpoint_secret !== undefined && typeof r.endpoint_secret !== "string") {
      throw bad("endpoint_secret", "a string");
    }
    return r as RegistrationReply;
  }

  /**
   * `GET /endpoints/<id>/status`.
   *
   * @example
   * ```ts ignore
   * (await ws.endpointStatus(id)).status; // "online"
   * ```
   */
  async endpointStatus(
    id: string,
    opts: RetryOptions = {},
  ): Promise<{ status: string; logs: unknown[] }> {
    return await this.#call(
      "GET",
      `/endpoints/${encodeURIComponent(id)}/status`,
      undefined,
      true,
      opts,
    ) as { status: string; logs: unknown[] };
  }

  async #call(
    method: string,
    path: string,
    body: unknown,
    auth: boolean,
    callOpts: RetryOptions,
  ): Promise<unknown> {
    const opts = { ...this.retry, ...callOpts };
    const what = `${method} ${path.replace(/\?.*$/, "")}`;
    const initial = opts.initialDelayMs ?? 1000;
    const cap = opts.maxDelayMs ?? 60_000;
    let delay = initial;
    let forced = false;
    for (let attempt = 1;; attempt++) {
      try {
        return await this.#once(method, path, body, auth, what, opts, forced);
      } catch (e) {
        if (e instanceof _Unauthorized && !forced) {
          forced = true;
          attempt--;
          continue;
        }
        if (e instanceof _Unauthorized) throw e.error;
        if (!(e instanceof _Retryable)) throw e;
        if (opts.signal?.aborted) throw opts.signal.reason;
        if (opts.maxAttempts !== undefined && attempt >= opts.maxAttempts) {
          throw new ServiceUnavailableError(what, e.message, attempt);
        }
        opts.onRetry?.({ attempt, delayMs: delay, error: e.message });
        await sleep(delay, opts.signal);
        opts.signal?.throwIfAborted();
        delay = Math.min(cap, delay * 2);
      }
    }
  }

  async #once(
    method: string,
    path: string,
    body: unknown,
    auth: boolean,
    what: string,
    opts: RetryOptions,
    force: boolean,
  ): Promise<unknown> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (auth) headers.authorization = `Bearer ${await this.tokens(force)}`;
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? 30_000);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    let res: Response;
    try {
      res = await trustedFetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (e) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw new _Retryable(`cannot reach ${this.baseUrl}: ${describeFetchError(e, this.baseUrl)}`);
    }
    const text = await res.text().catch(() => "");
    let data: unknown = undefined;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch { /* not JSON */ }
    if (res.ok) {
      if (data === undefined) {
        throw new RegistrationError(what, res.status, "the reply is not JSON");
      }
      return data;
    }
    const rec = (data && typeof data === "object" ? data : {}) as Record<string, unknown>;
    const reason = typeof rec.reason === "string"
      ? rec.reason
      : text.slice(0, 200).replace(/\s+/g, " ") || res.statusText;
    const code = typeof rec.code === "number" ? rec.code : undefined;
    if (res.status >= 500) throw new _Retryable(`HTTP ${res.status}: ${reason}`);
    const err = new RegistrationError(what, res.status, reason, code);
    if (res.status === 401 && auth) throw new _Unauthorized(err);
    throw err;
  }
}

class _Unauthorized extends Error {
  constructor(readonly error: RegistrationError) {
    super(error.message);
  }
}

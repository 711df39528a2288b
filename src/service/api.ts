/**
 * The funcX web-service API of the local service (upstream `routes/funcx.py`, §10),
 * mounted at `/v2`, `/v1` and `/api/v1`. Every route but `/version` needs a bearer token
 * with the funcX scope; endpoints, functions and tasks belong to the user who created them.
 *
 * @example
 * ```ts ignore
 * import { ApiServer } from "./api.ts";
 * const api = new ApiServer({ store, auth, forwarder, publicHost: "127.0.0.1", log });
 * const res = await api.handle(req, "/version", info);
 * ```
 * @module
 */
import type { Logger } from "../daemon/log.ts";
import { ApiError, checkUuid, ErrorCode } from "./errors.ts";
import { json, readJsonObject, Router } from "./http.ts";
import { MIN_EP_VERSION, MIN_SDK_VERSION, SERVICE_VERSION } from "./info.ts";
import type { AuthServer } from "./auth.ts";
import { type Auditor, NO_AUDIT } from "./audit.ts";
import type { Forwarder } from "./forwarder.ts";
import { newToken, sha256Hex } from "./secrets.ts";
import {
  FINAL_STATES,
  type NewTask,
  type ServiceStore,
  type TaskRow,
  type TokenInfo,
} from "./store.ts";
import { endpointGoneException } from "./exceptions.ts";
import { isZ85Key } from "../protocol/zpl.ts";
import { allowedFunctionsField, functionCodeHashes } from "./allowlist.ts";
import { GroupsApi, parseEndpointSharing, parseFunctionSharing } from "./groups_api.ts";
import { mayRunFunction, mayUseEndpoint } from "./sharing.ts";

/** Options of {@linkcode ApiServer}. */
export interface ApiServerOptions {
  /** The service database. */
  store: ServiceStore;
  /** The auth server. */
  auth: AuthServer;
  /** The forwarder. */
  forwarder: Forwarder;
  /** Address endpoints are told to connect to. */
  publicHost: string;
  /**
   * Accept unmodified funcx-endpoint 0.3 registrations (no `endpoint_pubkey`), trusting the
   * first CURVE key that connects for them (`legacy.ts`). Default false.
   */
  legacyEndpoints?: boolean;
  /** Logger. */
  log: Logger;
  /** Audit trail (endpoint registrations). */
  audit?: Auditor;
}

const _MAX_BATCH = 100_000;

/** The API. */
export class ApiServer {
  #store: ServiceStore;
  #auth: AuthServer;
  #fwd: Forwarder;
  #publicHost: string;
  #legacy: boolean;
  #log: Logger;
  #audit: Auditor;
  #router = new Router();

  constructor(opts: ApiServerOptions) {
    this.#store = opts.store;
    this.#auth = opts.auth;
    this.#fwd = opts.forwarder;
    this.#publicHost = opts.publicHost;
    this.#legacy = opts.legacyEndpoints ?? false;
    this.#log = opts.log;
    this.#audit = opts.audit ?? NO_AUDIT;
    const r = this.#router;
    r.add("GET", "/version", (req) => this.#version(req));
    r.add("GET", "/authenticate", (req) => (this.#user(req), json("OK")));
    r.add("POST", "/endpoints", (req, _p) => this.#registerEndpoint(req));
    r.add("POST", "/register_endpoint_2", (req) => this.#registerEndpoint(req));
    r.add("GET", "/endpoints/:id/status", (req, [id]) => this.#endpointStatus(req, id));
    r.add("DELETE", "/endpoints/:id", (req, [id]) => this.#deleteEndpoint(req, id));
    r.add("POST", "/functions", (req) => this.#registerFunction(req));
    r.add("POST", "/register_function", (req) => this.#registerFunction(req));
    r.add("PUT", "/functions/:id", (req, [id]) => this.#updateFunction(req, id));
    r.add("DELETE", "/functions/:id", (req, [id]) => this.#deleteFunction(req, id));
    r.add("POST", "/submit", (req) => this.#submit(req));
    r.add("POST", "/submit_batch", (req) => this.#submitBatch(req));
    r.add("GET", "/endpoints/:id/whitelist", (req, [id]) => this.#getAllowList(req, id));
    r.add("POST", "/endpoints/:id/whitelist", (req, [id]) => this.#addAllowList(req, id));
    r.add(
      "DELETE",
      "/endpoints/:id/whitelist/:fid",
      (req, [id, fid]) => this.#deleteAllowList(req, id, fid),
    );
    r.add("GET", "/tasks/:id", (req, [id]) => this.#getTask(req, id, true));
    r.add("GET", "/tasks/:id/status", (req, [id]) => this.#getTask(req, id));
    r.add("GET", "/:id/status", (req, [id]) => this.#getTask(req, id));
    r.add("POST", "/batch_status", (req) => this.#batchStatus(req));
    r.add("GET", "/task_groups/:id", (req, [id]) => this.#taskGroup(req, id));
    new GroupsApi(
      this.#store.sharing,
      (req) => this.#user(req),
      (user, action, detail) => {
        this.#log.info("api", "%s by %s: %s", action, user, JSON.stringify(detail));
        this.#audit.record("sharing.changed", { action, ...detail, by: user });
      },
    ).mount(r);
  }

  /** Handle `sub` (the path below the version prefix). */
  async handle(req: Request, sub: string, _info?: Deno.ServeHandlerInfo): Promise<Response> {
    try {
      const m = this.#router.match(req.method, sub);
      if ("allowed" in m) {
        if (m.allowed.length > 0) {
          throw new ApiError(
            ErrorCode.RequestMalformed,
            `Method ${req.method} not allowed on ${sub}; allowed: ${m.allowed.join(", ")}`,
            [req.method],
            405,
          );
        }
        throw new ApiError(ErrorCode.Unknown, `No such route: ${req.method} ${sub}`, [sub], 404);
      }
      return await m.handler(req, m.params);
    } catch (e) {
      if (e instanceof ApiError) {
        if (e.httpStatus >= 500) this.#log.error("api", "%s %s: %s", req.method, sub, e.reason);
        return json(e.record(), e.httpStatus);
      }
      this.#log.error("api", "%s %s failed: %s", req.method, sub, (e as Error)?.stack ?? e);
      const err = new ApiError(ErrorCode.InternalError, "Internal error; see the service log");
      return json(err.record(), 500);
    }
  }

  #user(req: Request): TokenInfo {
    return this.#auth.authenticate(req);
  }

  #version(req: Request): Response {
    const service = new URL(req.url).searchParams.get("service") ?? "api";
    if (service === "all") {
      return json({
        api: SERVICE_VERSION,
        forwarder: SERVICE_VERSION,
        min_sdk_version: MIN_SDK_VERSION,
        min_ep_version: MIN_EP_VERSION,
      });
    }
    if (service === "api" || service === "forwarder") return json(SERVICE_VERSION);
    throw new ApiError(
      ErrorCode.RequestMalformed,
      `Unknown service ${JSON.stringify(service)}; expected api, forwarder or all`,
    );
  }

  // ---------------------------------------------------------------- endpoints

  async #registerEndpoint(req: Request): Promise<Response> {
    const user = this.#user(req);
    const body = await readJsonObject(req);
    const name = body.endpoint_name;
    if (typeof name !== "string" || name === "" || name.length > 256) {
      throw new ApiError(
        ErrorCode.RequestKeyError,
        "endpoint_name is required: a non-empty string of at most 256 characters",
        ["endpoint_name"],
      );
    }
    if (body.version === undefined || body.version === null) {
      throw new ApiError(ErrorCode.RequestKeyError, "version is required", ["version"]);
    }
    if (typeof body.version !== "string") {
      throw new ApiError(ErrorCode.RequestMalformed, 'version must be a string like "0.3.4"');
    }
    if (body.version < MIN_EP_VERSION) {
      throw new ApiError(
        ErrorCode.EndpointOutdated,
        `Endpoint is out of date. Minimum supported endpoint version is ${MIN_EP_VERSION}`,
        [MIN_EP_VERSION],
      );
    }
    const uuid = body.endpoint_uuid === undefined || body.endpoint_uuid === null
      ? crypto.randomUUID()
      : checkUuid(body.endpoint_uuid, "endpoint_uuid");
    const pubkey = body.endpoint_pubkey;
    const legacy = this.#legacy && (pubkey === undefined || pubkey === null);
    if (!legacy && (typeof pubkey !== "string" || !isZ85Key(pubkey))) {
      throw new ApiError(
        ErrorCode.RequestKeyError,
        pubkey === undefined || pubkey === null
          ? "endpoint_pubkey is required: the endpoint's 40-character Z85 CURVE public key (an unmodified funcx-endpoint 0.3 sends none: the service admin can allow those with `service start --legacy-endpoints`, see SECURITY.md)"
          : "endpoint_pubkey: expected the endpoint's 40-character Z85 CURVE public key",
        ["endpoint_pubkey"],
      );
    }
    const existing = this.#store.getEndpoint(uuid);
    if (existing && existing.user_id !== user.userId) {
      throw new ApiError(
        ErrorCode.EndpointAlreadyRegistered,
        `Endpoint ${uuid} was already registered by a different identity (you are ${user.username})`,
        [uuid],
      );
    }
    const sharing = parseEndpointSharing(body, this.#store.sharing);
    const other = legacy ? undefined : this.#fwd.endpointForKey(pubkey as string);
    if (other && other !== uuid) {
      throw new ApiError(
        ErrorCode.RequestMalformed,
        "endpoint_pubkey is already registered for another endpoint; use a fresh keypair",
        ["endpoint_pubkey"],
      );
    }
    const allowed = allowedFunctionsField(body);
    const secret = newToken("fxs");
    this.#store.upsertEndpoint({
      uuid,
      user_id: user.userId,
      name,
      version: body.version,
      // a legacy endpoint's key is bound when it first connects (legacy.ts)
      pubkey: legacy ? "" : pubkey as string,
      secret_hash: legacy ? "" : sha256Hex(secret),
      ip: "",
    });
    // ours always send allowed_functions (a list, or null for none); upstream endpoints never
    // do, and keep what the owner set with the SDK
    if (allowed !== undefined) this.#store.setAllowedFunctions(uuid, allowed);
    this.#store.sharing.setEndpointSharing(uuid, sharing);
    if (legacy) {
      this.#store.legacy.registered(uuid);
      this.#fwd.legacyEndpointRegistered(uuid, existing?.pubkey);
      this.#log.warn(
        "api",
        "endpoint %s (%s) registered by %s in LEGACY mode (no endpoint key: the first CURVE key that connects for it is trusted)",
        uuid,
        name,
        user.username,
      );
    } else {
      this.#store.legacy.forget(uuid);
      this.#fwd.endpointRegistered(uuid, pubkey as string, existing?.pubkey);
      this.#log.info("api", "endpoint %s (%s) registered by %s", uuid, name, user.username);
    }
    this.#audit.record("endpoint.registered", {
      user: user.username,
      endpoint: uuid,
      name,
      public: sharing.public,
      groups: sharing.groups,
      allowed_functions: allowed === undefined ? "unchanged" : allowed,
      reregistered: existing !== undefined,
      legacy,
    });
    const owner = this.#store.sharing.identity(user.userId);
    const ports = this.#fwd.ports;
    return json({
      response: true,
      id: 0,
      endpoint_id: uuid,
      forwarder_pubkey: this.#fwd.publicCertificate,
      public_ip: this.#publicHost,
      tasks_port: ports.tasks,
      results_port: ports.results,
      commands_port: ports.commands,
      ...(legacy ? {} : { endpoint_secret: secret }),
      ...(allowed ? { allowed_function_hashes: functionCodeHashes(this.#store, allowed) } : {}),
      owner: { username: user.username, email: owner?.email ?? null },
      sharing: this.#sharingRecord(sharing),
    });
  }

  /** The endpoint, if the user owns it (404 unknown, 403 someone else's). */
  #ownedEndpoint(user: TokenInfo, rawId: string) {
    const id = checkUuid(rawId, "endpoint_id");
    const ep = this.#store.getEndpoint(id);
    if (!ep) {
      throw new ApiError(ErrorCode.EndpointNotFound, `Endpoint ${id} could not be found`, [id]);
    }
    if (ep.user_id !== user.userId) {
      throw new ApiError(
        ErrorCode.EndpointAccessForbidden,
        `Unauthorized access to endpoint ${id}`,
        [id],
      );
    }
    return ep;
  }

  /** The endpoint, if the user may use it (owner, public, or member of an allowed group). */
  #usableEndpoint(user: TokenInfo, rawId: string) {
    const id = checkUuid(rawId, "endpoint_id");
    const ep = this.#store.getEndpoint(id);
    if (!ep) {
      throw new ApiError(ErrorCode.EndpointNotFound, `Endpoint ${id} could not be found`, [id]);
    }
    const access = { ownerId: ep.user_id, ...this.#store.sharing.endpointSharing(id) };
    if (!mayUseEndpoint(access, user.userId, this.#store.sharing.groupIdsOf(user.userId))) {
      throw new ApiError(
        ErrorCode.EndpointAccessForbidden,
        `Unauthorized access to endpoint ${id}`,
        [id],
      );
    }
    return ep;
  }

  /** Group ids → `{id, name}` records, and the public flag, for replies. */
  #sharingRecord(s: { public: boolean; groups: readonly string[] }) {
    return {
      public: s.public,
      allowed_groups: s.groups.map((id) => ({
        id,
        name: this.#store.sharing.findGroup(id)?.name ?? null,
      })),
    };
  }

  #endpointStatus(req: Request, rawId: string): Response {
    const user = this.#user(req);
    const ep = this.#usableEndpoint(user, rawId);
    const sharing = this.#store.sharing.endpointSharing(ep.uuid);
    const logs = this.#store.statusLog(ep.uuid, 10).map((r) => ({
      ...(r.info as Record<string, unknown>),
      timestamp: r.ts,
    }));
    return json({
      status: this.#fwd.isOnline(ep.uuid) ? "online" : "offline",
      logs,
      last_heartbeat: this.#fwd.lastSeen(ep.uuid) ?? ep.last_heartbeat,
      owner: this.#store.sharing.identity(ep.user_id)?.username ?? null,
      sharing: this.#sharingRecord(sharing),
    });
  }

  #deleteEndpoint(req: Request, rawId: string): Response {
    const user = this.#user(req);
    const ep = this.#ownedEndpoint(user, rawId);
    const failed = this.#store.failPendingTasks(ep.uuid, endpointGoneException(ep.uuid));
    this.#store.deleteEndpoint(ep.uuid);
    this.#store.setAllowedFunctions(ep.uuid, null);
    this.#store.sharing.forget(ep.uuid);
    this.#fwd.endpointDeleted(ep.uuid, ep.pubkey);
    this.#log.info(
      "api",
      "endpoint %s deleted by %s (%d tasks failed)",
      ep.uuid,
      user.username,
      failed,
    );
    return json({ result: 302, endpoint_id: ep.uuid, failed_tasks: failed });
  }

  // ---------------------------------------------------------------- functions

  async #registerFunction(req: Request): Promise<Response> {
    const user = this.#user(req);
    const body = await readJsonObject(req);
    const code = body.function_code;
    if (typeof code !== "string" || code === "") {
      throw new ApiError(
        ErrorCode.RequestKeyError,
        "function_code is required: the packed serialized function (pack_buffers([serialize(fn)]))",
        ["function_code"],
      );
    }
    _checkPackedFunction(code);
    const name = _optString(body, "function_name") ?? "";
    const container = body.container_uuid === undefined || body.container_uuid === null
      ? null
      : checkUuid(body.container_uuid, "container_uuid");
    const shared = parseFunctionSharing(body, this.#store.sharing);
    const uuid = crypto.randomUUID();
    this.#store.createFunction({
      uuid,
      user_id: user.userId,
      name,
      code,
      source: _optString(body, "function_source") ?? "",
      container,
      entry_point: _optString(body, "entry_point") ?? "",
      description: _optString(body, "description") ?? "",
      public: shared.public ? 1 : 0,
    });
    if (shared.groupId) this.#store.sharing.setFunctionGroup(uuid, shared.groupId);
    if (shared.public || shared.groupId) {
      this.#audit.record("sharing.changed", {
        action: "function.register",
        by: user.username,
        function: uuid,
        public: !!shared.public,
        group: shared.groupId ?? null,
      });
    }
    return json({ function_uuid: uuid });
  }

  #ownedFunction(user: TokenInfo, rawId: string) {
    const id = checkUuid(rawId, "function_id");
    const fn = this.#store.getFunction(id);
    if (!fn) {
      throw new ApiError(ErrorCode.FunctionNotFound, `Function ${id} could not be found`, [id]);
    }
    if (fn.user_id !== user.userId) {
      throw new ApiError(
        ErrorCode.FunctionAccessForbidden,
        `Unauthorized access to function ${id}`,
        [id],
      );
    }
    return fn;
  }

  async #updateFunction(req: Request, rawId: string): Promise<Response> {
    const user = this.#user(req);
    const fn = this.#ownedFunction(user, rawId);
    const body = await readJsonObject(req);
    const fields: Parameters<ServiceStore["updateFunction"]>[1] = {};
    if (body.function_code !== undefined) {
      if (typeof body.function_code !== "string" || body.function_code === "") {
        throw new ApiError(ErrorCode.RequestMalformed, "function_code must be a non-empty string");
      }
      _checkPackedFunction(body.function_code);
      fields.code = body.function_code;
    }
    const name = _optString(body, "function_name");
    if (name !== undefined) fields.name = name;
    const source = _optString(body, "function_source");
    if (source !== undefined) fields.source = source;
    const description = _optString(body, "description");
    if (description !== undefined) fields.description = description;
    const shared = parseFunctionSharing(body, this.#store.sharing);
    if (shared.public !== undefined) fields.public = shared.public ? 1 : 0;
    this.#store.updateFunction(fn.uuid, fields);
    if (shared.groupId !== undefined) this.#store.sharing.setFunctionGroup(fn.uuid, shared.groupId);
    if (shared.public !== undefined || shared.groupId !== undefined) {
      this.#audit.record("sharing.changed", {
        action: "function.update",
        by: user.username,
        function: fn.uuid,
        public: shared.public,
        group: shared.groupId,
      });
    }
    return json({ result: 302, function_uuid: fn.uuid });
  }

  #deleteFunction(req: Request, rawId: string): Response {
    const user = this.#user(req);
    const fn = this.#ownedFunction(user, rawId);
    this.#store.deleteFunction(fn.uuid);
    this.#store.sharing.forget(fn.uuid);
    return json({ result: 302, function_uuid: fn.uuid });
  }

  // ---------------------------------------------------------------- tasks

  async #submit(req: Request): Promise<Response> {
    const user = this.#user(req);
    const body = await readJsonObject(req);
    let items: unknown[];
    let groupId: string;
    if (body.tasks !== undefined) {
      if (!Array.isArray(body.tasks)) {
        throw new ApiError(
          ErrorCode.RequestMalformed,
          "tasks must be a list of [function_id, endpoint_id, payload]",
        );
      }
      items = body.tasks;
      groupId = body.task_group_id === undefined || body.task_group_id === null
        ? crypto.randomUUID()
        : checkUuid(body.task_group_id, "task_group_id");
    } else if (body.func !== undefined || body.endpoint !== undefined) {
      items = [[body.func, body.endpoint, body.payload]];
      groupId = crypto.randomUUID();
    } else {
      throw new ApiError(
        ErrorCode.RequestKeyError,
        "Request needs 'tasks' ([[function_id, endpoint_id, payload], ...]) or the legacy func/endpoint/payload",
        ["tasks"],
      );
    }
    const { rows, results } = this.#prepare(user, items, groupId);
    this.#launch(rows);
    const anyFailed = rows.length !== items.length;
    return json(
      { response: "batch", task_group_id: groupId, results },
      anyFailed ? 207 : 200,
    );
  }

  /**
   * `POST /submit_batch` (the SDK's `map_run`): `{"endpoints": [id], "func": id, "payload":
   * [packed args/kwargs, ...]}` → `{"status": "Success", "task_uuids": [...]}`, one task per
   * payload and endpoint (payload-major). All or nothing: the first refused task's error
   * record is the answer and nothing is launched.
   */
  async #submitBatch(req: Request): Promise<Response> {
    const user = this.#user(req);
    const body = await readJsonObject(req);
    for (const k of ["endpoints", "func", "payload"]) {
      if (body[k] === undefined) {
        throw new ApiError(ErrorCode.RequestKeyError, `'${k}' is required`, [k]);
      }
    }
    const endpoints = body.endpoints;
    if (!Array.isArray(endpoints) || endpoints.length === 0) {
      throw new ApiError(ErrorCode.RequestMalformed, "endpoints must be a non-empty list of ids");
    }
    const payloads = Array.isArray(body.payload) ? body.payload : [body.payload];
    const items: unknown[] = [];
    for (const p of payloads) for (const e of endpoints) items.push([body.func, e, p]);
    const groupId = body.task_group_id === undefined || body.task_group_id === null
      ? crypto.randomUUID()
      : checkUuid(body.task_group_id, "task_group_id");
    const { rows, errors } = this.#prepare(user, items, groupId);
    if (errors.length > 0) throw errors[0];
    this.#launch(rows);
    return json({ status: "Success", task_group_id: groupId, task_uuids: rows.map((r) => r.uuid) });
  }

  /** Check each `[function_id, endpoint_id, payload]`; the task rows and per-task records. */
  #prepare(user: TokenInfo, items: unknown[], groupId: string) {
    if (items.length > _MAX_BATCH) {
      throw new ApiError(
        ErrorCode.RequestMalformed,
        `Too many tasks in one request: ${items.length} > ${_MAX_BATCH}`,
      );
    }
    const fnIds = items.map((t) => (Array.isArray(t) ? t[0] : undefined)).filter(
      (x): x is string => typeof x === "string",
    ).map((s) => s.toLowerCase());
    const functions = this.#store.getFunctions(fnIds);
    const endpoints = new Map<string, ReturnType<ServiceStore["getEndpoint"]>>();
    const allowLists = new Map<string, Set<string> | null>();
    // read for this request only: a member removed from a group loses access at once
    const myGroups = this.#store.sharing.groupIdsOf(user.userId);
    const fnAccess = new Map<string, boolean>();
    const epAccess = new Map<string, boolean>();
    const results: Record<string, unknown>[] = [];
    const errors: ApiError[] = [];
    const rows: NewTask[] = [];
    for (let i = 0; i < items.length; i++) {
      const t = items[i];
      const taskUuid = crypto.randomUUID();
      try {
        if (!Array.isArray(t) || t.length !== 3) {
          throw new ApiError(
            ErrorCode.RequestMalformed,
            `tasks[${i}] must be [function_id, endpoint_id, payload]`,
            [i],
          );
        }
        const fid = checkUuid(t[0], `tasks[${i}] function_id`);
        const eid = checkUuid(t[1], `tasks[${i}] endpoint_id`);
        if (typeof t[2] !== "string") {
          throw new ApiError(
            ErrorCode.RequestMalformed,
            `tasks[${i}] payload must be a string (pack_buffers of serialized args and kwargs)`,
            [i],
          );
        }
        const fn = functions.get(fid);
        if (!fn) {
          throw new ApiError(ErrorCode.FunctionNotFound, `Function ${fid} could not be found`, [
            fid,
          ]);
        }
        if (!fnAccess.has(fid)) {
          fnAccess.set(
            fid,
            mayRunFunction(
              {
                ownerId: fn.user_id,
                public: !!fn.public,
                groupId: fn.user_id === user.userId ? null : this.#store.sharing.functionGroup(fid),
              },
              user.userId,
              myGroups,
            ),
          );
        }
        if (!fnAccess.get(fid)) {
          throw new ApiError(
            ErrorCode.FunctionAccessForbidden,
            `Unauthorized access to function ${fid}`,
            [fid],
          );
        }
        if (!endpoints.has(eid)) endpoints.set(eid, this.#store.getEndpoint(eid));
        const ep = endpoints.get(eid);
        if (!ep) {
          throw new ApiError(ErrorCode.EndpointNotFound, `Endpoint ${eid} could not be found`, [
            eid,
          ]);
        }
        if (!epAccess.has(eid)) {
          const sharing = ep.user_id === user.userId
            ? { public: false, groups: [] }
            : this.#store.sharing.endpointSharing(eid);
          epAccess.set(
            eid,
            mayUseEndpoint({ ownerId: ep.user_id, ...sharing }, user.userId, myGroups),
          );
        }
        if (!epAccess.get(eid)) {
          throw new ApiError(
            ErrorCode.EndpointAccessForbidden,
            `Unauthorized access to endpoint ${eid}`,
            [eid],
          );
        }
        if (!allowLists.has(eid)) {
          const list = this.#store.allowedFunctions(eid);
          allowLists.set(eid, list && new Set(list));
        }
        if (allowLists.get(eid)?.has(fid) === false) {
          throw new ApiError(
            ErrorCode.FunctionNotPermitted,
            `Function ${fid} not permitted on endpoint ${eid}`,
            [fid, eid],
          );
        }
        rows.push({
          uuid: taskUuid,
          userId: user.userId,
          functionUuid: fid,
          endpointUuid: eid,
          taskGroupId: groupId,
          container: fn.container ?? "RAW",
          payload: fn.code + t[2],
        });
        results.push({ status: "Success", task_uuid: taskUuid, http_status_code: 200 });
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        errors.push(e);
        results.push({ ...e.record(), task_uuid: taskUuid });
      }
    }
    return { rows, results, errors };
  }

  #launch(rows: NewTask[]): void {
    // Tasks of connected endpoints are stored as delivered and sent straight from these rows
    // (no re-read, no second transaction); the others wait for their endpoint to connect.
    const online = new Set<string>();
    for (const r of rows) if (this.#fwd.isOnline(r.endpointUuid)) online.add(r.endpointUuid);
    this.#store.insertTasks(rows, online);
    this.#fwd.tasksSubmitted(rows.filter((r) => online.has(r.endpointUuid)));
  }

  // ---------------------------------------------------------------- allow-lists

  /** `GET /endpoints/<id>/whitelist` → `{"status": "Success", "result": [function ids]}`. */
  #getAllowList(req: Request, rawId: string): Response {
    const ep = this.#ownedEndpoint(this.#user(req), rawId);
    return json({ status: "Success", result: this.#store.allowedFunctions(ep.uuid) ?? [] });
  }

  /** `POST /endpoints/<id>/whitelist` with `{"func": [function ids]}`: restricts the endpoint. */
  async #addAllowList(req: Request, rawId: string): Promise<Response> {
    const user = this.#user(req);
    const ep = this.#ownedEndpoint(user, rawId);
    const body = await readJsonObject(req);
    if (body.func === undefined) {
      throw new ApiError(ErrorCode.RequestKeyError, "'func' is required: a list of function ids", [
        "func",
      ]);
    }
    const raw = Array.isArray(body.func) ? body.func : [body.func];
    const ids = raw.map((f, i) => checkUuid(f, `func[${i}]`));
    const known = this.#store.getFunctions(ids);
    for (const id of ids) {
      if (!known.has(id)) {
        throw new ApiError(ErrorCode.FunctionNotFound, `Function ${id} could not be found`, [id]);
      }
    }
    this.#store.setAllowedFunctions(ep.uuid, ids, true);
    this.#log.info("api", "endpoint %s: %s allowed by %s", ep.uuid, ids.join(", "), user.username);
    this.#audit.record("allowlist.changed", {
      user: user.username,
      endpoint: ep.uuid,
      added: ids,
    });
    return json({
      status: "Success",
      reason: `Added functions ${JSON.stringify(ids)} to endpoint ${ep.uuid} whitelist.`,
    });
  }

  /** `DELETE /endpoints/<id>/whitelist/<function id>` → `{"status": "Success", "result": id}`. */
  #deleteAllowList(req: Request, rawId: string, rawFid: string): Response {
    const user = this.#user(req);
    const ep = this.#ownedEndpoint(user, rawId);
    const fid = checkUuid(rawFid, "function_id");
    if (!this.#store.removeAllowedFunction(ep.uuid, fid)) {
      throw new ApiError(
        ErrorCode.FunctionNotFound,
        `Function ${fid} is not in the whitelist of endpoint ${ep.uuid}`,
        [fid],
      );
    }
    this.#audit.record("allowlist.changed", {
      user: user.username,
      endpoint: ep.uuid,
      removed: [fid],
    });
    return json({ status: "Success", result: fid });
  }

  #taskRecord(t: TaskRow): Record<string, unknown> {
    const rec: Record<string, unknown> = { task_id: t.uuid, status: t.status };
    if (t.completion_t !== null) rec.completion_t = String(t.completion_t);
    if (t.result !== null) rec.result = t.result;
    if (t.exception !== null) rec.exception = t.exception;
    return rec;
  }

  /**
   * `GET /tasks/<id>` (and the status aliases). With `?wait=<seconds>` (≤ 30, ours only; old
   * clients never send it) a pending task's answer is held until its result is stored or the
   * time is up: a long poll instead of a client polling loop.
   */
  async #getTask(req: Request, rawId: string, canWait = false): Promise<Response> {
    const user = this.#user(req);
    const id = checkUuid(rawId, "task_id");
    const wait = canWait ? _waitSeconds(req) : 0;
    let t = this.#store.getTask(id);
    // another user's task is indistinguishable from an unknown one
    if (!t || t.user_id !== user.userId) {
      throw new ApiError(ErrorCode.TaskNotFound, `Task ${id} could not be found`, [id]);
    }
    if (wait > 0 && !FINAL_STATES.has(t.status)) {
      await this.#fwd.resultStored(id, wait * 1000);
      t = this.#store.getTask(id) ?? t;
    }
    const rec = this.#taskRecord(t);
    if (FINAL_STATES.has(t.status)) this.#handedOut([t.uuid]);
    return json(rec);
  }

  async #batchStatus(req: Request): Promise<Response> {
    const user = this.#user(req);
    const body = await readJsonObject(req);
    const ids = body.task_ids;
    if (!Array.isArray(ids)) {
      throw new ApiError(ErrorCode.RequestKeyError, "task_ids is required: a list of task ids", [
        "task_ids",
      ]);
    }
    if (ids.length > _MAX_BATCH) {
      throw new ApiError(
        ErrorCode.RequestMalformed,
        `Too many task ids: ${ids.length} > ${_MAX_BATCH}`,
      );
    }
    const valid = ids.filter((x): x is string => typeof x === "string").map((s) => s.toLowerCase());
    const rows = this.#store.getTasks(valid);
    const out: Record<string, unknown> = {};
    const done: string[] = [];
    for (const raw of ids) {
      const key = String(raw);
      const t = typeof raw === "string" ? rows.get(raw.toLowerCase()) : undefined;
      if (!t || t.user_id !== user.userId) {
        out[key] = { task_id: key, status: "Failed", reason: "Unknown task id" };
        continue;
      }
      out[key] = this.#taskRecord(t);
      if (FINAL_STATES.has(t.status)) done.push(t.uuid);
    }
    this.#handedOut(done);
    return json({ response: "batch", results: out });
  }

  /**
   * Mark results as handed out. When that write fails (disk full) the answer still goes out:
   * an unmarked result is only kept longer, which loses nothing.
   */
  #handedOut(ids: string[]): void {
    try {
      this.#store.handedOut(ids);
    } catch (e) {
      this.#log.warn("api", "marking %d results as handed out failed: %s", ids.length, e);
    }
  }

  #taskGroup(req: Request, rawId: string): Response {
    const user = this.#user(req);
    const id = checkUuid(rawId, "task_group_id");
    if (!this.#store.ownsTaskGroup(user.userId, id)) {
      throw new ApiError(ErrorCode.TaskGroupNotFound, `Task group ${id} could not be found`, [id]);
    }
    return json({ authorized: true });
  }
}

function _optString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") {
    throw new ApiError(ErrorCode.RequestMalformed, `${key} must be a string`, [key]);
  }
  return v;
}

/** function_code must be `pack_buffers([serialized])`: `<len>\n<serialized>`. */
function _checkPackedFunction(code: string): void {
  const nl = code.indexOf("\n");
  const len = nl > 0 ? Number(code.slice(0, nl)) : NaN;
  if (!Number.isInteger(len) || len <= 0 || code.length !== nl + 1 + len) {
    throw new ApiError(
      ErrorCode.RequestMalformed,
      "function_code must be one packed buffer: '<length>\\n<serialized function>'",
      ["function_code"],
    );
  }
  const method = code.slice(nl + 1, nl + 3);
  if (!/^0[0-4]$/.test(method) || code[nl + 3] !== "\n") {
    throw new ApiError(
      ErrorCode.RequestMalformed,
      `function_code has unknown serializer ${JSON.stringify(method)}; expected 00-04`,
      ["function_code"],
    );
  }
}

/** The `wait` query parameter of a long poll, in seconds (0 when absent); at most 30. */
function _waitSeconds(req: Request): number {
  const raw = new URL(req.url).searchParams.get("wait");
  if (raw === null) return 0;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0 || v > 30) {
    throw new ApiError(
      ErrorCode.RequestMalformed,
      `wait must be a number of seconds from 0 to 30, got ${JSON.stringify(raw.slice(0, 40))}`,
      ["wait"],
    );
  }
  return v;
}
